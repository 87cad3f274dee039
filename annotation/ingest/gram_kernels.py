"""The loops of near-duplicate detection that numpy cannot express without a pass per step: MinHash over
each text's n-grams, each text's n-grams sorted and made distinct, the intersection sizes of many pairs of
sorted runs, and a merge of two sorted arrays. Compiled by numba on first use and cached on disk beside this
file (NUMBA_CACHE_DIR elsewhere); each releases the GIL. minhash.py imports this module only when it needs it.

In numba, a uint64 combined with a Python int becomes a float: every constant here is typed.
"""

import numpy as np
from numba import njit

_TOP = np.uint64(32)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True)
def min_hashes(hashed, seg_starts, a, b, out):
    """out[t, p] = the top 32 bits of min over text t's n-gram hashes h of (a[p]·h + b[p]) mod 2^64: each
    text's run of `hashed` read once for every permutation (the permutations the inner loop, in registers),
    where numpy made three passes over every n-gram for each of the 128 (~3× the time)."""
    texts, perms = len(seg_starts), len(a)
    mins = np.empty(perms, dtype=np.uint64)
    for t in range(texts):
        end = seg_starts[t + 1] if t + 1 < texts else len(hashed)
        mins[:] = _ALL_ONES
        for i in range(seg_starts[t], end):
            h = hashed[i]
            for p in range(perms):
                value = h * a[p] + b[p]
                if value < mins[p]:
                    mins[p] = value
        for p in range(perms):
            out[t, p] = np.uint32(mins[p] >> _TOP)


@njit(cache=True, nogil=True)
def distinct_runs(hashed, seg_starts):
    """Each text's run of n-gram hashes sorted, repeats dropped: (values, each text's start, its count)."""
    texts = len(seg_starts)
    values = np.empty_like(hashed)
    starts = np.empty(texts, dtype=np.int64)
    counts = np.empty(texts, dtype=np.int64)
    written = 0
    for t in range(texts):
        end = seg_starts[t + 1] if t + 1 < texts else len(hashed)
        run = np.sort(hashed[seg_starts[t] : end])
        starts[t] = written
        for i in range(len(run)):
            if i == 0 or run[i] != run[i - 1]:
                values[written] = run[i]
                written += 1
        counts[t] = written - starts[t]
    return values[:written], starts, counts


@njit(cache=True, nogil=True)
def intersection_sizes(values, starts, counts, first, second):
    """For each k, how many values the sorted distinct runs first[k] and second[k] of `values` (at `starts`,
    `counts` long) have in common: one merge of the two runs (~1-2 ns a step), where a Python set
    intersection cost ~30 ns an element, after ~100 ns an element to build the sets."""
    out = np.empty(len(first), dtype=np.int64)
    for k in range(len(first)):
        i, j = starts[first[k]], starts[second[k]]
        i_end, j_end = i + counts[first[k]], j + counts[second[k]]
        common = 0
        while i < i_end and j < j_end:
            x, y = values[i], values[j]
            if x < y:
                i += 1
            elif y < x:
                j += 1
            else:
                common += 1
                i += 1
                j += 1
        out[k] = common
    return out



@njit(cache=True, nogil=True)
def merge_unique(a, b, out):
    """The distinct values of sorted arrays a and b into `out` (len(a) + len(b) long), sorted; how many."""
    written = 0
    i = j = 0
    while i < len(a) or j < len(b):
        if j == len(b) or (i < len(a) and a[i] <= b[j]):
            value = a[i]
            i += 1
        else:
            value = b[j]
            j += 1
        if written == 0 or out[written - 1] != value:
            out[written] = value
            written += 1
    return written
