"""Per-reviewer statistics: throughput, verdict shares, agreement with other reviewers and with the panel;
for dataset admins only."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import Judgement
from annotation.statistics import cohen_kappa, pairs_table
from review.models import Review
from review.reviewer_stats import reviewer_stats

from .judged import judge
from .pair_data import make_pair


def review(pair, user, verdict, at, correct=True):
    return Review.objects.create(pair=pair, reviewer=user, verdict=verdict, better_correct=correct,
                                 created_at=at, updated_at=at)


def scored(pair, chosen, rejected):
    """`chosen` and `rejected`: the scores of gpt and qwen."""
    for name, c, r in zip(("gpt", "qwen"), chosen, rejected):
        Judgement.objects.create(response=pair.chosen, judge=judge(name), score=c, status="ok")
        Judgement.objects.create(response=pair.rejected, judge=judge(name), score=r, status="ok")


@pytest.fixture
def reviewed(team):
    """Six pairs; the panel prefers chosen on 0-2, rejected on 3, ties on 4, and did not score 5.
    The reviewer and the admin review all six; the admin's verdicts differ on pairs 1 and 3."""
    now = timezone.now()
    pairs = [make_pair(team.dataset, f"问题{i}", f"好{i}", f"差{i}") for i in range(6)]
    for pair, (chosen, rejected) in zip(pairs, [((8, 8), (3, 3)), ((7, 9), (4, 2)), ((9, 9), (1, 1)),
                                                ((3, 3), (7, 7)), ((5, 6), (6, 5))]):
        scored(pair, chosen, rejected)
    mine = ["chosen_better", "chosen_better", "tie", "chosen_better", "tie", "both_bad"]
    theirs = ["chosen_better", "rejected_better", "tie", "rejected_better", "tie", "both_bad"]
    # The reviewer: one a minute for five, then the last one after a two-hour break, three days ago.
    start = now - timedelta(days=3)
    for i, (pair, verdict) in enumerate(zip(pairs, mine)):
        review(pair, team.reviewer, verdict, start + timedelta(minutes=i) if i < 5 else now - timedelta(hours=2))
    for i, (pair, verdict) in enumerate(zip(pairs, theirs)):
        review(pair, team.admin, verdict, now - timedelta(days=10, seconds=-30 * i), correct=i % 2 == 0)
    return team, now


def test_throughput_verdict_shares_and_agreement_per_reviewer(reviewed):
    team, now = reviewed
    rows = {row["username"]: row for row in reviewer_stats(team.dataset, now=now)}
    mine = rows[team.reviewer.username]
    assert mine["reviews"] == 6 and mine["last_day"] == 1 and mine["last_week"] == 6
    assert mine["median_seconds"] == 60.0  # the two-hour break is not review time
    assert rows[team.admin.username]["median_seconds"] == 30.0 and rows[team.admin.username]["last_week"] == 0
    shares = {v["verdict"]: (v["n"], v["share"]) for v in mine["verdicts"]}
    assert shares == {"chosen_better": (3, 0.5), "rejected_better": (0, 0.0), "tie": (2, 2 / 6),
                      "both_bad": (1, 1 / 6)}
    assert mine["correct_share"] == 1.0 and rows[team.admin.username]["correct_share"] == 0.5

    with_reviewers, with_panel = mine["agreements"]
    pooled = list(zip(["chosen_better", "chosen_better", "tie", "chosen_better", "tie", "both_bad"],
                      ["chosen_better", "rejected_better", "tie", "rejected_better", "tie", "both_bad"]))
    assert with_reviewers["n"] == 6 and with_reviewers["share"] == 4 / 6
    assert with_reviewers["kappa"] == pytest.approx(cohen_kappa(pairs_table(pooled)))
    # Panel: pairs 0-4 (5 has no scores and a "both bad"); reviewer order chosen, chosen, tie, chosen, tie
    # against the panel's chosen, chosen, chosen, rejected, tie.
    panel = [("chosen", "chosen"), ("chosen", "chosen"), ("tie", "chosen"), ("chosen", "rejected"), ("tie", "tie")]
    assert with_panel["n"] == 5 and with_panel["share"] == 3 / 5
    assert with_panel["kappa"] == pytest.approx(cohen_kappa(pairs_table(panel)))
    admin_panel = rows[team.admin.username]["agreements"][1]
    assert admin_panel["n"] == 5 and admin_panel["share"] == 3 / 5


def test_the_page_shows_each_reviewer(client, reviewed):
    team, _now = reviewed
    client.force_login(team.admin)
    page = client.get(reverse("reviewer-stats", args=[team.dataset.pk])).content.decode()
    assert f'data-reviewer="{team.reviewer.username}"' in page and f'data-reviewer="{team.admin.username}"' in page
    assert 'data-verdict="both_bad" data-share="0.1667"' in page
    assert 'data-agreement="panel" data-share="0.6000"' in page


def test_a_dataset_without_reviews_has_an_empty_table(client, team):
    client.force_login(team.admin)
    page = client.get(reverse("reviewer-stats", args=[team.dataset.pk])).content.decode()
    assert "No review yet." in page


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("reviewer", 403), ("viewer", 403), ("outsider", 404)])
def test_only_dataset_admins_see_reviewer_statistics(client, team, role, status):
    client.force_login(getattr(team, role))
    url = reverse("reviewer-stats", args=[team.dataset.pk])
    assert client.get(url).status_code == status
    assert client.post(url).status_code in (405, 404, 403)
