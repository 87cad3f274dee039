import logging

from celery import shared_task
from celery.signals import worker_ready

from . import jobs

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job(self, job_id):
    # The apps' ready() declared every kind (annotation.jobs.job_kind) when the worker set Django up.
    return jobs.execute(job_id, task_id=self.request.id or "")


@shared_task
def requeue_stale_jobs():
    """Give jobs whose worker died (their lease ran out) to a live worker."""
    ids = jobs.stale_job_ids()
    for job_id in ids:
        run_job.delay(job_id)
    if ids:
        log.warning("requeued stale jobs %s", ids)
    return ids


@worker_ready.connect
def _requeue_on_worker_start(sender, **kwargs):
    # A worker that starts after another died picks up that worker's jobs without waiting for
    # beat: now, and once more when the dead worker's lease has surely run out.
    from django.conf import settings

    requeue_stale_jobs.delay()
    requeue_stale_jobs.apply_async(countdown=settings.JOB_LEASE_SECONDS + 1)
