"""Benchmark: the pair list's search (review/search.py) on the COIG-P-shaped benchmark dataset.

    .venv/bin/python bench/search.py [--pairs 1000000] [--seed 1] [--repeat 20] [--keep] [--dataset NAME]
                                     [--reindex] [--no-pages]

Without --dataset it imports bench/generate.py's file (as bench/ingest.py does, without the
near-duplicate check) into the dataset "bench-search-<pairs>", plants two words in the responses by
SQL (光合作用 in 0.1 % of them, 机器学习 in 1 %, 量子隧穿效应 in 20 from the middle on: the generator's
vocabulary has no rare words), and
times the search pages while the texts are not yet indexed (every query walks the pairs); then it
runs the search-index job that follows every import, timed, and times the pages again. With --keep
the dataset stays, and the next run with --keep reuses it (and times only what is left to time).
--dataset NAME times an existing dataset as it is (indexing it first if it is not); --reindex drops
its search filters first, to time the search-index job again.

Each page is the first page (50 rows) of `/datasets/<id>/pairs/?…` requested --repeat times with
Django's test client: server time, queries plus template. Prints p50/p95, the rows shown, the plan
(index or walk) and the pairs a walk read. Uses DATABASE_URL's database.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

QUERIES = [
    ("no search", ""),
    ("common 4 chars (人工智能)", "q=人工智能"),
    ("common 3 chars, bench/pages.py (请解释)", "q=请解释"),
    ("common 2 chars, bench/pages.py (代码)", "q=代码"),
    ("1 % of responses, 4 chars (机器学习)", "q=机器学习"),
    ("20 responses (量子隧穿效应, planted)", "q=量子隧穿效应"),
    ("0.1 % of responses, 4 chars (光合作用)", "q=光合作用"),
    ("one prompt, 8 chars (编号4711）)", "q=编号4711）"),
    ("absent, common trigrams (不存在的词)", "q=不存在的词"),
    ("absent, rare trigrams (宫保鸡丁的做法)", "q=宫保鸡丁的做法"),
    ("absent, 2 chars", "q=龘龘"),
    ("1 char", "q=光"),
    ("Latin, case-insensitive (PYTHON)", "q=PYTHON"),
    ("search + domain + status", "q=机器学习&domain=math&status=pending"),
]


def time_page(client, url, repeat):
    client.get(url)  # warm-up: the first request of a process compiles templates
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    times.sort()
    return statistics.median(times), times[max(0, round(0.95 * len(times)) - 1)], response


def import_dataset(name, pairs, seed):
    from generate import import_generated

    from annotation.models import Dataset

    dataset = Dataset.objects.create(name=name)
    _job, seconds = import_generated(dataset, pairs, seed)
    print(f"imported {pairs:,} pairs in {seconds:.1f} s (load average {os.getloadavg()[0]:.1f})")
    plant(dataset)
    return dataset


def plant(dataset):
    from django.db import connection

    with connection.cursor() as c:
        c.execute("UPDATE annotation_response SET text = '光合作用' || text WHERE dataset_id = %s AND id %% 1000 = 0",
                  [dataset.pk])
        c.execute("UPDATE annotation_response SET text = text || '机器学习' WHERE dataset_id = %s AND id %% 100 = 1",
                  [dataset.pk])
        c.execute("UPDATE annotation_response SET text = text || '量子隧穿效应' WHERE id IN (SELECT id FROM "
                  "annotation_response WHERE dataset_id = %s ORDER BY id LIMIT 20 OFFSET (SELECT count(*) / 2 "
                  "FROM annotation_response WHERE dataset_id = %s))", [dataset.pk, dataset.pk])
        # What the search-index job does first, seconds after every import: fresh planner statistics
        # (this server runs with autovacuum off, so nothing else would refresh them).
        c.execute("ANALYZE annotation_prompt, annotation_response, annotation_pair")


def index(dataset):
    """Run the dataset's search-index job in this process; print wall time, the CPU seconds of this
    process and of its PostgreSQL backend (/proc), and the load average before and after."""
    from ingest import backend_cpu_seconds, cpu_seconds, peak_rss_mb

    from annotation import jobs
    from annotation.models import Job
    from review import search

    job = Job.objects.filter(dataset=dataset, kind=search.KIND, status=Job.Status.PENDING).first()
    job = job or search.start(dataset, None)
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        backend = c.fetchone()[0]
    # The job reads ahead on a second connection (a thread): its backend's CPU is read after each COPY.
    readers, read_rows = {}, search._read_rows

    def timed_read_rows(*args):
        with connection.cursor() as c:
            c.execute("SELECT pg_backend_pid()")
            pid = c.fetchone()[0]
        before = backend_cpu_seconds(pid)
        rows = read_rows(*args)
        if pid != backend:
            readers[pid] = readers.get(pid, 0) + backend_cpu_seconds(pid) - before
        return rows

    search._read_rows = timed_read_rows
    load = os.getloadavg()[0]
    started, cpu, backend_cpu = time.perf_counter(), cpu_seconds(), backend_cpu_seconds(backend)
    try:
        jobs.execute(job.pk)
    finally:
        search._read_rows = read_rows
    job.refresh_from_db()
    reader_cpu = sum(readers.values())
    print(f"search-index job ({job.status}): {job.done:,} texts in {time.perf_counter() - started:.1f} s; CPU: "
          f"this process {cpu_seconds() - cpu:.1f} s, PostgreSQL backends {backend_cpu_seconds(backend) - backend_cpu:.1f} s "
          f"(job) + {reader_cpu:.1f} s (read-ahead); peak RSS {peak_rss_mb():.0f} MB "
          f"(load average {load:.1f} → {os.getloadavg()[0]:.1f})")


def time_pages(client, dataset, repeat, title):
    from django.http import QueryDict

    from annotation.models import Pair
    from review import search
    from review.selections import select_pairs

    print(f"\n{title} (load average {os.getloadavg()[0]:.1f})")
    print(f"{'query':45} {'p50 ms':>8} {'p95 ms':>8} {'rows':>5}  plan")
    base = f"/datasets/{dataset.pk}/pairs/"
    middle = Pair.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True)[
        Pair.objects.filter(dataset=dataset).count() // 2]
    queries = QUERIES + [("keyset page in the middle", f"after={middle}"),
                         ("search, keyset page in the middle", f"q=人工智能&after={middle}")]
    for label, params in queries:
        url = f"{base}?{'&'.join(quote(p, safe='=') for p in params.split('&'))}" if params else base
        p50, p95, response = time_page(client, url, repeat)
        rows = response.content.count(b"data-pair=")
        plan = "–"
        query = QueryDict(params)
        if query.get("q"):
            _, form = select_pairs(dataset, query)
            found = search.page(form.pairs(dataset, search_text=False), dataset, query["q"], query.get("after"))
            plan = ("index" if found.indexed else f"walk (≤ {found.walked:,} pairs)" if found.walked
                    else "walk (to the end)")
        print(f"{label:45} {p50:8.1f} {p95:8.1f} {rows:5d}  {plan}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the dataset (and reuse it next time)")
    parser.add_argument("--dataset", help="time this existing dataset instead")
    parser.add_argument("--reindex", action="store_true", help="drop the dataset's search filters and index it again")
    parser.add_argument("--no-pages", action="store_true", help="time only the search-index job")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from annotation.models import Dataset
    from review import search

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user, _ = get_user_model().objects.get_or_create(username="bench-search", defaults={"is_superuser": True})
    client = Client()
    client.force_login(user)
    print(f"machine: {os.cpu_count()} cores, PostgreSQL {connection.cursor().connection.info.server_version}")
    name = args.dataset or f"bench-search-{args.pairs}"
    dataset = Dataset.objects.filter(name=name).first()
    if args.dataset and dataset is None:
        sys.exit(f"no dataset is called {name!r}")
    if dataset is not None and not args.keep and not args.dataset:
        from ingest import drop_dataset

        drop_dataset(dataset.pk)
        dataset = None
    if dataset is None:
        dataset = import_dataset(name, args.pairs, args.seed)
    if args.reindex:
        from review.models import SearchSegment

        SearchSegment.objects.filter(dataset=dataset).delete()
    try:
        if not search.is_indexed(dataset):
            if not args.no_pages:
                time_pages(client, dataset, args.repeat, "not yet indexed: every query walks")
            index(dataset)
        if not args.no_pages:
            time_pages(client, dataset, args.repeat, "indexed")
    finally:
        if not args.keep and not args.dataset:
            from ingest import drop_dataset

            drop_dataset(dataset.pk)


if __name__ == "__main__":
    main()
