from celery import shared_task


@shared_task
def refresh_stale_dashboards():
    """Beat: start a dashboard refresh for each dataset whose dashboards a job made stale (an import,
    scoring, a build, a reward filter), once no job of the dataset is under way. Returns the job ids."""
    from annotation.models import Dataset

    from . import dashboards
    from .models import DashboardSnapshot

    started = []
    for dataset in Dataset.objects.filter(pk__in=DashboardSnapshot.objects.values("dataset_id")):
        if dashboards.needs_refresh(dataset):
            started.append(dashboards.start_refresh(dataset).pk)
    return started
