"""Commands that run jobs in their own process: a terminal progress bar, and an exit status that follows
the jobs' outcome (README, "Exit status")."""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from tqdm import tqdm

from . import jobs
from .models import Job

EXIT_FAILED = 1
EXIT_PROBLEMS = 2
EXIT_STATUS_HELP = ("Exit status: 0 succeeded; 1 failed, was cancelled or was refused (bad arguments); 2 finished "
                    "with problems (some items failed: rows rejected, requests without a score, pairs skipped).")


class JobCommand(BaseCommand):
    """A command that runs jobs here. A job that failed ends it with a CommandError (exit status 1); one
    that finished with problems lets it report what it did, then exit with status 2 (`call_command`
    returns normally: its caller has the job and its counts)."""

    exit_status = 0

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(prog_name, subcommand, epilog=EXIT_STATUS_HELP, **kwargs)

    def execute(self, *args, **options):
        # A command speaks the site's language (LANGUAGE_CODE), never the one a web request left active in
        # this thread (tests and an in-process caller share threads with the views).
        with translation.override(settings.LANGUAGE_CODE):
            return super().execute(*args, **options)

    def run_from_argv(self, argv):
        super().run_from_argv(argv)
        if self.exit_status:
            sys.exit(self.exit_status)

    def finish(self, job, what):
        """End by the job's outcome: CommandError if it failed; a warning and exit status 2 if it finished
        with problems; nothing if it succeeded."""
        raise_unless_completed(job, what)
        if job.status == Job.Status.PROBLEMS:
            self.stderr.write(f"{what} finished with problems: {jobs.failure_summary(job) or job.error} (job {job.pk})")
            self.exit_status = max(self.exit_status, EXIT_PROBLEMS)


def raise_unless_completed(job, what):
    """CommandError (exit status 1) for a job that did not complete, naming its error or its failed items."""
    if job.status in Job.COMPLETED:
        return
    summary = jobs.failure_summary(job)
    if job.error:
        reason = f"{what} {job.error}" if job.status == Job.Status.CANCELLED else job.error
    elif summary:
        reason = f"{what} failed: {summary}"
    elif job.status in (Job.Status.RUNNING, Job.Status.PENDING):
        # `execute` gave the job up: another worker claimed it (this process went longer than the lease
        # without committing a chunk) or holds it still.
        reason = (f"{what} stopped here: another worker took the job over after this process went "
                  f"{settings.JOB_LEASE_SECONDS} s without renewing its lease (JOB_LEASE_SECONDS); it goes on "
                  "there, see the job page")
    else:
        reason = f"{what} ended as {job.status}"
    raise CommandError(f"{reason} (job {job.pk})", returncode=EXIT_FAILED)


def run_with_bar(job, *, what, unit, desc, no_progress=False, postfix=None, **bar_options):
    """Execute `job` here, drawing its progress; CommandError unless it completed (succeeded or finished
    with problems: the command reports what it did, then calls `finish`). `postfix(counts)` gives the
    bar's live counts; returns the refreshed job."""
    bar = tqdm(total=None, unit=unit, disable=no_progress, desc=desc, **bar_options)

    def on_progress(state, counts):
        bar.total = state.total or bar.total
        bar.update(state.done - bar.n)
        if postfix:
            bar.set_postfix(postfix(counts))

    jobs.execute(job.pk, on_progress=on_progress)
    bar.close()
    job.refresh_from_db()
    raise_unless_completed(job, what)
    return job
