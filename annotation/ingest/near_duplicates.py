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
# Normalised characters whose n-gram sets the verification holds at most (~80 bytes a character in a
# Python set of 64-bit hashes: ~160 MB), which bounds its memory whatever the dataset; and the characters
# of the texts it reads and makes into sets at a time (one vectorised block).
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


def _sign(ctx, dataset_id, bench_ids, spill):
    """Sign the unsigned prompts, read in one ordered stream (a server-side cursor, SIGN_BATCH rows a fetch).
    A query is normalised and signed once: repeats within a chunk share the work, and a query seen in an
    earlier chunk (a question asked under another system prompt) takes the stored signature of the first
    prompt that had it (the first SEEN_LIMIT distinct queries are remembered, by a 16-byte digest)."""
    after = ctx.cursor.get("after", 0)
    unsigned = (Prompt.objects.filter(dataset_id__in=[dataset_id, *bench_ids], pk__gt=after, signature__isnull=True)
                .order_by("pk").values_list("pk", "dataset_id", "query").iterator(chunk_size=SIGN_BATCH))
    seen = {}  # digest of a query → (the prompt signed with it, its place in the spill file, normalised length)
    for rows in _chunks(unsigned, SIGN_BATCH):
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
        stored = _stored_signatures({seen[d][0] for d in digests if d in seen})
        signed, places = [], []
        for (pk, ds, _query), digest in zip(rows, digests):
            if digest in first:
                k = first[digest]
                signed.append((pk, ds, sigs[k].tobytes(), len(normalised[k])))
                places.append(fresh_places[k])
            elif seen[digest][0] in stored:  # else its source was deleted meanwhile: the next check signs it
                source, place, length = seen[digest]
                signed.append((pk, ds, stored[source], length))
                places.append(place)
        spill.add([row[0] for row in signed], places)
        with transaction.atomic():
            _store_signatures(signed)
            ctx.commit(done=len(rows), counts={"prompts_signed": len(signed)}, cursor={"after": rows[-1][0]})
        for digest, k in first.items():
            if len(seen) < SEEN_LIMIT:
                seen[digest] = (first_prompt[k], fresh_places[k], len(normalised[k]))


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
    query) instead of 512 bytes a signature."""
    ids, owners, lengths, keys, short_keys = [], [], [], [], []
    rows = (PromptSignature.objects.filter(dataset_id__in=dataset_ids, scheme=minhash.SCHEME).order_by("prompt_id")
            .values_list("prompt_id", "dataset_id", "normalised_length", "minhash").iterator(chunk_size=LOAD_CHUNK))
    for chunk in _chunks(rows, LOAD_CHUNK):
        pks, dss, lens, blobs = zip(*chunk)
        sigs = np.frombuffer(b"".join(blobs), dtype=np.uint32).reshape(len(chunk), minhash.NUM_PERM)
        lens = np.array(lens, dtype=np.int64)
        ids.append(np.array(pks, dtype=np.int64))
        owners.append(np.array(dss, dtype=np.int64))
        lengths.append(lens)
        keys.append(minhash.band_keys(sigs, threshold))
        short_keys.append(minhash.short_keys(sigs[lens <= minhash.SHORT_QUERY]))
    if not ids:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty, np.empty((0, 1), dtype=np.uint64), np.empty((0, 1), dtype=np.uint64)
    return (np.concatenate(ids), np.concatenate(owners), np.concatenate(lengths), np.concatenate(keys),
            np.concatenate(short_keys))


def _candidates(ids, owners, lengths, keys, short_keys, dataset_id, train_ids, bench_ids):
    """(pairs of indexes within the dataset, (training, benchmark) pairs of indexes): the LSH candidates of
    both bandings, each pair once."""
    n = len(ids)
    pairs = minhash.union_pairs(minhash.pairs_of_band_keys(keys), minhash.short_copy_pairs(short_keys, lengths), n)
    first, second = pairs[:, 0], pairs[:, 1]
    in_dataset = owners == dataset_id
    in_train = np.isin(owners, list(train_ids))
    in_bench = np.isin(owners, list(bench_ids))
    within = in_dataset[first] & in_dataset[second]
    forward = ~within & in_train[first] & in_bench[second]
    backward = ~within & ~forward & in_bench[first] & in_train[second]
    across = np.concatenate((pairs[forward], pairs[backward][:, ::-1]))
    return pairs[within], across


def _verify(ctx, ids, lengths, pairs, threshold, spill):
    """The exact similarity of each candidate pair that is a near-duplicate (Jaccard ≥ threshold, or a short
    copy), NaN for the others. Two prompts with one normalised query (a question under other system prompts)
    are 1.0 at once, and each pair of distinct texts is checked once however many prompts share them."""
    sims = np.full(len(pairs), np.nan)
    if not len(pairs):
        return sims
    key = spill.text_keys(ids)
    key_a, key_b = key[pairs[:, 0]], key[pairs[:, 1]]
    sims[key_a == key_b] = 1.0
    rest = np.flatnonzero(key_a != key_b)
    low, high = np.minimum(key_a[rest], key_b[rest]), np.maximum(key_a[rest], key_b[rest])
    texts = minhash.sorted_unique(np.concatenate((low, high)))
    text_pairs = np.stack((np.searchsorted(texts, low), np.searchsorted(texts, high)), axis=1)
    # A prompt for each text, to read it by.
    swapped = key_a[rest] > key_b[rest]
    prompt_of = np.empty(len(texts), dtype=np.int64)
    prompt_of[text_pairs[:, 0]] = np.where(swapped, pairs[rest, 1], pairs[rest, 0])
    prompt_of[text_pairs[:, 1]] = np.where(swapped, pairs[rest, 0], pairs[rest, 1])
    codes = text_pairs[:, 0] * len(texts) + text_pairs[:, 1]
    del key, key_a, key_b, low, high, swapped, text_pairs
    distinct = minhash.sorted_unique(codes)
    inverse = np.searchsorted(distinct, codes).astype(np.int32 if len(distinct) < 2**31 else np.int64)
    del codes
    text_pairs = np.stack((distinct // len(texts), distinct % len(texts)), axis=1)
    del distinct
    checked = _verify_texts(ctx, ids[prompt_of], lengths[prompt_of], text_pairs, threshold, spill)
    sims[rest] = checked[inverse]
    return sims


def _verify_texts(ctx, ids, lengths, pairs, threshold, spill):
    """`_verify` of pairs of distinct texts (each read by its prompt in `ids`). The texts are numbered in a
    breadth-first walk of the graph of pairs and the pairs taken in the order of their later end, so a text's
    pairs come close together: its n-gram set is made when its first pair comes, about READ_CHARS normalised
    characters of texts at a time, and forgotten after its last. The sets held stay under VERIFY_CHARS
    characters (those needed latest are dropped, and made again when needed), so the memory is bounded by
    that, not by the dataset."""
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
        needed = minhash.sorted_unique(np.concatenate((first_np[start:end], second_np[start:end]))).tolist()
        new = [i for i in needed if i not in cache]
        _read_grams(ids, new, cache, spill, gram_count)
        for i in new:
            heapq.heappush(heap, (last_use[i], i))
            held += char_count[i]
        # Jaccard is at most the smaller set's share of the larger (in floating point too): under the
        # threshold, only a short copy can make the pair, and then its Jaccard is stored too.
        size_a, size_b = gram_count[first_np[start:end]], gram_count[second_np[start:end]]
        bound = np.minimum(size_a, size_b) / np.maximum(size_a, size_b)
        batch_firsts, batch_seconds = first_np[start:end].tolist(), second_np[start:end].tolist()
        batch_short = short_ok[start:end]
        for k in np.flatnonzero((bound >= threshold) | batch_short).tolist():
            (set_a, text_a), (set_b, text_b) = cache[batch_firsts[k]], cache[batch_seconds[k]]
            inter = len(set_a & set_b) if len(set_a) <= len(set_b) else len(set_b & set_a)
            sim = inter / (len(set_a) + len(set_b) - inter)
            if sim >= threshold or (batch_short[k] and minhash.is_short_copy(text_a, text_b)):
                found[start + k] = sim
        start = end
        held = _forget(cache, heap, char_count, start, held)
        ctx.heartbeat(every=30)
    sims = np.empty(len(order))
    sims[order] = found
    return sims


def _forget(cache, heap, char_count, done, held):
    """Drop the n-gram sets no pair from `done` on needs (`heap`: (last pair, text), smallest first); then,
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
    """Put (n-gram hash set, normalised text if short else None) of each index's prompt into `cache`, and
    the set's size into `gram_count`; equal texts share one set. Texts come from this job's spill file, or
    from the database normalised again."""
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
    sets = dict(zip(distinct, minhash.shingle_sets(distinct)))
    for i, text in zip(indexes, normalised):
        cache[i] = (sets[text], text if len(text) <= minhash.SHORT_QUERY else None)
        gram_count[i] = len(sets[text])


def find_matches(ctx, dataset_id, train_ids, bench_ids, threshold, spill):
    """(verified near-duplicate pairs within the dataset, verified training→benchmark matches), each as
    ((k, 2) array of prompt ids, their similarities: the Jaccard of their n-grams), plus the number of
    candidate pairs checked."""
    ids, owners, lengths, keys, short_keys = _load_band_keys(sorted({dataset_id, *train_ids, *bench_ids}), threshold)
    within, across = _candidates(ids, owners, lengths, keys, short_keys, dataset_id, train_ids, bench_ids)
    del keys, short_keys
    pairs, inside = np.concatenate((within, across)), len(within)
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
