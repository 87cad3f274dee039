"""The near-duplicates job: flag prompts whose queries are near-duplicates of each other, and
training prompts that near-duplicate a prompt of a benchmark dataset (contamination).

1. Sign: every prompt without a signature gets a MinHash signature (minhash.py) and the length of
   its normalised query, committed in chunks with the job's progress, so a second import signs only
   its new prompts and a killed worker resumes after the last chunk. The prompts are streamed, each
   distinct query is normalised and signed once (a repeat takes the stored signature of its first
   prompt), and the normalised texts are spilled to a temporary file for step 2. Signatures of an
   older scheme (an older normalisation) are deleted when the job starts and made again: re-running
   the job is all an existing dataset needs after the normalisation changes.
2. Group: LSH over the signatures of the dataset and of the benchmarks (streamed, only their band
   keys kept) proposes candidate pairs, and a looser banding over the short queries proposes short
   copies (a prefix or suffix added); each is verified by the exact Jaccard similarity of the two
   queries' n-gram sets or, for short queries, by the shorter appearing whole in the longer
   (minhash.is_short_copy), each pair of distinct texts once, in an order that keeps the n-gram sets
   held at once under VERIFY_CHARS characters; the verified pairs are joined into groups (connected
   components). The dataset's groups and matches are replaced in one transaction: re-running gives
   the same result, and nothing is ever deleted from the data itself.

When the dataset is itself a benchmark, the other (training) datasets are checked against it, so
importing a benchmark after the training data flags the training data too.
"""

import heapq
import os
import tempfile
from array import array
from hashlib import blake2b
from itertools import islice

import numpy as np
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from ..jobs import FollowUp, JobContext, JobFailed, follows_imports, job_kind
from ..jobs import follow_up_of as follow_up_of_kind
from ..models import (
    ContaminationMatch,
    Dataset,
    Job,
    NearDuplicateGroup,
    NearDuplicateMember,
    Prompt,
    PromptSignature,
)
from . import minhash

KIND = "near_duplicates"
# Jaccard of the marked n-grams of the normalised queries (minhash.py), with the short-copy rule beside it.
# On the audit benchmark (bench/audit_power.py, seeds 1-7; BENCHMARKS.md, *Audit power*): near-duplicate
# prompts 95.0-100 % found, 0-7.1 % of the flagged pairs clean; contamination 97.7-100 %, none clean.
# Lower, look-alikes from one template join (one number changed in a 20-character question: 0.76; seed 2
# flags a 25-character one at exactly 0.80); higher, a benchmark question with one number changed escapes
# (AlignBench 141, 72 → 80: 0.86).
DEFAULT_THRESHOLD = 0.8
# 2,000 prompts a chunk: signing them takes ~0.1-0.5 s, so progress moves and a chunk commits quickly.
SIGN_BATCH = 2000
# Distinct queries the signing remembers (with the prompt that has their signature): ~200 bytes each.
SEEN_LIMIT = 200_000
# Signatures read a fetch when grouping (10 MB of them), of which only the band keys are kept.
LOAD_CHUNK = 20000
# Normalised characters whose n-grams the verification holds at most (a sorted array of 64-bit hashes: ~8
# bytes a character, ~16 MB, and as much again for a read's arrays put together), which bounds its memory
# whatever the dataset; and the characters of the texts it reads and makes into n-grams at a time.
VERIFY_CHARS = 2_000_000
READ_CHARS = 200_000


def params_for(*, threshold=DEFAULT_THRESHOLD, against=None, after_import=None):
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    return {"threshold": threshold, "against": against, "after_import": after_import}


def follow_up_of(import_job):
    return follow_up_of_kind(import_job, KIND)


def describe(job):
    """What a finished job found, in one line for the commands."""
    c = job.counts
    return (
        f"{c.get('near_duplicate_groups', 0)} near-duplicate groups ({c.get('prompts_in_groups', 0)} prompts); "
        f"{c.get('contaminated_prompts', 0)} prompts match {c.get('benchmark_items_matched', 0)} benchmark items "
        f"(job {job.pk})"
    )


# What a check that followed an import found, in `import_pairs --report-json`.
REPORTED_COUNTS = ("near_duplicate_groups", "prompts_in_groups", "contaminated_prompts", "benchmark_items_matched")


def report(job):
    counts = job.counts
    return {"status": job.status, "error": job.error or None, **{key: counts.get(key, 0) for key in REPORTED_COUNTS}}


# The near-duplicate check follows every import (before the search indexing that review registers).
follows_imports(FollowUp(KIND, what="near-duplicate search", describe=describe, report=report,
                         params=lambda import_job: params_for(after_import=import_job.pk),
                         bar={"unit": "prompt", "desc": "near-duplicates"}))


@job_kind(KIND, label=pgettext_lazy("job kind", "near-duplicate check"), unit="prompts", counts={
    "prompts_signed": _("Prompts signed (MinHash)"),
    "candidate_pairs": _("Candidate pairs checked"),
    "near_duplicate_pairs": _("Near-duplicate pairs"),
    "near_duplicate_groups": _("Near-duplicate groups"),
    "prompts_in_groups": _("Prompts in near-duplicate groups"),
    "benchmarks_checked": _("Benchmarks checked"),
    "contaminated_prompts": _("Prompts matching a benchmark item"),
    "benchmark_items_matched": _("Benchmark items matched"),
})
def run_near_duplicates(ctx: JobContext):
    dataset = Dataset.objects.get(pk=ctx.job.dataset_id)
    threshold = float(ctx.params.get("threshold") or DEFAULT_THRESHOLD)
    train_ids, bench_ids = _scope(dataset, ctx.params.get("against"))
    if not ctx.job.total:
        PromptSignature.objects.filter(dataset_id__in=[dataset.pk, *bench_ids]).exclude(scheme=minhash.SCHEME).delete()
        ctx.set_total(_unsigned(dataset.pk, bench_ids).count() + 1)
    spill = NormalisedTexts()
    try:
        _sign(ctx, dataset.pk, bench_ids, spill)
        spill.finish()
        _group(ctx, dataset, train_ids, bench_ids, threshold, spill)
    finally:
        spill.close()


def _scope(dataset, against):
    """(training dataset ids, benchmark dataset ids) to check against each other."""
    if against:
        bench = Dataset.objects.filter(name=against).first()
        if bench is None:
            raise JobFailed(f"no dataset is called {against!r}")
        return [dataset.pk], [bench.pk]
    if dataset.is_benchmark:
        others = Dataset.objects.filter(is_benchmark=False).values_list("pk", flat=True)
        return list(others), [dataset.pk]
    return [dataset.pk], list(Dataset.objects.filter(is_benchmark=True).exclude(pk=dataset.pk).values_list("pk", flat=True))


def _unsigned(dataset_id, bench_ids):
    # Benchmarks are signed here too (they are small); other training datasets sign in their own job.
    return Prompt.objects.filter(dataset_id__in=[dataset_id, *bench_ids], signature__isnull=True)


def _chunks(rows, size):
    """Lists of `size` items of an iterable, the last one shorter."""
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


class NormalisedTexts:
    """The normalised queries this job made while signing, spilled to a temporary file (UTF-8, each distinct
    text once a chunk) with three arrays beside it (prompt id, offset, size: 20 bytes a prompt), so that the
    verification reads them back instead of normalising every candidate a second time (OpenCC and NFKC are
    most of a prompt's cost) and without holding them in memory. Prompts signed by an earlier job (a second
    import, a resumed one) are not in it: the verification normalises those again."""

    def __init__(self):
        self.file = tempfile.TemporaryFile()
        self.size = 0
        self.parts = []
        self.ids = np.empty(0, dtype=np.int64)

    def write(self, texts):
        """Append the texts; their (offset, size) in the file."""
        places, blob = [], bytearray()
        for text in texts:
            encoded = text.encode("utf-8")
            places.append((self.size + len(blob), len(encoded)))
            blob += encoded
        self.file.seek(self.size)
        self.file.write(blob)
        self.size += len(blob)
        return places

    def add(self, prompt_ids, places):
        """Record where each prompt's normalised query lies ((offset, size) from `write`)."""
        offsets, sizes = zip(*places) if places else ((), ())
        self.parts.append((np.asarray(prompt_ids, dtype=np.int64), np.array(offsets, dtype=np.int64),
                           np.array(sizes, dtype=np.int32)))

    def finish(self):
        self.file.flush()
        parts = self.parts or [(np.empty(0, dtype=np.int64),) * 2 + (np.empty(0, dtype=np.int32),)]
        self.ids, self.offsets, self.sizes = (np.concatenate(column) for column in zip(*parts))
        self.parts = []

    def text_keys(self, prompt_ids):
        """A key for each prompt's normalised query, equal for two prompts when their queries are one text in
        the file (repeats of a query share its place): twice its offset, plus one for an empty text (which
        shares its offset with the text after it), or for a prompt not in the file a key of its own (−1 − its
        position)."""
        if not len(self.ids):
            return -1 - np.arange(len(prompt_ids), dtype=np.int64)
        at = np.minimum(np.searchsorted(self.ids, prompt_ids), len(self.ids) - 1)
        return np.where(self.ids[at] == prompt_ids, 2 * self.offsets[at] + (self.sizes[at] == 0),
                        -1 - np.arange(len(prompt_ids)))

    def texts(self, prompt_ids):
        """{prompt id: normalised query} of those of `prompt_ids` (sorted) that were signed by this job."""
        at = np.minimum(np.searchsorted(self.ids, prompt_ids), max(len(self.ids) - 1, 0))
        found = {}
        if not len(self.ids):
            return found
        fd = self.file.fileno()
        for pk, i, hit in zip(prompt_ids.tolist(), at.tolist(), (self.ids[at] == prompt_ids).tolist()):
            if hit:
                found[pk] = os.pread(fd, int(self.sizes[i]), int(self.offsets[i])).decode("utf-8")
        return found

    def close(self):
        self.file.close()


class SeenQueries:
    """The distinct queries signed so far, by a 16-byte digest: the prompt signed with each, its place in the
    spill file and its normalised length, in flat arrays with the digest mapping to a row (~130 bytes a query;
    a tuple of tuples a query took ~330, 66 MB at SEEN_LIMIT)."""

    def __init__(self):
        self.rows = {}
        self.columns = {name: array(code) for name, code in
                        (("prompt", "q"), ("offset", "q"), ("size", "q"), ("length", "q"))}

    def __len__(self):
        return len(self.rows)

    def __contains__(self, digest):
        return digest in self.rows

    def add(self, digest, prompt_id, place, length):
        self.rows[digest] = len(self.rows)
        for name, value in zip(("prompt", "offset", "size", "length"), (prompt_id, *place, length)):
            self.columns[name].append(value)

    def prompt(self, digest):
        return self.columns["prompt"][self.rows[digest]]

    def get(self, digest):
        """(the prompt signed with it, its (offset, size) in the spill file, its normalised length)."""
        row, c = self.rows[digest], self.columns
        return c["prompt"][row], (c["offset"][row], c["size"][row]), c["length"][row]


def _sign(ctx, dataset_id, bench_ids, spill):
    """Sign the unsigned prompts, read in one ordered stream (a server-side cursor, SIGN_BATCH rows a fetch).
    A query is normalised and signed once: repeats within a chunk share the work, and a query seen in an
    earlier chunk (a question asked under another system prompt) takes the stored signature of the first
    prompt that had it (the first SEEN_LIMIT distinct queries are remembered, by a 16-byte digest). Reading
    a chunk ahead in a thread was measured and gained nothing (BENCHMARKS.md, session 7)."""
    after = ctx.cursor.get("after", 0)
    unsigned = (Prompt.objects.filter(dataset_id__in=[dataset_id, *bench_ids], pk__gt=after, signature__isnull=True)
                .order_by("pk").values_list("pk", "dataset_id", "query").iterator(chunk_size=SIGN_BATCH))
    seen = SeenQueries()
    for rows in _chunks(unsigned, SIGN_BATCH):
        _sign_chunk(ctx, rows, seen, spill)


def _sign_chunk(ctx, rows, seen, spill):
    """Sign one chunk of (prompt id, dataset id, query) rows and commit it with the job's progress."""
    digests = [blake2b(q.encode(), digest_size=16).digest() for _pk, _ds, q in rows]
    first = {}  # digest → index in `fresh` of the chunk's queries not seen before
    fresh, first_prompt = [], []
    for (pk, _ds, query), digest in zip(rows, digests):
        if digest not in seen and digest not in first:
            first[digest] = len(fresh)
            fresh.append(query)
            first_prompt.append(pk)
    normalised = [minhash.normalise(q) for q in fresh]
    distinct = {}
    rows_of = np.array([distinct.setdefault(text, len(distinct)) for text in normalised], dtype=np.int64)
    sigs = minhash.signatures_of_normalised(list(distinct))[rows_of]
    fresh_places = spill.write(normalised)
    stored = _stored_signatures({seen.prompt(d) for d in digests if d in seen})
    signed, places = [], []
    for (pk, ds, _query), digest in zip(rows, digests):
        if digest in first:
            k = first[digest]
            signed.append((pk, ds, sigs[k].tobytes(), len(normalised[k])))
            places.append(fresh_places[k])
        elif seen.prompt(digest) in stored:  # else its source was deleted meanwhile: the next check signs it
            source, place, length = seen.get(digest)
            signed.append((pk, ds, stored[source], length))
            places.append(place)
    spill.add([row[0] for row in signed], places)
    with transaction.atomic():
        _store_signatures(signed)
        ctx.commit(done=len(rows), counts={"prompts_signed": len(signed)}, cursor={"after": rows[-1][0]})
    for digest, k in first.items():
        if len(seen) < SEEN_LIMIT:
            seen.add(digest, first_prompt[k], fresh_places[k], len(normalised[k]))


def _stored_signatures(prompt_ids):
    """{prompt id: its signature (bytes)} of those prompts, by their primary key."""
    if not prompt_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT prompt_id, minhash FROM annotation_promptsignature WHERE prompt_id = ANY(%s) "
                       "AND scheme = %s", [sorted(prompt_ids), minhash.SCHEME])
        return {pk: bytes(blob) for pk, blob in cursor.fetchall()}


def _store_signatures(signed):
    """COPY (prompt id, dataset id, signature bytes, normalised length) rows into a staging table, then
    insert what is new: a concurrent check of the same prompts neither fails nor doubles (bulk_create spent
    ~0.4 s a chunk building the SQL of 2,000 byteas)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage_signature (prompt_id bigint, dataset_id bigint, minhash bytea, "
            "normalised_length integer) ON COMMIT DELETE ROWS; TRUNCATE stage_signature"
        )
        with cursor.cursor.copy(
                "COPY stage_signature (prompt_id, dataset_id, minhash, normalised_length) FROM STDIN") as copy:
            for row in signed:
                copy.write_row(row)
        cursor.execute(
            "INSERT INTO annotation_promptsignature (prompt_id, dataset_id, scheme, minhash, normalised_length) "
            "SELECT prompt_id, dataset_id, %s, minhash, normalised_length FROM stage_signature "
            "ON CONFLICT (prompt_id) DO NOTHING",
            [minhash.SCHEME],
        )


def _load_band_keys(dataset_ids, threshold):
    """(prompt ids, their datasets, normalised lengths, band keys of `threshold`'s banding, band keys of the
    short queries' banding for the short queries only), in prompt id order. The signatures are streamed
    LOAD_CHUNK at a time and only their band keys kept: 8 bytes a band (18 bands at 0.8, and 42 for a short
    query) instead of 512 bytes a signature, written into arrays sized from a count first (lists of chunks
    put together at the end held everything twice: +160 MB at 267k prompts)."""
    signatures = PromptSignature.objects.filter(dataset_id__in=dataset_ids, scheme=minhash.SCHEME)
    total = signatures.count()
    short_total = signatures.filter(normalised_length__lte=minhash.SHORT_QUERY).count()
    bands = minhash.lsh_params(threshold)[0]
    short_bands = minhash.lsh_params(minhash.SHORT_COPY_LSH_THRESHOLD)[0]
    ids, owners, lengths = (np.empty(total, dtype=np.int64) for _ in range(3))
    keys = np.empty((total, bands), dtype=np.uint64)
    short_keys = np.empty((short_total, short_bands), dtype=np.uint64)
    filled = short_filled = 0
    rows = (signatures.order_by("prompt_id").values_list("prompt_id", "dataset_id", "normalised_length", "minhash")
            .iterator(chunk_size=LOAD_CHUNK))
    for chunk in _chunks(rows, LOAD_CHUNK):
        pks, dss, lens, blobs = zip(*chunk)
        sigs = np.frombuffer(b"".join(blobs), dtype=np.uint32).reshape(len(chunk), minhash.NUM_PERM)
        lens = np.array(lens, dtype=np.int64)
        short = sigs[lens <= minhash.SHORT_QUERY]
        if filled + len(chunk) > len(ids) or short_filled + len(short) > len(short_keys):
            # Signed since the count (a concurrent check of a dataset in scope): room for the rest.
            ids, owners, lengths, keys = (_grown(array, filled + len(chunk)) for array in (ids, owners, lengths, keys))
            short_keys = _grown(short_keys, short_filled + len(short))
        span = slice(filled, filled + len(chunk))
        ids[span], owners[span], lengths[span], keys[span] = pks, dss, lens, minhash.band_keys(sigs, threshold)
        short_keys[short_filled : short_filled + len(short)] = minhash.short_keys(short)
        filled, short_filled = filled + len(chunk), short_filled + len(short)
    return ids[:filled], owners[:filled], lengths[:filled], keys[:filled], short_keys[:short_filled]


def _grown(array, rows):
    """The array with room for at least `rows` rows (half as many again), its rows kept."""
    if rows <= len(array):
        return array
    grown = np.empty((rows + rows // 2, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


def _candidates(codes, owners, dataset_id, train_ids, bench_ids):
    """(pairs of indexes within the dataset, (training, benchmark) pairs of indexes) of the candidates
    (`minhash.candidate_codes`)."""
    pairs = minhash.index_pairs(codes, len(owners))
    first, second = pairs[:, 0], pairs[:, 1]
    in_dataset = owners == dataset_id
    in_train = np.isin(owners, list(train_ids))
    in_bench = np.isin(owners, list(bench_ids))
    within = in_dataset[first] & in_dataset[second]
    forward = ~within & in_train[first] & in_bench[second]
    backward = ~within & ~forward & in_bench[first] & in_train[second]
    across = np.concatenate((pairs[forward], pairs[backward][:, ::-1]))
    # Without benchmarks in scope every pair is within: no copy of the largest array.
    return (pairs if within.all() else pairs[within]), across


def _verify(ctx, ids, lengths, pairs, threshold, spill):
    """The exact similarity of each candidate pair that is a near-duplicate (Jaccard ≥ threshold, or a short
    copy), NaN for the others. Two prompts with one normalised query (a question under other system prompts)
    are 1.0 at once, and each pair of distinct texts is checked once however many prompts share them. The
    texts are numbered prompt by prompt first, so the arrays over the candidates hold 32-bit text numbers."""
    sims = np.full(len(pairs), np.nan)
    if not len(pairs):
        return sims
    keys, text_of = np.unique(spill.text_keys(ids), return_inverse=True)
    text_count = len(keys)
    prompt_of = np.empty(text_count, dtype=np.int64)  # a prompt of each text, to read it by
    prompt_of[text_of] = np.arange(len(ids))
    index = np.int32 if text_count < 2**31 else np.int64
    text_of = text_of.astype(index)
    del keys
    text_a, text_b = text_of[pairs[:, 0]], text_of[pairs[:, 1]]
    rest = text_a != text_b  # a mask: 1 byte a candidate
    sims[~rest] = 1.0
    text_a, text_b = text_a[rest], text_b[rest]
    codes = np.minimum(text_a, text_b).astype(np.int64) * text_count + np.maximum(text_a, text_b)
    del text_a, text_b
    distinct = minhash.sorted_unique(codes)
    inverse = np.searchsorted(distinct, codes).astype(np.int32 if len(distinct) < 2**31 else np.int64)
    del codes
    text_pairs = np.stack(((distinct // text_count).astype(index), (distinct % text_count).astype(index)), axis=1)
    del distinct
    checked = _verify_texts(ctx, ids[prompt_of], lengths[prompt_of], text_pairs, threshold, spill)
    sims[rest] = checked[inverse]
    return sims


def _verify_texts(ctx, ids, lengths, pairs, threshold, spill):
    """`_verify` of pairs of distinct texts (each read by its prompt in `ids`). The texts are numbered in a
    breadth-first walk of the graph of pairs and the pairs taken in the order of their later end, so a text's
    pairs come close together: its n-grams (a sorted array of their distinct hashes) are made when its first
    pair comes, about READ_CHARS normalised characters of texts at a time, and forgotten after its last. The
    arrays held stay under VERIFY_CHARS characters (those needed latest are dropped, and made again when
    needed), so the memory is bounded by that, not by the dataset. The pairs of each read are intersected
    together in compiled code (minhash.intersection_sizes)."""
    position = minhash.breadth_first_positions(len(ids), pairs)
    ends = position[pairs]
    order = np.lexsort((ends.min(axis=1), ends.max(axis=1)))
    del position, ends
    first_np, second_np = pairs[order, 0], pairs[order, 1]
    last_use = np.zeros(len(ids), dtype=np.int64)
    first_use = np.full(len(ids), len(order), dtype=np.int64)
    steps = np.arange(len(order))
    for side in (first_np, second_np):
        np.maximum.at(last_use, side, steps)
        np.minimum.at(first_use, side, steps)
    del steps
    used = np.flatnonzero(first_use < len(order))
    # Characters of the texts first needed at each pair: a read ends when they add up to READ_CHARS.
    read_at = np.cumsum(np.bincount(first_use[used], weights=lengths[used], minlength=len(order)))
    short_ok = minhash.may_be_short_copies(lengths[first_np], lengths[second_np])
    char_count, last_use = lengths.tolist(), last_use.tolist()
    gram_count = np.ones(len(ids), dtype=np.int64)
    found = np.full(len(order), np.nan)  # in the order taken
    cache, heap, held = {}, [], 0
    start = 0
    while start < len(order):
        end = int(np.searchsorted(read_at, (read_at[start - 1] if start else 0) + READ_CHARS, side="right"))
        end = min(max(end, start + 1), len(order))
        firsts, seconds = first_np[start:end], second_np[start:end]
        needed = minhash.sorted_unique(np.concatenate((firsts, seconds)))
        new = [i for i in needed.tolist() if i not in cache]
        _read_grams(ids, new, cache, spill, gram_count)
        for i in new:
            heapq.heappush(heap, (last_use[i], i))
            held += char_count[i]
        # Jaccard is at most the smaller set's share of the larger (in floating point too): under the
        # threshold, only a short copy can make the pair, and then its Jaccard is stored too.
        size_a, size_b = gram_count[firsts], gram_count[seconds]
        bound = np.minimum(size_a, size_b) / np.maximum(size_a, size_b)
        batch_short = short_ok[start:end]
        check = np.flatnonzero((bound >= threshold) | batch_short)
        runs = [cache[i][0] for i in needed.tolist()]
        counts = np.fromiter(map(len, runs), dtype=np.int64, count=len(runs))
        starts = np.cumsum(counts) - counts
        local_a, local_b = np.searchsorted(needed, firsts[check]), np.searchsorted(needed, seconds[check])
        common = minhash.intersection_sizes(np.concatenate(runs), starts, counts, local_a, local_b)
        del runs
        sims = common / (counts[local_a] + counts[local_b] - common)
        near = sims >= threshold
        for k in np.flatnonzero(~near & batch_short[check]).tolist():
            text_a, text_b = cache[int(firsts[check[k]])][1], cache[int(seconds[check[k]])][1]
            near[k] = minhash.is_short_copy(text_a, text_b)
        found[start + check[near]] = sims[near]
        start = end
        held = _forget(cache, heap, char_count, start, held)
        ctx.heartbeat(every=30)
    result = np.empty(len(order))
    result[order] = found
    return result


def _forget(cache, heap, char_count, done, held):
    """Drop the n-grams no pair from `done` on needs (`heap`: (last pair, text), smallest first); then,
    while they hold more than VERIFY_CHARS characters, those whose last pair comes latest. Returns the
    characters still held."""
    while heap and heap[0][0] < done:
        _last, i = heapq.heappop(heap)
        if i in cache:
            del cache[i]
            held -= char_count[i]
    if held > VERIFY_CHARS:
        for _last, i in sorted(heap, reverse=True):
            if i in cache:
                del cache[i]
                held -= char_count[i]
                if held <= VERIFY_CHARS // 2:
                    break
    return held


def _read_grams(ids, indexes, cache, spill, gram_count):
    """Put (sorted distinct n-gram hashes, normalised text if short else None) of each index's prompt into
    `cache`, and their count into `gram_count`; equal texts share one array. Texts come from this job's
    spill file, or from the database normalised again."""
    if not indexes:
        return
    prompt_ids = ids[indexes]
    texts = spill.texts(prompt_ids)
    missing = [pk for pk in prompt_ids.tolist() if pk not in texts]
    for start in range(0, len(missing), 5000):
        texts.update((pk, minhash.normalise(query)) for pk, query in
                     Prompt.objects.filter(pk__in=missing[start : start + 5000]).values_list("pk", "query"))
    normalised = [texts[pk] for pk in prompt_ids.tolist()]
    distinct = list(dict.fromkeys(normalised))
    runs = dict(zip(distinct, minhash.gram_runs(distinct)))
    for i, text in zip(indexes, normalised):
        cache[i] = (runs[text], text if len(text) <= minhash.SHORT_QUERY else None)
        gram_count[i] = len(runs[text])


def find_matches(ctx, dataset_id, train_ids, bench_ids, threshold, spill):
    """(verified near-duplicate pairs within the dataset, verified training→benchmark matches), each as
    ((k, 2) array of prompt ids, their similarities: the Jaccard of their n-grams), plus the number of
    candidate pairs checked."""
    ids, owners, lengths, keys, short_keys = _load_band_keys(sorted({dataset_id, *train_ids, *bench_ids}), threshold)
    codes = minhash.candidate_codes(keys, short_keys, lengths)
    del keys, short_keys  # before the pairs are made: the band keys are the largest arrays but them
    within, across = _candidates(codes, owners, dataset_id, train_ids, bench_ids)
    del codes
    pairs, inside = (np.concatenate((within, across)) if len(across) else within), len(within)
    del within, across
    sims = _verify(ctx, ids, lengths, pairs, threshold, spill)
    kept = ~np.isnan(sims)
    is_within = np.arange(len(pairs)) < inside
    found = [(ids[pairs[mask]].reshape(-1, 2), sims[mask]) for mask in (kept & is_within, kept & ~is_within)]
    return found[0], found[1], len(pairs)


def _group(ctx, dataset, train_ids, bench_ids, threshold, spill):
    (pairs, similarities), (matched, match_sims), candidates = find_matches(
        ctx, dataset.pk, train_ids, bench_ids, threshold, spill)
    matches = dict(zip(map(tuple, matched.tolist()), match_sims.tolist()))
    members = minhash.sorted_unique(pairs.ravel())
    verified = np.searchsorted(members, pairs)
    best = np.zeros(len(members))
    np.maximum.at(best, verified[:, 0], similarities)
    np.maximum.at(best, verified[:, 1], similarities)
    groups = minhash.groups_of(len(members), verified)
    with transaction.atomic():
        # Two checks of one dataset (an import's and an admin's) replace its flags one after the other.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM annotation_nearduplicatemember WHERE group_id IN "
                           "(SELECT id FROM annotation_nearduplicategroup WHERE dataset_id = %s)", [dataset.pk])
            cursor.execute("DELETE FROM annotation_nearduplicategroup WHERE dataset_id = %s", [dataset.pk])
        ContaminationMatch.objects.filter(
            dataset_id__in=train_ids, benchmark_prompt__dataset_id__in=bench_ids
        ).delete()
        _write_groups(ctx.job, dataset.pk, threshold, groups, members, best)
        owner = dict(Prompt.objects.filter(pk__in=[a for a, _b in matches]).values_list("pk", "dataset_id"))
        ContaminationMatch.objects.bulk_create(
            [ContaminationMatch(dataset_id=owner[a], prompt_id=a, benchmark_prompt_id=b, similarity=sim, job=ctx.job)
             for (a, b), sim in matches.items()],
            batch_size=5000,
            ignore_conflicts=True,  # a benchmark's check and a training dataset's may overlap
        )
        ctx.commit(done=1, counts={
            "candidate_pairs": candidates,
            "near_duplicate_pairs": len(pairs),
            "near_duplicate_groups": len(groups),
            "prompts_in_groups": sum(len(g) for g in groups),
            "benchmarks_checked": len(bench_ids),
            "contaminated_prompts": len({a for a, _b in matches}),
            "benchmark_items_matched": len({b for _a, b in matches}),
        })


def _write_groups(job, dataset_id, threshold, groups, members, best):
    """The groups and their members, with COPY (bulk_create built 22k group objects and 250k member
    objects at 1M pairs): the groups' ids are taken from their sequence first."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('annotation_nearduplicategroup', 'id')) "
                       "FROM generate_series(1, %s)", [len(groups)])
        group_ids = [row[0] for row in cursor.fetchall()]
        with cursor.cursor.copy("COPY annotation_nearduplicategroup (id, dataset_id, job_id, threshold, size, "
                                "created_at) FROM STDIN") as copy:
            for group_id, indexes in zip(group_ids, groups):
                copy.write_row((group_id, dataset_id, job.pk, threshold, len(indexes), now))
        with cursor.cursor.copy(
                "COPY annotation_nearduplicatemember (group_id, prompt_id, similarity) FROM STDIN") as copy:
            for group_id, indexes in zip(group_ids, groups):
                for i in indexes:
                    copy.write_row((group_id, int(members[i]), float(best[i])))


def summary(dataset):
    """What the dataset page shows: group and contamination counts, and the latest job."""
    return {
        "groups": NearDuplicateGroup.objects.filter(dataset=dataset).count(),
        "prompts_in_groups": NearDuplicateMember.objects.filter(group__dataset=dataset).count(),
        "contaminated_prompts": ContaminationMatch.objects.filter(dataset=dataset).values("prompt").distinct().count(),
        "benchmark_matches": ContaminationMatch.objects.filter(benchmark_prompt__dataset=dataset).count()
        if dataset.is_benchmark else 0,
        "job": Job.objects.filter(dataset=dataset, kind=KIND).order_by("-pk").first(),
        "default_threshold": DEFAULT_THRESHOLD,
    }


def contamination_for(dataset):
    """Matches where the dataset is the training side, or (for a benchmark) the benchmark side."""
    return ContaminationMatch.objects.filter(Q(dataset=dataset) | Q(benchmark_prompt__dataset=dataset))
