"""Running a job in the command's own process with a terminal progress bar (every CLI command)."""

from django.core.management.base import CommandError
from tqdm import tqdm

from . import jobs
from .models import Job


def run_with_bar(job, *, what, unit, desc, no_progress=False, postfix=None, **bar_options):
    """Execute `job` here, drawing its progress; CommandError with the job's error unless it succeeded.
    `postfix(counts)` gives the bar's live counts; returns the refreshed job."""
    bar = tqdm(total=None, unit=unit, disable=no_progress, desc=desc, **bar_options)

    def on_progress(state, counts):
        bar.total = state.total or bar.total
        bar.update(state.done - bar.n)
        if postfix:
            bar.set_postfix(postfix(counts))

    status = jobs.execute(job.pk, on_progress=on_progress)
    bar.close()
    job.refresh_from_db()
    if status != Job.Status.SUCCEEDED:
        raise CommandError(job.error or f"{what} ended as {job.status}")
    return job
