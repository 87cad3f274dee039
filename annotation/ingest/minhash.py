"""MinHash over character n-grams, LSH banding and exact Jaccard: the arithmetic behind
near-duplicate detection, free of Django so it can be tested and benchmarked alone.

Character n-grams rather than words: Chinese has no spaces between words, so whitespace
tokenisation would turn a whole sentence into one token. The query is normalised first, for the
signature only (the stored text never changes): NFKC (full-width letters and digits become
half-width), case-folded, punctuation and whitespace removed (symbols and emoji kept: they are
content), and traditional characters folded to simplified with OpenCC's t2s, so that a copy with
other punctuation, full-width forms or in the other script is the same text.
"""

import functools
import re
from collections import deque
import unicodedata

import numpy as np
import opencc

NGRAM = 3
NUM_PERM = 128
SEED = 20250405
# Stored with every signature: a signature made with other settings (or another normalisation) is
# recomputed, never compared. v2: traditional folded to simplified, symbols and emoji kept, ends marked.
SCHEME = f"char{NGRAM}-perm{NUM_PERM}-seed{SEED}-v2"

# Buckets larger than this (a query copied hundreds of times) are linked as a chain instead of
# all pairs, which keeps candidates linear in the bucket size; the groups (connected components) still join them.
MAX_BUCKET_PAIRS = 40

_T2S = opencc.OpenCC("t2s")
_K = [np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)]
_rng = np.random.default_rng(SEED)
# Multiply-shift hashing: h(x) = (a·x + b) mod 2^64, top 32 bits; a odd.
_A = _rng.integers(1, 2**63, NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64)
# Characters per block of texts: a few arrays of 250k 64-bit values, ~10 MB.
_MAX_CHARS_PER_BLOCK = 250_000


def _class_of(code_points):
    """A regular-expression character class of the code points (sorted), as ranges."""
    ranges, start = [], code_points[0]
    for prev, cp in zip(code_points, code_points[1:] + [None]):
        if cp != prev + 1:
            ranges.append(re.escape(chr(start)) if start == prev else f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
            start = cp
    return "[" + "".join(ranges) + "]"


@functools.cache
def _ignored():
    """(runs of what the signature ignores, any combining mark). Ignored: punctuation, spaces, control and
    format characters and combining marks (Unicode categories P, Z, C, M) of the Basic Multilingual Plane;
    beyond it (emoji, rare scripts) everything counts: the other planes' scattered ranges made the
    expression six times slower. Kept: letters, digits and symbols, for a symbol is content: "1+2" is not
    "1×2", and two emoji riddles from one template ("根据以下emoji预测接下来会发生什么：🐫🛕👸", AlignBench)
    differ only in their emoji. Built on first use (~0.02 s)."""
    ignored, marks = [], []
    for cp in [*range(0xD800), *range(0xE000, 0x10000)]:
        category = unicodedata.category(chr(cp))
        if category[0] in "PZCM":
            ignored.append(cp)
            if category[0] == "M":
                marks.append(cp)
    return re.compile(_class_of(ignored) + "+"), re.compile(_class_of(marks))


def fold(text):
    """The text without punctuation, spaces and the like, NFKC-normalised (full-width letters and digits
    become half-width, compatibility forms their plain letter) and case-folded: what two copies of a text
    that differ only in those have in common. What is ignored goes first, and NFKC runs only where
    something is left to normalise (before, when a combining mark may compose with its letter): 40 % of the
    time of NFKC over the whole text (20k responses, 8M characters: 0.47 s instead of 1.2 s)."""
    ignored, marks = _ignored()
    if marks.search(text):
        return ignored.sub("", unicodedata.normalize("NFKC", text)).casefold()
    text = ignored.sub("", text)
    if not unicodedata.is_normalized("NFKC", text):
        text = ignored.sub("", unicodedata.normalize("NFKC", text))
    return text.casefold()


def normalise(text):
    """`fold` with traditional characters written in simplified script (OpenCC t2s, phrase-aware)."""
    return _T2S.convert(fold(text))


def _padded(text):
    # Texts shorter than one n-gram still get one shingle (padded with NUL, which no normalised text has).
    return text if len(text) >= NGRAM else text + "\0" * (NGRAM - len(text))


def _marked(text):
    """The text between start and end marks (control characters, which normalisation removes), for the
    exact similarity: every character then lies in NGRAM n-grams, so a question whose first or last
    character changed ("5 乘以 7 等于多少？直接给出答案。" / "3 乘以 7 …") loses as many as one changed
    inside (Jaccard 0.68, not 0.86). The signatures leave the marks out: they only propose candidates,
    and without the marks a short question with words added on both sides stays above the short-copy
    banding's threshold."""
    return "\x02" * (NGRAM - 1) + text + "\x03" * (NGRAM - 1)


def shingles(text):
    """The set of character n-grams of the normalised, marked text (for exact Jaccard)."""
    t = _marked(normalise(text))
    return {t[i : i + NGRAM] for i in range(len(t) - NGRAM + 1)}


def jaccard(a, b):
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _mix(x):
    """splitmix64's finaliser: spreads the bits of each 64-bit value (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def signatures(texts):
    """A (len(texts), NUM_PERM) uint32 array of MinHash signatures of the texts' n-gram sets."""
    return signatures_of_normalised([normalise(t) for t in texts])


def signatures_of_normalised(normalised):
    """`signatures` of texts already normalised (the job keeps their lengths too)."""
    out = np.empty((len(normalised), NUM_PERM), dtype=np.uint32)
    padded = [_padded(t) for t in normalised]
    start = 0
    while start < len(padded):
        end, chars = start, 0
        while end < len(padded) and (end == start or chars + len(padded[end]) <= _MAX_CHARS_PER_BLOCK):
            chars += len(padded[end])
            end += 1
        out[start:end] = _block_signatures(padded[start:end])
        start = end
    return out


def _block_shingle_hashes(texts):
    """(64-bit hash of every n-gram of the padded normalised texts, start index of each text's run)."""
    with np.errstate(over="ignore"):
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        cps = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        grams = cps[: len(cps) - NGRAM + 1] * _K[0]
        for k in range(1, NGRAM):
            grams = grams ^ _mix(cps[k : len(cps) - NGRAM + 1 + k] * _K[k])
        counts = lengths - NGRAM + 1
        text_starts = np.cumsum(lengths) - lengths
        seg_starts = np.cumsum(counts) - counts
        # Position of every shingle that lies wholly inside its own text.
        idx = np.arange(counts.sum()) - np.repeat(seg_starts, counts) + np.repeat(text_starts, counts)
        return _mix(grams[idx]), seg_starts


@functools.cache
def _kernels():
    """The compiled loops (gram_kernels.py), imported on first use: numba takes ~65 MB and ~0.5 s to import,
    which only the processes that sign or verify need to pay."""
    from . import gram_kernels

    return gram_kernels


def intersection_sizes(values, starts, counts, first, second):
    """For each k, how many values the sorted distinct runs first[k] and second[k] of `values` (at `starts`,
    `counts` long) have in common (gram_kernels.intersection_sizes)."""
    return _kernels().intersection_sizes(values, starts, counts, first, second)


def _block_signatures(texts):
    hashed, seg_starts = _block_shingle_hashes(texts)
    sig = np.empty((len(texts), NUM_PERM), dtype=np.uint32)
    _kernels().min_hashes(hashed, seg_starts, _A, _B, sig)
    return sig


def gram_runs(normalised):
    """Each normalised, marked text's n-grams as a sorted array of their distinct 64-bit hashes (its own
    copy, so that dropping one frees it), for exact Jaccard with `intersection_sizes`."""
    out = []
    for start in range(0, len(normalised), 2000):
        block = [_marked(t) for t in normalised[start : start + 2000]]
        hashed, seg_starts = _block_shingle_hashes(block)
        values, starts, counts = _kernels().distinct_runs(hashed, seg_starts)
        out.extend(values[s : s + c].copy() for s, c in zip(starts.tolist(), counts.tolist()))
    return out


# A short query with a greeting, a "please" or a thank-you added around it asks the same thing, but the
# added characters move a 3-gram Jaccard a long way (a 10-character question with 7 added: 0.35), while a
# look-alike from one template ("一个数加上 9 等于 15" / "… 7 …", "立方体的 8 个顶点" / "6 个面") loses
# n-grams in its middle. So a pair of short queries also counts when the shorter, normalised, appears whole
# in the longer, is at least SHORT_COPY_MIN characters long, and the longer adds at most SHORT_COPY_ADDED
# characters and no more than the shorter's own length, at most SHORT_COPY_SIDE on either side, none of them
# digits (a number added is content:
# "请计算 12×34" / "… 12×345", the operator being punctuation to the normalisation). Measured on the audit
# benchmark (bench/audit_power.py; BENCHMARKS.md, *Audit power*): on seed 1 every prefixed or suffixed short
# prompt has its whole original inside and no look-alike does (the closest keeps 85 % of its n-grams). What
# it cannot tell apart: a short clause of content appended (under SHORT_COPY_SIDE characters) from a
# thank-you, and a synonym inside a short query (什么 → 啥: most of what seeds 3, 5 and 7 miss) from another word.
SHORT_QUERY = 120  # normalised characters: the longer of a pair it looks at (above, Jaccard decides)
# A six-character question ("负离子是什么？") is a whole question; a four-character request ("讲个笑话") is
# inside too many others. Set to 8 at first; seeds 2, 3 and 5 each missed a six-character question with a
# greeting added, so 6, with seeds 6 and 7 held out afresh.
SHORT_COPY_MIN = 6
SHORT_COPY_ADDED = 20
# At most this many characters added on either side. A greeting, a "please" or a thank-you is a few
# characters on one side (在吗？我想问一下： normalised is 7); a sentence of content appended is a clause of
# its own, 10 and more (the benchmark's second sentence to translate, "请把下面这句话翻译成英文：X" / "…：XY": Y
# is 10-17 normalised characters, and those pairs were all of seed 2's 12 clean flags but one). Seeds 1 and 2
# were looked at for it; seed 3 held out.
SHORT_COPY_SIDE = 8
# Banding for the short queries' candidates: 42 bands of 3 rows, which proposes a pair at Jaccard 0.45
# with probability 0.98, at 0.2 with 0.29 (the default's banding for 0.4, 64 × 2, proposes pairs at 0.2
# with 0.93). The rule's pairs have 0.4 at least (6 characters with 6 added: 4 n-grams of 10, proposed with
# probability 0.94; 8 with 8 added: 0.43, 0.97).
SHORT_COPY_LSH_THRESHOLD = 0.45


def is_short_copy(a, b):
    """Normalised queries a and b are one short query with a few words added before or after it."""
    if a is None or b is None:
        return False
    shorter, longer = (a, b) if len(a) <= len(b) else (b, a)
    added = len(longer) - len(shorter)
    if len(longer) > SHORT_QUERY or len(shorter) < SHORT_COPY_MIN or added > min(SHORT_COPY_ADDED, len(shorter)):
        return False
    at = longer.find(shorter)
    before, after = longer[:at], longer[at + len(shorter):]
    return (at >= 0 and max(len(before), len(after)) <= SHORT_COPY_SIDE
            and not any(c.isdigit() for c in before + after))


def may_be_short_copies(len_a, len_b):
    """Which pairs of normalised lengths allow `is_short_copy` (a cheap test before the texts are read);
    arrays in, a boolean array out."""
    shorter, longer = np.minimum(len_a, len_b), np.maximum(len_a, len_b)
    return ((longer <= SHORT_QUERY) & (shorter >= SHORT_COPY_MIN)
            & (longer - shorter <= np.minimum(shorter, min(SHORT_COPY_ADDED, 2 * SHORT_COPY_SIDE))))


def lsh_params(threshold, num_perm=NUM_PERM, recall=0.98):
    """(bands, rows) for `threshold`: the banding that finds pairs at the threshold with
    probability ≥ `recall` and proposes the fewest pairs below it (each candidate is verified)."""
    xs = np.linspace(0.0, threshold, 200)
    best = None
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands < recall:
            continue
        false_positives = np.trapezoid(1 - (1 - xs**rows) ** bands, xs)
        if best is None or false_positives < best[0]:
            best = (false_positives, bands, rows)
    return (best[1], best[2]) if best else (num_perm, 1)


def band_keys(sigs, threshold):
    """A (len(sigs), bands) uint64 array: each signature's key in every band of `threshold`'s banding
    (`lsh_params`). Two signatures share a bucket of a band when their keys in it are equal. 8 bytes a
    band, where the signature takes 4 × NUM_PERM: the job keeps these for every prompt, not the signatures."""
    bands, rows = lsh_params(threshold, sigs.shape[1])
    out = np.empty((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for b in range(bands):
            key = np.zeros(len(sigs), dtype=np.uint64)
            for c in range(b * rows, (b + 1) * rows):
                key = _mix(key ^ sigs[:, c].astype(np.uint64))
            out[:, b] = key
    return out


def bucket_pairs(key):
    """Index pairs (i, j), i < j, of the entries of one band's keys that share a bucket, as an (n, 2) int64
    array: every pair of a bucket of at most MAX_BUCKET_PAIRS entries, and the chain of consecutive indexes
    of a larger one (a query copied hundreds of times: k − 1 pairs, not k²/2), so a band proposes at most
    (MAX_BUCKET_PAIRS − 1) / 2 pairs per entry whatever the data. Vectorised: buckets of one size at a time."""
    order = np.argsort(key, kind="stable")  # stable: a bucket's indexes come out ascending
    ordered = key[order]
    breaks = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    starts = np.concatenate(([0], breaks))
    sizes = np.diff(np.concatenate((starts, [len(key)])))
    parts = [np.empty((0, 2), dtype=np.int64)]
    chained = sizes > MAX_BUCKET_PAIRS
    if chained.any():
        # Every position of a chained bucket but its last, paired with the next.
        counts = sizes[chained] - 1
        firsts = np.repeat(starts[chained] - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
        parts.append(np.stack((order[firsts], order[firsts + 1]), axis=1))
    for size in np.flatnonzero(np.bincount(sizes[(sizes > 1) & ~chained], minlength=2)).tolist():
        members = order[starts[sizes == size][:, None] + np.arange(size)]
        first, second = np.triu_indices(size, 1)
        parts.append(np.stack((members[:, first].ravel(), members[:, second].ravel()), axis=1))
    return np.concatenate(parts).astype(np.int64, copy=False)


def pairs_of_band_keys(keys):
    """The distinct index pairs (i, j), i < j, sharing a bucket in at least one band of `keys` (`band_keys`),
    sorted, as an (n, 2) int64 array."""
    return _pairs(band_codes(keys), len(keys))


def band_codes(keys):
    """`pairs_of_band_keys` as codes i·n + j (n = len(keys)), sorted: 8 bytes a pair. Merged band by band: the
    bands' pairs together, before their repeats are dropped, took 1.4 GB at 267k prompts."""
    n = len(keys)
    found = np.empty(0, dtype=np.int64)
    for b in range(keys.shape[1]):
        found = merged_unique(found, sorted_unique(_codes(bucket_pairs(keys[:, b]), n)))
    return found


def merged_unique(a, b):
    """The distinct values of two sorted arrays, sorted: one merge, no sort and no concatenated copy."""
    out = np.empty(len(a) + len(b), dtype=np.result_type(a, b))
    written = _kernels().merge_unique(a, b, out)
    # A view when it fills most of the room (no second copy at the peak), else a copy that frees the rest.
    return out[:written] if written * 10 >= len(out) * 9 else out[:written].copy()


def sorted_unique(values):
    """The distinct values, sorted: a sort and a comparison of neighbours (`np.unique` of int64 took ~50 times
    as long, in its hash table)."""
    values = np.sort(values, kind="stable")
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def _codes(pairs, n):
    return pairs[:, 0] * n + pairs[:, 1]


def _pairs(codes, n, dtype=np.int64):
    pairs = np.empty((len(codes), 2), dtype=dtype)
    for start in range(0, len(codes), 1 << 20):  # a million at a time: no full-length temporaries
        pairs[start : start + (1 << 20), 0], pairs[start : start + (1 << 20), 1] = np.divmod(
            codes[start : start + (1 << 20)], n)
    return pairs


def candidate_pairs(sigs, threshold):
    """Index pairs (i, j), i < j, whose signatures agree on at least one band of `threshold`'s banding."""
    return pairs_of_band_keys(band_keys(sigs, threshold))


def short_keys(sigs):
    """`band_keys` of the looser banding of the short queries' candidates."""
    return band_keys(sigs, SHORT_COPY_LSH_THRESHOLD)


def short_copy_pairs(keys, lengths):
    """Index pairs (i, j), i < j, of short queries (normalised `lengths`) whose `short_keys` agree on a band
    and whose lengths allow `is_short_copy`. `keys` holds the short queries' rows only, in index order."""
    short = np.flatnonzero(lengths <= SHORT_QUERY)
    pairs = short[pairs_of_band_keys(keys)]
    return pairs[may_be_short_copies(lengths[pairs[:, 0]], lengths[pairs[:, 1]])]


def short_copy_candidates(sigs, lengths):
    """`short_copy_pairs` from the signatures of every query (short and not)."""
    return short_copy_pairs(short_keys(sigs[lengths <= SHORT_QUERY]), lengths)


def candidate_codes(keys, short_keys, lengths):
    """The candidates of both bandings (`band_codes` of `keys`, `short_copy_pairs` of `short_keys`), each pair
    (i, j) once as its code i·n + j, sorted (`index_pairs` makes them pairs)."""
    n = len(keys)
    short = short_copy_pairs(short_keys, lengths)
    return merged_unique(band_codes(keys), sorted_unique(_codes(short.astype(np.int64), n)))


def index_pairs(codes, n):
    """Codes i·n + j as an (n, 2) array of 32-bit indexes (64-bit from 2^31 queries on)."""
    return _pairs(codes, n, np.int32 if n < 2**31 else np.int64)


def components(n, pairs):
    """The connected components of the graph of `pairs` (a (k, 2) array of indexes below n): each index's
    label is the smallest index of its component. Hooking and pointer jumping, vectorised: a few rounds."""
    labels = np.arange(n)
    first, second = pairs[:, 0], pairs[:, 1]
    while True:
        a, b = labels[first], labels[second]
        if np.array_equal(a, b):
            return labels
        low = np.minimum(a, b)
        np.minimum.at(labels, a, low)
        np.minimum.at(labels, b, low)
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped


def breadth_first_positions(n, pairs):
    """Each index's position in a breadth-first walk of the graph of `pairs` (a (k, 2) array of indexes below
    n): each component from its smallest index, neighbours in index order, indexes without pairs last. A pair's
    two ends get near positions, so taking the pairs in the order of their later end keeps what must be held
    at once small (the verification's working set)."""
    ends = np.concatenate((pairs[:, 0], pairs[:, 1]))
    order = np.argsort(ends, kind="stable")
    neighbours = np.concatenate((pairs[:, 1], pairs[:, 0]))[order]
    bounds = np.searchsorted(ends[order], np.arange(n + 1)).tolist()
    position = np.full(n, -1, dtype=np.int64)
    placed = 0
    for root in range(n):
        if position[root] >= 0 or bounds[root] == bounds[root + 1]:
            continue
        position[root] = placed
        placed += 1
        queue = deque([root])
        while queue:
            node = queue.popleft()
            near = neighbours[bounds[node] : bounds[node + 1]]
            near = near[position[near] < 0]
            if len(near):
                position[near] = np.arange(placed, placed + len(near))
                placed += len(near)
                queue.extend(near.tolist())
    alone = position < 0
    position[alone] = np.arange(placed, placed + alone.sum())
    return position


def groups_of(n, pairs):
    """The components of more than one index, each as a sorted list of indexes (groups of near-duplicates)."""
    labels = components(n, pairs)
    sizes = np.bincount(labels, minlength=n)
    members = np.flatnonzero(sizes[labels] > 1)
    members = members[np.argsort(labels[members], kind="stable")]
    bounds = np.flatnonzero(np.diff(labels[members])) + 1
    return [part.tolist() for part in np.split(members, bounds)] if len(members) else []
