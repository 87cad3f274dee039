"""Block filters for substring search (review/search.py): which blocks of a dataset's texts can contain
a query, built in numpy from the texts' bytes.

A dataset's prompts (or responses), in id order, are cut into blocks of BLOCK_ROWS rows. For each block
the filter keeps a bit array of BUCKETS bits: bit h is set when some character trigram of some text in
the block hashes to h. A text that contains the query contains each of the query's trigrams, so its
block has all of their bits set; a block missing one of those bits cannot hold a match. The filter
answers "maybe" (verify with LIKE/ILIKE) or "no" (skip): false positives cost verification time, false
negatives cannot happen, so the results stay exact.

Trigrams are taken on the UTF-8 bytes, one per character start (a continuation byte starts none), each
the bytes of three whole characters; ASCII A-Z are folded to a-z on both sides. Because UTF-8 is
self-synchronising, a query that occurs in a text has its trigrams among the text's. The texts come
out of PostgreSQL through `COPY … TO STDOUT` (text format), which writes a backslash, tab, newline or
carriage return as two bytes: a query holding one of those characters or another control character is
not looked up in the filter (search.py walks it instead).

Case: ILIKE compares lower-cased texts. Folding ASCII only is enough for a query whose characters are
caseless (Chinese, digits, punctuation) or ASCII, except that two non-ASCII characters lower-case to
ASCII letters (U+0130 İ → i and U+212A Kelvin sign → k): a block holding one of them passes every
query (all its bits set). A trigram of a case-insensitive query with another cased non-ASCII character
(Greek, Cyrillic, accented or full-width Latin) is not looked up (`query_buckets`).

Storage: per segment (up to SEGMENT_BLOCKS blocks) one bucket-major bit matrix (BUCKETS rows of one
bit per block), kept uncompressed out of line (bytea, STORAGE EXTERNAL), so a query reads its
trigrams' rows with `substring` without loading the matrix.
"""

import numpy as np

# Rows per block: a query that passes a block's filter reads its BLOCK_ROWS texts with LIKE.
BLOCK_ROWS = 256
# Blocks per segment: a segment is one committed unit of the search-index job (65,536 rows, ~70 MB of
# responses read at once) and one bit matrix (2^18 rows of 32 bytes).
SEGMENT_BLOCKS = 256
# Bits per block filter. A block of 256 responses of the 1M gen_pairs file (~260 KB) sets about 20 %
# of 2^18 bits (measured on the 100k file), so a query of n characters passes a block it is not in
# with a probability near 0.2^(n-2) where its trigrams are independent.
BUCKET_BITS = 18
BUCKETS = 1 << BUCKET_BITS
GRAM = 3

_UTF8_LENGTH = np.zeros(256, np.int64)
_UTF8_LENGTH[:0x80] = 1
_UTF8_LENGTH[0xC0:0xE0] = 2
_UTF8_LENGTH[0xE0:0xF0] = 3
_UTF8_LENGTH[0xF0:] = 4
# Masks keeping the first n bytes of a little-endian 8-byte window (n ≤ 8; longer trigrams keep 8,
# which still identifies the trigram's start but may merge distinct trigrams: more false positives only).
_KEEP = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [(1 << 64) - 1] * 5, dtype=np.uint64)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(64 - BUCKET_BITS)
# UTF-8 of the two characters that lower-case into ASCII: İ (U+0130) and the Kelvin sign (U+212A).
_INTO_ASCII = (b"\xc4\xb0", b"\xe2\x84\xaa")


def fold_ascii(data):
    """ASCII A-Z to a-z, in place (uint8 array)."""
    upper = (data >= 65) & (data <= 90)
    data[upper] += 32
    return data


def _windows(data):
    """An 8-byte little-endian window at every byte offset (a strided view, no copy) of `data` padded."""
    padded = np.concatenate([data, np.zeros(8, np.uint8)])
    view = np.ndarray(shape=(data.size,), dtype="<u8", buffer=padded, offset=0, strides=(1,))
    return view


def gram_buckets(data):
    """The bucket of each character trigram of the UTF-8 bytes `data` (folded; may span several
    texts when the caller cuts them apart)."""
    starts = np.flatnonzero((data & 0xC0) != 0x80)
    if starts.size < GRAM:
        return np.zeros(0, np.int64)
    lengths = _UTF8_LENGTH[data[starts]]
    span = lengths[:-2] + lengths[1:-1] + lengths[2:]
    keys = _windows(data)[starts[:span.size]] & _KEEP[span]
    return ((keys * _GOLDEN) >> _SHIFT).astype(np.int64)


def split_copy_rows(data):
    """`COPY (SELECT id, text …) TO STDOUT` output (a bytearray) → (ids, row ends, texts): the ids as
    int64, the offset of each row's newline, and the same buffer with each row's "id<TAB>" overwritten
    with newlines (bytes no query trigram holds), ready for block_filters."""
    buf = np.frombuffer(data, dtype=np.uint8)
    row_ends = np.flatnonzero(buf == 10)
    tabs = np.flatnonzero(buf == 9)  # one a row: COPY writes a tab inside a text as \t
    if tabs.size != row_ends.size:
        raise ValueError(f"COPY output has {tabs.size} tabs for {row_ends.size} rows")
    starts = np.concatenate([[0], row_ends[:-1] + 1])
    digits = tabs - starts
    ids = np.zeros(starts.size, np.int64)
    for d in range(int(digits.max())):
        more = digits > d
        ids[more] = ids[more] * 10 + (buf[starts[more] + d] - 48)
    prefix = digits + 1
    before = np.concatenate([[0], np.cumsum(prefix)[:-1]])
    buf[np.repeat(starts - before, prefix) + np.arange(int(prefix.sum()))] = 10
    return ids, row_ends, buf


def block_filters(data, row_ends, block_rows=BLOCK_ROWS):
    """The filters of consecutive blocks, bucket-major: data is the COPY output of the rows (each ends
    with a newline at row_ends), folded in place. Returns a (BUCKETS, ceil(blocks/8)) uint8 array: row h
    holds bit h of every block's filter, block k at bit k % 8 of byte k // 8."""
    blocks = (row_ends.size + block_rows - 1) // block_rows
    block_ends = row_ends[np.minimum(np.arange(1, blocks + 1) * block_rows, row_ends.size) - 1]
    lowers_into_ascii = set(np.searchsorted(block_ends, _positions_of(data, _INTO_ASCII)).tolist())
    matrix = np.zeros((BUCKETS, (blocks + 7) // 8), np.uint8)
    byte = np.zeros(BUCKETS, np.uint8)
    bits = np.zeros(BUCKETS, bool)
    start = 0
    for k in range(blocks):
        end = int(row_ends[min((k + 1) * block_rows, row_ends.size) - 1])
        # A trigram across two rows joins them by a newline byte (never a query's: see the docstring),
        # so it adds a false-positive bit at most.
        bits[:] = k in lowers_into_ascii
        bits[gram_buckets(fold_ascii(data[start:end]))] = True
        byte |= bits.view(np.uint8) << np.uint8(k % 8)
        if k % 8 == 7 or k == blocks - 1:
            matrix[:, k // 8] = byte
            byte[:] = 0
        start = end + 1
    return matrix


def _positions_of(data, sequences):
    """Offsets where any of the byte sequences (each of distinct bytes after the first) starts."""
    found = []
    for sequence in sequences:
        at = np.flatnonzero(data[:data.size - len(sequence) + 1] == sequence[0])
        for i, byte in enumerate(sequence[1:], 1):
            at = at[data[at + i] == byte]
        found.append(at)
    return np.concatenate(found)


def query_buckets(text, caseless):
    """Buckets of the query's trigrams that every matching text's block must have set, or None when the
    filter cannot answer the query (shorter than a trigram, or a character COPY escapes)."""
    if len(text) < GRAM or any(ch == "\\" or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return None
    usable = []
    for i in range(len(text) - GRAM + 1):
        gram = text[i:i + GRAM]
        if not caseless and any(not ch.isascii() and ch.lower() != ch.upper() for ch in gram):
            continue
        usable.append(gram)
    if not usable:
        return None
    buckets = set()
    for gram in usable:
        data = fold_ascii(np.frombuffer(gram.encode(), dtype=np.uint8).copy())
        buckets.update(int(b) for b in gram_buckets(data))
    return sorted(buckets)


def candidate_blocks(rows, blocks):
    """Blocks whose bits are all set: rows are the bucket-major rows (bytes) of the query's buckets."""
    found = np.ones(blocks, bool)
    for row in rows:
        found &= np.unpackbits(np.frombuffer(row, dtype=np.uint8), bitorder="little")[:blocks].astype(bool)
    return np.flatnonzero(found)
