"""The whole access matrix: every view × every role, plus anonymous users and wrong methods."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.models import Job, Membership

from .helpers import PASSWORD, Team

ROLES = ["admin", "reviewer", "viewer", "outsider"]


@pytest.fixture
def world(db):
    team = Team.create()
    job = Job.objects.create(kind="import", dataset=team.dataset, params={"original_name": "x.jsonl"})
    member = Membership.objects.get(dataset=team.dataset, user=team.viewer)
    return team, job, member


def _request(client, world, name, method):
    team, job, member = world
    kwargs = {
        "dataset-detail": {"pk": team.dataset.pk},
        "dataset-members": {"pk": team.dataset.pk},
        "member-remove": {"pk": team.dataset.pk, "membership_pk": member.pk},
        "import-upload": {"pk": team.dataset.pk},
        "job-detail": {"pk": job.pk},
        "job-cancel": {"pk": job.pk},
        "job-errors-csv": {"pk": job.pk},
        "near-duplicate-groups": {"pk": team.dataset.pk},
        "near-duplicate-run": {"pk": team.dataset.pk},
        "contamination-list": {"pk": team.dataset.pk},
        "dataset-overview": {"pk": team.dataset.pk},
        "disagreements": {"pk": team.dataset.pk},
        "judge-analysis": {"pk": team.dataset.pk},
        "dashboard-refresh": {"pk": team.dataset.pk},
    }.get(name, {})
    url = reverse(name, kwargs=kwargs)
    data = {
        "dataset-members": {"username": team.outsider.username, "role": "viewer"},
        "import-upload": {
            "file": SimpleUploadedFile("p.jsonl", b'{"prompt": "a", "chosen": "b", "rejected": "c"}\n'),
            "format": "auto",
        },
        "dataset-create": {"name": "another"},
        "near-duplicate-run": {"threshold": "0.8"},
    }.get(name, {})
    return client.get(url) if method == "GET" else client.post(url, data)


# (view, method) -> expected status for admin, reviewer, viewer, outsider
MATRIX = {
    ("dataset-list", "GET"): (200, 200, 200, 200),
    ("dataset-detail", "GET"): (200, 200, 200, 404),
    ("dataset-members", "GET"): (200, 403, 403, 404),
    ("dataset-members", "POST"): (302, 403, 403, 404),
    ("member-remove", "POST"): (302, 403, 403, 404),
    ("import-upload", "POST"): (302, 403, 403, 404),
    ("job-list", "GET"): (200, 200, 200, 200),
    ("job-detail", "GET"): (200, 200, 200, 404),
    ("job-cancel", "POST"): (302, 403, 403, 404),
    ("job-errors-csv", "GET"): (200, 200, 200, 404),
    ("dataset-create", "POST"): (403, 403, 403, 403),
    ("near-duplicate-groups", "GET"): (200, 200, 200, 404),
    ("contamination-list", "GET"): (200, 200, 200, 404),
    ("near-duplicate-run", "POST"): (302, 403, 403, 404),
    ("dataset-overview", "GET"): (200, 200, 200, 404),
    ("disagreements", "GET"): (200, 200, 200, 404),
    ("judge-analysis", "GET"): (200, 200, 200, 404),
    ("dashboard-refresh", "POST"): (302, 403, 403, 404),
}


@pytest.mark.parametrize("view,method", list(MATRIX))
@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
def test_access_matrix(client, world, view, method, role_index, role, django_capture_on_commit_callbacks):
    team = world[0]
    client.force_login(getattr(team, role))
    with django_capture_on_commit_callbacks(execute=False):
        response = _request(client, world, view, method)
    assert response.status_code == MATRIX[(view, method)][role_index]


@pytest.mark.parametrize("view,method", list(MATRIX))
def test_anonymous_users_are_sent_to_login(client, world, view, method):
    response = _request(client, world, view, method)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    "view,method",
    [("dataset-create", "GET"), ("import-upload", "GET"), ("job-cancel", "GET"), ("member-remove", "GET"),
     ("job-detail", "POST"), ("dataset-detail", "POST"), ("job-errors-csv", "POST"),
     ("near-duplicate-run", "GET"), ("near-duplicate-groups", "POST"), ("contamination-list", "POST"),
     ("dataset-overview", "POST"), ("dashboard-refresh", "GET")],
)
def test_wrong_method_is_405(client, world, view, method):
    client.force_login(world[0].admin)
    assert _request(client, world, view, method).status_code == 405


def test_staff_users_create_datasets_and_become_their_admin(client, db):
    from django.contrib.auth import get_user_model

    from annotation.models import Dataset, Role

    staff = get_user_model().objects.create_user("staff", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    response = client.post(reverse("dataset-create"), {"name": "新数据集"})
    dataset = Dataset.objects.get(name="新数据集")
    assert response.status_code == 302 and response["Location"] == reverse("dataset-detail", args=[dataset.pk])
    assert dataset.role_of(staff) == Role.ADMIN


def test_job_list_shows_only_jobs_of_visible_datasets(client, world):
    team, job, _ = world
    client.force_login(team.outsider)
    assert reverse("job-detail", args=[job.pk]) not in client.get(reverse("job-list")).content.decode()
    client.force_login(team.viewer)
    assert reverse("job-detail", args=[job.pk]) in client.get(reverse("job-list")).content.decode()


def test_viewer_sees_no_admin_actions_on_the_dataset_page(client, world):
    team = world[0]
    client.force_login(team.viewer)
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    assert reverse("import-upload", args=[team.dataset.pk]) not in page
    assert reverse("dataset-members", args=[team.dataset.pk]) not in page
    client.force_login(team.admin)
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    assert reverse("import-upload", args=[team.dataset.pk]) in page


def test_last_admin_cannot_remove_themselves(client, world):
    team = world[0]
    client.force_login(team.admin)
    own = Membership.objects.get(dataset=team.dataset, user=team.admin)
    client.post(reverse("member-remove", args=[team.dataset.pk, own.pk]))
    assert Membership.objects.filter(pk=own.pk).exists()


def test_failed_logins_are_throttled(client, db):
    team = Team.create()
    for _ in range(5):
        client.post(reverse("login"), {"username": team.admin.username, "password": "wrong"})
    response = client.post(reverse("login"), {"username": team.admin.username, "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
