from celery import shared_task


@shared_task
def refresh_stale_dashboards():
    """Beat: start a dashboard refresh for each dataset whose dashboards a job made stale (an import,
    scoring, a build, a reward filter), or that a job filled and has none yet (so that its dataset page
    and dashboards read snapshots from the first visit), once no job of the dataset is under way.
    Returns the job ids."""
    from annotation.models import Dataset

    from . import dashboards
    from .models import DashboardSnapshot

    started = []
    from django.db.models import Q

    from annotation.models import Job

    with_snapshots = DashboardSnapshot.objects.values("dataset_id")
    filled = Job.objects.filter(status__in=Job.COMPLETED).values("dataset_id")
    for dataset in Dataset.objects.filter(Q(pk__in=with_snapshots) | Q(pk__in=filled)):
        if dashboards.needs_refresh(dataset):
            started.append(dashboards.start_refresh(dataset).pk)
    return started


@shared_task
def recount_stale_quality():
    """Beat: start a quality count for each dataset whose stored rule lists a job made stale, once no job
    of the dataset is under way (until then its rule lists are live, and slow on a large dataset).
    Datasets never counted are left to the admins' button. Returns the job ids."""
    from annotation.models import Dataset, Job

    from . import quality_rules

    started = []
    counted = Job.objects.filter(kind=quality_rules.KIND, status__in=Job.COMPLETED).values("dataset_id")
    for dataset in Dataset.objects.filter(pk__in=counted):
        if quality_rules.needs_recount(dataset):
            started.append(quality_rules.start_count(dataset).pk)
    return started
