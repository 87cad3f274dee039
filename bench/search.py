"""Benchmark: the pair list's substring search and keyset pagination on a synthetic Chinese dataset.

    .venv/bin/python bench/search.py [--pairs 100000] [--repeat 20] [--keep]

Generates `--pairs` pairs inside PostgreSQL (one prompt and two responses each, ~40 and ~200 random
CJK characters; 1 % of the responses contain 光合作用, 10 % contain 机器学习, 1 % of the prompts
contain 红楼梦), then requests the first page of `/datasets/<id>/pairs/` with Django's test client
(server time: query and template) for a set of queries, and a deep keyset page. Prints p50/p95 per
query and whether the plan uses the trigram indexes. The dataset is deleted unless --keep. Uses
DATABASE_URL's database.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import QueryDict  # noqa: E402
from django.test import Client  # noqa: E402

from annotation.models import Dataset, Pair  # noqa: E402
from review.selections import select_pairs  # noqa: E402

QUERIES = [
    ("no filter", ""),
    ("rare word in responses, 4 chars (1%)", "q=光合作用"),
    ("common word in responses, 4 chars (10%)", "q=机器学习"),
    ("word in prompts, 3 chars (1%)", "q=红楼梦"),
    ("absent, 5 chars", "q=不存在的词"),
    ("1 char", "q=光"),
    ("2 chars", "q=光合"),
    ("2 chars, absent (scans the dataset)", "q=龘龘"),
    ("Latin, case-insensitive", "q=MACHINE"),
    ("search + domain + status", "q=机器学习&domain=math&status=pending"),
    ("gap range", "gap_min=1&gap_max=2"),
]

# Correlated with the outer row ({row} * 0) so that PostgreSQL draws a new text for every row instead
# of computing the subquery once.
# Characters drawn from 3,000 CJK code points with a skew (random()^3) so that, as in real text, a few
# hundred characters make up most of it.
_TEXT = ("array_to_string(ARRAY(SELECT chr(19968 + (random() ^ 3 * 3000)::int) "
         "FROM generate_series(1, {n} + {row} * 0)), '')")


def drop_trigram_indexes():
    with connection.cursor() as c:
        c.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE '%%_trgm'")
        found = c.fetchall()
        for name, _definition in found:
            c.execute(f"DROP INDEX {name}")
    return found


def create_indexes(found):
    with connection.cursor() as c:
        c.execute("SET maintenance_work_mem = '512MB'")
        for _name, definition in found:
            c.execute(definition)


def generate(dataset, n):
    with connection.cursor() as c:
        c.execute(
            f"""INSERT INTO annotation_prompt (dataset_id, domain, messages, query, content_hash, source, meta,
                                               created_at)
                SELECT %s, (ARRAY['chat','code','math','logic','novel','role'])[1 + g %% 6], '[]'::jsonb,
                       CASE WHEN g %% 100 = 0 THEN '关于红楼梦：' ELSE '' END || {_TEXT.format(n=40, row='g')},
                       md5(%s || ':' || g)::uuid, 'bench', '{{}}', now()
                FROM generate_series(1, %s) g""",
            [dataset.pk, dataset.name, n],
        )
        c.execute("UPDATE annotation_prompt SET messages = jsonb_build_array(jsonb_build_object('role', 'user', "
                  "'content', query)) WHERE dataset_id = %s", [dataset.pk])
        c.execute(
            f"""INSERT INTO annotation_response (dataset_id, prompt_id, model, text, content_hash, created_at)
                SELECT %s, p.id, 'model-' || g,
                       CASE WHEN (p.id * 2 + g) %% 100 = 0 THEN '光合作用' ELSE '' END
                       || CASE WHEN (p.id * 2 + g) %% 10 = 1 THEN '机器学习 Machine learning ' ELSE '' END
                       || {_TEXT.format(n=200, row='p.id')}, md5(p.id || ':' || g)::uuid, now()
                FROM annotation_prompt p CROSS JOIN generate_series(1, 2) g WHERE p.dataset_id = %s""",
            [dataset.pk, dataset.pk],
        )
        c.execute(
            """INSERT INTO annotation_pair (dataset_id, prompt_id, domain, chosen_id, rejected_id, origin,
                                            chosen_score, rejected_score, status, status_reason, created_at)
               SELECT %s, r1.prompt_id, p.domain, r1.id, r2.id, 'imported', 5 + (r1.id %% 5), 4 + (r2.id %% 3) * 0.5,
                      (ARRAY['pending','kept','filtered'])[1 + r1.id %% 3], '', now()
               FROM annotation_response r1 JOIN annotation_response r2 ON r2.prompt_id = r1.prompt_id AND r2.id > r1.id
               JOIN annotation_prompt p ON p.id = r1.prompt_id WHERE r1.dataset_id = %s""",
            [dataset.pk, dataset.pk],
        )
        c.execute("ANALYZE annotation_prompt; ANALYZE annotation_response; ANALYZE annotation_pair")


def uses_trigram_index(dataset, params):
    pairs, _ = select_pairs(dataset, QueryDict(params))
    sql, sql_params = pairs[:51].query.sql_with_params()
    with connection.cursor() as c:
        c.execute("EXPLAIN " + sql, sql_params)
        plan = "\n".join(row[0] for row in c.fetchall())
    return "_trgm" in plan


def time_page(client, url, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    times.sort()
    return statistics.median(times), times[max(0, round(0.95 * len(times)) - 1)], response


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the dataset (and reuse it next time)")
    args = parser.parse_args()

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    name = f"bench-search-{args.pairs}"
    user, _ = get_user_model().objects.get_or_create(username="bench-search", defaults={"is_superuser": True})
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None or not Pair.objects.filter(dataset=dataset).exists() or not args.keep:
        Dataset.objects.filter(name=name).delete()
        dataset = Dataset.objects.create(name=name)
        generate_with_indexes(dataset, args.pairs)
    with connection.cursor() as c:
        c.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_trgm'")
        print("trigram indexes:", ", ".join(row[0] for row in c.fetchall()) or "none (pg_trgm missing)")

    client = Client()
    client.force_login(user)
    base = f"/datasets/{dataset.pk}/pairs/"
    print(f"{'query':45} {'p50 ms':>8} {'p95 ms':>8} {'rows':>5}  trigram index")
    try:
        for label, params in QUERIES:
            p50, p95, response = time_page(client, f"{base}?{params}", args.repeat)
            rows = response.content.count(b"data-pair=")
            print(f"{label:45} {p50:8.1f} {p95:8.1f} {rows:5d}  {uses_trigram_index(dataset, params)}")
        middle = Pair.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True)[args.pairs // 2]
        p50, p95, _ = time_page(client, f"{base}?after={middle}", args.repeat)
        print(f"{'keyset page in the middle (after=…)':45} {p50:8.1f} {p95:8.1f}")
        p50, p95, _ = time_page(client, f"{base}?q=机器学习&after={middle}", args.repeat)
        print(f"{'search, keyset page in the middle':45} {p50:8.1f} {p95:8.1f}")
    finally:
        if not args.keep:
            dataset.delete()
            user.delete()


def generate_with_indexes(dataset, pairs):
    # Rows first, trigram indexes after: what is timed here is search, not import; CREATE INDEX is timed.
    indexes = drop_trigram_indexes()
    started = time.perf_counter()
    try:
        generate(dataset, pairs)
    finally:
        print(f"generated {Pair.objects.filter(dataset=dataset).count():,} pairs in "
              f"{time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        create_indexes(indexes)
        with connection.cursor() as c:
            c.execute("ANALYZE annotation_prompt; ANALYZE annotation_response")
        print(f"trigram indexes built in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
