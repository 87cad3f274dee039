"""The jobs list's filters (dataset, kind, outcome) and the job pages in words: kinds by name, domains by
name, the import's row format, and no count a job never reached."""

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import Job

from .helpers import Team


@pytest.fixture
def jobs(team):
    now = timezone.now()
    other = Team.create("另一个")
    other.dataset.memberships.create(user=team.viewer, role="viewer")
    made = {
        "build": Job.objects.create(kind="build_pairs", dataset=team.dataset, status=Job.Status.SUCCEEDED,
                                    finished_at=now, counts={"pairs_in_run": 4, "prompts_without_pairs": 1}),
        "import": Job.objects.create(kind="import", dataset=team.dataset, status=Job.Status.FAILED, finished_at=now,
                                     counts={"rows_read": 0, "by_domain": {"math": 3}},
                                     params={"format": "auto"}, cursor={"format": "sharegpt"}),
        "other": Job.objects.create(kind="import", dataset=other.dataset, status=Job.Status.SUCCEEDED,
                                    finished_at=now),
        "hidden": Job.objects.create(kind="import", dataset=Team.create("无关").dataset, status=Job.Status.SUCCEEDED),
    }
    return team, other, made


def listed(client, params=None):
    response = client.get(reverse("job-list"), params or {})
    html = response.content.decode()
    return response.status_code, {int(pk) for pk in __import__("re").findall(r'href="/jobs/(\d+)/"', html)}, html


def test_the_jobs_list_filters_by_dataset_kind_and_outcome(client, jobs):
    team, other, made = jobs
    client.force_login(team.viewer)
    status, shown, html = listed(client)
    assert status == 200 and shown == {made["build"].pk, made["import"].pk, made["other"].pk}
    assert listed(client, {"dataset": other.dataset.pk})[1] == {made["other"].pk}
    assert listed(client, {"kind": "import"})[1] == {made["import"].pk, made["other"].pk}
    assert listed(client, {"kind": "import", "status": "failed"})[1] == {made["import"].pk}
    assert listed(client, {"status": "succeeded", "dataset": team.dataset.pk})[1] == {made["build"].pk}
    hidden = made["hidden"].dataset.pk
    assert listed(client, {"dataset": hidden})[0] == 400  # not a dataset this user sees
    assert listed(client, {"kind": "no_such_kind"})[0] == 400
    assert "pair building" in html and "build_pairs" not in html.split('id="job-filter"')[1].split("</form>")[1]


def test_job_pages_say_kinds_counts_domains_and_the_import_format_in_words(client, jobs):
    team, _, made = jobs
    client.force_login(team.viewer)
    page = client.get(reverse("job-detail", args=[made["build"].pk])).content.decode()
    assert f"pair building job {made['build'].pk}" in page and "build_pairs job" not in page
    assert "Pairs in this run" in page and "Prompts without a pair" in page
    page = client.get(reverse("job-detail", args=[made["import"].pk])).content.decode()
    assert "Rejected rows" not in page and "None." not in page
    assert 'id="import-format">Format: LLaMA-Factory / COIG-P sharegpt ranking' in page and "detected from the file" in page
    assert "<td>Math</td>" in page and "<td>math</td>" not in page
