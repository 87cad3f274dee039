"""Pairwise re-judging of a pair selection (annotation/rejudging.py): a loopback judge asked in both orders,
its verdicts stored per pair and judge, position flips detected, the "pairwise judge disagrees" list, the
pair list's form (admins only) and page, the command, and a worker killed mid-job."""

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from annotation import jobs
from annotation.models import Job, Judge, Pair, PairwiseVerdict, RejudgeTarget
from annotation.rejudging import pairwise_against, start_rejudge
from review.selections import select_pairs

from .conftest import wait_for
from .helpers import Team, write_jsonl
from .llm_server import LLMServer, Reply

# What each pair's prompt asks for from the loopback judge (by a marker in the question).
KINDS = ["good"] * 6 + ["swapped"] * 4 + ["position"] * 2 + ["unclear"] + ["broken"]


def _line(i, kind):
    # The better response says 正确; a swapped pair has it as the rejected one.
    good, bad = f"回答{i}：正确的解答。", f"回答{i}：错误的解答。"
    chosen, rejected = (bad, good) if kind == "swapped" else (good, bad)
    return {"conversations": [{"from": "human", "value": f"问题{i}【{kind}】"}], "chosen": {"from": "gpt", "value": chosen},
            "rejected": {"from": "gpt", "value": rejected}, "domain": "对话"}


def _judge_answers(path, body):
    """Prefers the response that says 正确; about a "position" question it always says A."""
    text = orjson.loads(body)["messages"][1]["content"]
    if "【position】" in text:
        return Reply(content="分析：差不多。\n[[A]]")
    a = text.split("【回答A】\n")[1].split("\n\n【回答B】\n")[0]
    return Reply(content="分析：比较两个回答。\n" + ("[[A]]" if "正确" in a else "[[B]]"))


@pytest.fixture
def team(db, tmp_path):
    team = Team.create("rejudged")
    path = write_jsonl(tmp_path / "pairs.jsonl", [_line(i, kind) for i, kind in enumerate(KINDS)])
    call_command("import_pairs", str(path), dataset=team.dataset.name, no_progress=True)
    return team


@pytest.fixture
def server(settings):
    settings.JUDGE_MAX_RETRIES = 1
    settings.JUDGE_BACKOFF_BASE_MS = 1
    with LLMServer(responder=_judge_answers) as srv:
        srv.when("【unclear】", Reply(content="两个都不错，难以取舍。"))
        srv.when("【broken】", Reply(status=500, error="boom"))
        yield srv


def _judge(server, name="ab"):
    return Judge.objects.create(name=name, base_url=server.base_url, model="m", max_concurrency=4)


def _kind_of(pair):
    return pair.prompt.query.split("【")[1].rstrip("】")


def _run(job):
    jobs.execute(job.pk)
    job.refresh_from_db()
    return job


def test_verdicts_are_stored_for_both_orders_and_position_flips_are_detected(team, server):
    judge = _judge(server)
    job = _run(start_rejudge(team.dataset, judge, Pair.objects.all(), enqueue_it=False))
    # The broken pair's requests failed: no verdict, counted, and the job finished with problems.
    assert job.status == Job.Status.PROBLEMS, job.error
    assert jobs.failure_summary(job) == "1 of 14 pairs not judged (requests failed)"
    assert {k: job.counts[k] for k in ("pairs", "agree", "disagree", "inconsistent", "unparseable", "failed")} == {
        "pairs": 14, "agree": 6, "disagree": 4, "inconsistent": 2, "unparseable": 1, "failed": 1}
    assert job.total == job.done == 14
    verdicts = {_kind_of(v.pair): v for v in PairwiseVerdict.objects.select_related("pair__prompt")}
    assert len(verdicts) == 4 and PairwiseVerdict.objects.count() == 13  # one row a judged pair
    good = verdicts["good"]
    assert (good.chosen_first, good.chosen_second, good.outcome) == ("A", "B", "chosen")
    assert (verdicts["swapped"].chosen_first, verdicts["swapped"].chosen_second) == ("B", "A")
    assert verdicts["swapped"].outcome == "rejected"
    assert (verdicts["position"].chosen_first, verdicts["position"].chosen_second) == ("A", "A")
    assert verdicts["position"].outcome == "inconsistent"
    assert verdicts["unclear"].outcome == "unparseable" and verdicts["unclear"].chosen_first == ""

    # A re-run asks again only about the pair whose requests failed, and replaces the verdicts in place.
    asked = server.requests
    server.rules = [r for r in server.rules if r[0] != "【broken】"]
    again = _run(start_rejudge(team.dataset, judge, Pair.objects.all(), enqueue_it=False))
    assert again.status == Job.Status.SUCCEEDED and again.counts["failed"] == 0
    assert server.requests == asked + 2
    assert PairwiseVerdict.objects.count() == 14


def test_the_view_lists_exactly_the_pairs_the_judge_prefers_rejected_in_both_orders(team, server):
    _run(start_rejudge(team.dataset, _judge(server), Pair.objects.all(), enqueue_it=False))
    pairs, form = select_pairs(team.dataset, {"view": "pairwise-disagrees"})
    listed = list(pairs.select_related("prompt"))
    assert [_kind_of(p) for p in listed] == ["swapped"] * 4
    assert pairwise_against(team.dataset, Pair.objects.values_list("pk", flat=True)) == {
        p.pk: (1.0 if _kind_of(p) == "swapped" else 0.0)
        for p in Pair.objects.select_related("prompt") if _kind_of(p) in ("good", "swapped")}


def test_a_limit_takes_the_first_pairs_of_the_selection_and_an_empty_one_makes_no_job(team, server):
    judge = _judge(server)
    pairs = Pair.objects.order_by("-pk")
    job = start_rejudge(team.dataset, judge, pairs, limit=3, enqueue_it=False)
    assert sorted(RejudgeTarget.objects.filter(job=job).values_list("pair_id", flat=True)) == sorted(
        pairs.values_list("pk", flat=True)[:3])
    assert job.total == 3 and len(orjson.dumps(job.params)) < 200
    with pytest.raises(ValueError, match="holds no pairs"):
        start_rejudge(team.dataset, judge, Pair.objects.none())
    assert Job.objects.filter(kind="pairwise_rejudge").count() == 1


def test_only_dataset_admins_start_it_and_viewers_see_the_verdicts(team, server, client):
    judge = _judge(server)
    url = reverse("pairwise-rejudge", args=[team.dataset.pk])
    post = {"judge": judge.pk, "limit": 500, "selection": "domain=chat"}
    for user, status in ((team.outsider, 404), (team.viewer, 403), (team.reviewer, 403)):
        client.force_login(user)
        assert client.post(url, post).status_code == status
        assert "rejudge-form" not in client.get(reverse("pair-list", args=[team.dataset.pk])).content.decode()
    assert not Job.objects.filter(kind="pairwise_rejudge").exists()
    client.force_login(team.admin)
    assert client.get(url).status_code == 405
    page = client.get(reverse("pair-list", args=[team.dataset.pk]) + "?domain=chat").content.decode()
    assert 'id="rejudge-form"' in page and 'value="domain=chat"' in page and 'value="500"' in page
    response = client.post(url, post)
    job = Job.objects.get(kind="pairwise_rejudge")
    assert response.status_code == 302 and response.url == reverse("job-detail", args=[job.pk])
    assert job.total == 14 and job.created_by == team.admin and job.params["selection"] == "domain=chat"
    _run(job)

    swapped = Pair.objects.get(prompt__query__contains="【swapped】", prompt__query__startswith="问题6")
    client.force_login(team.viewer)
    page = client.get(reverse("pair-detail", args=[team.dataset.pk, swapped.pk])).content.decode()
    assert 'data-judge="ab" data-outcome="rejected"' in page and "比较两个回答" in page
    job_page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "Judge prefers rejected in both orders" in job_page


def test_a_bad_form_starts_nothing_and_says_why(team, server, client):
    client.force_login(team.admin)
    url = reverse("pairwise-rejudge", args=[team.dataset.pk])
    response = client.post(url, {"judge": _judge(server).pk, "limit": 0, "selection": "domain=chat"}, follow=True)
    assert "At most this many pairs" in response.content.decode()
    response = client.post(url, {"judge": Judge.objects.get().pk, "limit": 5, "selection": "view=pairwise-disagrees"},
                           follow=True)
    assert "the selection holds no pairs" in response.content.decode()
    assert not Job.objects.filter(kind="pairwise_rejudge").exists()


def test_the_command_rejudges_the_views_pairs_and_exits_by_the_outcome(team, server, capsys):
    _judge(server)
    with pytest.raises(CommandError, match="no judge is called 'nobody'"):
        call_command("rejudge_pairs", dataset=team.dataset.name, judge="nobody", no_progress=True)
    with pytest.raises(CommandError, match="selection holds no pairs"):
        call_command("rejudge_pairs", dataset=team.dataset.name, judge="ab", view=["pairwise-disagrees"],
                     no_progress=True)
    call_command("rejudge_pairs", dataset=team.dataset.name, judge="ab", limit=10, no_progress=True)
    assert "10 pairs: judge prefers chosen 6, rejected 4" in capsys.readouterr().out
    call_command("rejudge_pairs", dataset=team.dataset.name, judge="ab", view=["pairwise-disagrees"],
                 no_progress=True)
    assert Job.objects.filter(kind="pairwise_rejudge").latest("pk").total == 4


@pytest.mark.worker
def test_a_worker_killed_mid_job_resumes_without_duplicates(worker_processes, tmp_path, short_lease, settings):
    team = Team.create("killed")
    lines = [_line(i, "swapped" if i % 3 == 0 else "good") for i in range(240)]
    call_command("import_pairs", str(write_jsonl(tmp_path / "p.jsonl", lines)), dataset="killed", no_progress=True)
    with LLMServer(responder=_judge_answers, latency=0.05) as server:
        judge = Judge.objects.create(name="slow", base_url=server.base_url, model="m", max_concurrency=4)
        job = start_rejudge(team.dataset, judge, Pair.objects.all())
        first = worker_processes(lease_seconds=short_lease)

        def some_chunks_done():
            job.refresh_from_db()
            return job.status == Job.Status.RUNNING and job.done > 0
        wait_for(some_chunks_done, timeout=120, interval=0.01, message="the first chunks")
        first.kill()
        job.refresh_from_db()
        assert 0 < job.done < 240, "the job must be killed mid-way for this test to mean anything"
        worker_processes(lease_seconds=short_lease)
        wait_for(lambda: job.refresh_from_db() or job.is_finished(), timeout=180, interval=0.2,
                 message="the job to finish after restart")
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.attempts == 2 and job.done == job.counts["pairs"] == 240
    assert (job.counts["agree"], job.counts["disagree"]) == (160, 80)
    assert PairwiseVerdict.objects.filter(judge=judge).count() == 240
    assert PairwiseVerdict.objects.filter(outcome="rejected").count() == 80
