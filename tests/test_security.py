"""Headers and escaping: model output and user text are hostile HTML."""

from django.urls import reverse

from annotation.models import Job, JobError

from .helpers import Team

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a>'


def test_every_page_sends_a_content_security_policy_without_inline_scripts(client, db):
    team = Team.create()
    client.force_login(team.admin)
    response = client.get(reverse("dataset-detail", args=[team.dataset.pk]))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"


def test_hostile_text_is_escaped_on_the_dataset_and_job_pages(client, db):
    team = Team.create(name=HOSTILE)
    team.dataset.description = HOSTILE
    team.dataset.save(update_fields=["description"])
    job = Job.objects.create(kind="import", dataset=team.dataset, params={"original_name": HOSTILE},
                             error=HOSTILE)
    JobError.objects.create(job=job, line=1, reason=HOSTILE)
    client.force_login(team.admin)
    for url in (reverse("dataset-list"), reverse("dataset-detail", args=[team.dataset.pk]),
                reverse("job-detail", args=[job.pk]), reverse("job-list")):
        page = client.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page and 'href="javascript:' not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url


def test_htmx_polling_gets_the_progress_fragment_and_stops_when_the_job_ends(client, db):
    team = Team.create()
    job = Job.objects.create(kind="import", dataset=team.dataset, status=Job.Status.RUNNING, total=10, done=4)
    client.force_login(team.viewer)
    response = client.get(reverse("job-detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'id="job-progress"' in body and 'hx-trigger="every 2s"' in body
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
    response = client.get(reverse("job-detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286 and response["HX-Refresh"] == "true"
    assert "hx-trigger" not in response.content.decode()
