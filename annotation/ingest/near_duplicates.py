"""The near-duplicates job: flag prompts whose queries are near-duplicates of each other, and
training prompts that near-duplicate a prompt of a benchmark dataset (contamination).

1. Sign: every prompt without a signature gets a MinHash signature (minhash.py) and the length of
   its normalised query, committed in chunks with the job's progress, so a second import signs only
   its new prompts and a killed worker resumes after the last chunk. Signatures of an older scheme
   (an older normalisation) are deleted when the job starts and made again: re-running the job is
   all an existing dataset needs after the normalisation changes.
2. Group: LSH over the signatures of the dataset and of the benchmarks proposes candidate pairs, and
   a looser banding over the short queries proposes short copies (a prefix or suffix added); each
   is verified by the exact Jaccard similarity of the two queries' n-gram sets or, for short
   queries, by the shorter appearing whole in the longer (minhash.is_short_copy), and the
   verified pairs are joined into groups (union-find). The dataset's groups and matches are
   replaced in one transaction: re-running gives the same result, and nothing is ever deleted
   from the data itself.

When the dataset is itself a benchmark, the other (training) datasets are checked against it, so
importing a benchmark after the training data flags the training data too.
"""

import numpy as np
from django.db import connection, transaction
from django.db.models import Q
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
    _sign(ctx, dataset.pk, bench_ids)
    _group(ctx, dataset, train_ids, bench_ids, threshold)


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


def _sign(ctx, dataset_id, bench_ids):
    after = ctx.cursor.get("after", 0)
    # All ids up front (8 bytes each): a keyset query per chunk took ~1.8 s at 92k prompts right
    # after an import, before autovacuum has analysed the table and the planner knows its size.
    pending = np.fromiter(
        Prompt.objects.filter(dataset_id__in=[dataset_id, *bench_ids], pk__gt=after)
        .order_by("pk").values_list("pk", flat=True).iterator(chunk_size=20000),
        dtype=np.int64,
    )
    for start in range(0, len(pending), SIGN_BATCH):
        ids = pending[start : start + SIGN_BATCH].tolist()
        signed = set(PromptSignature.objects.filter(prompt_id__in=ids).values_list("prompt_id", flat=True))
        todo = [pk for pk in ids if pk not in signed]
        rows = list(Prompt.objects.filter(pk__in=todo).order_by("pk").values_list("pk", "dataset_id", "query"))
        normalised = [minhash.normalise(q) for _pk, _ds, q in rows]
        sigs = minhash.signatures_of_normalised(normalised)
        with transaction.atomic():
            _store_signatures(rows, sigs, [len(n) for n in normalised])
            ctx.commit(done=len(rows), counts={"prompts_signed": len(rows)}, cursor={"after": ids[-1]})


def _store_signatures(rows, sigs, lengths):
    """COPY into a staging table, then insert what is new: a concurrent check of the same prompts
    neither fails nor doubles (bulk_create spent ~0.4 s a chunk building the SQL of 2,000 byteas)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage_signature (prompt_id bigint, dataset_id bigint, minhash bytea, "
            "normalised_length integer) ON COMMIT DELETE ROWS; TRUNCATE stage_signature"
        )
        with cursor.cursor.copy(
                "COPY stage_signature (prompt_id, dataset_id, minhash, normalised_length) FROM STDIN") as copy:
            for (pk, ds, _q), sig, length in zip(rows, sigs, lengths):
                copy.write_row((pk, ds, sig.tobytes(), length))
        cursor.execute(
            "INSERT INTO annotation_promptsignature (prompt_id, dataset_id, scheme, minhash, normalised_length) "
            "SELECT prompt_id, dataset_id, %s, minhash, normalised_length FROM stage_signature "
            "ON CONFLICT (prompt_id) DO NOTHING",
            [minhash.SCHEME],
        )


def _load_signatures(dataset_ids):
    ids, owners, lengths, blobs = [], [], [], []
    rows = PromptSignature.objects.filter(dataset_id__in=dataset_ids, scheme=minhash.SCHEME).order_by("prompt_id")
    for pk, ds, length, blob in (rows.values_list("prompt_id", "dataset_id", "normalised_length", "minhash")
                                 .iterator(chunk_size=5000)):
        ids.append(pk)
        owners.append(ds)
        lengths.append(length)
        blobs.append(bytes(blob))
    sigs = np.frombuffer(b"".join(blobs), dtype=np.uint32).reshape(len(ids), minhash.NUM_PERM)
    return (np.array(ids, dtype=np.int64), np.array(owners, dtype=np.int64), np.array(lengths, dtype=np.int64),
            sigs)


def _normalised_queries(prompt_ids):
    found, ids = {}, sorted(prompt_ids)
    for i in range(0, len(ids), 5000):
        found.update((pk, minhash.normalise(query))
                     for pk, query in Prompt.objects.filter(pk__in=ids[i : i + 5000]).values_list("pk", "query"))
    return found


def find_matches(dataset_id, train_ids, bench_ids, threshold):
    """(verified near-duplicate pairs within the dataset, verified training→benchmark matches),
    each as {(prompt_id, other_id): similarity (the Jaccard of their n-grams)}, plus the number of
    candidate pairs checked."""
    ids, owners, lengths, sigs = _load_signatures(sorted({dataset_id, *train_ids, *bench_ids}))
    in_dataset = owners == dataset_id
    in_train = np.isin(owners, list(train_ids))
    in_bench = np.isin(owners, list(bench_ids))
    within, across = [], []
    for i, j in minhash.candidate_pairs(sigs, threshold) | minhash.short_copy_candidates(sigs, lengths):
        if in_dataset[i] and in_dataset[j]:
            within.append((int(ids[i]), int(ids[j])))
        elif in_train[i] and in_bench[j]:
            across.append((int(ids[i]), int(ids[j])))
        elif in_bench[i] and in_train[j]:
            across.append((int(ids[j]), int(ids[i])))
    texts = _normalised_queries({p for pair in within + across for p in pair})
    order = sorted(texts)
    grams = dict(zip(order, minhash.shingle_arrays([texts[pk] for pk in order])))
    # Only the short queries' texts are kept, for the short-copy check.
    short = {pk: text for pk, text in texts.items() if len(text) <= minhash.SHORT_QUERY}
    del texts

    def verified(pairs):
        out = {}
        for a, b in pairs:
            sim = minhash.jaccard_arrays(grams[a], grams[b])
            if sim >= threshold or minhash.is_short_copy(short.get(a), short.get(b)):
                out[(a, b)] = sim
        return out

    return verified(within), verified(across), len(within) + len(across)


def _group(ctx, dataset, train_ids, bench_ids, threshold):
    pairs, matches, candidates = find_matches(dataset.pk, train_ids, bench_ids, threshold)
    uf = minhash.UnionFind()
    best = {}
    for (a, b), sim in pairs.items():
        uf.union(a, b)
        best[a] = max(best.get(a, 0.0), sim)
        best[b] = max(best.get(b, 0.0), sim)
    groups = uf.groups()
    with transaction.atomic():
        # Two checks of one dataset (an import's and an admin's) replace its flags one after the other.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        NearDuplicateGroup.objects.filter(dataset=dataset).delete()
        ContaminationMatch.objects.filter(
            dataset_id__in=train_ids, benchmark_prompt__dataset_id__in=bench_ids
        ).delete()
        created = NearDuplicateGroup.objects.bulk_create(
            [NearDuplicateGroup(dataset=dataset, job=ctx.job, threshold=threshold, size=len(g)) for g in groups]
        )
        NearDuplicateMember.objects.bulk_create(
            [NearDuplicateMember(group=group, prompt_id=pk, similarity=best[pk])
             for group, members in zip(created, groups) for pk in members],
            batch_size=5000,
        )
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
