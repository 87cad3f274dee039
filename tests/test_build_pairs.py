"""The build_pairs job: runs, re-runs after rescoring, resumption, the CLI, and a real worker."""

import json
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotation import jobs
from annotation.ingest.formats import messages_hash, parse_record, text_hash
from annotation.models import Dataset, Job, Judgement, Pair, PairBuildRun
from annotation.pairing import BuildAlreadyRunning, BuildParams, pairs_for_prompt, panel_score, start_build

from .conftest import wait_for
from .judged import constructed, generate_scored, imported_pair, judge, rescore, rubric, scored_prompt

SAMPLE_RESPONSES = Path(__file__).resolve().parent.parent / "sample_data" / "coigp_sample_responses.jsonl"


def build(dataset, **kwargs):
    chunk_size = kwargs.pop("chunk_size", None)
    job = start_build(dataset, BuildParams(**kwargs), enqueue=False, chunk_size=chunk_size)
    status = jobs.execute(job.pk)
    job.refresh_from_db()
    assert status == Job.Status.SUCCEEDED, job.error
    return job, PairBuildRun.objects.get(job=job)


@pytest.fixture
def dataset(db):
    return Dataset.objects.create(name="构造")


def test_a_build_creates_constructed_pairs_that_record_run_scores_and_threshold(dataset):
    r = scored_prompt(dataset, "问题一", {"A": {"j1": 9, "j2": 8}, "B": {"j1": 5, "j2": 6}, "C": {"j1": 8, "j2": 8}},
                      domain="math")
    job, run = build(dataset)
    pairs = constructed(dataset)
    assert set(pairs) == {(r["A"].text, r["B"].text), (r["C"].text, r["B"].text)}
    ab = pairs[(r["A"].text, r["B"].text)]
    assert (ab.chosen_score, ab.rejected_score, ab.gap()) == (8.5, 5.5, 3.0)
    assert (ab.build_run, ab.status, ab.domain, ab.prompt) == (run, Pair.Status.PENDING, "math", r["A"].prompt)
    assert run.params["threshold"] == 2.0 and run.params["judges"] == ["j1", "j2"]
    assert run.params["strategy"] == "all" and run.params["aggregate"] == "mean"
    assert run.counts["prompts_considered"] == 1 and run.counts["pairs_created"] == 2
    assert run.counts["by_domain"] == {"math": 2} and run.finished_at
    assert job.unit == "prompts" and job.done == job.total == 1


def test_prompts_without_two_panel_scored_responses_are_not_considered(dataset):
    scored_prompt(dataset, "只有一个回答", {"A": {"j1": 9, "j2": 9}})
    scored_prompt(dataset, "一个裁判不够", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 2}})
    scored_prompt(dataset, "差距不够", {"A": {"j1": 7, "j2": 7}, "B": {"j1": 5, "j2": 5}})
    _, run = build(dataset)
    assert run.counts["prompts_considered"] == 1
    assert run.counts["prompts_without_pairs"] == 1
    assert run.counts["responses_below_min_judges"] == 1
    assert run.counts["pairs_created"] == 0 and not Pair.objects.exists()


def test_rebuilding_after_rescoring_updates_withdraws_and_restores_and_never_touches_imported_pairs(dataset):
    r = scored_prompt(dataset, "重打分", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 5, "j2": 5}, "C": {"j1": 8, "j2": 8}})
    x = scored_prompt(dataset, "已导入", {"X": {"j1": 9, "j2": 9}, "Y": {"j1": 3, "j2": 3}})
    same = imported_pair(dataset, x["X"], x["Y"], status="filtered")
    reversed_ = imported_pair(dataset, r["B"], r["A"])
    _, run1 = build(dataset)
    assert run1.counts["pairs_created"] == 2 and run1.counts["pairs_same_as_imported"] == 1
    ab, cb = (r["A"].text, r["B"].text), (r["C"].text, r["B"].text)
    Pair.objects.filter(pk=constructed(dataset)[ab].pk).update(status=Pair.Status.KEPT)

    rescore(r["B"], "j1", 6.5)
    rescore(r["B"], "j2", 6.5)
    _, run2 = build(dataset)
    pairs = constructed(dataset)
    assert run2.counts["pairs_updated"] == 1 and run2.counts["pairs_withdrawn"] == 1
    assert run2.counts["pairs_created"] == 0 and run2.counts["pairs_restored"] == 0
    assert (pairs[ab].status, pairs[ab].build_run, pairs[ab].rejected_score) == (Pair.Status.KEPT, run2, 6.5)
    assert pairs[cb].status == Pair.Status.WITHDRAWN
    assert pairs[cb].status_reason == f"withdrawn by build run {run2.pk}"

    rescore(r["B"], "j1", 5)
    rescore(r["B"], "j2", 5)
    _, run3 = build(dataset)
    pairs = constructed(dataset)
    assert run3.counts["pairs_restored"] == 1 and run3.counts["pairs_updated"] == 1
    assert run3.counts["pairs_withdrawn"] == 0 and run3.counts["pairs_created"] == 0
    assert (pairs[cb].status, pairs[cb].status_reason, pairs[cb].build_run) == (Pair.Status.PENDING, "", run3)
    assert len(pairs) == 2  # nothing deleted, nothing doubled

    for pair, status in ((same, "filtered"), (reversed_, "pending")):
        pair.refresh_from_db()
        assert (pair.origin, pair.status, pair.build_run, pair.chosen_score) == ("imported", status, None, None)


def test_pairs_of_a_prompt_whose_judgements_are_gone_are_withdrawn(dataset):
    r = scored_prompt(dataset, "裁判撤回", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 3, "j2": 3}})
    scored_prompt(dataset, "留下", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 3, "j2": 3}})
    build(dataset)
    Judgement.objects.filter(response__prompt=r["A"].prompt).delete()
    _, run = build(dataset)
    assert run.counts["pairs_withdrawn"] == 1 and run.counts["pairs_updated"] == 1
    assert Pair.objects.get(prompt=r["A"].prompt).status == Pair.Status.WITHDRAWN


def test_a_build_restricted_to_domains_leaves_other_domains_alone(dataset):
    scored_prompt(dataset, "数学题", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 3, "j2": 3}}, domain="math")
    code = scored_prompt(dataset, "代码题", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 3, "j2": 3}}, domain="code")
    build(dataset)
    rescore(code["B"], "j1", 9)
    _, run = build(dataset, domains=("math",))
    assert run.counts["prompts_considered"] == 1 and run.counts["pairs_updated"] == 1
    assert run.counts["pairs_withdrawn"] == 0
    assert Pair.objects.get(domain="code").status == Pair.Status.PENDING


def test_only_the_chosen_judges_count(dataset):
    r = scored_prompt(dataset, "选裁判", {"A": {"j1": 9, "j2": 9, "j3": 1}, "B": {"j1": 5, "j2": 6, "j3": 9}})
    _, run = build(dataset, judges=("j1", "j2"))
    assert set(constructed(dataset)) == {(r["A"].text, r["B"].text)}
    assert run.params["judges"] == ["j1", "j2"]
    _, run = build(dataset, judges=("j3",), min_judges=1)
    assert set(constructed(dataset)) == {(r["A"].text, r["B"].text), (r["B"].text, r["A"].text)}
    assert constructed(dataset)[(r["A"].text, r["B"].text)].status == Pair.Status.WITHDRAWN


def test_the_latest_ok_judgement_of_a_judge_counts(dataset):
    r = scored_prompt(dataset, "新版评分标准", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 3, "j2": 3}})
    later = timezone.now() + timedelta(seconds=5)
    for name in ("j1", "j2"):
        Judgement.objects.create(response=r["A"], judge=judge(name), rubric=rubric(version=2), score=4, status="ok",
                                 created_at=later)
        Judgement.objects.create(response=r["B"], judge=judge(name), rubric=rubric(version=3), status="parse_error",
                                 created_at=later + timedelta(seconds=1))
    _, run = build(dataset)
    assert run.counts["prompts_considered"] == 1 and run.counts["pairs_created"] == 0


def test_zscore_and_median_are_recorded_with_the_statistics(dataset):
    scored_prompt(dataset, "标准化", {"A": {"harsh": 4, "kind": 9}, "B": {"harsh": 2, "kind": 7}})
    _, run = build(dataset, normalise="zscore", aggregate="median")
    assert run.params["judge_stats"] == {"harsh": {"mean": 3.0, "std": 1.0}, "kind": {"mean": 8.0, "std": 1.0}}
    assert run.params["pooled"]["mean"] == 5.5
    pair = Pair.objects.get()
    assert pair.chosen_score == pytest.approx(5.5 + run.params["pooled"]["std"], abs=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    ({"min_judges": 3}, "min_judges is 3 but only 2 judge(s) are selected"),
    ({"judges": ("j1", "nobody")}, "no ok judgements in 构造 from judge(s) nobody; judges with scores: j1, j2"),
])
def test_a_build_that_cannot_run_fails_with_the_reason(dataset, kwargs, message):
    scored_prompt(dataset, "失败", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 3, "j2": 3}})
    job = start_build(dataset, BuildParams(**kwargs), enqueue=False)
    assert jobs.execute(job.pk) == Job.Status.FAILED
    job.refresh_from_db()
    assert message in job.error and not Pair.objects.exists()


def test_a_second_build_is_refused_while_one_is_under_way(dataset):
    first = start_build(dataset, BuildParams(), enqueue=False)
    with pytest.raises(BuildAlreadyRunning) as refused:
        start_build(dataset, BuildParams(), enqueue=False)
    assert refused.value.job == first


class WorkerDied(BaseException):
    """Escapes the job framework like a killed process: nothing after the last commit happens."""


def test_a_build_interrupted_after_a_chunk_resumes_and_ends_as_an_uninterrupted_one(dataset, short_lease):
    for i in range(7):
        scored_prompt(dataset, f"问题{i}", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 3 + i % 3, "j2": 3},
                                           "C": {"j1": 6, "j2": 5 + i % 4}})
    job = start_build(dataset, BuildParams(), enqueue=False, chunk_size=3)

    def die_in_the_second_chunk(job_state, counts):
        # Called inside the chunk's transaction: the second chunk never commits.
        if job_state.done > 3:
            raise WorkerDied()

    with pytest.raises(WorkerDied):
        jobs.execute(job.pk, on_progress=die_in_the_second_chunk)
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.done == 3
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=10))

    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    run = PairBuildRun.objects.get(job=job)
    assert job.attempts == 2 and job.done == job.total == 7
    assert PairBuildRun.objects.count() == 1
    interrupted = {(p.prompt.query, p.chosen.text, p.rejected.text) for p in constructed(dataset).values()}
    assert run.counts["pairs_created"] == len(interrupted) == Pair.objects.count()

    Pair.objects.all().delete()
    build(dataset)
    assert {(p.prompt.query, p.chosen.text, p.rejected.text) for p in constructed(dataset).values()} == interrupted


def test_cancelling_a_build_stops_it_at_the_next_chunk(dataset):
    for i in range(4):
        scored_prompt(dataset, f"取消{i}", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 2, "j2": 2}})
    job = start_build(dataset, BuildParams(), enqueue=False, chunk_size=2)

    def cancel_after_first_chunk(job_state, counts):
        if job_state.done == 2:
            jobs.request_cancel(job_state)

    assert jobs.execute(job.pk, on_progress=cancel_after_first_chunk) == Job.Status.CANCELLED
    job.refresh_from_db()
    assert job.done == 2 and job.counts["pairs_created"] == Pair.objects.count() == 2
    run = PairBuildRun.objects.get(job=job)
    assert run.counts["pairs_created"] == 2 and run.finished_at is None


# --- the commands ---


def test_build_pairs_command_writes_the_report(dataset, tmp_path, capsys):
    scored_prompt(dataset, "命令", {"A": {"j1": 9, "j2": 9}, "B": {"j1": 3, "j2": 3}, "C": {"j1": 5, "j2": 6}})
    report_path = tmp_path / "report.json"
    call_command("build_pairs", dataset="构造", threshold=2.5, strategy="best-worst", report_json=str(report_path),
                 no_progress=True)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["prompts_considered"] == 1 and report["pairs_created"] == 1 and report["pairs_withdrawn"] == 0
    assert report["params"]["strategy"] == "best-worst" and report["params"]["threshold"] == 2.5
    assert "1 pairs created" in capsys.readouterr().out
    assert Job.objects.get().kind == "build_pairs"


def test_build_pairs_command_names_what_is_wrong(dataset):
    with pytest.raises(CommandError, match="no dataset is called 'nothing'"):
        call_command("build_pairs", dataset="nothing", no_progress=True)
    with pytest.raises(CommandError, match="k must be a whole number of at least 1"):
        call_command("build_pairs", dataset="构造", strategy="random", k=0, no_progress=True)
    with pytest.raises(CommandError, match="has no ok judgements"):
        call_command("build_pairs", dataset="构造", no_progress=True)


# --- on a real worker, from the imported sample file ---


def expected_sample_pairs(params):
    """The pairs the sample file should give, computed straight from the file with the pure core."""
    expected = set()
    for line in SAMPLE_RESPONSES.read_text(encoding="utf-8").splitlines():
        record = parse_record(json.loads(line), "responses")
        p_hash = messages_hash(record.messages)
        panel = {}
        for _model, text, scores in record.responses:
            value = panel_score({j: float(s) for j, s in scores.items()}, params)
            if value is not None:
                panel[text_hash(text)] = value
        expected |= {(p_hash, c.chosen, c.rejected) for c in pairs_for_prompt(panel, params, prompt_key=p_hash)}
    return expected


@pytest.mark.worker
def test_a_thread_worker_builds_pairs_from_the_imported_sample(thread_worker):
    call_command("import_pairs", str(SAMPLE_RESPONSES), dataset="样例", no_progress=True)
    dataset = Dataset.objects.get(name="样例")
    params = BuildParams(threshold=2.0)
    job = start_build(dataset, params, chunk_size=4)

    def finished():
        job.refresh_from_db()
        return job.is_finished()

    wait_for(finished, timeout=60, message="the build job to finish")
    assert job.status == Job.Status.SUCCEEDED, job.error
    got = set(Pair.objects.filter(dataset=dataset).values_list(
        "prompt__content_hash", "chosen__content_hash", "rejected__content_hash"))
    expected = expected_sample_pairs(params)
    assert got == expected and len(expected) > 10
    assert job.counts["pairs_created"] == len(expected) and job.total == job.done
    by_prompt = defaultdict(int)
    for p_hash, _c, _r in expected:
        by_prompt[p_hash] += 1
    assert job.counts["prompts_considered"] - job.counts["prompts_without_pairs"] == len(by_prompt)


def expected_from_database(dataset, params):
    """The pairs the dataset's judgements should give, computed with the pure core from plain rows."""
    scores = defaultdict(lambda: defaultdict(dict))
    rows = Judgement.objects.filter(response__dataset=dataset, status="ok").values_list(
        "response__prompt_id", "response_id", "judge_id", "score")
    for prompt_id, response_id, judge_id, score in rows:
        scores[prompt_id][response_id][judge_id] = score
    expected = set()
    for prompt_id, responses in scores.items():
        panel = {r: panel_score(s, params) for r, s in responses.items()}
        panel = {r: v for r, v in panel.items() if v is not None}
        expected |= {(prompt_id, c.chosen, c.rejected) for c in pairs_for_prompt(panel, params, prompt_key=prompt_id)}
    return expected


@pytest.mark.worker
def test_a_worker_killed_mid_build_leaves_a_build_that_completes_after_restart_with_nothing_lost(
    worker_processes, short_lease
):
    dataset = Dataset.objects.create(name="killed build")
    generate_scored(dataset, prompts=800, responses=6, judges=2)
    params = BuildParams(threshold=2.0)
    job = start_build(dataset, params, chunk_size=10)

    first = worker_processes(lease_seconds=short_lease)

    def some_chunks_done():
        job.refresh_from_db()
        return job.status == Job.Status.RUNNING and job.done > 0
    wait_for(some_chunks_done, timeout=120, interval=0.01, message="the first chunks")
    first.kill()
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING, "the job must be killed mid-way for this test to mean anything"
    assert 0 < job.done < job.total

    worker_processes(lease_seconds=short_lease)  # on start it requeues jobs whose lease ran out

    def finished():
        job.refresh_from_db()
        return job.is_finished()
    wait_for(finished, timeout=180, interval=0.2, message="the build to finish after restart")
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.attempts == 2 and job.done == job.total
    run = PairBuildRun.objects.get(dataset=dataset)
    got = set(Pair.objects.filter(dataset=dataset).values_list("prompt_id", "chosen_id", "rejected_id"))
    assert got == expected_from_database(dataset, params) and len(got) > 1000
    assert job.counts["pairs_created"] == run.counts["pairs_created"] == len(got)
    assert not Pair.objects.filter(dataset=dataset).exclude(build_run=run).exists()
