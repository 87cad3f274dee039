"""Near-identical chosen and rejected responses: a pair whose two responses are one text, give or take a
few typos, a dropped or an added sentence, teaches the model nothing about which answer is better.

Both texts are compared as the near-duplicate check folds them (annotation/ingest/minhash.py `fold`:
punctuation and spaces ignored, full-width and half-width forms, case), never as stored. Two measures,
from one edit distance that rapidfuzz computes in C (Indel: insertions and deletions, so that
`similarity` is difflib's 2·M / (len a + len b) with M the longest common subsequence):
- similarity = 1 − distance / (len a + len b): typo variants, a sentence dropped from a long answer;
- containment = M / len(shorter): the shorter kept, in order, in the longer (a sentence appended or
  several dropped), counted only where the shorter is at least `length_ratio` of the longer, so that
  an answer and the same answer with a paragraph added are not "identical".

Defaults chosen on the audit benchmark (bench/audit_power.py, tuned on seed 1; BENCHMARKS.md, *Audit
power*): similarity ≥ 0.8 or containment ≥ 0.9 at a length ratio ≥ 0.7. On seed 1's 3,052 planned pairs
they select 91 of the 92 near-identical pairs and one other; the clean pairs closest to them are right and
wrong worked answers that differ in their result and a closing sentence (similarity 0.76, containment 0.905
at ratio 0.72: the one) and answers with filler appended (containment 1.0 at ratio 0.5-0.6). Containment
0.95 finds the same 91 without that one, but a 60-character answer with 30 % dropped and three typos
(similarity 0.76, containment 0.93) would escape it; a ratio of 0.6 flagged two filler pairs more,
similarity 0.75 one more. On the built pairs, seeds 1-7: recall 97.2-100 % (seed 1: 98.6), 0-1.4 % of the
flagged pairs clean; what it misses are one-line results the benchmark counts as copies ("17 − 9 = 8。" /
"… = 10。", similarity 0.77), which are a right and a wrong answer.
"""

from django.db.models import FloatField
from django.db.models.functions import Cast, Greatest, Least, Length
from rapidfuzz.distance import Indel

from annotation.ingest.minhash import fold

SIMILARITY = 0.8
CONTAINMENT = 0.9
LENGTH_RATIO = 0.7
# The lengths compared in SQL are the stored texts' (folding them there took 15 s at 100k pairs): a
# pair whose folded lengths allow a match has stored lengths within this share of that ratio unless one
# text has far more punctuation and spaces than the other.
STORED_LENGTH_SLACK = 0.75
# Pairs read per query (two texts of ~1.5 KB each).
CHUNK = 2000


def near_identical(a, b, similarity=SIMILARITY, containment=CONTAINMENT, length_ratio=LENGTH_RATIO):
    """Texts a and b, folded, have an edit similarity of at least `similarity`, or the shorter is at least
    `length_ratio` of the longer and has at least `containment` of its characters in the longer."""
    a, b = fold(a), fold(b)
    total, shorter = len(a) + len(b), min(len(a), len(b))
    longer = total - shorter
    allowed = (1 - similarity) * total
    if shorter >= length_ratio * longer:
        # M ≥ containment · shorter, and distance = total − 2M.
        allowed = max(allowed, total - 2 * containment * shorter)
    allowed += 1e-9  # (1 − 0.8) · 10 is 1.9999999999999996: a similarity of exactly 0.8 is at least 0.8
    if longer - shorter > allowed:  # the distance is at least the difference in length
        return False
    return Indel.distance(a, b, score_cutoff=int(allowed)) <= allowed


def min_length_ratio(similarity=SIMILARITY, length_ratio=LENGTH_RATIO):
    """The shorter text's share of the longer below which neither measure can reach its setting
    (similarity s needs a ratio of s / (2 − s): 0.8 needs 0.67)."""
    return min(length_ratio, similarity / (2 - similarity))


def near_identical_ids(pairs, similarity=SIMILARITY, containment=CONTAINMENT, length_ratio=LENGTH_RATIO):
    """Ids of the pairs (a queryset) whose chosen and rejected responses are near-identical. Only pairs
    whose stored lengths allow it are read: 100k pairs of ../shared/bench/gen_pairs.py, 53k read, in 5.5-6.1 s
    (4.7-5.1 s of it in this process, peak RSS 111 MB), where the SQL containment rule took 8.3-9.4 s."""
    bound = STORED_LENGTH_SLACK * min_length_ratio(similarity, length_ratio)
    candidates = (pairs.order_by("pk").alias(ni_chosen=Length("chosen__text"), ni_rejected=Length("rejected__text"))
                  .alias(ni_ratio=Cast(Least("ni_chosen", "ni_rejected"), FloatField())
                         / Greatest("ni_chosen", "ni_rejected", 1))
                  .filter(ni_ratio__gte=bound))
    return [pk for pk, chosen, rejected in
            candidates.values_list("pk", "chosen__text", "rejected__text").iterator(chunk_size=CHUNK)
            if near_identical(chosen, rejected, similarity, containment, length_ratio)]
