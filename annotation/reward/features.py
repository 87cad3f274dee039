"""Features of a response for the built-in reward model, computed for many texts at once.

r(x, y) = w · φ(y) + v_shared · d(x, y) + v_domain(x) · d(x, y), where φ(y) counts hashed character
1-3-grams of the response (Chinese needs no word segmentation for this: character bigrams carry most
of what words would) scaled by 1/√(number of n-grams), and d(x, y) are a dozen length and format
features (log length, length against the prompt's, lists, code fences, LaTeX, refusal phrases …)
with a weight vector shared by all domains plus one per domain (a long answer helps in Chat, less in Math).

Everything is vectorised over the concatenated code points of a batch of texts with numpy: no Python
loop per character, and a batch's n-grams are hashed with a handful of array operations.
"""

from dataclasses import dataclass

import numpy as np

from ..models import Domain

# Bumped whenever the features change, so a stored model is never scored with other features.
FEATURIZER_VERSION = 1
DEFAULT_BITS = 20
ORDERS = (1, 2, 3)
# n-grams are taken from the first MAX_CHARS characters; a response's length features use all of it.
DEFAULT_MAX_CHARS = 4000

DOMAINS = list(Domain.values)
DENSE_FEATURES = [
    "log_chars",
    "log_chars_over_prompt",
    "log_lines",
    "log_code_fences",
    "log_list_items",
    "log_headings",
    "log_bold",
    "log_latex",
    "cjk_fraction",
    "digit_fraction",
    "refusal",
]
REFUSAL_PHRASES = (
    "抱歉", "对不起", "我不能", "我无法", "无法提供", "无法回答", "不能提供", "作为一个人工智能", "作为AI", "作为一个AI",
    "作为人工智能", "I'm sorry", "I cannot", "I can't",
)

_U = np.uint64
_PRIME = _U(0x100000001B3)
_MIX = _U(0x9E3779B97F4A7C15)
# One salt per n-gram order, so "的" and the bigram whose rolling value happens to equal it differ.
_SALTS = {order: _U(order * 0xD6E8FEB86659FD93 % 2**64) for order in ORDERS}
_BULLETS = np.array([ord(c) for c in "-*+•·"], dtype=np.uint32)
_ENUM_ENDS = np.array([ord(c) for c in ".、)）:："], dtype=np.uint32)
_CN_NUMERALS = np.array([ord(c) for c in "一二三四五六七八九十"], dtype=np.uint32)


@dataclass
class Batch:
    """Features of a batch of texts. n-gram hits are given per order as (document, bucket) arrays."""

    n: int
    ngram_docs: list
    ngram_buckets: list
    scale: np.ndarray  # 1/√(n-grams) per text
    dense: np.ndarray  # (n, len(DENSE_FEATURES)), not yet standardised
    domains: np.ndarray  # index into DOMAINS per text
    lengths: np.ndarray  # characters per text (whole text)


def featurize(texts, prompt_lengths, domains, bits=DEFAULT_BITS, max_chars=DEFAULT_MAX_CHARS):
    """Features of `texts` (a list of str); `prompt_lengths` and `domains` (values of Domain) per text."""
    n = len(texts)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    clipped = [t if len(t) <= max_chars else t[:max_chars] for t in texts]
    cut = np.minimum(lengths, max_chars)
    codes = np.frombuffer("".join(clipped).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(cut[:-1], out=starts[1:])
    doc = np.repeat(np.arange(n, dtype=np.int64), cut)
    pos = np.arange(codes.size, dtype=np.int64) - np.repeat(starts, cut)
    left = np.repeat(cut, cut) - pos  # characters from here to the end of its text, this one included

    docs, buckets = [], []
    shift = _U(64 - bits)
    rolling = codes.astype(np.uint64)
    wide = rolling.copy()
    for order in ORDERS:
        if order > 1:
            rolling = rolling[:-1] * _PRIME + wide[order - 1:]
        keep = left[: rolling.size] >= order
        h = (rolling[keep] + _SALTS[order]) * _MIX
        h ^= h >> _U(31)
        h *= _MIX
        buckets.append((h >> shift).astype(np.int32))
        docs.append(doc[: rolling.size][keep])
    grams = sum(np.bincount(d, minlength=n) for d in docs)
    scale = 1.0 / np.sqrt(np.maximum(grams, 1))

    dense = _dense(texts, lengths, codes, doc, pos, n, np.asarray(prompt_lengths, dtype=np.float64))
    domain_index = np.array([_DOMAIN_INDEX.get(d, _DOMAIN_INDEX[Domain.OTHER]) for d in domains], dtype=np.int64)
    return Batch(n, docs, buckets, scale, dense, domain_index, lengths)


_DOMAIN_INDEX = {d: i for i, d in enumerate(DOMAINS)}


def _dense(texts, lengths, codes, doc, pos, n, prompt_lengths):
    def count(mask):
        return np.bincount(doc[mask], minlength=n).astype(np.float64)

    nxt = np.append(codes[1:], 0)
    nxt2 = np.append(codes[2:], [0, 0])
    prev = np.insert(codes[:-1], 0, 10)
    line_start = (pos == 0) | (prev == 10)
    # A following character from the next text does not matter: no marker is one character long.
    list_item = line_start & (
        (np.isin(codes, _BULLETS) & (nxt == 32))
        | ((codes >= 48) & (codes <= 57) & np.isin(nxt, _ENUM_ENDS))
        | (np.isin(codes, _CN_NUMERALS) & (nxt == 0x3001))
    )
    fences = line_start & (codes == 96) & (nxt == 96) & (nxt2 == 96)
    headings = line_start & (codes == 35)
    bold = (codes == 42) & (nxt == 42)
    latex = (codes == 36) | (codes == 92)
    cjk = (codes >= 0x4E00) & (codes <= 0x9FFF)
    digits = (codes >= 48) & (codes <= 57)
    chars = np.maximum(np.minimum(lengths, np.bincount(doc, minlength=n)), 1).astype(np.float64)
    log_chars = np.log1p(lengths)
    refusal = np.fromiter((any(p in t[:400] for p in REFUSAL_PHRASES) for t in texts), dtype=np.float64, count=n)
    return np.column_stack([
        log_chars,
        log_chars - np.log1p(prompt_lengths),
        np.log1p(count(codes == 10)),
        np.log1p(count(fences) // 2),
        np.log1p(count(list_item)),
        np.log1p(count(headings)),
        np.log1p(count(bold)),
        np.log1p(count(latex)),
        count(cjk) / chars,
        count(digits) / chars,
        refusal,
    ])
