"""Rules that several pages, jobs and exports apply, each written once: on data where the copies they
replace used to disagree, every reader gives the same answer.

- each judge's latest ok judgement of a response (annotation/queries.py);
- the newest reward model of a dataset (RewardModel.objects.newest_for);
- a review accepts its pair (Review.ACCEPTS).
"""

import re
from datetime import timedelta

import orjson
import pytest
from django.core.management import call_command
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from annotation import jobs
from annotation.models import Dataset, Job, Judgement, RewardModel, RewardScore
from annotation.pairing import BuildParams, start_build
from annotation.reward import benchmark
from review import audits, dashboards
from review.judge_analysis import judges_data
from review.models import Review, ReviewSettings
from review.selections import select_pairs

from .judged import judge, rubric, scored_prompt
from .pair_data import make_pair

HX = {"HTTP_HX_REQUEST": "true"}


def selected(dataset, query):
    pairs, form = select_pairs(dataset, QueryDict(query))
    assert pairs is not None, form.errors
    return list(pairs.values_list("pk", flat=True))


def exported(tmp_path, dataset):
    """{pair id: row} of a JSONL export of every pair of the dataset, with the metadata columns."""
    out = tmp_path / "pairs.jsonl"
    call_command("export_pairs", "--dataset", dataset.name, "--format", "trl", "--out", str(out), "--no-progress",
                 "--status", "all", "--with-meta")
    return {row["pair_id"]: row for row in map(orjson.loads, out.read_bytes().splitlines())}


def queue_item(client, dataset, query):
    """The review queue's item for the pair list `query` (a reviewer's view, labelled: blind review, the default,
    hides the scores and margins these tests read), as HTML."""
    ReviewSettings.objects.update_or_create(dataset=dataset, defaults={"blind_review": False})
    response = client.get(reverse("review-queue", args=[dataset.pk]) + f"?{query}", **HX)
    assert response.status_code == 200
    return response.content.decode()


def response_card(page, side):
    match = re.search(rf'<article class="card response"[^>]*data-side="{side}">(.*?)</article>', page, re.S)
    assert match, f"the page shows the {side} response"
    return match.group(1)


def buckets(*scores):
    counts = [0] * 10
    for score in scores:
        counts[min(int(score), 10) - 1] += 1
    return counts


# --- latest ok judgement ---------------------------------------------------------------------------


@pytest.fixture
def rescored(team):
    """One math prompt, responses A and B scored by two judges. j1's latest ok scores are 9 of A (a rescore
    under rubric v2 failed to parse afterwards) and 7 of B (scored 3 under v1 and 7 under v2 at one
    instant: the one stored last counts). j2 scored A 8 and B 2."""
    responses = scored_prompt(team.dataset, "哪个回答更好？", {"A": {"j2": 8}, "B": {"j2": 2}}, domain="math")
    a, b = responses["A"], responses["B"]
    j1, v1, v2 = judge("j1"), rubric("math", 1), rubric("math", 2)
    then = timezone.now() - timedelta(minutes=5)
    Judgement.objects.create(response=a, judge=j1, rubric=v1, score=9, status="ok", created_at=then)
    Judgement.objects.create(response=a, judge=j1, rubric=v2, status="parse_error",
                             created_at=then + timedelta(seconds=1))
    Judgement.objects.create(response=b, judge=j1, rubric=v1, score=3, status="ok", created_at=then)
    Judgement.objects.create(response=b, judge=j1, rubric=v2, score=7, status="ok", created_at=then)
    return a, b


def test_every_reader_of_judge_scores_takes_each_judges_latest_ok_judgement(client, team, rescored, tmp_path):
    a, b = rescored
    dataset = team.dataset
    job = start_build(dataset, BuildParams(), enqueue=False)
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    pair = dataset.pairs.get()
    assert (pair.chosen_id, pair.rejected_id, pair.chosen_score, pair.rejected_score) == (a.pk, b.pk, 8.5, 4.5)

    assert {h["judge"]: h["counts"] for h in dashboards.score_histograms(dataset)} == {
        "j1": buckets(9, 7), "j2": buckets(8, 2)}
    analysis = {j["name"]: j for j in judges_data(dataset)["judges"]}
    assert (analysis["j1"]["histogram"], analysis["j1"]["mean"]) == (buckets(9, 7), 8.0)
    assert selected(dataset, "view=judge-spread") == [pair.pk]  # B: 7 − 2 > 3
    assert selected(dataset, "view=judge-spread&spread=5") == []
    # The panel's gap over the gold pairs is 8.5 − 4.5 = 4.
    assert benchmark.filter_decisions(dataset, benchmark.PANEL, 3.9) == {pair.pk: ("math", True)}
    assert benchmark.filter_decisions(dataset, benchmark.PANEL, 4.0) == {pair.pk: ("math", False)}
    assert benchmark.judge_accuracies(dataset)["j1"]["missing"] == 0
    row = exported(tmp_path, dataset)[pair.pk]
    assert (row["chosen_scores"], row["rejected_scores"]) == (
        [{"judge": "j1", "score": 9.0}, {"judge": "j2", "score": 8.0}],
        [{"judge": "j1", "score": 7.0}, {"judge": "j2", "score": 2.0}])

    client.force_login(team.reviewer)
    page = queue_item(client, dataset, "")
    assert "j1: <strong>9</strong>" in response_card(page, "chosen")
    rejected = response_card(page, "rejected")
    assert "j1: <strong>7</strong>" in rejected and "<strong>3</strong>" not in rejected

    latest = Judgement.objects.latest_ok([a.pk, b.pk])
    assert sorted((j.response_id, j.judge.name, j.score) for j in latest) == [
        (a.pk, "j1", 9), (a.pk, "j2", 8), (b.pk, "j1", 7), (b.pk, "j2", 2)]


# --- newest reward model ---------------------------------------------------------------------------


@pytest.fixture
def two_models(team):
    """Two pairs with a panel gap of +4. crm v1 scored both (margins −1 and +2); crm v2, made later, scored only
    the first (a filter job scores the pairs it may filter: pairs v1 filtered are not among them), margin +4;
    a model made later still scored only another dataset."""
    dataset = team.dataset
    first = make_pair(dataset, "问题一", "回答甲", "回答乙", domain="math", chosen_score=8.0, rejected_score=4.0)
    second = make_pair(dataset, "问题二", "回答丙", "回答丁", domain="code", chosen_score=8.0, rejected_score=4.0)
    elsewhere = make_pair(Dataset.objects.create(name="别的数据集"), "问题", "好", "差")
    then = timezone.now() - timedelta(hours=1)
    old, new, other = (RewardModel.objects.create(name=name, version=version, backend="builtin",
                                                  created_at=then + timedelta(minutes=k))
                       for k, (name, version) in enumerate([("crm", 1), ("crm", 2), ("other", 1)]))
    rewards = {old: {first: (1.0, 2.0), second: (3.0, 1.0)}, new: {first: (5.0, 1.0)}, other: {elsewhere: (0.0, 1.0)}}
    for model, by_pair in rewards.items():
        for pair, (chosen, rejected) in by_pair.items():
            RewardScore.objects.create(response=pair.chosen, reward_model=model, reward=chosen)
            RewardScore.objects.create(response=pair.rejected, reward_model=model, reward=rejected)
    return first, second, new


def test_every_reader_of_reward_margins_takes_the_newest_model_that_scored_the_dataset(client, team, two_models,
                                                                                     tmp_path):
    first, second, newest = two_models
    dataset = team.dataset
    overview = dashboards.reward_overview(dataset)
    assert overview["reward_model"]["id"] == newest.pk
    assert sum(b["n"] for b in overview["margin_hist"]["buckets"]) == 1
    assert selected(dataset, "view=reward-vs-panel") == []  # +4 agrees with the panel; v1's −1 would not
    assert selected(dataset, "margin_min=3") == [first.pk]
    assert selected(dataset, "margin_max=3") == []
    rows = exported(tmp_path, dataset)
    assert (rows[first.pk]["reward_margin"], rows[second.pk]["reward_margin"]) == (4.0, None)

    client.force_login(team.reviewer)
    assert re.search(r'id="reward-margin">[^<]*crm v2[^<]*4\.000', queue_item(client, dataset, "domain=math"))
    assert 'id="reward-margin"' not in queue_item(client, dataset, "domain=code")

    assert RewardModel.objects.newest_for(dataset) == newest


# --- a review accepts the pair ---------------------------------------------------------------------


def test_a_review_accepts_its_pair_only_when_it_marks_the_better_response_correct(client, team):
    dataset = team.dataset
    unanswered, correct, incorrect = (make_pair(dataset, f"问题{i}", f"好回答{i}", f"差回答{i}", domain="math")
                                      for i in range(3))
    # Correctness left unanswered (an edit in the admin can do that): nothing verified the chosen response.
    Review.objects.create(pair=unanswered, reviewer=team.reviewer, verdict="chosen_better", better_correct=None)
    Review.objects.create(pair=correct, reviewer=team.reviewer, verdict="chosen_better", better_correct=True)
    Review.objects.create(pair=incorrect, reviewer=team.reviewer, verdict="chosen_better", better_correct=False)

    assert dashboards.acceptance_by_domain(dataset) == [
        {"domain": "math", "reviews": 3, "accepted": 1, "rate": pytest.approx(1 / 3)}]
    client.force_login(team.viewer)
    page = client.get(reverse("dataset-overview", args=[dataset.pk])).content.decode()
    assert re.search(r'id="acceptance".*?data-domain="math"><td>[^<]*</td><td class="num">3</td>'
                     r'<td class="num">1</td><td class="num">33%</td>', page, re.S)
    audit = audits.draw(dataset, n_per_domain=10, reviews_per_pair=1)
    overall = next(row for row in audits.report(audit) if row["domain"] == "all")
    assert (overall["reviewed"], overall["good"]) == (3, 1)
    assert benchmark.gold_size(dataset, "reviewed") == 1

    assert list(Review.objects.filter(Review.ACCEPTS).values_list("pair_id", flat=True)) == [correct.pk]
