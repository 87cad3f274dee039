"""Agreement between reviewers and intervals for shares: the statistics behind audits and the queue.

Nominal labels throughout (verdicts, or yes/no). Cohen's kappa is for exactly two reviewers who
rated the same pairs; Krippendorff's alpha for any number of reviewers with missing ratings (each
pair rated by whoever reviewed it). Both are None when undefined (no pair rated twice, or a single
label everywhere with nothing to disagree about).
"""

import math
from collections import Counter
from itertools import permutations

from annotation import statistics
from annotation.statistics import Z95, wilson_interval  # noqa: F401 (audits import them from here)



def cohen_kappa(pairs):
    """Cohen's kappa from [(label by reviewer A, label by reviewer B), …], one tuple per pair both rated."""
    return statistics.cohen_kappa(statistics.pairs_table(pairs))


def krippendorff_alpha(units):
    """Krippendorff's alpha (nominal) from units: one list of labels per pair, one label per reviewer who
    rated it. Units with fewer than two labels carry no information about agreement and are left out."""
    coincidence = Counter()
    for labels in units:
        m = len(labels)
        if m < 2:
            continue
        for a, b in permutations(labels, 2):
            coincidence[a, b] += 1 / (m - 1)
    totals = Counter()
    for (a, _b), weight in coincidence.items():
        totals[a] += weight
    n = sum(totals.values())
    if n <= 1:
        return None
    disagreement = sum(w for (a, b), w in coincidence.items() if a != b)
    expected = sum(totals[a] * totals[b] for a in totals for b in totals if a != b)
    if math.isclose(expected, 0.0):
        return None
    return 1 - (n - 1) * disagreement / expected


def agreement(ratings):
    """Agreement over {pair: {reviewer: label}}: Cohen's kappa when exactly two reviewers rated the pairs
    rated more than once, Krippendorff's alpha otherwise. Returns {method, value, pairs, reviewers}."""
    multiple = {p: r for p, r in ratings.items() if len(r) >= 2}
    reviewers = sorted({who for r in multiple.values() for who in r})
    if len(reviewers) == 2:
        a, b = reviewers
        pairs = [(r[a], r[b]) for r in multiple.values()]
        return {"method": "kappa", "value": cohen_kappa(pairs), "pairs": len(pairs), "reviewers": 2}
    units = [list(r.values()) for r in multiple.values()]
    return {"method": "alpha", "value": krippendorff_alpha(units), "pairs": len(units), "reviewers": len(reviewers)}


def difference_interval(x1, n1, x2, n2, z=Z95):
    """Newcombe's hybrid score interval (method 10) for p1 − p2 from two Wilson intervals, or None."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
