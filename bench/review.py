"""Review-queue benchmark: next-item and submit server time with reviewers working at once.

    python bench/review.py [--pairs 1000000] [--reviewers 4] [--items 150] [--overlap 1] [--query QS]
                           [--reviewed-share 0.02] [--overview 20] [--dataset NAME] [--keep]

Without --dataset it creates a dataset of --pairs COIG-P-shaped pairs directly in SQL (prompts in the six
domains, five responses of ~0.7 KB each per prompt, the ten pairs between them), which takes about a
minute per million pairs instead of the import's several. Then --reviewers processes (one database
connection each, as gunicorn workers would have) each log in as a reviewer of their own and review
--items pairs from the queue exactly as the browser does with htmx: GET the queue fragment (next item),
POST the verdict (which saves it and returns the next pair's fragment); after every fifth verdict also a
reload (the next-item request alone) and the progress line the page fetches after verdicts (its list
size is cached for a minute: one request a minute per queue pays for counting the list). Each
process's first request (a warm-up: imports, template compilation, a new connection) is not timed.
Times are server time: the
request through Django's whole middleware stack, views, SQL and templates, in-process (no network). It
prints p50/p95/max per request kind, and the load average (others share the CPU).
Then it times the dataset's overview page (review numbers counted live, the rest from its snapshot).
The dataset, its reviews and the benchmark users are removed afterwards unless --keep.
"""

import argparse
import multiprocessing
import os
import platform
import queue
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

DOMAINS = ["chat"] * 7 + ["math"] * 2 + ["logic", "code", "novel", "role"]  # roughly COIG-P's mix
RESPONSES_PER_PROMPT = 5  # → 10 pairs per prompt


def create_dataset(n_pairs):
    from django.db import connection, transaction

    from annotation.models import Dataset

    prompts = max(1, n_pairs // 10)
    dataset = Dataset.objects.create(name=f"bench review {n_pairs} pairs {time.strftime('%Y-%m-%d %H:%M:%S')}")
    domains = "ARRAY[" + ",".join(f"'{d}'" for d in DOMAINS) + "]"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO annotation_prompt (dataset_id, domain, messages, query, content_hash, source, meta, created_at)
                SELECT %(ds)s, ({domains})[1 + i %% {len(DOMAINS)}],
                       jsonb_build_array(jsonb_build_object('role', 'system', 'content', '你是一个乐于助人的助手。'),
                                         jsonb_build_object('role', 'user', 'content', '第' || i || '个问题：请详细解释一下这个概念，并举例说明。')),
                       '第' || i || '个问题：请详细解释一下这个概念，并举例说明。', md5('bench' || %(ds)s || ':' || i)::uuid,
                       'bench', '{{}}'::jsonb, now()
                FROM generate_series(1, %(n)s) i""",
            {"ds": dataset.pk, "n": prompts},
        )
        cursor.execute(
            """INSERT INTO annotation_response (dataset_id, prompt_id, model, text, content_hash, created_at)
               SELECT %(ds)s, p.id, 'model-' || r, '## 回答 ' || r || E'\n\n' || repeat('首先，这个问题涉及多个方面的因素；其次，我们需要结合具体情况来分析。', 6)
                      || E'\n\n```python\nprint(' || p.id || ')\n```\n\n$$x^2 + ' || r || '$$',
                      md5(p.id || ':' || r)::uuid, now()
               FROM annotation_prompt p, generate_series(1, %(k)s) r WHERE p.dataset_id = %(ds)s""",
            {"ds": dataset.pk, "k": RESPONSES_PER_PROMPT},
        )
        cursor.execute(
            """INSERT INTO annotation_pair (dataset_id, prompt_id, domain, chosen_id, rejected_id, origin, status,
                                            status_reason, created_at)
               SELECT %(ds)s, a.prompt_id, p.domain, a.id, b.id, 'imported', 'pending', '', now()
               FROM annotation_response a JOIN annotation_response b ON b.prompt_id = a.prompt_id AND a.id < b.id
               JOIN annotation_prompt p ON p.id = a.prompt_id
               WHERE a.dataset_id = %(ds)s ORDER BY a.prompt_id, a.id, b.id""",
            {"ds": dataset.pk},
        )
    # As autovacuum would leave them before anyone reviews: otherwise the run competes with autovacuum
    # working through the fresh million rows, and its reads set their hint bits.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) annotation_prompt, annotation_response, annotation_pair")
    return dataset


def reviewer_process(args):
    index, dataset_pk, items, query, think, results = args
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    user = get_user_model().objects.get(username=f"bench-reviewer-{index}")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    queue_url = reverse("review-queue", args=[dataset_pk]) + (f"?{query}" if query else "")
    submit_url = reverse("review-submit", args=[dataset_pk])
    progress_url = reverse("review-progress", args=[dataset_pk]) + (f"?{query}" if query else "")
    import re

    next_times, submit_times, progress_times = [], [], []
    # Not timed: a process's first request imports modules, compiles templates and opens its connection,
    # which a running gunicorn worker did long ago.
    response = client.get(queue_url, HTTP_HX_REQUEST="true")
    for i in range(items):
        time.sleep(think)  # a reviewer reads the pair before deciding
        pair = re.search(rb'data-pair="(\d*)"', response.content).group(1).decode()
        if not pair:
            break
        t0 = time.perf_counter()
        verdict = {"pair": pair, "queue": query, "verdict": "ab"[i % 2], "better_correct": "on", "prompt_ok": "on"}
        response = client.post(submit_url, verdict, HTTP_HX_REQUEST="true")
        submit_times.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise SystemExit(f"submit answered {response.status_code}")
        if i % 5 == 4:  # a reload now and then: the next-item request alone, and the progress line
            t0 = time.perf_counter()
            response = client.get(queue_url, HTTP_HX_REQUEST="true")
            next_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.get(progress_url, HTTP_HX_REQUEST="true")
            progress_times.append(time.perf_counter() - t0)
    results.put((index, next_times, submit_times, progress_times))


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--reviewers", type=int, default=4)
    parser.add_argument("--items", type=int, default=150, help="verdicts per reviewer")
    parser.add_argument("--overlap", type=int, default=1, help="reviewers per pair (k)")
    parser.add_argument("--query", default="", help="pair list parameters, e.g. domain=math")
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds each reviewer waits before a verdict (0: back to back, the worst case)")
    parser.add_argument("--reviewed-share", type=float, default=0.0,
                        help="first add reviews by a background reviewer on this share of the pairs "
                             "(bench/pages.py uses 0.02): what the progress line counts")
    parser.add_argument("--overview", type=int, default=20, metavar="N",
                        help="afterwards, time the overview page N times (its review numbers are live; 0: skip)")
    parser.add_argument("--dataset", help="use this existing dataset instead of creating one")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotation.models import Dataset, Membership, Role
    from review.models import ReviewSettings

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL "
          f"{connection.cursor().connection.info.server_version}, load average {os.getloadavg()[0]:.1f} "
          "(others share this CPU: the load average says how much)")
    started = time.perf_counter()
    created = args.dataset is None
    dataset = Dataset.objects.get(name=args.dataset) if args.dataset else create_dataset(args.pairs)
    n_pairs = dataset.pairs.count()
    print(f"dataset {dataset.name!r}: {n_pairs:,} pairs ({'created' if created else 'existing'} in "
          f"{time.perf_counter() - started:.1f} s)")
    ReviewSettings.objects.update_or_create(dataset=dataset, defaults={"reviews_per_pair": args.overlap})
    users = []
    for i in range(args.reviewers):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-reviewer-{i}")
        Membership.objects.get_or_create(dataset=dataset, user=user, defaults={"role": Role.REVIEWER})
        users.append(user)
    if args.reviewed_share > 0:
        users.append(add_background_reviews(dataset, args.reviewed_share))
    connection.close()

    results = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=reviewer_process,
                                         args=((i, dataset.pk, args.items, args.query, args.think, results),))
                 for i in range(args.reviewers)]
    started = time.perf_counter()
    for p in processes:
        p.start()
    collected = []
    while len(collected) < len(processes):
        try:
            collected.append(results.get(timeout=5))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes):
                cleanup(dataset, users, drop=created and not args.keep)
                sys.exit("a reviewer process failed (its traceback is above)")
    for p in processes:
        p.join()
    elapsed = time.perf_counter() - started
    next_times = [t for _i, n, _s, _p in collected for t in n]
    submit_times = [t for _i, _n, s, _p in collected for t in s]
    progress_times = [t for _i, _n, _s, p in collected for t in p]
    print(f"{args.reviewers} reviewers at once, think time {args.think} s, overlap {args.overlap}, "
          f"list {args.query or 'all pairs'}: "
          f"{len(submit_times)} verdicts in {elapsed:.1f} s ({len(submit_times) / elapsed:.1f} verdicts/s)")
    for name, values in (("next item", next_times), ("submit (+ next item)", submit_times),
                         ("progress line", progress_times)):
        ms = [v * 1000 for v in values]
        print(f"  {name:22s} n={len(ms):5d}  p50 {statistics.median(ms):6.1f} ms  p95 {percentile(ms, 0.95):6.1f} ms"
              f"  max {max(ms):6.1f} ms")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.overview:
        time_overview(dataset, users[0], args.overview)
    cleanup(dataset, users, drop=created and not args.keep)


def time_overview(dataset, user, repeat):
    """The overview page with its review numbers counted live (the rest from its snapshot, computed first)."""
    from django.test import Client
    from django.urls import reverse

    from review.dashboards import refresh_one

    started = time.perf_counter()
    refresh_one(dataset, "overview")
    print(f"overview snapshot computed in {time.perf_counter() - started:.1f} s")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    url = reverse("dataset-overview", args=[dataset.pk])
    client.get(url)  # warm-up, not timed
    ms = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        if client.get(url).status_code != 200:
            raise SystemExit("the overview did not answer 200")
        ms.append((time.perf_counter() - t0) * 1000)
    print(f"  {'overview page':22s} n={len(ms):5d}  p50 {statistics.median(ms):6.1f} ms  "
          f"p95 {percentile(ms, 0.95):6.1f} ms  max {max(ms):6.1f} ms  (load average {os.getloadavg()[0]:.1f})")


def add_background_reviews(dataset, share):
    """Reviews by one more user on every (1/share)-th pair, as the queue finds them in a dataset under review."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    user, _ = get_user_model().objects.get_or_create(username="bench-background-reviewer")
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO review_review (pair_id, reviewer_id, verdict, better_correct, prompt_ok, note, created_at,
                                          updated_at, dataset_id, domain)
               SELECT id, %s, 'chosen_better', true, true, '', now(), now(), dataset_id, domain FROM annotation_pair
               WHERE dataset_id = %s AND id %% %s = 0 ON CONFLICT DO NOTHING""",
            [user.pk, dataset.pk, max(1, round(1 / share))])
        print(f"background reviews on {cursor.rowcount:,} pairs")
        cursor.execute("ANALYZE review_review")
    return user


def cleanup(dataset, users, drop):
    from django.db import connection, transaction

    ids = [u.pk for u in users]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM review_reviewevent WHERE actor_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM review_review WHERE reviewer_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM review_reviewassignment WHERE reviewer_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM review_reviewsettings WHERE dataset_id = %s", [dataset.pk])
        cursor.execute("DELETE FROM annotation_membership WHERE user_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM auth_user WHERE id = ANY(%s)", [ids])
        if drop:  # the overview's snapshot (time_overview)
            cursor.execute("DELETE FROM review_dashboardsnapshot WHERE dataset_id = %s", [dataset.pk])
    if drop:
        from ingest import drop_dataset

        drop_dataset(dataset.pk)


if __name__ == "__main__":
    main()
