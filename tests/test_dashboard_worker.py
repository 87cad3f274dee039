"""The refresh button's job on a real Celery worker: it recomputes every dashboard of the dataset."""

import pytest
from django.urls import reverse

from annotation.models import Job
from review.dashboards import REFRESH_KIND, refresh_one
from review.models import DashboardSnapshot, Review

from .conftest import wait_for
from .dashboard_data import crafted
from .helpers import Team

pytestmark = pytest.mark.worker


def test_the_refresh_button_runs_a_job_that_recomputes_every_dashboard(client, thread_worker):
    team = Team.create("刷新")
    data = crafted(team)
    before = {name: refresh_one(team.dataset, name).computed_at for name in ("overview", "disagreements", "judges")}
    Review.objects.create(pair=data.pairs["P4"], reviewer=team.viewer, verdict="both_bad")
    client.force_login(team.admin)
    response = client.post(reverse("dashboard-refresh", args=[team.dataset.pk]))
    job = Job.objects.get(kind=REFRESH_KIND, dataset=team.dataset)
    assert response.url == reverse("job-detail", args=[job.pk])
    wait_for(lambda: Job.objects.get(pk=job.pk).is_finished(), timeout=60, message="the refresh job")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.done == 3
    snaps = {s.name: s for s in DashboardSnapshot.objects.filter(dataset=team.dataset)}
    assert all(snaps[name].computed_at > at for name, at in before.items())
    assert snaps["overview"].data["total"]["reviewed"] == 4
    page = client.get(reverse("dataset-overview", args=[team.dataset.pk])).content.decode()
    assert 'data-stale="false"' in page
