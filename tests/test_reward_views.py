"""Reward-model pages: who may train, score, apply and unfilter (admins), who may look at the what-if
view (every member), what it shows, and the dataset page's section."""

import pytest
from django.urls import reverse

from annotation import jobs
from annotation.models import Dataset, Job, Judge, Pair, RewardScore
from annotation.reward.filtering import filter_params

from .helpers import Team
from .reward_data import import_lines, learnable_lines, media_root, random_model  # noqa: F401

ROLES = ["admin", "reviewer", "viewer", "outsider"]


@pytest.fixture
def world(db, tmp_path):
    team = Team.create()
    import_lines(team.dataset, learnable_lines(n_prompts=24, pairs_per_prompt=2), tmp_path / "pairs.jsonl")
    model = random_model("rm", team.dataset)
    return team, model


def _score(team, model):
    job = Job.objects.create(kind="reward_filter", dataset=team.dataset, params=filter_params(model, mode="score"))
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED


MATRIX = {
    ("reward-what-if", "GET"): (200, 200, 200, 404),
    ("reward-score", "POST"): (302, 403, 403, 404),
    ("reward-apply", "POST"): (302, 403, 403, 404),
    ("reward-unfilter", "POST"): (302, 403, 403, 404),
    ("reward-train", "POST"): (302, 403, 403, 404),
    ("reward-score", "GET"): (405, 405, 405, 405),
    ("reward-train", "GET"): (405, 405, 405, 405),
    ("reward-what-if", "POST"): (405, 405, 405, 405),
    ("reward-leaderboard", "GET"): (200, 200, 200, 404),
    ("reward-leaderboard", "POST"): (405, 405, 405, 405),
    ("reward-pairwise", "POST"): (302, 403, 403, 404),
    ("reward-pairwise", "GET"): (405, 405, 405, 405),
}
DATASET_ONLY = ("reward-train", "reward-leaderboard", "reward-pairwise")


@pytest.mark.parametrize(("name", "method"), list(MATRIX))
def test_every_reward_view_checks_the_role(world, client, name, method):
    team, model = world
    kwargs = {"pk": team.dataset.pk} if name in DATASET_ONLY else {"pk": team.dataset.pk, "model_pk": model.pk}
    url = reverse(name, kwargs=kwargs)
    judge = Judge.objects.get_or_create(name="ab", defaults={"base_url": "http://127.0.0.1:9/v1", "model": "m"})[0]
    data = {"reward-train": {"name": "web", "test_fraction": "0.5", "seed": "0"},
            "reward-apply": {"threshold": "0"}, "reward-pairwise": {"judge": judge.pk}}.get(name, {})
    for role, expected in zip(ROLES, MATRIX[(name, method)]):
        client.force_login(getattr(team, role))
        response = client.get(url) if method == "GET" else client.post(url, data)
        assert response.status_code == expected, (role, name, method)


def test_anonymous_users_are_sent_to_log_in(world, client):
    team, model = world
    response = client.get(reverse("reward-what-if", args=[team.dataset.pk, model.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_model_trained_on_a_dataset_the_user_cannot_see_is_hidden(world, client, tmp_path):
    team, _ = world
    secret = Dataset.objects.create(name="secret")
    hidden = random_model("secretmodel", secret)
    client.force_login(team.admin)
    assert client.get(reverse("reward-what-if", args=[team.dataset.pk, hidden.pk])).status_code == 404
    assert client.post(reverse("reward-apply", args=[team.dataset.pk, hidden.pk]), {"threshold": 0}).status_code == 404
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    assert "secretmodel" not in page and "rm</strong> v1" in page


def test_the_buttons_start_jobs_with_their_settings(world, client):
    team, model = world
    client.force_login(team.admin)
    response = client.post(reverse("reward-apply", args=[team.dataset.pk, model.pk]), {"threshold": "-0.25"})
    job = Job.objects.get(kind="reward_filter")
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    assert job.params == {"reward_model": model.pk, "mode": "apply", "threshold": -0.25}
    assert job.created_by == team.admin
    client.post(reverse("reward-train", args=[team.dataset.pk]), {"name": "mine", "test_fraction": "0.3", "seed": "4"})
    train = Job.objects.get(kind="train_reward_model")
    assert (train.params["name"], train.params["test_fraction"], train.params["seed"]) == ("mine", 0.3, 4)


def test_bad_form_input_is_refused_with_the_field_named(world, client):
    team, model = world
    client.force_login(team.admin)
    response = client.post(reverse("reward-train", args=[team.dataset.pk]),
                           {"name": " ", "test_fraction": "1.5", "seed": "0"})
    assert response.status_code == 400
    assert response.context["form"].errors.keys() == {"name", "test_fraction"}
    response = client.post(reverse("reward-apply", args=[team.dataset.pk, model.pk]), {"threshold": "abc"})
    assert response.status_code == 400 and "threshold" in response.context["form"].errors
    assert not Job.objects.exclude(kind__in=["import", "near_duplicates", "search_index"]).exists()


def test_what_if_asks_for_scores_first(world, client):
    team, model = world
    client.force_login(team.viewer)
    page = client.get(reverse("reward-what-if", args=[team.dataset.pk, model.pk])).content.decode()
    assert 'id="what-if-empty"' in page
    assert "what-if-actions" not in page


def test_what_if_shows_survivors_per_threshold_from_the_stored_rewards(world, client):
    team, model = world
    _score(team, model)
    rewards = dict(RewardScore.objects.values_list("response_id", "reward"))
    pairs = list(Pair.objects.all())
    client.force_login(team.reviewer)
    response = client.get(reverse("reward-what-if", args=[team.dataset.pk, model.pk]), {"threshold": "0.3"})
    ctx = response.context["result"]
    by_domain = {d["domain"]: d for d in ctx["domains"]}
    assert by_domain["all"]["scored"] == len(pairs)
    for row in by_domain["all"]["survive"]:
        expected = sum(rewards[p.chosen_id] - rewards[p.rejected_id] > row["threshold"] for p in pairs)
        assert row["kept"] == expected, row
    assert 0.3 in ctx["thresholds"]
    for domain in ("chat", "code", "math", "logic", "novel", "role"):
        expected = sum(1 for p in pairs if p.domain == domain)
        assert by_domain[domain]["scored"] == expected
        assert sum(b["n"] for b in by_domain[domain]["bars"]) == expected
    html = response.content.decode()
    assert html.count("<svg") == 7 and 'data-threshold="0.3"' in html
    assert "what-if-actions" not in html  # reviewers look; admins act


def test_what_if_recomputes_as_an_htmx_fragment(world, client):
    team, model = world
    _score(team, model)
    client.force_login(team.admin)
    response = client.get(reverse("reward-what-if", args=[team.dataset.pk, model.pk]), {"threshold": "-0.5"},
                          HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<div id="what-if-result"') and 'data-threshold="-0.5"' in html


def test_the_dataset_page_lists_models_with_accuracy_and_admin_buttons(world, client):
    team, model = world
    model.metrics = {"held_out": {"overall": {"n": 40, "accuracy": 0.875, "longer_wins": 0.55, "random": 0.5},
                                  "by_domain": {"math": {"n": 8, "accuracy": 0.75, "longer_wins": 0.5, "random": 0.5}}}}
    model.save(update_fields=["metrics"])
    client.force_login(team.admin)
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    assert "0.875" in page and "0.550" in page and "0.750" in page
    assert reverse("reward-unfilter", args=[team.dataset.pk, model.pk]) in page
    assert 'id="reward-train-form"' in page
    client.force_login(team.viewer)
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    assert "0.875" in page and reverse("reward-what-if", args=[team.dataset.pk, model.pk]) in page
    assert reverse("reward-unfilter", args=[team.dataset.pk, model.pk]) not in page
    assert 'id="reward-train-form"' not in page
