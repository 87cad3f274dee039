"""Judge statistics against values worked out by hand on the crafted dataset (tests/dashboard_data.py)."""

import math

import pytest

from annotation.models import Judgement
from annotation.statistics import cohen_kappa
from review.judge_analysis import judges_data

from .dashboard_data import crafted
from .helpers import Team
from .judged import rubric


@pytest.fixture
def world(db):
    team = Team.create("judges")
    data = crafted(team)
    # A parse failure of j1 (with its cost) counts in its rates and cost, never in its scores.
    Judgement.objects.create(response=data.responses["a"], judge=data.j1, rubric=rubric("math"),
                             status="parse_error", raw_output="没有分数", cost="0.250000")
    return team, data, {j["name"]: j for j in judges_data(team.dataset)["judges"]}


def test_cohen_kappa_matches_a_hand_computed_table():
    # Rater A: + + - 0, rater B: + - - 0 → observed 3/4, chance (2·1 + 1·2 + 1·1)/16 = 5/16, κ = 7/11.
    table = [(1, 1, 1), (1, -1, 1), (-1, -1, 1), (0, 0, 1)]
    assert math.isclose(cohen_kappa(table), 7 / 11)


def test_histogram_mean_and_domain_means(world):
    _team, _data, judges = world
    j1 = judges["judge-one"]
    assert j1["histogram"] == [0, 0, 1, 1, 1, 0, 0, 0, 1, 0]  # 3, 4, 5, 9
    assert j1["scored"] == 4 and math.isclose(j1["mean"], 5.25)
    assert [(d["domain"], d["n"]) for d in j1["by_domain"]] == [("math", 4)]
    assert math.isclose(j1["by_domain"][0]["mean"], 5.25)


def test_length_bias_is_the_correlation_of_score_with_length(world):
    # j1 scores 9, 3, 5, 4 at lengths 10, 20, 30, 40: r = −65 / √(500 · 20.75).
    _team, _data, judges = world
    assert math.isclose(judges["judge-one"]["length_corr"], -65 / math.sqrt(500 * 20.75), rel_tol=1e-9)


def test_self_preference_compares_own_family_with_the_others(world):
    _team, _data, judges = world
    # judge-one (qwen): own a 9 and c 5 (mean 7, n 2); others b 3 (n 1); d has no model and is left out.
    sp = judges["judge-one"]["self_preference"]
    assert (sp["own_n"], sp["other_n"]) == (2, 1) and math.isclose(sp["diff"], 4.0)
    # judge-two (gpt): own b 7 (n 1); others a 8 and c 5 (mean 6.5, n 2).
    sp = judges["judge-two"]["self_preference"]
    assert (sp["own_n"], sp["other_n"]) == (1, 2) and math.isclose(sp["diff"], 0.5)


def test_kappa_between_judges_is_on_the_order_of_pairs(world):
    # j1 orders P1..P4 + + + −, j2 + − + +: observed 2/4, chance (3·3 + 1·1)/16, κ = −1/3.
    _team, data, judges = world
    k = judges["judge-one"]["kappa_judges"][str(data.j2.pk)]
    assert k["n"] == 4 and math.isclose(k["kappa"], -1 / 3)
    assert math.isclose(judges["judge-two"]["kappa_judges"][str(data.j1.pk)]["kappa"], -1 / 3)


def test_kappa_with_reviewers_uses_every_review_but_both_bad(world):
    # j2 orders P1 +, P2 −, P3 +; reviews P1 +,+; P2 tie,+; P3 −: observed 2/5, chance 11/25, κ = −1/14.
    _team, data, judges = world
    k = judges["judge-two"]["kappa_reviewers"]
    assert k["n"] == 5 and math.isclose(k["kappa"], -1 / 14)


def test_parse_failures_and_cost_count_every_judgement(world):
    _team, _data, judges = world
    j1 = judges["judge-one"]
    assert j1["judgements"] == 5 and j1["statuses"] == {"ok": 4, "parse_error": 1}
    assert math.isclose(j1["parse_failure_rate"], 0.2) and math.isclose(j1["cost"], 0.25)
    assert judges["judge-two"]["parse_failure_rate"] == 0
