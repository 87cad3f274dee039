"""Jobs on a real Celery worker over Redis: one in a thread, and a process killed mid-job."""

import os

import pytest
from django.core.management import call_command
from django.db.models import Count

from annotation import jobs
from annotation.ingest.importer import import_params
from annotation.models import Dataset, Job, JobError, Pair

from .conftest import wait_for
from .helpers import generated_pairs, write_jsonl

pytestmark = pytest.mark.worker


def _finished(job):
    job.refresh_from_db()
    return job.is_finished()


def test_a_thread_worker_runs_an_import_job_from_redis(thread_worker, tmp_path):
    dataset = Dataset.objects.create(name="worker")
    lines = generated_pairs(50) + ["{broken"]
    path = write_jsonl(tmp_path / "pairs.jsonl", lines)
    job = jobs.create_job("import", dataset=dataset, params=import_params(path, batch_size=20))
    wait_for(lambda: _finished(job), timeout=60, message="the import job to finish")
    assert job.status == Job.Status.PROBLEMS, job.error  # the broken line
    assert Pair.objects.filter(dataset=dataset).count() == 50 == job.counts["imported_pairs"]
    assert job.counts["rejected_rows"] == 1 and job.errors.get().line == 51
    assert job.done == job.total == os.path.getsize(path)
    assert job.celery_task_id


def test_a_job_cancelled_while_queued_never_runs(thread_worker, tmp_path):
    dataset = Dataset.objects.create(name="cancelled")
    path = write_jsonl(tmp_path / "pairs.jsonl", generated_pairs(10))
    job = Job.objects.create(kind="import", dataset=dataset, params=import_params(path), unit="bytes")
    jobs.request_cancel(job)
    from annotation.tasks import run_job

    run_job.delay(job.pk)
    # A second job queued behind it proves the worker got past the cancelled one.
    marker = jobs.create_job("import", dataset=dataset, params=import_params(path))
    wait_for(lambda: _finished(marker), timeout=60, message="the job behind the cancelled one")
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and job.attempts == 0


def test_a_worker_killed_mid_job_leaves_a_job_that_completes_after_restart_with_nothing_lost(
    worker_processes, tmp_path, short_lease
):
    lines = generated_pairs(12_000, seed=7)
    lines[5_001] = '{"conversations": "not a list", "chosen": "a", "rejected": "b"}'
    path = write_jsonl(tmp_path / "pairs.jsonl", lines)
    dataset = Dataset.objects.create(name="killed")
    job = jobs.create_job("import", dataset=dataset, params=import_params(path, batch_size=150))

    first = worker_processes(lease_seconds=short_lease)

    def some_chunks_done():
        job.refresh_from_db()
        return job.status == Job.Status.RUNNING and job.done > 0
    wait_for(some_chunks_done, timeout=120, interval=0.01, message="the first chunks")
    first.kill()
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING, "the job must be killed mid-way for this test to mean anything"
    assert 0 < job.counts["rows_read"] < len(lines)

    worker_processes(lease_seconds=short_lease)  # on start it requeues jobs whose lease ran out
    try:
        wait_for(lambda: _finished(job), timeout=180, interval=0.2, message="the job to finish after restart")
    finally:
        print((tmp_path / "worker.log").read_text(errors="replace")[-5000:])
    assert job.status == Job.Status.PROBLEMS, job.error  # the one bad line, counted once over both attempts
    assert job.attempts == 2

    # Nothing lost: every valid line is a pair; nothing duplicated: counts match rows exactly.
    pairs = Pair.objects.filter(dataset=dataset)
    assert pairs.count() == len(lines) - 1 == job.counts["imported_pairs"]
    assert job.counts["rows_read"] == len(lines)
    assert job.counts["duplicates"] == 0
    assert list(JobError.objects.filter(job=job).values_list("line", flat=True)) == [5_002]
    assert sum(job.counts["by_domain"].values()) == pairs.count()
    assert not pairs.values("prompt", "chosen", "rejected").annotate(n=Count("id")).filter(n__gt=1).exists()

    # The same rows as an import that was never interrupted.
    call_command("import_pairs", str(path), dataset="uninterrupted", no_progress=True)
    def keys(name):
        return set(Pair.objects.filter(dataset__name=name).values_list(
            "prompt__content_hash", "chosen__content_hash", "rejected__content_hash"))
    assert keys("killed") == keys("uninterrupted")


def test_an_import_on_the_worker_is_followed_by_the_near_duplicate_check(thread_worker, tmp_path):
    dataset = Dataset.objects.create(name="checked")
    lines = generated_pairs(40)
    lines.append(dict(lines[0], conversations=[{"from": "human", "value": lines[0]["conversations"][0]["value"] + "。"}]))
    job = jobs.create_job("import", dataset=dataset, params=import_params(write_jsonl(tmp_path / "p.jsonl", lines)))
    wait_for(lambda: _finished(job), timeout=60, message="the import job to finish")
    follow_up = wait_for(lambda: Job.objects.filter(kind="near_duplicates", params__after_import=job.pk).first(),
                         timeout=10, message="the follow-up job")
    wait_for(lambda: _finished(follow_up), timeout=60, message="the near-duplicate job to finish")
    assert follow_up.status == Job.Status.SUCCEEDED, follow_up.error
    assert follow_up.counts["prompts_signed"] == 11 and follow_up.counts["near_duplicate_groups"] == 1
