"""Decision benchmark: a bulk decision over a whole large dataset and its undo (review/decisions.py).

    python bench/decisions.py [--pairs 1000000] [--dataset NAME] [--keep]

Without --dataset it creates --pairs COIG-P-shaped pairs directly in SQL (bench/review.py's generator). It then
times, in this process: the confirmation's count (`preview`) over every pair, a keep of every pair (one locking
INSERT … SELECT of the prior states and one UPDATE … FROM them), its undo (one UPDATE … FROM), a discard of one
domain's list (`domain=math`), and a single-pair decision as the pair page makes it; with the load average (the
machine is shared) and the PairDecision rows written. The dataset is removed afterwards unless --keep.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project first: bench/review.py must not shadow the `review` app.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")


def timed(label, fn):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<46} {seconds:8.2f} s   load {os.getloadavg()[0]:.1f}", flush=True)
    return result, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--dataset")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotation.models import Dataset, Pair
    from review import decisions
    from review.models import PairDecision

    print(f"{platform.node()} · {os.cpu_count()} CPUs · load {os.getloadavg()}", flush=True)
    if args.dataset:
        dataset = Dataset.objects.get(name=args.dataset)
    else:
        import importlib.util

        # bench/review.py's generator: pairs written in SQL, then VACUUM ANALYZE.
        spec = importlib.util.spec_from_file_location("bench_review", ROOT / "bench" / "review.py")
        bench_review = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench_review)
        create = bench_review.create_dataset

        dataset, _seconds = timed(f"create {args.pairs:,} pairs", lambda: create(args.pairs))
    user, _created = get_user_model().objects.get_or_create(username="bench-decisions")
    try:
        pairs = Pair.objects.filter(dataset=dataset)
        n = pairs.count()
        print(f"dataset {dataset.name!r}: {n:,} pairs", flush=True)
        timed("preview (count what a keep changes)", lambda: decisions.preview(dataset, pairs, "keep"))
        batch, seconds = timed("keep every pair", lambda: decisions.decide(dataset, pairs, "keep", user, "bench"))
        print(f"   changed {batch.changed:,} pairs ({batch.changed / seconds:,.0f} pairs/s); "
              f"{PairDecision.objects.filter(batch=batch).count():,} prior states recorded", flush=True)
        undone, seconds = timed("undo it", lambda: decisions.undo(batch, user))
        print(f"   restored {undone.restored:,} pairs ({undone.restored / seconds:,.0f} pairs/s)", flush=True)
        math, _s = timed("discard the list domain=math",
                         lambda: decisions.decide_list(dataset, "domain=math", "discard", user, "bench"))
        print(f"   changed {math.changed:,} pairs", flush=True)
        timed("undo it", lambda: decisions.undo(math, user))
        one = pairs.order_by("pk").values_list("pk", flat=True)[n // 2]
        timed("swap one pair (the pair page)", lambda: decisions.decide(dataset, [one], "swap", user, "bench"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('review_pairdecision'))")
            print(f"review_pairdecision now takes {cursor.fetchone()[0]}", flush=True)
    finally:
        if not args.keep and not args.dataset:
            Dataset.objects.filter(pk=dataset.pk).delete()


if __name__ == "__main__":
    main()
