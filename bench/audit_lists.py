"""The audit lists of issue 12 at a million pairs: server time of the pair list pages that read the
suspicion order, the defect rules' stored members (`flagged=`) and the pairwise verdicts.

    .venv/bin/python bench/audit_lists.py [--pairs 1000000] [--repeat 20] [--flagged 0.25] [--reuse]

The pairs come from bench/export.py's SQL builder (reused when a dataset of that size exists). On them it
stores what the pages read as the jobs would leave it (kept as they are with --reuse): a suspicion score per
pair (PairSuspicion, random, as the quality-count job stores them), stored members of the defect rules for
`--flagged` of the pairs (SelectionMember, spread over the six rules, some pairs in two), 500 pairwise
verdicts, 30 against the label, and a finished quality-count job that scored every pair. Then it requests
each page through Django's test client as a superuser (no network): the lists' first pages, pages deep in
them (keyset positions at the middle and at the end), and the review queue over the suspicious order (a new
reviewer each request, so each hands out a pair); it reports the first request, p50 / p95 over --repeat
more, and the CPU a request took in this process and its PostgreSQL backend.
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from export import connection, ensure_dataset  # noqa: E402  (sets Django up)

DEFECT_RULES = ["near-duplicate-prompt", "contaminated", "identical-responses", "empty-or-truncated",
                "refusal-chosen", "non-chinese-answer"]

STORE = """
DELETE FROM review_pairsuspicion WHERE dataset_id = %(dataset)s;
INSERT INTO review_pairsuspicion (pair_id, dataset_id, score, reasons)
SELECT id, %(dataset)s, random(), '{}'::jsonb FROM annotation_pair WHERE dataset_id = %(dataset)s;
DELETE FROM review_selectionmember WHERE dataset_id = %(dataset)s;
INSERT INTO review_selectionmember (dataset_id, view, pair_id)
SELECT %(dataset)s, (%(rules)s::text[])[1 + (hashtext(id::text) & 1023) %% 6], id FROM annotation_pair
WHERE dataset_id = %(dataset)s AND (hashtext(id::text) & 65535) < %(flagged)s * 65536
UNION
SELECT %(dataset)s, (%(rules)s::text[])[1 + (hashtext(id::text) & 1023) %% 5 + 1], id FROM annotation_pair
WHERE dataset_id = %(dataset)s AND (hashtext(id::text) & 65535) < %(flagged)s * 6553;
"""


def store(dataset, flagged):
    from annotation.models import Judge, PairwiseVerdict

    with connection.cursor() as cursor:
        cursor.execute(STORE, {"dataset": dataset.pk, "rules": DEFECT_RULES, "flagged": flagged})
    judge, _ = Judge.objects.get_or_create(name="bench-lists-pairwise", defaults={"model": "m", "base_url": ""})
    PairwiseVerdict.objects.filter(dataset=dataset).delete()
    pairs = list(dataset.pairs.order_by("?").values_list("pk", flat=True)[:500])
    PairwiseVerdict.objects.bulk_create(
        PairwiseVerdict(dataset=dataset, pair_id=pk, judge=judge, chosen_first="B" if i < 30 else "A",
                        chosen_second="A" if i < 30 else "B", outcome="rejected" if i < 30 else "chosen",
                        chosen_first_key=uuid.uuid4(), chosen_second_key=uuid.uuid4())
        for i, pk in enumerate(pairs))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE review_pairsuspicion; ANALYZE review_selectionmember; "
                       "ANALYZE annotation_pairwiseverdict")


def record_count(dataset):
    """What the quality-count job records when it has stored the rules' members and every pair's score: the
    pages then know that no pair lacks a score (selections._every_pair_scored)."""
    from django.utils import timezone

    from annotation.jobs import create_job
    from annotation.models import Job
    from review import quality_rules

    now = timezone.now()
    Job.objects.filter(dataset=dataset, kind=quality_rules.KIND).delete()
    job = create_job(quality_rules.KIND, dataset=dataset, enqueue_it=False)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, started_at=now, finished_at=now,
                                         cursor={"stored": DEFECT_RULES, "suspicion": True})


def deep_pairs(dataset):
    """Keyset positions deep in the lists: the pair halfway down "most suspicious first", the tenth from its
    end (its last page), and the pair halfway in id order."""
    from review.models import PairSuspicion

    scored = PairSuspicion.objects.filter(dataset=dataset).order_by("-score", "pair_id").values_list("pair_id", flat=True)
    n = scored.count()
    ids = dataset.pairs.order_by("pk").values_list("pk", flat=True)
    return scored[n // 2], scored[n - 10], ids[ids.count() // 2]


def time_pages(dataset, repeat):
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    user, _ = get_user_model().objects.get_or_create(username="bench-lists", defaults={"is_superuser": True,
                                                                                        "is_staff": True})
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(user)
    base = reverse("pair-list", args=[dataset.pk])
    middle, last, middle_id = deep_pairs(dataset)
    urls = [("", "pair list, id order (for comparison)"),
            ("?order=suspicious", "most suspicious first"),
            ("?flagged=no&order=suspicious", "no defect rule flags it, most suspicious first"),
            ("?flagged=yes&order=suspicious", "a defect rule flags it, most suspicious first"),
            ("?flagged=no", "no defect rule flags it, id order"),
            ("?view=pairwise-disagrees", "pairwise judge disagrees"),
            ("?view=pairwise-disagrees&order=suspicious", "pairwise judge disagrees, most suspicious first"),
            (f"?order=suspicious&after={middle}", "most suspicious first, page at the middle"),
            (f"?order=suspicious&before={middle}", "most suspicious first, page before the middle"),
            (f"?order=suspicious&after={last}", "most suspicious first, last page"),
            (f"?flagged=no&order=suspicious&after={middle}", "flagged=no, most suspicious first, middle"),
            (f"?flagged=yes&order=suspicious&after={middle}", "flagged=yes, most suspicious first, middle"),
            (f"?flagged=no&after={middle_id}", "flagged=no, id order, middle"),
            (f"?flagged=yes&after={middle_id}", "flagged=yes, id order, middle")]
    rows = []
    for query, label in urls:
        rows.append((query, label, *summary(lambda: client.get(base + query), query)))
    # The review queue over the suspicious-first lists: each request a reviewer who holds nothing yet, so each
    # hands out a new pair (the others' holds are skipped).
    queue = reverse("review-queue", args=[dataset.pk])
    for query, label in [("?order=suspicious", "review queue, most suspicious first (next pair)"),
                         ("?flagged=no&order=suspicious", "review queue, flagged=no, most suspicious (next pair)")]:
        reviewers = iter(get_user_model().objects.get_or_create(
            username=f"bench-lists-{i}", defaults={"is_superuser": True, "is_staff": True})[0] for i in range(repeat + 1))

        def next_pair():
            client.force_login(next(reviewers))
            return client.get(queue + query)

        rows.append((query, label, *summary(next_pair, query)))
    return rows


def summary(request, query):
    """(first, p50, p95, CPU) in ms of repeat + 1 requests: wall times, and the CPU of a request after the
    first (this process, which serves it, and its PostgreSQL backend; /proc counts in ticks of 10 ms, so
    it is the mean over the repeats)."""
    times = []
    for i in range(REPEAT[0] + 1):
        if i == 1:
            cpu_started = cpu_seconds()
        started = time.perf_counter()
        response = request()
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            sys.exit(f"{query}: HTTP {response.status_code}")
    cpu = (cpu_seconds() - cpu_started) * 1000 / REPEAT[0]
    rest = sorted(times[1:])
    return times[0], statistics.median(rest), rest[max(0, round(0.95 * len(rest)) - 1)], cpu


def cpu_seconds():
    """CPU seconds of this process and of its PostgreSQL backend (as bench/ingest.py reads them)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    times = os.times()
    return times.user + times.system + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


REPEAT = [20]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--flagged", type=float, default=0.25, help="share of pairs a defect rule flags")
    parser.add_argument("--reuse", action="store_true", help="keep the scores, members and verdicts stored before")
    parser.add_argument("--dataset", help="measure on this existing dataset (e.g. an imported gen_pairs.py file) "
                                          "instead of bench/export.py's generated one")
    args = parser.parse_args()
    REPEAT[0] = args.repeat
    print(f"load average at start {os.getloadavg()[0]:.2f}")
    if args.dataset:
        from annotation.models import Dataset

        dataset = Dataset.objects.get(name=args.dataset)
    else:
        dataset = ensure_dataset(args.pairs)
    if not args.reuse:
        started = time.perf_counter()
        store(dataset, args.flagged)
        print(f"stored suspicion, members and verdicts in {time.perf_counter() - started:.1f} s")
    from review.models import ReviewAssignment

    ReviewAssignment.objects.filter(pair__dataset=dataset).delete()  # a rerun's queue starts empty
    record_count(dataset)
    print(f"{'page (pair list)':<52} {'first ms':>9} {'p50 ms':>7} {'p95 ms':>7} {'CPU ms':>7}")
    for query, label, first, p50, p95, cpu in time_pages(dataset, args.repeat):
        print(f"{label:<52} {first:>9.0f} {p50:>7.0f} {p95:>7.0f} {cpu:>7.0f}   {query}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
