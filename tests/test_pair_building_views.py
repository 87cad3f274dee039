"""The pair-building pages: the build form, the run history, and their permissions."""

import pytest
from django.urls import reverse

from annotation.models import Job, PairBuildRun
from annotation.pairing import BuildParams, start_build

from .judged import scored_prompt

ROLES = ["admin", "reviewer", "viewer", "outsider"]
FORM = {"aggregate": "mean", "normalise": "none", "min_judges": 2, "threshold": 2.0, "strategy": "all", "k": 1,
        "seed": 0}


@pytest.fixture
def scored(team):
    scored_prompt(team.dataset, "怎么学好数学？", {"A": {"gpt-4o": 9, "glm-4": 8}, "B": {"gpt-4o": 4, "glm-4": 3}})
    return team


# (view, method) -> expected status for admin, reviewer, viewer, outsider
MATRIX = {
    ("build-pairs", "POST"): (302, 403, 403, 404),
    ("build-runs", "GET"): (200, 200, 200, 404),
}


@pytest.mark.parametrize("view,method", list(MATRIX))
@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
def test_access_matrix(client, scored, view, method, role_index, role, django_capture_on_commit_callbacks):
    client.force_login(getattr(scored, role))
    url = reverse(view, args=[scored.dataset.pk])
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url, FORM) if method == "POST" else client.get(url)
    assert response.status_code == MATRIX[(view, method)][role_index]
    if response.status_code == 302:
        job = Job.objects.get(kind="build_pairs")
        assert response["Location"] == reverse("job-detail", args=[job.pk])
    else:
        assert not Job.objects.filter(kind="build_pairs").exists()


def test_anonymous_users_are_sent_to_login(client, scored):
    for name in ("build-pairs", "build-runs"):
        response = client.get(reverse(name, args=[scored.dataset.pk]))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_starting_a_build_needs_post(client, scored):
    client.force_login(scored.admin)
    assert client.get(reverse("build-pairs", args=[scored.dataset.pk])).status_code == 405
    assert client.post(reverse("build-runs", args=[scored.dataset.pk])).status_code == 405


def test_the_form_starts_a_job_with_the_chosen_parameters(client, scored, django_capture_on_commit_callbacks):
    client.force_login(scored.admin)
    data = {**FORM, "judges": ["gpt-4o"], "min_judges": 1, "threshold": 1.5, "strategy": "random", "k": 3,
            "seed": 7, "max_pairs_per_prompt": 5, "domains": ["math", "chat"], "normalise": "zscore"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(reverse("build-pairs", args=[scored.dataset.pk]), data)
    job = Job.objects.get(kind="build_pairs")
    assert len(callbacks) == 1, "the job is enqueued once the request's transaction commits"
    assert BuildParams.from_dict(job.params) == BuildParams(
        judges=("gpt-4o",), min_judges=1, threshold=1.5, strategy="random", k=3, seed=7, max_pairs_per_prompt=5,
        domains=("math", "chat"), normalise="zscore",
    )
    assert (job.dataset, job.created_by, job.unit) == (scored.dataset, scored.admin, "prompts")


@pytest.mark.parametrize("change,message", [
    ({"threshold": -1}, "greater than or equal to 0"),
    ({"strategy": "top"}, "Select a valid choice"),
    ({"judges": ["nobody"]}, "Select a valid choice"),
    ({"min_judges": 3}, "Minimum judges is 3 but only 2 judge(s) are selected."),
])
def test_a_bad_form_is_shown_again_with_the_reason(client, scored, change, message):
    client.force_login(scored.admin)
    response = client.post(reverse("build-pairs", args=[scored.dataset.pk]), {**FORM, **change})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Job.objects.exists()


def test_a_second_build_while_one_is_under_way_goes_to_the_running_job(client, scored):
    running = start_build(scored.dataset, BuildParams(), enqueue=False)
    client.force_login(scored.admin)
    response = client.post(reverse("build-pairs", args=[scored.dataset.pk]), FORM)
    assert response["Location"] == reverse("job-detail", args=[running.pk])
    assert Job.objects.filter(kind="build_pairs").count() == 1


def test_only_admins_see_the_build_form_and_everyone_sees_the_history(client, scored):
    run = PairBuildRun.objects.create(
        dataset=scored.dataset, params={**BuildParams().to_dict(), "judges": ["gpt-4o", "glm-4"]},
        counts={"prompts_considered": 12, "pairs_created": 34, "pairs_in_run": 34},
    )
    form_action = reverse("build-pairs", args=[scored.dataset.pk])
    for role, sees_form in (("admin", True), ("reviewer", False), ("viewer", False)):
        client.force_login(getattr(scored, role))
        for name in ("dataset-detail", "build-runs"):
            url = reverse(name, args=[scored.dataset.pk])
            page = client.get(url).content.decode()
            assert (form_action in page) is sees_form, (role, name)
            assert f'data-run="{run.pk}"' in page and "gpt-4o, glm-4" in page
            assert reverse("judgements-download", args=[scored.dataset.pk]) in page


def test_the_job_page_of_a_build_links_to_the_run_history(client, scored):
    job = start_build(scored.dataset, BuildParams(), enqueue=False)
    client.force_login(scored.viewer)
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert reverse("build-runs", args=[scored.dataset.pk]) in page
