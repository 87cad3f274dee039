"""Agreement and intervals against published worked examples."""

import pytest

from review.agreement import agreement, cohen_kappa, difference_interval, krippendorff_alpha, wilson_interval


def test_cohen_kappa_matches_the_textbook_two_by_two_example():
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15 → p_o 0.7, p_e 0.5, κ 0.4.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_cohen_kappa_is_one_for_perfect_agreement_and_undefined_without_variation():
    assert cohen_kappa([("a", "a"), ("b", "b"), ("c", "c")]) == pytest.approx(1.0)
    assert cohen_kappa([("a", "a"), ("a", "a")]) is None
    assert cohen_kappa([]) is None


def test_krippendorff_alpha_matches_krippendorffs_nominal_example_with_missing_values():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units, nominal α = 0.743.
    n = None
    observers = [[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
                 [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
                 [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
                 [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]]
    units = [[v for v in unit if v is not None] for unit in zip(*observers)]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_matches_the_two_observer_binary_example():
    # Same paper, first example: two observers, ten units, binary → α = 0.095.
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert krippendorff_alpha([list(u) for u in zip(a, b)]) == pytest.approx(0.095, abs=5e-4)


def test_agreement_uses_kappa_for_two_reviewers_and_alpha_for_more():
    two = {1: {"ann": "y", "bob": "y"}, 2: {"ann": "n", "bob": "y"}, 3: {"ann": "n", "bob": "n"}, 4: {"ann": "y"}}
    result = agreement(two)
    assert result["method"] == "kappa" and result["pairs"] == 3
    assert result["value"] == pytest.approx(cohen_kappa([("y", "y"), ("n", "y"), ("n", "n")]))
    three = {1: {"ann": "y", "bob": "y"}, 2: {"bob": "n", "cat": "n"}, 3: {"ann": "y", "cat": "n"}}
    result = agreement(three)
    assert result["method"] == "alpha" and result["reviewers"] == 3
    assert result["value"] == pytest.approx(krippendorff_alpha([["y", "y"], ["n", "n"], ["y", "n"]]))


def test_wilson_interval_matches_newcombes_worked_examples():
    # Newcombe (1998), Table I: 81/263 → 0.2553–0.3662; 0/10 → 0–0.2775.
    low, high = wilson_interval(81, 263)
    assert (low, high) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_difference_interval_matches_newcombes_method_ten_example():
    # Newcombe (1998b): 56/70 − 48/80 → 0.0524 to 0.3339.
    low, high = difference_interval(56, 70, 48, 80)
    assert low == pytest.approx(0.0524, abs=1e-4) and high == pytest.approx(0.3339, abs=1e-4)
