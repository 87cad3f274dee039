"""The audit lists of issue 12 at a million pairs: server time of the pair list pages that read the
suspicion order, the defect rules' stored members (`flagged=`) and the pairwise verdicts.

    .venv/bin/python bench/audit_lists.py [--pairs 1000000] [--repeat 20] [--flagged 0.25]

The pairs come from bench/export.py's SQL builder (reused when a dataset of that size exists). On them it
stores what the pages read as the jobs would leave it: a suspicion score per pair (PairSuspicion, random,
as the quality-count job stores them), stored members of the defect rules for `--flagged` of the pairs
(SelectionMember, spread over the six rules, some pairs in two), and 500 pairwise verdicts, 30 against the
label. Then it requests each page through Django's test client as a superuser (no network) and reports the
first request and p50 / p95 over --repeat more.
"""

import argparse
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


def time_pages(dataset, repeat):
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    user, _ = get_user_model().objects.get_or_create(username="bench-lists", defaults={"is_superuser": True,
                                                                                        "is_staff": True})
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(user)
    base = reverse("pair-list", args=[dataset.pk])
    urls = [("", "pair list, id order (for comparison)"),
            ("?order=suspicious", "most suspicious first"),
            ("?flagged=no&order=suspicious", "no defect rule flags it, most suspicious first"),
            ("?flagged=yes&order=suspicious", "a defect rule flags it, most suspicious first"),
            ("?flagged=no", "no defect rule flags it, id order"),
            ("?view=pairwise-disagrees", "pairwise judge disagrees"),
            ("?view=pairwise-disagrees&order=suspicious", "pairwise judge disagrees, most suspicious first")]
    rows = []
    for query, label in urls:
        times = []
        for _ in range(repeat + 1):
            started = time.perf_counter()
            response = client.get(base + query)
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                sys.exit(f"{query}: HTTP {response.status_code}")
        rest = sorted(times[1:])
        rows.append((query, label, times[0], statistics.median(rest), rest[max(0, round(0.95 * len(rest)) - 1)]))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--flagged", type=float, default=0.25, help="share of pairs a defect rule flags")
    args = parser.parse_args()
    dataset = ensure_dataset(args.pairs)
    started = time.perf_counter()
    store(dataset, args.flagged)
    print(f"stored suspicion, members and verdicts in {time.perf_counter() - started:.1f} s")
    print(f"{'page (pair list)':<48} {'first ms':>9} {'p50 ms':>7} {'p95 ms':>7}")
    for query, label, first, p50, p95 in time_pages(dataset, args.repeat):
        print(f"{label:<48} {first:>9.0f} {p50:>7.0f} {p95:>7.0f}   {query}")


if __name__ == "__main__":
    main()
