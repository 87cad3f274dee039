"""The API's access matrix: every endpoint × every role (admin, reviewer, viewer, outsider) with a personal
token, as tests/test_permissions.py does for the pages; and no endpoint but the schema without a token."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.models import Job, Judge, RewardModel
from api.tokens import create_token
from review import decisions
from review.models import Export

from .helpers import Team
from .judged import imported_pair, scored_prompt

ROLES = ["admin", "reviewer", "viewer", "outsider"]


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    team = Team.create("api matrix")
    made = scored_prompt(team.dataset, "问题一", {"good": {"j1": 9}, "bad": {"j1": 3}})
    pair = imported_pair(team.dataset, made["good"], made["bad"])
    judge = Judge.objects.create(name="asked", base_url="http://127.0.0.1:9/v1", model="m")
    job = Job.objects.create(kind="import", dataset=team.dataset, params={"original_name": "x.jsonl"})
    model = RewardModel.objects.create(name="rm", backend=RewardModel.Backend.BUILTIN, trained_on=team.dataset)
    export = Export.objects.create(dataset=team.dataset, format="trl", files=[{"name": "pairs.jsonl", "kind": "data"}])
    directory = Path(settings.MEDIA_ROOT) / "exports" / str(export.pk)
    directory.mkdir(parents=True)
    (directory / "pairs.jsonl").write_text('{"prompt": "问题一"}\n', encoding="utf-8")
    export.params = {"out_dir": str(directory)}
    export.save(update_fields=["params"])
    other = scored_prompt(team.dataset, "问题二", {"good": {"j1": 8}, "bad": {"j1": 2}})
    decided = imported_pair(team.dataset, other["good"], other["bad"])
    batch = decisions.decide(team.dataset, [decided.pk], "discard", team.admin, "matrix")
    return {"team": team, "pair": pair, "judge": judge, "job": job, "model": model, "export": export, "batch": batch}


def _call(client, world, name, method, headers):
    team = world["team"]
    ds = team.dataset.pk
    args = {
        "api-dataset": [ds], "api-members": [ds], "api-imports": [ds], "api-pairs": [ds],
        "api-pair": [ds, world["pair"].pk], "api-reviews": [ds], "api-review-next": [ds], "api-scoring": [ds],
        "api-pair-builds": [ds], "api-reward-models": [ds], "api-reward-filter": [ds, world["model"].pk],
        "api-rejudge": [ds], "api-exports": [ds], "api-job": [world["job"].pk], "api-job-cancel": [world["job"].pk],
        "api-decisions": [ds], "api-decision": [ds, world["batch"].pk], "api-decision-undo": [ds, world["batch"].pk],
        "api-export": [world["export"].pk], "api-export-file": [world["export"].pk, "pairs.jsonl"],
        "api-member": [ds, team.viewer.username],
    }.get(name, [])
    url = reverse(name, args=args)
    if method == "GET":
        return client.get(url, **headers)
    if method == "DELETE":
        return client.delete(url, **headers)
    if name == "api-imports":
        upload = SimpleUploadedFile("p.jsonl", '{"prompt": "问", "chosen": "好", "rejected": "坏"}\n'.encode())
        return client.post(url, {"file": upload, "format": "auto"}, **headers)
    body = {
        "api-datasets": {"name": "another"},
        "api-members": {"username": team.outsider.username, "role": "viewer"},
        "api-reviews": {"pair": world["pair"].pk, "verdict": "a", "better_correct": True},
        "api-scoring": {"judges": [world["judge"].pk]},
        "api-pair-builds": {"threshold": 2.0, "min_judges": 1},
        "api-reward-models": {"name": "trained", "test_fraction": 0.5, "seed": 0},
        "api-reward-filter": {"mode": "apply", "threshold": 0.0},
        "api-rejudge": {"judge": world["judge"].pk, "limit": 10, "selection": "status=pending"},
        "api-exports": {"format": "trl", "statuses": ["pending", "kept"]},
        "api-decisions": {"action": "keep", "reason": "gap", "selection": "status=pending", "confirm": True},
    }.get(name, {})
    return client.post(url, body, content_type="application/json", **headers)


# (endpoint, method) -> expected status for admin, reviewer, viewer, outsider
MATRIX = {
    ("api-datasets", "GET"): (200, 200, 200, 200),
    ("api-datasets", "POST"): (403, 403, 403, 403),  # staff only
    ("api-dataset", "GET"): (200, 200, 200, 404),
    ("api-members", "GET"): (200, 403, 403, 404),
    ("api-members", "POST"): (200, 403, 403, 404),
    ("api-member", "DELETE"): (204, 403, 403, 404),
    ("api-imports", "POST"): (202, 403, 403, 404),
    ("api-jobs", "GET"): (200, 200, 200, 200),
    ("api-job", "GET"): (200, 200, 200, 404),
    ("api-job-cancel", "POST"): (200, 403, 403, 404),
    ("api-pairs", "GET"): (200, 200, 200, 404),
    ("api-pair", "GET"): (200, 200, 200, 404),
    ("api-reviews", "GET"): (200, 200, 200, 404),
    ("api-reviews", "POST"): (409, 409, 403, 404),  # 409: the queue did not hand this pair out
    ("api-review-next", "POST"): (200, 200, 403, 404),
    ("api-scoring", "POST"): (202, 403, 403, 404),
    ("api-pair-builds", "POST"): (202, 403, 403, 404),
    ("api-reward-models", "GET"): (200, 200, 200, 404),
    ("api-reward-models", "POST"): (202, 403, 403, 404),
    ("api-reward-filter", "POST"): (202, 403, 403, 404),
    ("api-rejudge", "POST"): (202, 403, 403, 404),
    ("api-decisions", "GET"): (200, 200, 200, 404),
    ("api-decisions", "POST"): (201, 403, 403, 404),
    ("api-decision", "GET"): (200, 200, 200, 404),
    ("api-decision-undo", "POST"): (200, 403, 403, 404),
    ("api-exports", "POST"): (202, 202, 403, 404),
    ("api-export", "GET"): (200, 200, 200, 404),
    ("api-export-file", "GET"): (200, 200, 200, 404),
}


@pytest.mark.parametrize("name,method", list(MATRIX))
@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
def test_access_matrix(client, world, name, method, role_index, role):
    _token, secret = create_token(getattr(world["team"], role), "matrix")
    response = _call(client, world, name, method, {"HTTP_AUTHORIZATION": f"Bearer {secret}"})
    expected = MATRIX[(name, method)][role_index]
    assert response.status_code == expected, (name, method, role, response.content[:300])
    if expected >= 400:
        assert "detail" in response.json()


@pytest.mark.parametrize("name,method", list(MATRIX))
def test_every_endpoint_refuses_a_call_without_a_token(client, world, name, method):
    response = _call(client, world, name, method, {})
    assert response.status_code == 401, (name, method)
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_session_is_no_way_around_csrf(world):
    """A logged-in browser may read the API, but an unsafe call needs the CSRF token like any form."""
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world["team"].admin)
    assert browser.get(reverse("api-datasets")).status_code == 200
    response = browser.post(reverse("api-job-cancel", args=[world["job"].pk]))
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    world["job"].refresh_from_db()
    assert not world["job"].cancel_requested


def test_a_started_job_is_the_one_the_page_would_start(client, world):
    """The API calls the pages' workflow: the import job's params are those of an upload on the page."""
    _token, secret = create_token(world["team"].admin, "import")
    response = _call(client, world, "api-imports", "POST", {"HTTP_AUTHORIZATION": f"Bearer {secret}"})
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "import" and job.dataset == world["team"].dataset and job.created_by == world["team"].admin
    assert job.params["original_name"] == "p.jsonl" and Path(job.params["path"]).read_text().startswith('{"prompt"')
    assert response["Location"] == reverse("api-job", args=[job.pk])


def test_a_member_is_removed_but_never_the_datasets_last_admin(client, world):
    team = world["team"]
    _token, secret = create_token(team.admin, "members")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    gone = client.delete(reverse("api-member", args=[team.dataset.pk, team.reviewer.username]), **headers)
    assert gone.status_code == 204
    assert not team.dataset.memberships.filter(user=team.reviewer).exists()
    last = client.delete(reverse("api-member", args=[team.dataset.pk, team.admin.username]), **headers)
    assert last.status_code == 409 and "at least one admin" in last.json()["detail"]
    assert team.dataset.memberships.filter(user=team.admin, role="admin").exists()
    missing = client.delete(reverse("api-member", args=[team.dataset.pk, "nobody-here"]), **headers)
    assert missing.status_code == 404
