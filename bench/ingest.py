"""Ingest benchmark: import generated COIG-P-shaped pairs end to end and report the rate.

    python bench/ingest.py [--pairs 1000000] [--seed 1] [--input FILE] [--keep] [--no-near-duplicates]
                           [--no-search-index] [--profile FILE]

Imports FILE (any file `import_pairs` reads: ../shared/bench/gen_pairs.py output is the realistic
one), or generates bench/out/coigp_<pairs>_seed<seed>.jsonl with bench/generate.py if missing (in a
subprocess, so its memory is not counted). Creates a fresh dataset, and runs the import job in this process exactly as
`manage.py import_pairs` does (the same job runner, parser and COPY writer), then the
near-duplicate and search-index jobs that follow every import, each timed separately. Prints pairs/s, MB/s, elapsed
time and the peak RSS of this process. The dataset is dropped afterwards unless --keep.
"""

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backend_cpu_seconds(pid):
    """CPU seconds of a PostgreSQL backend on this machine (/proc): on a shared machine the wall time
    follows the load, the CPU seconds much less."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark dataset afterwards")
    parser.add_argument("--no-near-duplicates", action="store_true")
    parser.add_argument("--no-search-index", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--input", type=Path, help="import this file instead of a generated one")
    parser.add_argument("--profile", help="write a cProfile of the import job to this file")
    args = parser.parse_args()

    if args.input:
        path = args.input
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        from generate import generated_file

        path = generated_file(args.pairs, args.seed)

    import django

    django.setup()
    from tqdm import tqdm

    from annotation import jobs
    from annotation.ingest.importer import import_params
    from annotation.ingest.near_duplicates import follow_up_of
    from annotation.models import Dataset, Job

    size = path.stat().st_size
    dataset = Dataset.objects.create(name=f"bench {args.pairs} pairs {time.strftime('%Y-%m-%d %H:%M:%S')}")
    params = import_params(str(path))
    params["near_duplicates"] = False if args.no_near_duplicates else "caller"
    params["search_index"] = False if args.no_search_index else "caller"
    job = jobs.create_job("import", dataset=dataset, params=params, enqueue_it=False)
    bar = tqdm(total=size, unit="B", unit_scale=True, desc="import", disable=args.no_progress)

    def on_progress(state, counts):
        bar.update(state.done - bar.n)
        bar.set_postfix(pairs=counts.get("imported_pairs", 0))

    from django.db import connection

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL "
          f"{connection.cursor().connection.info.server_version}, load average {os.getloadavg()[0]:.1f} "
          "(others share this CPU: the load average says how much)")
    print(f"file {path.name}: {size / 1e6:.1f} MB; peak RSS before the import {peak_rss_mb():.0f} MB")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    cpu, backend_cpu = cpu_seconds(), backend_cpu_seconds(backend)
    started = time.perf_counter()
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
        status = profile.runcall(jobs.execute, job.pk, on_progress=on_progress)
        profile.dump_stats(args.profile)
    else:
        status = jobs.execute(job.pk, on_progress=on_progress)
    elapsed = time.perf_counter() - started
    bar.close()
    job.refresh_from_db()
    if status not in Job.COMPLETED:
        sys.exit(f"import {status}: {job.error or jobs.failure_summary(job)}")
    c = job.counts
    print(f"import: {c['imported_pairs']:,} pairs, {c['imported_prompts']:,} prompts, "
          f"{c['imported_responses']:,} responses, {c['rejected_rows']} rejected in {elapsed:.1f} s")
    print(f"import rate: {c['imported_pairs'] / elapsed:,.0f} pairs/s, {size / 1e6 / elapsed:.1f} MB/s; "
          f"peak RSS {peak_rss_mb():.0f} MB; CPU: importer {cpu_seconds() - cpu:.1f} s, PostgreSQL backend "
          f"{backend_cpu_seconds(backend) - backend_cpu:.1f} s (load average {os.getloadavg()[0]:.1f})")

    total = elapsed
    follow_up = follow_up_of(job)
    if follow_up is not None:
        started = time.perf_counter()
        jobs.execute(follow_up.pk)
        nd_elapsed = time.perf_counter() - started
        total += nd_elapsed
        follow_up.refresh_from_db()
        n = follow_up.counts
        print(f"near-duplicates ({follow_up.status}): {n.get('prompts_signed', 0):,} prompts signed, "
              f"{n.get('candidate_pairs', 0):,} candidates, {n.get('near_duplicate_groups', 0):,} groups "
              f"({n.get('prompts_in_groups', 0):,} prompts) in {nd_elapsed:.1f} s; peak RSS {peak_rss_mb():.0f} MB")
    indexing = jobs.follow_up_of(job, "search_index")
    if indexing is not None:
        started = time.perf_counter()
        jobs.execute(indexing.pk)
        indexing.refresh_from_db()
        index_elapsed = time.perf_counter() - started
        total += index_elapsed
        print(f"search index ({indexing.status}): {indexing.done:,} texts in {index_elapsed:.1f} s "
              f"(load average {os.getloadavg()[0]:.1f})")
    print(f"end to end: {total:.1f} s (the import and the follow-up jobs that ran; start-up and clean-up not counted)")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if not args.keep:
        drop_dataset(dataset.pk)


def drop_dataset(pk):
    """Delete the benchmark's rows with a few SQL statements (Django's cascade would load them all)."""
    from django.db import connection, transaction

    statements = [
        ("DELETE FROM annotation_contaminationmatch WHERE dataset_id = %(ds)s OR benchmark_prompt_id IN "
         "(SELECT id FROM annotation_prompt WHERE dataset_id = %(ds)s)"),
        ("DELETE FROM annotation_nearduplicatemember WHERE group_id IN "
         "(SELECT id FROM annotation_nearduplicategroup WHERE dataset_id = %(ds)s)"),
        "DELETE FROM annotation_nearduplicategroup WHERE dataset_id = %(ds)s",
        "DELETE FROM annotation_promptsignature WHERE dataset_id = %(ds)s",
        "DELETE FROM annotation_pair WHERE dataset_id = %(ds)s",
        "DELETE FROM review_searchsegment WHERE dataset_id = %(ds)s",
        ("DELETE FROM annotation_judgement WHERE response_id IN "
         "(SELECT id FROM annotation_response WHERE dataset_id = %(ds)s)"),
        "DELETE FROM annotation_response WHERE dataset_id = %(ds)s",
        "DELETE FROM annotation_prompt WHERE dataset_id = %(ds)s",
        "DELETE FROM annotation_joberror WHERE job_id IN (SELECT id FROM annotation_job WHERE dataset_id = %(ds)s)",
        "DELETE FROM annotation_job WHERE dataset_id = %(ds)s",
        "DELETE FROM annotation_dataset WHERE id = %(ds)s",
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql, {"ds": pk})


if __name__ == "__main__":
    main()
