"""The statistics every report shares: Cohen's kappa and the Wilson interval.

Used by the reward benchmark (annotation/reward/benchmark.py), reviewer agreement and audits
(review/agreement.py), judge analysis (review/judge_analysis.py) and the exports' dataset card
(review/exports/manifest.py). Kappa is None when it is undefined (no data, or chance agreement of 1:
every rating the same label), never a made-up 1.0.
"""

import math
from collections import Counter

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def cohen_kappa(table):
    """Cohen's kappa from (label by rater A, label by rater B, count) triples; None when undefined."""
    n = sum(c for _a, _b, c in table)
    if not n:
        return None
    observed = sum(c for a, b, c in table if a == b) / n
    first, second = Counter(), Counter()
    for a, b, c in table:
        first[a] += c
        second[b] += c
    chance = sum(first[k] * second[k] for k in first) / (n * n)
    if math.isclose(chance, 1.0):
        return None
    return (observed - chance) / (1 - chance)


def pairs_table(pairs):
    """(a, b, count) triples from one (label A, label B) tuple per rated item."""
    return [(a, b, c) for (a, b), c in Counter(pairs).items()]


def wilson_interval(successes, n, z=Z95):
    """The Wilson score interval for a share successes/n: (low, high), or None when n is 0."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
