"""Near-duplicate benchmark: run the near-duplicate job on an existing dataset and report its cost.

    python bench/near_duplicates.py --dataset NAME [--resign] [--threshold 0.8] [--groups FILE]
                                    [--profile FILE]

Runs the job in this process as `manage.py find_near_duplicates` does (the same runner), and prints the
wall time, the CPU seconds of this process and of its PostgreSQL backend, the peak RSS of this process
(before the job and after it), the load average at the start and the end, and the job's counts.
--resign deletes the dataset's signatures first (and vacuums their table), so the job signs every prompt
as it does after the dataset's first import. --groups writes the groups found (one line per group: its
prompt ids, sorted, each with its similarity), so that two versions of the job can be compared on the same
data (`cmp` the files). --phases prints the time, the RSS before and after and the peak RSS so far of each
phase, --statements the slowest SQL.
Import a file first with `bench/ingest.py --input FILE --keep --no-near-duplicates --no-search-index`.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

from ingest import backend_cpu_seconds, cpu_seconds, peak_rss_mb  # noqa: E402


def rss_now_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def phase(name, function):
    def timed_phase(*args, **kwargs):
        began, rss_before = time.perf_counter(), rss_now_mb()
        try:
            return function(*args, **kwargs)
        finally:
            print(f"  phase {name}: {time.perf_counter() - began:.1f} s wall, RSS {rss_before:.0f} → "
                  f"{rss_now_mb():.0f} MB, peak RSS so far {peak_rss_mb():.0f} MB")

    return timed_phase


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="the dataset's name (or its id)")
    parser.add_argument("--resign", action="store_true", help="delete the dataset's signatures first")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--groups", type=Path, help="write the groups found to this file")
    parser.add_argument("--profile", help="write a cProfile of the job to this file")
    parser.add_argument("--statements", action="store_true", help="print the SQL statements that took longest")
    parser.add_argument("--phases", action="store_true",
                        help="print the time and the peak RSS so far at the end of each phase of the job")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    from annotation import jobs
    from annotation.ingest.near_duplicates import DEFAULT_THRESHOLD, KIND, params_for
    from annotation.models import Dataset, Job, NearDuplicateMember, PromptSignature

    query = Dataset.objects.filter(pk=int(args.dataset)) if args.dataset.isdigit() else Dataset.objects.filter(
        name=args.dataset)
    dataset = query.first()
    if dataset is None:
        sys.exit(f"no dataset is called {args.dataset!r}")
    if args.resign:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM annotation_promptsignature WHERE dataset_id = %s", [dataset.pk])
            # As after an import: without it, the dead rows of the deleted signatures slowed every insert
            # of the next run (2.6 s per 2,000 prompts after eight runs, instead of 0.2 s).
            cursor.execute("VACUUM ANALYZE annotation_promptsignature")
    signed = PromptSignature.objects.filter(dataset=dataset).count()
    job = jobs.create_job(KIND, dataset=dataset, enqueue_it=False,
                          params=params_for(threshold=args.threshold or DEFAULT_THRESHOLD))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL "
          f"{connection.cursor().connection.info.server_version}; load average {os.getloadavg()[0]:.1f} at the start")
    print(f"dataset {dataset.name!r} (id {dataset.pk}): {dataset.prompts.count():,} prompts, {signed:,} signed; "
          f"peak RSS before the job {peak_rss_mb():.0f} MB")
    cpu, backend_cpu = cpu_seconds(), backend_cpu_seconds(backend)
    statements = {}

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = sql[:50] + " … " + sql[-50:] if len(sql) > 100 else sql
            count, total = statements.get(key, (0, 0.0))
            statements[key] = (count + 1, total + time.perf_counter() - began)

    if args.statements:
        connection.execute_wrappers.append(timed)
    if args.phases:
        from annotation.ingest import near_duplicates

        for name in ("_sign", "_load_band_keys", "_candidates", "_verify", "_verify_texts", "_write_groups"):
            setattr(near_duplicates, name, phase(name, getattr(near_duplicates, name)))
        for name in ("band_codes", "short_copy_pairs", "candidate_codes", "index_pairs", "breadth_first_positions"):
            setattr(near_duplicates.minhash, name, phase(name, getattr(near_duplicates.minhash, name)))
    started = time.perf_counter()
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
        status = profile.runcall(jobs.execute, job.pk)
        profile.dump_stats(args.profile)
    else:
        status = jobs.execute(job.pk)
    elapsed = time.perf_counter() - started
    job.refresh_from_db()
    if status != Job.Status.SUCCEEDED:
        sys.exit(f"near-duplicate job {status}: {job.error}")
    c = job.counts
    print(f"near-duplicates: {c.get('prompts_signed', 0):,} prompts signed, {c.get('candidate_pairs', 0):,} "
          f"candidates, {c.get('near_duplicate_pairs', 0):,} verified pairs, {c.get('near_duplicate_groups', 0):,} "
          f"groups ({c.get('prompts_in_groups', 0):,} prompts), {c.get('contaminated_prompts', 0):,} contaminated")
    print(f"wall {elapsed:.1f} s; CPU: job process {cpu_seconds() - cpu:.1f} s, PostgreSQL backend "
          f"{backend_cpu_seconds(backend) - backend_cpu:.1f} s; peak RSS {peak_rss_mb():.0f} MB; "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    for key, (count, total) in sorted(statements.items(), key=lambda item: -item[1][1])[:8]:
        print(f"  {total:7.1f} s in {count:5d} statements: {key}")
    if args.groups:
        groups = {}
        for group_id, prompt_id, similarity in (NearDuplicateMember.objects.filter(group__dataset=dataset)
                                                .values_list("group_id", "prompt_id", "similarity")
                                                .iterator(chunk_size=20000)):
            groups.setdefault(group_id, []).append(f"{prompt_id}:{similarity:.12f}")
        lines = sorted(" ".join(sorted(g, key=lambda m: int(m.split(":")[0]))) for g in groups.values())
        args.groups.write_text("".join(line + "\n" for line in lines))
        print(f"groups written to {args.groups}")


if __name__ == "__main__":
    main()
