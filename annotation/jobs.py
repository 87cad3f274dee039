"""The one way to run background work.

A job is a `Job` row and a Celery task (`annotation.tasks.run_job`) that calls the runner
registered for the job's kind. The runner works in chunks; each chunk's writes and the job's
progress (`done`, `counts`, `cursor`) commit in one transaction through `JobContext.commit`,
which also renews the worker's lease and honours a cancel request. A worker killed mid-chunk
therefore leaves the last committed cursor behind, and whichever worker takes the job over
(after the lease runs out) resumes from there: nothing is done twice and nothing is lost.

A job that runs to its end is judged by its counts, never by its runner alone: a kind whose items
can fail one by one declares which counts are its items and which its failures (`Tally`), and the
job then ends succeeded (no failure), finished with problems (some) or failed (all of them).
"""

import logging
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Job, JobError

log = logging.getLogger(__name__)

# kind → (runner, progress unit, Tally or None)
RUNNERS = {}


@dataclass(frozen=True)
class Tally:
    """What a job kind's items and failures are, each read from the job's counts, and how its failures
    are said: `summary` is an ngettext_lazy counted by "n" (the items), showing %(failed)s and %(items)s."""

    items: Callable[[dict], int]
    failures: Callable[[dict], int]
    summary: object


def counted(*keys):
    """A tally function: the sum of these plain counts."""
    return lambda counts: sum(counts.get(key, 0) for key in keys)


def job_runner(kind, unit="items", tally=None):
    """Register `fn(ctx)` as the runner of jobs of `kind`. A kind whose items can fail one by one (rows
    rejected, requests failed) declares them with a `Tally`, and its jobs end by it (`outcome`); without
    one, a job that returns succeeded."""

    def register(fn):
        RUNNERS[kind] = (fn, unit, tally)
        return fn

    return register


def outcome(kind, counts):
    """How a job that ran to its end finished: failed when every item failed (nothing was done),
    with problems when some did, succeeded when none did."""
    tally = _tally(kind)
    failed = tally.failures(counts) if tally else 0
    if not failed:
        return Job.Status.SUCCEEDED
    return Job.Status.FAILED if failed >= tally.items(counts) else Job.Status.PROBLEMS


def failure_summary(job):
    """The job's failed items in words ("3 of 100 rows rejected"); empty when none failed."""
    tally = _tally(job.kind)
    failed = tally.failures(job.counts) if tally else 0
    if not failed:
        return ""
    items = tally.items(job.counts)
    return tally.summary % {"n": items, "failed": intcomma(failed), "items": intcomma(items)}


def _tally(kind):
    return RUNNERS[kind][2] if kind in RUNNERS else None


class JobCancelled(Exception):
    pass


class LeaseLost(Exception):
    """Another worker took the job over; this one must stop without writing."""


class JobFailed(Exception):
    """A permanent error: the job stops and shows this message."""


class JobContext:
    def __init__(self, job, token, on_progress=None):
        self.job = job
        self.token = token
        self.on_progress = on_progress
        self.counts = dict(job.counts)
        self.cursor = dict(job.cursor)
        self.errors_stored = None  # counted at the first commit with errors (a resumed job has some)
        # Set by a runner that did its work but not all of it for a reason outside its items (a file cut
        # off after its complete rows were imported): the job ends with problems and shows this message.
        self.problem = ""

    @property
    def params(self):
        return self.job.params

    def set_total(self, total):
        updated = Job.objects.filter(pk=self.job.pk, worker_token=self.token).update(total=total)
        if not updated:
            raise LeaseLost()
        self.job.total = total

    def commit(self, done=0, counts=None, cursor=None, errors=()):
        """Record a chunk's progress. Call inside the chunk's `transaction.atomic()` block so the
        chunk's rows and its progress commit together; raises JobCancelled or LeaseLost (rolling
        the chunk back) when the job was cancelled or taken over."""
        assert transaction.get_connection().in_atomic_block, "commit() belongs inside the chunk's transaction"
        row = Job.objects.select_for_update().only("worker_token", "cancel_requested", "status").get(pk=self.job.pk)
        if row.worker_token != self.token or row.status != Job.Status.RUNNING:
            raise LeaseLost()
        if row.cancel_requested:
            raise JobCancelled()
        for key, value in (counts or {}).items():
            self.counts[key] = _add(self.counts.get(key), value)
        if cursor is not None:
            self.cursor = cursor
        self.job.done += done
        self._store_errors(errors)
        Job.objects.filter(pk=self.job.pk).update(
            done=self.job.done, counts=self.counts, cursor=self.cursor, heartbeat_at=timezone.now()
        )
        if self.on_progress:
            self.on_progress(self.job, self.counts)

    def outcome(self):
        """The status the counts committed so far give (see `outcome`)."""
        return outcome(self.job.kind, self.counts)

    def _store_errors(self, errors):
        """Store the job's first JOB_MAX_STORED_ERRORS errors and count the rest in `errors_not_stored`.
        Both commit with the chunk, so a resumed job goes on counting exactly where it stopped."""
        errors = list(errors)
        if not errors:
            return
        if self.errors_stored is None:
            self.errors_stored = JobError.objects.filter(job_id=self.job.pk).count()
        room = max(settings.JOB_MAX_STORED_ERRORS - self.errors_stored, 0)
        stored = errors[:room]
        JobError.objects.bulk_create(JobError(job_id=self.job.pk, **e) for e in stored)
        self.errors_stored += len(stored)
        if len(errors) > len(stored):
            self.counts["errors_not_stored"] = self.counts.get("errors_not_stored", 0) + len(errors) - len(stored)

    def check_cancelled(self):
        row = Job.objects.filter(pk=self.job.pk).values("worker_token", "cancel_requested").first()
        if row is None or row["worker_token"] != self.token:
            raise LeaseLost()
        if row["cancel_requested"]:
            raise JobCancelled()


def _add(old, new):
    """Counts add up: numbers are summed, dicts merged key by key."""
    if isinstance(new, dict):
        merged = dict(old or {})
        for key, value in new.items():
            merged[key] = _add(merged.get(key), value)
        return merged
    return (old or 0) + new


def create_job(kind, *, dataset=None, user=None, params=None):
    """Create a job row and enqueue it once the surrounding transaction commits."""
    from .tasks import run_job

    if kind not in RUNNERS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job.objects.create(
        kind=kind, dataset=dataset, created_by=user, params=params or {}, unit=RUNNERS[kind][1]
    )
    transaction.on_commit(lambda: enqueue(job, run_job))
    return job


def follow_up(import_job, kind, *, params=None, enqueue_it=True):
    """The job of `kind` that follows an import (created once, even if the import is re-run; its params
    record `after_import`); `enqueue_it=False` leaves it for the caller to run (the CLI runs it
    in-process with a bar)."""
    from .tasks import run_job

    existing = follow_up_of(import_job, kind)
    if existing is not None:
        return existing
    job = Job.objects.create(kind=kind, dataset_id=import_job.dataset_id, created_by_id=import_job.created_by_id,
                             unit=RUNNERS[kind][1], params={**(params or {}), "after_import": import_job.pk})
    if enqueue_it:
        transaction.on_commit(lambda: enqueue(job, run_job))
    return job


def follow_up_of(import_job, kind):
    """The job of `kind` that followed the import, or None."""
    return Job.objects.filter(kind=kind, params__after_import=import_job.pk).order_by("-pk").first()


def enqueue(job, task):
    # No in-process fallback when the broker is down: the job fails and says why.
    try:
        task.delay(job.pk)
    except Exception as exc:
        log.exception("could not enqueue job %s", job.pk)
        Job.objects.filter(pk=job.pk, status=Job.Status.PENDING).update(
            status=Job.Status.FAILED, error=f"Could not reach the task queue: {exc}", finished_at=timezone.now()
        )


def claim(job_id, task_id=""):
    """Take the job if it is pending, or running under a lease that ran out. Returns the token or None."""
    token = uuid.uuid4().hex
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    claimable = Q(status=Job.Status.PENDING) | Q(status=Job.Status.RUNNING, heartbeat_at__lt=stale)
    updated = (
        Job.objects.filter(claimable, pk=job_id)
        .filter(cancel_requested=False)
        .update(status=Job.Status.RUNNING, worker_token=token, heartbeat_at=now, celery_task_id=task_id or "")
    )
    if not updated:
        return None
    Job.objects.filter(pk=job_id, started_at__isnull=True).update(started_at=now)
    return token


def execute(job_id, task_id="", on_progress=None):
    """Run a job to its end in this process; returns the final status, or None if not claimed.
    `on_progress(job, counts)` is called after every committed chunk (the CLI's progress bar)."""
    _finish_cancelled_if_pending(job_id)
    token = claim(job_id, task_id)
    if token is None:
        return None
    job = Job.objects.get(pk=job_id)
    Job.objects.filter(pk=job_id).update(attempts=job.attempts + 1)
    runner = RUNNERS[job.kind][0]
    ctx = JobContext(job, token, on_progress)
    try:
        runner(ctx)
    except LeaseLost:
        log.warning("job %s was taken over by another worker", job_id)
        return None
    except JobCancelled:
        return _finish(job_id, token, Job.Status.CANCELLED)
    except JobFailed as exc:
        return _finish(job_id, token, Job.Status.FAILED, str(exc))
    except Exception as exc:
        log.exception("job %s failed", job_id)
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return _finish(job_id, token, Job.Status.FAILED, f"Internal error: {detail}")
    status = outcome(job.kind, ctx.counts)
    if ctx.problem and status == Job.Status.SUCCEEDED:
        status = Job.Status.PROBLEMS
    return _finish(job_id, token, status, ctx.problem)


def _finish(job_id, token, status, error=""):
    updated = Job.objects.filter(pk=job_id, worker_token=token, status=Job.Status.RUNNING).update(
        status=status, error=error, finished_at=timezone.now(), heartbeat_at=timezone.now()
    )
    return status if updated else None


def _finish_cancelled_if_pending(job_id):
    Job.objects.filter(pk=job_id, status=Job.Status.PENDING, cancel_requested=True).update(
        status=Job.Status.CANCELLED, finished_at=timezone.now()
    )


def request_cancel(job):
    """Ask a job to stop; a pending job stops at once, a running one at its next chunk, and one
    whose worker died (lease ran out) at once, since no worker will see the request."""
    Job.objects.filter(pk=job.pk).exclude(status__in=Job.FINISHED).update(cancel_requested=True)
    _finish_cancelled_if_pending(job.pk)
    stale = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, heartbeat_at__lt=stale).update(
        status=Job.Status.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()


def stale_job_ids():
    """Running jobs whose worker stopped renewing the lease."""
    stale = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    return list(
        Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=stale, cancel_requested=False).values_list(
            "pk", flat=True
        )
    )
