"""Each disagreement view's membership on the crafted dataset (tests/dashboard_data.py), with the
pairs that must and must not be in it, and the effect of its settings."""

import pytest
from django.http import QueryDict

from annotation.models import Judgement, RewardModel, RewardScore
from review import disagreements
from review.selections import select_pairs

from .dashboard_data import crafted
from .helpers import Team
from .judged import rubric


@pytest.fixture
def world(db):
    team = Team.create("disagreements")
    return team, crafted(team)


def members(world, query):
    team, data = world
    pairs, form = select_pairs(team.dataset, QueryDict(query))
    assert pairs is not None, form.errors
    names = {p.pk: name for name, p in data.pairs.items()}
    return {names[pk] for pk in pairs.values_list("pk", flat=True)}


def test_judge_spread_selects_pairs_with_a_response_spread_strictly_above_the_setting(world):
    assert members(world, "view=judge-spread") == {"P1", "P2"}  # b spreads 4; d's 3 is not above 3
    assert members(world, "view=judge-spread&spread=2.5") == {"P1", "P2", "P4"}
    assert members(world, "view=judge-spread&spread=4") == set()


def test_judge_spread_by_standard_deviation(world):
    # b: 3 and 7, sd 2; d: 4 and 7, sd 1.5. spread=10 switches max − min off.
    assert members(world, "view=judge-spread&spread=10&sd=1.9") == {"P1", "P2"}
    assert members(world, "view=judge-spread&spread=10&sd=1.4") == {"P1", "P2", "P4"}


def test_judge_spread_counts_only_each_judges_latest_ok_score(world):
    team, data = world
    # j1 rescores b under a rubric version: 6 replaces 3, so b spreads 1 and no pair is left.
    Judgement.objects.create(response=data.responses["b"], judge=data.j1, rubric=rubric("math"), score=6,
                             status="ok")
    Judgement.objects.create(response=data.responses["a"], judge=data.j2, rubric=rubric("math"), status="parse_error")
    assert members(world, "view=judge-spread") == set()


def test_judge_order_selects_pairs_two_judges_order_differently(world):
    assert members(world, "view=judge-order&margin=0") == {"P2", "P4"}
    assert members(world, "view=judge-order&margin=1.5") == {"P2"}  # P4's −1 is within the margin


def test_judge_order_counts_by_default_only_flips_beyond_two_points(world):
    team, data = world
    assert members(world, "view=judge-order") == set()  # P2's ±2 and P4's −1/+2 are one noisy point or two
    # c rescored, j1 8 and j2 1. P2 (c over b: j1 3, j2 7): j1 +5, j2 −6; P4 (d over c: j1 4, j2 7): j1 −4, j2 +6.
    Judgement.objects.create(response=data.responses["c"], judge=data.j2, rubric=rubric("math"), score=1, status="ok")
    Judgement.objects.create(response=data.responses["c"], judge=data.j1, rubric=rubric("math"), score=8, status="ok")
    assert members(world, "view=judge-order") == {"P2", "P4"}
    assert disagreements.judge_flips(data.pairs["P2"]) == [(data.j2.name, 6.0)]  # who flipped, by how much
    assert disagreements.judge_flips(data.pairs["P4"]) == [(data.j1.name, 4.0)]
    assert disagreements.judge_flips(data.pairs["P1"]) == []


def test_reward_vs_panel_lists_a_confident_reward_margin_against_a_sure_panel(world):
    team, data = world
    # P1: the reward model prefers the rejected response by 1 (reward-filtered at threshold 0), panel gap 3.5.
    assert members(world, "view=reward-vs-panel&gap=3") == set()  # a small negative margin is no disagreement
    assert members(world, "view=reward-vs-panel&gap=3&margin=0.5") == {"P1"}
    newer = RewardModel.objects.create(name="crm-newer", version=1, backend="builtin", trained_on=team.dataset)
    for key, reward in {"a": 0.0, "b": 7.0, "c": 4.0, "d": 1.5}.items():
        RewardScore.objects.create(response=data.responses[key], reward_model=newer, reward=reward)
    assert members(world, "view=reward-vs-panel&gap=3") == {"P1"}  # the newest model: −7 for P1
    assert members(world, "view=reward-vs-panel") == set()  # the panel's 3.5 is below the default gap of 4
    assert members(world, f"view=reward-vs-panel&gap=3&model={data.crm.pk}") == set()


def test_reviewer_vs_auto_selects_pairs_a_reviewer_did_not_find_chosen_better(world):
    assert members(world, "view=reviewer-vs-auto") == {"P2", "P3"}


def test_reviewer_vs_reviewer_selects_pairs_with_different_verdicts(world):
    assert members(world, "view=reviewer-vs-reviewer") == {"P2"}


def test_views_combine_with_the_base_filters(world):
    assert members(world, "view=judge-order&margin=0&status=filtered") == {"P4"}
    assert members(world, "view=reviewer-vs-auto&domain=chat") == set()


def test_gap_and_margin_ranges_include_the_lower_bound_and_exclude_the_upper(world):
    team, data = world
    assert members(world, "view=gap-range&gap_min=3.5&gap_max=4") == {"P1", "P3"}
    assert members(world, "view=gap-range&gap_min=3&gap_max=3.5") == set()
    assert members(world, "view=gap-range&gap_min=2&gap_max=2.5") == {"P4"}
    assert members(world, "view=margin-range&margin_min=-1&margin_max=0") == {"P1"}
    assert members(world, "view=margin-range&margin_min=-2&margin_max=-1") == {"P2"}


def test_another_datasets_pairs_never_leak_in(world):
    other = Team.create("another")
    crafted(other)
    assert members(world, "view=judge-order&margin=0") == {"P2", "P4"}
