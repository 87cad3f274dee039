"""The compiled loops of the near-duplicate check (annotation/ingest/gram_kernels.py) against their
definitions written plainly: MinHash, exact n-gram sets, intersections, merges. No database."""

import numpy as np

from annotation.ingest import minhash

TEXTS = ["光合作用是植物利用光能把二氧化碳和水合成有机物的过程", "光合作用是植物利用光能合成有机物的过程",
         "a", "", "好", "ab", "猫" * 40, "Ｆｕｌｌ－ｗｉｄｔｈ text, 繁體字與簡體字", "😀🐫🛕👸 emoji"]


def test_signatures_are_the_minimum_of_each_permutation_over_the_ngram_hashes():
    normalised = [minhash.normalise(t) for t in TEXTS]
    got = minhash.signatures_of_normalised(normalised)
    mask = (1 << 64) - 1
    for text, signature in zip(normalised, got):
        hashed, _starts = minhash._block_shingle_hashes([minhash._padded(text)])
        grams = [int(h) for h in hashed]
        expected = [min(((a * h + b) & mask) >> 32 for h in grams) for a, b in zip(map(int, minhash._A),
                                                                                   map(int, minhash._B))]
        assert signature.tolist() == expected, text


def test_gram_runs_hold_each_texts_distinct_ngram_hashes_sorted():
    normalised = [minhash.normalise(t) for t in TEXTS]
    for text, run in zip(normalised, minhash.gram_runs(normalised)):
        marked = minhash._marked(text)
        hashed, _starts = minhash._block_shingle_hashes([marked])
        assert run.tolist() == sorted(set(hashed.tolist())), text
        assert len(run) == len(minhash.shingles(text))  # one hash per distinct n-gram: no collisions here


def test_intersection_sizes_equal_those_of_python_sets():
    rng = np.random.default_rng(7)
    runs = [np.unique(rng.integers(0, 300, size=int(rng.integers(0, 120))).astype(np.uint64)) for _ in range(60)]
    counts = np.array([len(r) for r in runs], dtype=np.int64)
    starts = np.cumsum(counts) - counts
    first, second = rng.integers(0, 60, size=500), rng.integers(0, 60, size=500)
    got = minhash.intersection_sizes(np.concatenate(runs), starts, counts, first, second)
    expected = [len(set(runs[a].tolist()) & set(runs[b].tolist())) for a, b in zip(first, second)]
    assert got.tolist() == expected
    assert max(expected) > 0 and min(expected) == 0  # the draw has both overlapping and disjoint pairs


def test_merged_unique_is_the_sorted_union():
    rng = np.random.default_rng(3)
    for size_a, size_b in [(0, 0), (0, 5), (5, 0), (200, 300), (1000, 10)]:
        a = np.unique(rng.integers(0, 500, size=size_a))
        b = np.unique(rng.integers(0, 500, size=size_b))
        assert minhash.merged_unique(a, b).tolist() == np.union1d(a, b).tolist()


def test_band_codes_are_the_pairs_sharing_a_bucket_in_some_band():
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 6, size=(80, 4)).astype(np.uint64)  # few distinct keys: many shared buckets
    n = len(keys)
    expected = sorted({i * n + j for band in range(keys.shape[1]) for i in range(n) for j in range(i + 1, n)
                       if keys[i, band] == keys[j, band] and _in_bucket_rule(keys[:, band], i, j)})
    assert minhash.band_codes(keys).tolist() == expected
    pairs = minhash.index_pairs(minhash.band_codes(keys), n)
    assert pairs.dtype == np.int32 and (pairs[:, 0] * n + pairs[:, 1]).tolist() == expected


def _in_bucket_rule(key, i, j):
    """bucket_pairs' rule: all pairs of a bucket of at most MAX_BUCKET_PAIRS, else consecutive members."""
    members = np.flatnonzero(key == key[i]).tolist()
    if len(members) <= minhash.MAX_BUCKET_PAIRS:
        return True
    return members.index(j) == members.index(i) + 1
