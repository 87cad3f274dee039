"""The pure core of pair construction: panel scores, normalisation, threshold, strategies."""

import statistics

import pytest

from annotation.pairing import BuildParams, Candidate, JudgeStats, pairs_for_prompt, panel_score


def params(**kwargs):
    return BuildParams(**kwargs)


def keys(candidates):
    return [(c.chosen, c.rejected) for c in candidates]


# --- panel scores ---


def test_the_panel_score_is_the_mean_of_the_judges():
    assert panel_score({"gpt-4o": 8, "glm-4": 6, "qwen": 9.5}, params()) == pytest.approx(23.5 / 3, abs=1e-6)


def test_the_panel_score_can_be_the_median():
    assert panel_score({"a": 2, "b": 9, "c": 8}, params(aggregate="median")) == 8
    assert panel_score({"a": 2, "b": 9, "c": 8, "d": 10}, params(aggregate="median")) == 8.5


def test_a_response_with_fewer_judges_than_the_minimum_has_no_panel_score():
    assert panel_score({"a": 9}, params()) is None
    assert panel_score({"a": 9, "b": 7}, params(min_judges=3)) is None
    assert panel_score({"a": 9, "b": 7, "c": 8}, params(min_judges=3)) == 8


def test_a_single_judge_is_allowed_when_asked():
    assert panel_score({"a": 9}, params(min_judges=1)) == 9


def test_panel_scores_are_rounded_to_six_places():
    assert panel_score({"a": 7, "b": 8, "c": 8}, params()) == 7.666667


def stats_of(scores):
    """The statistics the build job computes in SQL (tests/test_build_pairs.py checks those), here from
    (judge, score) pairs: per-judge and pooled mean and population standard deviation."""
    by_judge = {}
    for judge, score in scores:
        by_judge.setdefault(judge, []).append(score)
    pooled = [score for _, score in scores]
    return JudgeStats({j: statistics.fmean(v) for j, v in by_judge.items()},
                      {j: statistics.pstdev(v) for j, v in by_judge.items()},
                      statistics.fmean(pooled), statistics.pstdev(pooled))


def test_zscore_normalisation_evens_out_a_harsh_and_a_generous_judge():
    # The harsh judge gives 2 and 4, the generous one 7 and 9. P got the harsh judge's best score,
    # Q the generous judge's worst: raw scores put Q ahead, normalised ones put P ahead.
    stats = stats_of([("harsh", 2), ("harsh", 4), ("generous", 7), ("generous", 9)])
    raw = params(min_judges=1)
    z = params(min_judges=1, normalise="zscore")
    assert panel_score({"harsh": 4}, raw) == 4 and panel_score({"generous": 7}, raw) == 7
    spread = statistics.pstdev([2, 4, 7, 9])
    assert panel_score({"harsh": 4}, z, stats) == pytest.approx(5.5 + spread, abs=1e-6)
    assert panel_score({"generous": 7}, z, stats) == pytest.approx(5.5 - spread, abs=1e-6)
    panel_raw = {"P": panel_score({"harsh": 4}, raw), "Q": panel_score({"generous": 7}, raw)}
    panel_z = {"P": panel_score({"harsh": 4}, z, stats), "Q": panel_score({"generous": 7}, z, stats)}
    assert keys(pairs_for_prompt(panel_raw, params(threshold=2))) == [("Q", "P")]
    assert keys(pairs_for_prompt(panel_z, params(threshold=2))) == [("P", "Q")]


def test_a_judge_that_always_gives_the_same_score_contributes_the_pooled_mean():
    stats = stats_of([("flat", 7), ("flat", 7), ("other", 2), ("other", 10)])
    assert panel_score({"flat": 7}, params(min_judges=1, normalise="zscore"), stats) == pytest.approx(6.5)


# --- the threshold ---


def test_a_gap_equal_to_the_threshold_is_not_a_pair():
    assert pairs_for_prompt({1: 7.0, 2: 5.0}, params(threshold=2.0)) == []
    assert keys(pairs_for_prompt({1: 7.0, 2: 4.9}, params(threshold=2.0))) == [(1, 2)]


def test_a_float_gap_that_only_looks_larger_than_the_threshold_is_not_a_pair():
    assert 8.3 - 6.3 > 2.0  # binary floating point
    assert pairs_for_prompt({1: 8.3, 2: 6.3}, params(threshold=2.0)) == []
    means = {1: panel_score({"a": 6.1, "b": 6.2, "c": 6.3}, params()),
             2: panel_score({"a": 4.1, "b": 4.2, "c": 4.3}, params())}
    assert pairs_for_prompt(means, params(threshold=2.0)) == []
    assert keys(pairs_for_prompt(means, params(threshold=1.999999))) == [(1, 2)]


def test_threshold_zero_pairs_any_higher_score_but_never_a_tie():
    assert keys(pairs_for_prompt({1: 6.0, 2: 6.5, 3: 6.0}, params(threshold=0))) == [(2, 1), (2, 3)]


def test_the_chosen_response_is_the_higher_scored_one_whatever_the_order():
    [pair] = pairs_for_prompt({10: 3.0, 4: 9.0}, params())
    assert pair == Candidate(chosen=4, rejected=10, chosen_score=9.0, rejected_score=3.0)
    assert pair.gap == 6.0


# --- strategies ---

PANEL = {"a": 9.0, "b": 6.0, "c": 3.0, "d": 1.0, "e": 6.0}


def test_the_all_strategy_gives_every_qualifying_pair_largest_gap_first():
    got = pairs_for_prompt(PANEL, params(strategy="all"))
    assert keys(got) == [("a", "d"), ("a", "c"), ("b", "d"), ("e", "d"), ("a", "b"), ("a", "e"), ("b", "c"),
                         ("e", "c")]
    assert all(c.gap > 2 for c in got)


def test_the_per_prompt_cap_keeps_the_largest_gaps():
    assert keys(pairs_for_prompt(PANEL, params(max_pairs_per_prompt=3))) == [("a", "d"), ("a", "c"), ("b", "d")]


def test_best_versus_worst_gives_one_pair():
    assert keys(pairs_for_prompt(PANEL, params(strategy="best-worst"))) == [("a", "d")]


def test_best_versus_worst_gives_nothing_when_the_gap_is_not_above_the_threshold():
    assert pairs_for_prompt({"a": 7, "b": 6, "c": 5}, params(strategy="best-worst")) == []


def test_best_versus_worst_breaks_ties_by_the_smallest_response_key():
    got = pairs_for_prompt({5: 9.0, 2: 9.0, 7: 1.0, 3: 1.0}, params(strategy="best-worst"))
    assert keys(got) == [(2, 3)]


def test_best_versus_worst_needs_two_responses():
    assert pairs_for_prompt({1: 9.0}, params(strategy="best-worst")) == []
    assert pairs_for_prompt({}, params(strategy="best-worst")) == []


def test_random_pairs_are_k_of_the_qualifying_ones_and_repeat_with_the_seed():
    everything = set(keys(pairs_for_prompt(PANEL, params())))
    random2 = params(strategy="random", k=2, seed=11)
    first = keys(pairs_for_prompt(PANEL, random2, prompt_key=42))
    assert len(first) == 2 and set(first) <= everything
    assert keys(pairs_for_prompt(PANEL, random2, prompt_key=42)) == first


def test_random_pairs_differ_between_prompts_and_seeds():
    draws = {tuple(keys(pairs_for_prompt(PANEL, params(strategy="random", k=2, seed=s), prompt_key=p)))
             for s in range(4) for p in range(4)}
    assert len(draws) > 3


def test_random_with_k_above_what_qualifies_gives_all_of_them():
    got = pairs_for_prompt(PANEL, params(strategy="random", k=100))
    assert set(keys(got)) == set(keys(pairs_for_prompt(PANEL, params())))


def test_the_cap_also_limits_random_pairs():
    assert len(pairs_for_prompt(PANEL, params(strategy="random", k=5, max_pairs_per_prompt=2))) == 2


def test_a_prompt_with_one_response_has_no_pairs():
    assert pairs_for_prompt({"a": 9.0}, params(threshold=0)) == []


# --- parameters ---


@pytest.mark.parametrize("kwargs,message", [
    ({"aggregate": "mode"}, "aggregate must be one of mean, median, not 'mode'"),
    ({"normalise": "minmax"}, "normalise must be one of none, zscore"),
    ({"strategy": "top"}, "strategy must be one of all, random, best-worst"),
    ({"threshold": -1.0}, "threshold must be a number of at least 0"),
    ({"threshold": float("nan")}, "threshold must be a number of at least 0"),
    ({"min_judges": 0}, "min_judges must be a whole number of at least 1"),
    ({"k": 0}, "k must be a whole number of at least 1"),
    ({"max_pairs_per_prompt": 0}, "max_pairs_per_prompt must be at least 1"),
    ({"domains": ("chat", "poetry")}, "domain must be one of"),
])
def test_bad_parameters_are_refused_with_the_reason(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        BuildParams(**kwargs)


def test_parameters_round_trip_through_a_dict():
    p = BuildParams(judges=("a", "b"), strategy="random", k=3, seed=5, domains=("math",), max_pairs_per_prompt=4)
    assert BuildParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown parameter"):
        BuildParams.from_dict({"treshold": 2})
