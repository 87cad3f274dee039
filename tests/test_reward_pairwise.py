"""Judges in pairwise mode: each gold pair asked in both orders against a loopback judge; a verdict
that flips with the order is a miss and counts as position-inconsistent; an answer without one
strict verdict is a miss counted as unparseable; answers are cached so a re-run pays nothing."""

import json

import orjson
import pytest
from django.core.management import call_command
from django.urls import reverse

from annotation.models import Dataset, Job, Judge
from annotation.reward import benchmark as B
from annotation.statistics import wilson_interval
from annotation.reward.pairwise import outcome, parse_verdict

from .helpers import Team
from .llm_server import LLMServer, Reply
from .reward_data import media_root  # noqa: F401
from .test_reward_benchmark import GOLD, _gold_file


@pytest.mark.parametrize(("text", "verdict"), [
    ("分析……\n结论：[[A]]", "A"), ("[[b]]", "B"), ("先说A好，[[A]]，最终仍是 [[A]]", "A"),
    ("[[A]] 还是 [[B]]？", None), ("回答A更好", None), ("【A】", None), ("", None), ("[[C]]", None),
])
def test_verdicts_are_parsed_strictly(text, verdict):
    assert parse_verdict(text) == verdict


def test_an_order_flip_is_a_miss_of_its_own():
    assert outcome("A", "B") == "correct"
    assert outcome("B", "A") == "wrong"
    assert outcome("A", "A") == outcome("B", "B") == "inconsistent"
    assert outcome(None, "B") == "unparseable"


def _answers(path, body):
    """A judge that prefers the longer response and, when they are as long, always says B."""
    text = orjson.loads(body)["messages"][1]["content"]
    a, b = text.split("【回答A】\n")[1].split("\n\n【回答B】\n")
    return Reply(content="分析：比较两个回答。\n" + ("[[A]]" if len(a) > len(b) else "[[B]]"))


@pytest.fixture
def gold(db, tmp_path):
    call_command("import_pairs", str(_gold_file(tmp_path / "gold.jsonl")), dataset="gold", no_progress=True)
    return Dataset.objects.get(name="gold")


def test_rewardbench_pairwise_reports_accuracy_inconsistency_and_unparseable(gold, tmp_path):
    unclear = "第0题："  # the first pair's question (its chosen response is longer) gets no verdict
    with LLMServer(responder=_answers) as server:
        server.when(unclear, Reply(content="两个回答各有千秋，难以取舍。"))
        Judge.objects.create(name="ab", base_url=server.base_url, model="m", max_concurrency=4)
        report_path = tmp_path / "r.json"
        call_command("rewardbench", gold="gold", model=["ab"], pairwise=True, report_json=str(report_path),
                     no_progress=True)
        asked = server.requests
        result = json.loads(report_path.read_text(encoding="utf-8"))["models"]["ab (A/B)"]
        # The same questions again are answered from the cache.
        call_command("rewardbench", gold="gold", model=["ab"], pairwise=True, no_progress=True)
        assert server.requests == asked == 2 * len(GOLD)
        first = orjson.loads(server.bodies[0])["messages"]
    assert "[[A]]" in first[0]["content"] and "【回答A】" in first[1]["content"]
    overall = result["overall"]
    # 10 pairs have a longer chosen response, minus the unparseable one; the tie flips with the order.
    assert (overall["n"], overall["correct"], overall["unparseable"], overall["inconsistent"]) == (15, 9, 1, 1)
    assert overall["inconsistency_rate"] == round(1 / 15, 4)
    assert result["by_domain"]["math"]["inconsistent"] == 1 and result["by_domain"]["code"]["correct"] == 3
    low, high = wilson_interval(9, 15)
    assert (overall["ci_low"], overall["ci_high"]) == (round(low, 4), round(high, 4))


def test_a_judge_that_always_answers_a_is_entirely_position_inconsistent(gold, client):
    with LLMServer(default=Reply(content="[[A]]")) as server:
        judge = Judge.objects.create(name="always-a", base_url=server.base_url, model="m")
        call_command("rewardbench", gold="gold", model=["always-a"], pairwise=True, no_progress=True)
    job = Job.objects.get(kind="pairwise_judge")
    summary = B.pairwise_summary(job.counts["pairwise_by_domain"])
    assert summary["overall"]["correct"] == 0 and summary["inconsistency_rate"] == 1.0
    team = Team.create("pairwise viewers")
    gold.memberships.create(user=team.viewer, role="viewer")
    client.force_login(team.viewer)
    page = client.get(reverse("reward-leaderboard", args=[gold.pk])).content.decode()
    assert f'data-model="{judge.name} (A/B)"' in page and 'data-inconsistency="1.0"' in page


def test_pairs_whose_requests_failed_finish_the_job_with_problems_and_the_rest_still_counts(gold, client, settings,
                                                                                           capsys):
    from annotation.management.commands import rewardbench

    settings.JUDGE_MAX_RETRIES = 0
    with LLMServer(responder=_answers) as server:
        server.when("第0题：", Reply(status=500, error="upstream overloaded"))
        judge = Judge.objects.create(name="flaky", base_url=server.base_url, model="m")
        command = rewardbench.Command()
        call_command(command, gold="gold", model=["flaky"], pairwise=True, no_progress=True)
    job = Job.objects.get(kind="pairwise_judge")
    assert job.status == Job.Status.PROBLEMS
    assert command.exit_status == 2
    assert f"finished with problems: 1 of {len(GOLD)} pairs not judged (requests failed)" in capsys.readouterr().err
    # The pairs that were judged are real results: the leaderboard shows them.
    team = Team.create("flaky viewers")
    gold.memberships.create(user=team.viewer, role="viewer")
    client.force_login(team.viewer)
    page = client.get(reverse("reward-leaderboard", args=[gold.pk])).content.decode()
    assert f'data-model="{judge.name} (A/B)"' in page


def test_a_bad_key_fails_the_pairwise_job_with_the_providers_message(gold, monkeypatch):
    from django.core.management import CommandError

    monkeypatch.setenv("COIGP_JUDGE_KEY_AB", "wrong")
    with LLMServer(api_key="right") as server:
        Judge.objects.create(name="locked", base_url=server.base_url, model="m", api_key_env="COIGP_JUDGE_KEY_AB")
        with pytest.raises(CommandError, match="HTTP 401.*Incorrect API key"):
            call_command("rewardbench", gold="gold", model=["locked"], pairwise=True, no_progress=True)


@pytest.mark.parametrize(("role", "status"), [("admin", 302), ("reviewer", 403), ("viewer", 403), ("outsider", 404)])
def test_only_dataset_admins_start_pairwise_judging(db, client, role, status):
    team = Team.create("pairwise starters")
    judge = Judge.objects.create(name="ab", base_url="http://127.0.0.1:9/v1", model="m")
    client.force_login(getattr(team, role))
    url = reverse("reward-pairwise", args=[team.dataset.pk])
    response = client.post(url, {"judge": judge.pk})
    assert response.status_code == status
    assert client.get(url).status_code == 405
    if status == 302:
        job = Job.objects.get(kind="pairwise_judge")
        assert response["Location"] == reverse("job-detail", args=[job.pk])
        assert job.params == {"judge": judge.pk, "judge_name": "ab"} and job.dataset == team.dataset
    else:
        assert not Job.objects.exists()
