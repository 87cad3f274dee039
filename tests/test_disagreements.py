"""Each disagreement view's membership on the crafted dataset (tests/dashboard_data.py), with the
pairs that must and must not be in it, and the effect of its settings."""

import pytest
from django.http import QueryDict

from annotation.models import Judgement, RewardModel, RewardScore
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
    assert members(world, "view=judge-order") == {"P2", "P4"}
    assert members(world, "view=judge-order&margin=1.5") == {"P2"}  # P4's −1 is within the margin


def test_reward_vs_panel_compares_the_sign_of_the_margin_with_the_sign_of_the_gap(world):
    team, data = world
    assert members(world, "view=reward-vs-panel") == {"P1"}  # P2 has no panel gap; P3, P4 agree
    newer = RewardModel.objects.create(name="crm-newer", version=1, backend="builtin", trained_on=team.dataset)
    for key, reward in {"a": 3.0, "b": 2.0, "c": 4.0, "d": 1.5}.items():
        RewardScore.objects.create(response=data.responses[key], reward_model=newer, reward=reward)
    assert members(world, "view=reward-vs-panel") == {"P3", "P4"}  # the newest model counts by default
    assert members(world, f"view=reward-vs-panel&model={data.crm.pk}") == {"P1"}


def test_reviewer_vs_auto_selects_pairs_a_reviewer_did_not_find_chosen_better(world):
    assert members(world, "view=reviewer-vs-auto") == {"P2", "P3"}


def test_reviewer_vs_reviewer_selects_pairs_with_different_verdicts(world):
    assert members(world, "view=reviewer-vs-reviewer") == {"P2"}


def test_views_combine_with_the_base_filters(world):
    assert members(world, "view=judge-order&status=filtered") == {"P4"}
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
    assert members(world, "view=judge-order") == {"P2", "P4"}
