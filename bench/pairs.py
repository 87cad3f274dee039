"""Benchmark: pair building and the raw-judgements export on a synthetic COIG-P-shaped dataset.

    .venv/bin/python bench/pairs.py [--prompts 5000] [--responses 12] [--judges 4] [--chunk-size 500]

Generates the data inside PostgreSQL (generate_series), then times: a first build (threshold 2,
all pairs), a rebuild with nothing changed (every pair kept), a rebuild after rescoring 10% of
the judgements, and the JSONL export of every judgement to /dev/null with the process's peak
memory. The dataset is deleted at the end. Uses DATABASE_URL's database.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from annotation import jobs  # noqa: E402
from annotation.judgement_export import judgement_lines  # noqa: E402
from annotation.models import Dataset, Judge, Pair  # noqa: E402
from annotation.pairing import BuildParams, start_build  # noqa: E402


def generate(dataset, prompts, responses, judges):
    judge_ids = [Judge.objects.get_or_create(name=f"bench-judge-{i}")[0].pk for i in range(judges)]
    domains = "ARRAY['chat','code','math','logic','novel','role']"
    with connection.cursor() as c:
        c.execute(
            f"""INSERT INTO annotation_prompt (dataset_id, domain, messages, query, content_hash, source, meta,
                                               created_at)
                SELECT %s, ({domains})[1 + g %% 6], jsonb_build_array(jsonb_build_object('role', 'user',
                       'content', '问题 ' || g)), '问题 ' || g, md5(%s || ':' || g)::uuid, 'bench', '{{}}', now()
                FROM generate_series(1, %s) g""",
            [dataset.pk, dataset.name, prompts],
        )
        c.execute(
            """INSERT INTO annotation_response (dataset_id, prompt_id, model, text, content_hash, created_at)
               SELECT %s, p.id, 'model-' || g, '回答 ' || p.id || '-' || g, md5(p.id || ':' || g)::uuid, now()
               FROM annotation_prompt p CROSS JOIN generate_series(1, %s) g WHERE p.dataset_id = %s""",
            [dataset.pk, responses, dataset.pk],
        )
        # Each response has a latent quality; judges add their own bias and noise, clipped to 1-10.
        c.execute(
            """INSERT INTO annotation_judgement (response_id, judge_id, rubric_id, score, analysis, raw_output, status,
                                                 input_tokens, output_tokens, cost, created_at)
               SELECT r.id, j, NULL, least(10, greatest(1, round((q.v + (j %% 3) - 1 + random() * 2)::numeric, 1))),
                      '分析', '', 'ok', 800, 120, 0.0012, now()
               FROM annotation_response r
               CROSS JOIN LATERAL (SELECT 1 + (hashtext(r.id::text) & 1023) / 1023.0 * 7 AS v) q
               CROSS JOIN unnest(%s::bigint[]) j
               WHERE r.dataset_id = %s""",
            [judge_ids, dataset.pk],
        )
        c.execute("ANALYZE annotation_prompt; ANALYZE annotation_response; ANALYZE annotation_judgement;")


def timed_build(dataset, chunk_size, label):
    job = start_build(dataset, BuildParams(), enqueue=False, chunk_size=chunk_size)
    start = time.perf_counter()
    status = jobs.execute(job.pk)
    elapsed = time.perf_counter() - start
    job.refresh_from_db()
    assert status == "succeeded", job.error
    c = job.counts
    print(f"{label}: {elapsed:.2f} s, {job.total / elapsed:,.0f} prompts/s; created {c['pairs_created']:,}, "
          f"kept {c['pairs_updated']:,}, withdrawn {c['pairs_withdrawn']:,}, restored {c['pairs_restored']:,}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=5000)
    parser.add_argument("--responses", type=int, default=12)
    parser.add_argument("--judges", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=500)
    args = parser.parse_args()
    dataset = Dataset.objects.create(name=f"bench-pairs-{os.getpid()}-{int(time.time())}")
    try:
        start = time.perf_counter()
        generate(dataset, args.prompts, args.responses, args.judges)
        n = args.prompts * args.responses * args.judges
        print(f"generated {args.prompts:,} prompts, {args.prompts * args.responses:,} responses, {n:,} judgements "
              f"in {time.perf_counter() - start:.1f} s")
        timed_build(dataset, args.chunk_size, "first build")
        timed_build(dataset, args.chunk_size, "rebuild, nothing changed")
        with connection.cursor() as c:
            c.execute(
                """UPDATE annotation_judgement j SET score = least(10, greatest(1, 11 - j.score))
                   FROM annotation_response r WHERE r.id = j.response_id AND r.dataset_id = %s AND j.id %% 10 = 0""",
                [dataset.pk],
            )
        timed_build(dataset, args.chunk_size, "rebuild after rescoring 10% of judgements")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        size = lines = 0
        with open(os.devnull, "wb") as out:
            for line in judgement_lines(dataset):
                out.write(line)
                size += len(line)
                lines += 1
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"export: {lines:,} judgements, {size / 1e6:.1f} MB in {elapsed:.2f} s ({lines / elapsed:,.0f} lines/s); "
              f"peak RSS {before / 1024:.0f} MiB before, {after / 1024:.0f} MiB after")
        print(f"pairs: {Pair.objects.filter(dataset=dataset).count():,}")
    finally:
        with connection.cursor() as c:
            c.execute("DELETE FROM annotation_pair WHERE dataset_id = %s", [dataset.pk])
            c.execute("DELETE FROM annotation_pairbuildrun WHERE dataset_id = %s", [dataset.pk])
            c.execute("DELETE FROM annotation_judgement j USING annotation_response r "
                      "WHERE r.id = j.response_id AND r.dataset_id = %s", [dataset.pk])
            c.execute("DELETE FROM annotation_response WHERE dataset_id = %s", [dataset.pk])
            c.execute("DELETE FROM annotation_prompt WHERE dataset_id = %s", [dataset.pk])
            c.execute("DELETE FROM annotation_job WHERE dataset_id = %s", [dataset.pk])
        dataset.delete()


if __name__ == "__main__":
    main()
