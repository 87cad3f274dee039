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

A kind is declared once, with `job_kind` on its runner, in the module of its workflow: its progress unit,
its name and count labels on the pages, whether it changes data, its tally. Each app imports its workflow
modules in its AppConfig.ready(), so every process knows every kind. Every job row is made by
`create_job`.
"""

import logging
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Job, JobError

log = logging.getLogger(__name__)

# name → JobKind, filled by `job_kind` as the apps' ready() import their workflow modules.
KINDS = {}
# Labels of the counts the framework itself keeps, for a job of any kind.
FRAMEWORK_COUNTS = {"errors_not_stored": _("Errors not listed (over the limit)")}


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


@dataclass(frozen=True)
class JobKind:
    """One kind of job, as declared with `job_kind`."""

    name: str
    runner: Callable | None
    # The kind's name on the pages, in words ("pair building job 26", not "build_pairs job 26"), lower case
    # since pages put it into sentences: pgettext_lazy("job kind", "pair building").
    label: object
    unit: str = "items"
    # Labels of the plain-number counts its runner writes, in the order the job page lists them (counts
    # that are dicts have tables of their own).
    counts: dict = field(default_factory=dict)
    # False for a job that only reads the data and writes derived rows (snapshots, counts, stored
    # members, search-index flags, export files): it leaves stored lists and dashboards current.
    changes_data: bool = True
    tally: Tally | None = None
    # The heading of its errors on the job page and what locates one; no heading: it stores none.
    errors_heading: object = _("Rejected rows")
    error_place: object = _("Line")
    # A template the job page includes below the job's progress (its files, say), or "".
    page_section: str = ""

    def count_labels(self):
        return {**self.counts, **FRAMEWORK_COUNTS}


def job_kind(name, *, label, unit="items", counts=None, changes_data=True, tally=None, **page):
    """Declare the kind `name` with `fn(ctx)` as its runner (see JobKind for the rest). A kind whose items
    can fail one by one (rows rejected, requests failed) declares them with a `Tally`, and its jobs end by
    it (`outcome`); without one, a job that returns succeeded."""

    def register(fn):
        KINDS[name] = JobKind(name, fn, label, unit, dict(counts or {}), changes_data, tally, **page)
        return fn

    return register


def kind_of(name):
    """The declared kind, or a bare one named as it is (a job row of a kind no longer declared)."""
    return KINDS.get(name) or JobKind(name, None, name)


def read_only_kinds():
    """Kinds whose jobs change no data (JobKind.changes_data)."""
    return [name for name, kind in KINDS.items() if not kind.changes_data]


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
    return kind_of(kind).tally


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
        self._last_beat = time.monotonic()  # the claim has just renewed the lease

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

    def heartbeat(self, every=0.0):
        """Renew the lease and honour a cancel between commits, while a slow step runs (a model scoring a
        chunk, requests in flight); at most once every `every` seconds. Call it outside the chunk's
        transaction, so other workers see the renewed lease."""
        if time.monotonic() - self._last_beat < every:
            return
        renewed = Job.objects.filter(pk=self.job.pk, worker_token=self.token, status=Job.Status.RUNNING).update(
            heartbeat_at=timezone.now())
        if not renewed:
            raise LeaseLost()
        self.check_cancelled()
        self._last_beat = time.monotonic()


def _add(old, new):
    """Counts add up: numbers are summed, dicts merged key by key."""
    if isinstance(new, dict):
        merged = dict(old or {})
        for key, value in new.items():
            merged[key] = _add(merged.get(key), value)
        return merged
    return (old or 0) + new


def create_job(kind, *, dataset=None, user=None, params=None, enqueue_it=True):
    """Create a job row and enqueue it once the surrounding transaction commits; `enqueue_it=False`
    leaves it for the caller to run in its own process (`execute`: the CLI's commands)."""
    from .tasks import run_job

    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job.objects.create(kind=kind, dataset=dataset, created_by=user, params=params or {}, unit=KINDS[kind].unit)
    if enqueue_it:
        transaction.on_commit(lambda: enqueue(job, run_job))
    return job


def running_job(dataset, kind):
    """The dataset's newest job of `kind` that is waiting or running, or None."""
    return jobs_under_way(dataset).filter(kind=kind).order_by("-pk").first()


def jobs_under_way(dataset):
    """The dataset's jobs that are waiting or running."""
    return Job.objects.filter(dataset=dataset).exclude(status__in=Job.FINISHED)


# Jobs that follow an import that imported something, in the order they were registered (each app's
# ready() imports the modules that register them, annotation's before review's).
FOLLOW_UPS = {}


@dataclass(frozen=True)
class FollowUp:
    """A job kind that follows every import. Its params come from `params(import_job)`; the import job's
    params may hold its kind as a key: False skips it, "caller" leaves it to the caller to run.
    `import_pairs`, which runs it in its own process, calls it `what` (progress bar options `bar`), prints
    `describe(job)` after it and puts `report(job)` under its kind in --report-json (if given)."""

    kind: str
    what: str
    describe: Callable[[Job], str]
    params: Callable[[Job], dict] = lambda import_job: {}
    bar: dict = field(default_factory=dict)
    report: Callable[[Job], dict] | None = None


def follows_imports(follow):
    FOLLOW_UPS[follow.kind] = follow


def start_follow_ups(import_job):
    """Create the jobs that follow the import (see FollowUp); what the import's params skip is left out."""
    for kind in FOLLOW_UPS:
        choice = import_job.params.get(kind, True)
        if choice:
            follow_up(import_job, kind, enqueue_it=choice != "caller")


def follow_up(import_job, kind, *, enqueue_it=True):
    """The job of `kind` that follows an import (created once, even if the import is re-run; its params
    record `after_import`); `enqueue_it=False` leaves it for the caller to run (the CLI runs it
    in-process with a bar)."""
    existing = follow_up_of(import_job, kind)
    if existing is not None:
        return existing
    params = {**FOLLOW_UPS[kind].params(import_job), "after_import": import_job.pk}
    return create_job(kind, dataset=import_job.dataset, user=import_job.created_by, params=params,
                      enqueue_it=enqueue_it)


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
    runner = KINDS[job.kind].runner
    ctx = JobContext(job, token, on_progress)
    try:
        runner(ctx)
    except LeaseLost:
        log.warning("job %s was taken over by another worker", job_id)
        return None
    except JobCancelled:
        # The request stored its cause (who asked, when) in the error; it stays there.
        reason = Job.objects.filter(pk=job_id).values_list("error", flat=True).first()
        return _finish(job_id, token, Job.Status.CANCELLED, reason or "cancelled on request")
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


def request_cancel(job, by=""):
    """Ask a job to stop; a pending job stops at once, a running one at its next chunk, and one
    whose worker died (lease ran out) at once, since no worker will see the request. The job's error
    says who asked and when, so a command running the job can say why it stopped."""
    when = timezone.now().strftime("%Y-%m-%d %H:%M:%S UTC")
    reason = f"cancelled by {by} at {when}" if by else f"cancelled at {when}"
    Job.objects.filter(pk=job.pk).exclude(status__in=Job.FINISHED).update(cancel_requested=True, error=reason)
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
