"""Starting scoring from the dataset page and the Django admin; the job page's labels."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from annotation.models import Job, Judge, Membership, Pair, Role, Rubric
from annotation.rubrics import DEFAULT_RUBRICS

from .helpers import PASSWORD, Team
from .llm_server import LLMServer, Reply
from .test_scoring import make_responses


@pytest.fixture
def world(db):
    for domain, text in DEFAULT_RUBRICS.items():
        Rubric.objects.get_or_create(domain=domain, version=1, defaults={"text": text})
    team = Team.create()
    judge = Judge.objects.create(name="loop", base_url="http://127.0.0.1:9/v1", model="m")
    return team, judge


def login(client, user):
    client.force_login(user)


@pytest.mark.parametrize("role, status", [("admin", 200), ("reviewer", 403), ("viewer", 403), ("outsider", 404)])
def test_only_dataset_admins_reach_the_score_page(client, world, role, status):
    team, judge = world
    login(client, getattr(team, role))
    url = reverse("score-start", args=[team.dataset.pk])
    assert client.get(url).status_code == status
    assert client.post(url, {"judges": [judge.pk]}).status_code == (302 if status == 200 else status)
    assert Job.objects.filter(kind="score").exists() == (status == 200)


def test_anonymous_users_are_sent_to_login_from_the_score_page(client, world):
    team, _ = world
    response = client.get(reverse("score-start", args=[team.dataset.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_score_page_starts_a_job_and_redirects_to_it(client, world, django_capture_on_commit_callbacks):
    team, judge = world
    Judge.objects.create(name="imported-only")
    login(client, team.admin)
    page = client.get(reverse("score-start", args=[team.dataset.pk]))
    assert b"imported-only" not in page.content and b"loop" in page.content
    response = client.post(reverse("score-start", args=[team.dataset.pk]),
                           {"judges": [judge.pk], "domains": ["math", "code"], "rescore": "on"})
    job = Job.objects.get(kind="score")
    assert response.status_code == 302 and response["Location"] == reverse("job-detail", args=[job.pk])
    assert job.params["judge_ids"] == [judge.pk] and job.params["rescore"] is True
    assert set(job.params["rubrics"]) == {"math", "code"} and job.created_by == team.admin


def test_the_score_form_names_what_is_wrong(client, world):
    team, _ = world
    login(client, team.admin)
    response = client.post(reverse("score-start", args=[team.dataset.pk]), {"judges": [], "rubric_version": "7"})
    assert response.status_code == 400
    assert b"This field is required" in response.content and b"No rubric has version 7" in response.content
    assert not Job.objects.exists()


def test_the_score_button_is_shown_to_admins_only(client, world):
    team, _ = world
    login(client, team.admin)
    assert b'id="score-responses"' in client.get(reverse("dataset-detail", args=[team.dataset.pk])).content
    login(client, team.reviewer)
    assert b'id="score-responses"' not in client.get(reverse("dataset-detail", args=[team.dataset.pk])).content


def test_the_job_page_labels_scoring_counts(client, world):
    team, _ = world
    job = Job.objects.create(kind="score", dataset=team.dataset, status=Job.Status.RUNNING, total=10, done=4,
                             params={"judges": ["loop"]},
                             counts={"ok": 2, "parse_error": 1, "refused": 1, "error": 0, "cached": 3, "cost": 0.0123})
    login(client, team.viewer)
    content = client.get(reverse("job-detail", args=[job.pk]), HTTP_HX_REQUEST="true").content.decode()
    for label in ("Scored", "Parse errors", "Refusals", "From the cache", "Cost", "0.0123"):
        assert label in content
    assert "<html" not in content


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


def test_the_admin_test_connection_action_shows_the_answer_or_the_exact_error(client, superuser, world):
    _, judge = world
    with LLMServer() as server:
        server.default = Reply(content="OK")
        good = Judge.objects.create(name="good", base_url=server.base_url, model="m")
        login(client, superuser)
        url = reverse("admin:annotation_judge_changelist")
        response = client.post(url, {"action": "test_connection", "_selected_action": [good.pk]}, follow=True)
        text = response.content.decode()
        assert "Good answered in" in text and "&#x27;OK&#x27;" in text
        server.default = Reply(status=404, error="The model `m` does not exist")
        response = client.post(url, {"action": "test_connection", "_selected_action": [good.pk]}, follow=True)
        text = response.content.decode()
        assert "HTTP 404" in text and "does not exist" in text


def test_editing_a_rubric_in_the_admin_saves_a_new_version(client, superuser, world):
    login(client, superuser)
    v1 = Rubric.objects.get(domain="math", version=1)
    response = client.post(reverse("admin:annotation_rubric_change", args=[v1.pk]), {"text": "新的数学评分标准"})
    assert response.status_code == 302
    v1.refresh_from_db()
    assert v1.text == DEFAULT_RUBRICS["math"]
    v2 = Rubric.objects.get(domain="math", version=2)
    assert v2.text == "新的数学评分标准" and v2.created_by == superuser


def test_the_admin_score_action_starts_a_job_for_the_selected_responses(client, world):
    team, judge = world
    responses = make_responses(team.dataset, ["一", "二", "三"])
    team.admin.is_staff = True
    team.admin.save()
    team.admin.user_permissions.add(Permission.objects.get(codename="view_response"))
    login(client, team.admin)
    url = reverse("admin:annotation_response_changelist")
    selected = [responses[0].pk, responses[2].pk]
    form = client.post(url, {"action": "score_selected", "_selected_action": selected})
    assert form.status_code == 200 and b"score-action-form" in form.content
    response = client.post(url, {"action": "score_selected", "_selected_action": selected, "apply": "1",
                                 "judges": [judge.pk], "force": "on"}, follow=True)
    job = Job.objects.get(kind="score")
    assert sorted(job.params["response_ids"]) == sorted(selected) and job.params["force"] is True
    assert "Scoring job" in response.content.decode()


def test_the_admin_score_action_refuses_datasets_the_user_does_not_administer(client, world):
    team, judge = world
    responses = make_responses(team.dataset, ["一"])
    Pair.objects.create(dataset=team.dataset, prompt=responses[0].prompt, domain="chat", chosen=responses[0],
                        rejected=make_responses(team.dataset, ["二"])[0])
    team.reviewer.is_staff = True
    team.reviewer.save()
    team.reviewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_pair", "change_pair"]))
    login(client, team.reviewer)
    response = client.post(reverse("admin:annotation_pair_changelist"),
                           {"action": "score_selected", "_selected_action": [Pair.objects.get().pk], "apply": "1",
                            "judges": [judge.pk]}, follow=True)
    assert not Job.objects.exists()
    assert any("not an admin of" in str(m) for m in get_messages(response.wsgi_request))
    assert Membership.objects.get(user=team.reviewer).role == Role.REVIEWER


def test_the_judge_admin_refuses_an_api_key_pasted_as_the_variable_name(client, superuser, db):
    login(client, superuser)
    data = {"name": "ds", "family": "deepseek", "base_url": "https://api.deepseek.com/v1", "model": "deepseek-chat",
            "api_key_env": "sk-1234567890abcdef", "temperature": "0", "max_tokens": "1024", "timeout_s": "120",
            "max_concurrency": "16", "price_input_per_m": "0", "price_output_per_m": "0", "is_active": "on"}
    response = client.post(reverse("admin:annotation_judge_add"), data)
    assert response.status_code == 200 and b"never the key itself" in response.content
    assert b"1234567890abcdef" not in response.content.split(b"errorlist")[1][:300]
    assert not Judge.objects.filter(name="ds").exists()
    data["api_key_env"] = "COIGP_JUDGE_KEY_DEEPSEEK"
    assert client.post(reverse("admin:annotation_judge_add"), data).status_code == 302
    assert Judge.objects.get(name="ds").api_key_env == "COIGP_JUDGE_KEY_DEEPSEEK"


@pytest.mark.parametrize("secret", ["DJANGO_SECRET_KEY", "DATABASE_URL", "HF_TOKEN", "DEEPSEEK_API_KEY"])
def test_the_judge_admin_accepts_only_variables_marked_as_provider_keys(client, superuser, db, secret):
    login(client, superuser)
    data = {"name": "ds", "family": "deepseek", "base_url": "https://attacker.example/v1", "model": "m",
            "api_key_env": secret, "temperature": "0", "max_tokens": "1024", "timeout_s": "120",
            "max_concurrency": "16", "price_input_per_m": "0", "price_output_per_m": "0", "is_active": "on"}
    response = client.post(reverse("admin:annotation_judge_add"), data)
    assert response.status_code == 200 and b"is not marked as a provider API key variable" in response.content
    assert b"COIGP_JUDGE_KEY_" in response.content
    assert not Judge.objects.filter(name="ds").exists()


def test_an_operator_can_allow_one_more_variable_by_name(client, superuser, db, settings):
    settings.PROVIDER_KEY_ENV_ALLOWED = ["DEEPSEEK_API_KEY"]
    login(client, superuser)
    data = {"name": "ds", "family": "deepseek", "base_url": "https://api.deepseek.com/v1", "model": "m",
            "api_key_env": "DEEPSEEK_API_KEY", "temperature": "0", "max_tokens": "1024", "timeout_s": "120",
            "max_concurrency": "16", "price_input_per_m": "0", "price_output_per_m": "0", "is_active": "on"}
    assert client.post(reverse("admin:annotation_judge_add"), data).status_code == 302


def test_test_connection_never_sends_a_server_secret_a_judge_names(client, superuser, world, monkeypatch):
    # A judge stored before the rule (or written straight to the database) that names the server's own
    # secret: the request is not sent and the admin reads why.
    monkeypatch.setenv("DJANGO_SECRET_KEY", "the-servers-own-secret")
    with LLMServer(api_key="the-servers-own-secret") as server:
        server.default = Reply(content="OK")
        thief = Judge.objects.create(name="thief", base_url=server.base_url, model="m", api_key_env="DJANGO_SECRET_KEY")
        login(client, superuser)
        url = reverse("admin:annotation_judge_changelist")
        response = client.post(url, {"action": "test_connection", "_selected_action": [thief.pk]}, follow=True)
        requests = server.requests
    text = response.content.decode()
    assert "DJANGO_SECRET_KEY is not marked as a provider API key variable" in text
    assert "answered in" not in text and "the-servers-own-secret" not in text
    assert requests == 0


def test_the_judge_admin_saves_the_provider_and_refuses_one_that_is_not_registered(client, superuser, db):
    login(client, superuser)
    data = {"name": "claude", "family": "claude", "provider": "anthropic", "base_url": "https://api.anthropic.com/v1",
            "model": "claude-sonnet-4-5", "api_key_env": "COIGP_JUDGE_KEY_CLAUDE", "temperature": "0",
            "max_tokens": "1024", "timeout_s": "120", "max_concurrency": "16", "price_input_per_m": "0",
            "price_output_per_m": "0", "is_active": "on"}
    add = reverse("admin:annotation_judge_add")
    page = client.get(add).content.decode()
    assert '<option value="openai" selected>' in page and '<option value="anthropic">' in page
    response = client.post(add, {**data, "provider": "gemini"})
    assert response.status_code == 200 and "Select a valid choice. gemini is not one of" in response.content.decode()
    assert not Judge.objects.filter(name="claude").exists()
    assert client.post(add, data).status_code == 302
    assert Judge.objects.get(name="claude").provider == "anthropic"


def test_the_admin_test_connection_action_speaks_each_judges_api(client, superuser, world, monkeypatch):
    monkeypatch.setenv("COIGP_JUDGE_KEY_CLAUDE", "sk-ant-loop")
    with LLMServer(api="anthropic", api_key="sk-ant-loop") as server:
        server.default = Reply(content="OK")
        claude = Judge.objects.create(name="claude", provider="anthropic", base_url=server.base_url, model="m",
                                      api_key_env="COIGP_JUDGE_KEY_CLAUDE")
        login(client, superuser)
        response = client.post(reverse("admin:annotation_judge_changelist"),
                               {"action": "test_connection", "_selected_action": [claude.pk]}, follow=True)
        requests = server.requests
    text = response.content.decode()
    assert "Claude answered in" in text and "&#x27;OK&#x27;" in text and requests == 1
