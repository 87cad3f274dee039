"""The job framework: claiming, leases, chunk commits, cancel, failure, and a job's outcome by its counts."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext_lazy

from annotation import jobs
from annotation.models import Job


@pytest.fixture
def chunks_runner():
    """A job kind that commits three chunks and records the cursor it resumed from."""
    seen = []

    @jobs.job_kind("test-chunks", label="test chunks")
    def run(ctx):
        seen.append(dict(ctx.cursor))
        ctx.set_total(3)
        for i in range(ctx.cursor.get("next", 0), 3):
            with transaction.atomic():
                ctx.commit(done=1, counts={"ok": 1, "by": {"x": 1}}, cursor={"next": i + 1},
                           errors=[{"line": i, "reason": f"row {i} was odd"}])

    yield seen
    jobs.KINDS.pop("test-chunks")


@pytest.fixture
def failing_runner():
    @jobs.job_kind("test-fail", label="test fail")
    def run(ctx):
        raise jobs.JobFailed("the provider said: invalid model id")

    @jobs.job_kind("test-crash", label="test crash")
    def crash(ctx):
        raise ZeroDivisionError("division by zero")

    yield
    jobs.KINDS.pop("test-fail")
    jobs.KINDS.pop("test-crash")


def test_a_job_runs_to_success_with_counts_merged(db, chunks_runner):
    job = Job.objects.create(kind="test-chunks")
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert (job.done, job.total, job.counts) == (3, 3, {"ok": 3, "by": {"x": 3}})
    assert list(job.errors.values_list("line", flat=True)) == [0, 1, 2]
    assert job.started_at and job.finished_at and job.fraction() == 1.0


def test_a_claimed_job_is_not_claimed_twice(db):
    job = Job.objects.create(kind="import")
    assert jobs.claim(job.pk) is not None
    assert jobs.claim(job.pk) is None


def test_a_running_job_with_an_expired_lease_is_taken_over_and_resumes(db, chunks_runner, short_lease):
    job = Job.objects.create(
        kind="test-chunks", status=Job.Status.RUNNING, worker_token="dead", cursor={"next": 2}, done=2,
        heartbeat_at=timezone.now() - timedelta(seconds=10),
    )
    assert jobs.stale_job_ids() == [job.pk]
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert chunks_runner == [{"next": 2}]
    assert job.done == 3


def test_a_running_job_with_a_live_lease_is_left_alone(db, chunks_runner):
    job = Job.objects.create(kind="test-chunks", status=Job.Status.RUNNING, worker_token="alive",
                             heartbeat_at=timezone.now())
    assert jobs.execute(job.pk) is None
    assert jobs.stale_job_ids() == []


def test_a_worker_that_lost_its_lease_cannot_commit(db):
    job = Job.objects.create(kind="import")
    token = jobs.claim(job.pk)
    ctx = jobs.JobContext(Job.objects.get(pk=job.pk), token)
    Job.objects.filter(pk=job.pk).update(worker_token="someone-else")
    with pytest.raises(jobs.LeaseLost), transaction.atomic():
        ctx.commit(done=1)
    assert Job.objects.get(pk=job.pk).done == 0


def test_cancel_stops_a_running_job_at_its_next_chunk_and_rolls_the_chunk_back(db):
    job = Job.objects.create(kind="import")
    token = jobs.claim(job.pk)
    ctx = jobs.JobContext(Job.objects.get(pk=job.pk), token)
    jobs.request_cancel(job)
    with pytest.raises(jobs.JobCancelled), transaction.atomic():
        ctx.commit(done=5, errors=[{"line": 1, "reason": "x"}])
    job.refresh_from_db()
    assert job.done == 0 and not job.errors.exists()


def test_cancelling_a_pending_job_finishes_it_at_once(db):
    job = Job.objects.create(kind="import")
    jobs.request_cancel(job)
    assert job.status == Job.Status.CANCELLED and job.finished_at
    assert jobs.execute(job.pk) is None


def test_cancelling_a_job_whose_worker_died_finishes_it(db, short_lease):
    job = Job.objects.create(kind="import", status=Job.Status.RUNNING,
                             heartbeat_at=timezone.now() - timedelta(seconds=10))
    jobs.request_cancel(job)
    assert job.status == Job.Status.CANCELLED


def test_a_permanent_error_fails_the_job_with_its_message(db, failing_runner):
    job = Job.objects.create(kind="test-fail")
    assert jobs.execute(job.pk) == Job.Status.FAILED
    job.refresh_from_db()
    assert job.error == "the provider said: invalid model id"


def test_an_unexpected_exception_fails_the_job_and_names_it(db, failing_runner):
    job = Job.objects.create(kind="test-crash")
    assert jobs.execute(job.pk) == Job.Status.FAILED
    assert "ZeroDivisionError: division by zero" in Job.objects.get(pk=job.pk).error


def test_eta_comes_from_the_rate_so_far(db):
    now = timezone.now()
    job = Job(status=Job.Status.RUNNING, total=100, done=25, started_at=now - timedelta(seconds=10))
    assert 29 <= job.eta().total_seconds() <= 31
    assert Job(status=Job.Status.RUNNING, total=100, done=0, started_at=now).eta() is None


def test_a_job_fails_with_the_reason_when_the_broker_is_unreachable(db):
    from celery import Celery

    # Not set as current: the app's shared tasks resolve to the current app, and later tests in this
    # process would send their jobs to port 1.
    unreachable = Celery("unreachable", broker="redis://127.0.0.1:1/0", set_as_current=False)
    unreachable.conf.update(task_publish_retry=False, broker_connection_retry=False)

    @unreachable.task
    def run_job(job_id):
        raise AssertionError("never runs")

    job = Job.objects.create(kind="import")
    jobs.enqueue(job, run_job)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("Could not reach the task queue")


@pytest.fixture
def rows_runner():
    """A job kind whose items are rows, of which the params say how many fail."""

    summary = ngettext_lazy("%(failed)s of %(items)s row bad", "%(failed)s of %(items)s rows bad", "n")
    tally = jobs.Tally(items=jobs.counted("rows"), failures=jobs.counted("bad"), summary=summary)

    @jobs.job_kind("test-rows", label="test rows", tally=tally)
    def run(ctx):
        for _ in range(2):
            with transaction.atomic():
                ctx.commit(done=1, counts={"rows": ctx.params["rows"], "bad": ctx.params["bad"]})

    yield
    jobs.KINDS.pop("test-rows")


@pytest.mark.parametrize(("rows", "bad", "status", "summary"), [
    (500, 0, Job.Status.SUCCEEDED, ""),
    (500, 1, Job.Status.PROBLEMS, "2 of 1,000 rows bad"),
    (3, 3, Job.Status.FAILED, "6 of 6 rows bad"),
    (0, 0, Job.Status.SUCCEEDED, ""),
])
def test_a_job_ends_by_how_many_of_its_items_failed(db, rows_runner, rows, bad, status, summary):
    job = Job.objects.create(kind="test-rows", params={"rows": rows, "bad": bad})
    assert jobs.execute(job.pk) == status
    job.refresh_from_db()
    assert job.status == status and job.is_finished() and job.error == ""
    assert jobs.failure_summary(job) == summary


def test_a_kind_that_counts_no_failures_succeeds_with_rows_it_reported(db, chunks_runner):
    job = Job.objects.create(kind="test-chunks")
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    assert jobs.failure_summary(Job.objects.get(pk=job.pk)) == ""


def test_the_job_page_and_the_jobs_list_show_the_outcome_and_its_counts(client, team):
    now = timezone.now()
    problems = Job.objects.create(kind="import", dataset=team.dataset, status=Job.Status.PROBLEMS, finished_at=now,
                                  counts={"rows_read": 100, "rejected_rows": 3, "imported_pairs": 97})
    failed = Job.objects.create(kind="score", dataset=team.dataset, status=Job.Status.FAILED, finished_at=now,
                                counts={"ok": 0, "error": 31, "parse_error": 0, "refused": 0})
    fine = Job.objects.create(kind="import", dataset=team.dataset, status=Job.Status.SUCCEEDED, finished_at=now,
                              counts={"rows_read": 100, "rejected_rows": 0})
    client.force_login(team.viewer)
    page = client.get(reverse("job-detail", args=[problems.pk])).content.decode()
    assert f"<title>import job {problems.pk} · finished with problems · 3 of 100 rows rejected" in page
    assert '<span class="status status-problems" id="job-status">Finished with problems</span>' in page
    assert '<span class="job-failures" id="job-failures">3 of 100 rows rejected</span>' in page
    page = client.get(reverse("job-detail", args=[failed.pk])).content.decode()
    assert f"<title>score job {failed.pk} · failed · 31 of 31 requests gave no score" in page
    assert 'class="status status-failed"' in page
    page = client.get(reverse("job-detail", args=[fine.pk])).content.decode()
    assert f"<title>import job {fine.pk} · succeeded · coigp-web</title>" in page and 'id="job-failures"' not in page
    listing = client.get(reverse("job-list")).content.decode()
    assert f'data-failures="{problems.pk}">3 of 100 rows rejected</span>' in listing
    assert f'data-failures="{failed.pk}">31 of 31 requests gave no score</span>' in listing
    assert f'data-failures="{fine.pk}"' not in listing


@pytest.fixture
def cancelling_runner():
    """A job kind whose first chunk finds that someone asked to cancel it meanwhile."""

    @jobs.job_kind("test-cancelled", label="test cancelled")
    def run(ctx):
        jobs.request_cancel(ctx.job, by="alice (job page)")
        with transaction.atomic():
            ctx.commit(done=1)

    yield
    jobs.KINDS.pop("test-cancelled")


def test_a_cancelled_job_says_who_cancelled_it_and_when_and_a_command_says_so(db, cancelling_runner):
    from django.core.management import CommandError

    from annotation.job_progress import raise_unless_completed

    job = Job.objects.create(kind="test-cancelled")
    assert jobs.execute(job.pk) == Job.Status.CANCELLED
    job.refresh_from_db()
    assert job.error.startswith("cancelled by alice (job page) at ") and job.error.endswith(" UTC")
    with pytest.raises(CommandError, match=r"^search indexing cancelled by alice \(job page\) at .* UTC \(job \d+\)$"):
        raise_unless_completed(job, "search indexing")


def test_a_command_whose_job_another_worker_took_over_says_so(db):
    from django.core.management import CommandError

    from annotation.job_progress import raise_unless_completed

    job = Job.objects.create(kind="import", status=Job.Status.RUNNING)
    with pytest.raises(CommandError, match="another worker took the job over"):
        raise_unless_completed(job, "search indexing")
