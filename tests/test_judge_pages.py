"""The judges and rubrics pages: who may add, change and try a judge; the preview's real calls to the
loopback judge; rubric versions."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from annotation.models import Judge, Judgement, Rubric
from annotation.rubrics import DEFAULT_RUBRICS

from .helpers import Team
from .llm_server import LLMServer, Reply
from .test_scoring import make_responses

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def rubrics(db):
    for domain, text in DEFAULT_RUBRICS.items():
        Rubric.objects.get_or_create(domain=domain, version=1, defaults={"text": text})


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(username="staff", password="x", is_staff=True)


@pytest.fixture
def server():
    with LLMServer() as srv:
        yield srv


def judge_fields(server, **extra):
    return {"name": "loop", "family": "qwen", "provider": "openai", "base_url": server.base_url, "model": "loop-model",
            "api_key_env": "", "temperature": "0", "max_tokens": "256", "timeout_s": "10", "max_concurrency": "4",
            "price_input_per_m": "0", "price_output_per_m": "0", "is_active": "on", **extra}


# --- adding and changing a judge


def test_staff_add_a_judge_and_are_sent_to_its_page(client, staff, server):
    client.force_login(staff)
    response = client.post(reverse("judge-create"), judge_fields(server))
    judge = Judge.objects.get(name="loop")
    assert response.status_code == 302 and response["Location"] == reverse("judge-edit", args=[judge.pk])
    assert judge.base_url == server.base_url and judge.max_concurrency == 4


def test_a_judge_naming_a_secret_that_is_no_provider_key_is_refused(client, staff, server):
    client.force_login(staff)
    response = client.post(reverse("judge-create"), judge_fields(server, api_key_env="DJANGO_SECRET_KEY"))
    assert response.status_code == 400
    assert "COIGP_JUDGE_KEY_" in response.content.decode()
    assert not Judge.objects.exists()


def test_a_pasted_key_is_refused_and_not_echoed_whole(client, staff, server):
    client.force_login(staff)
    response = client.post(reverse("judge-create"), judge_fields(server, api_key_env="sk-abcdef0123456789secret"))
    assert response.status_code == 400
    assert "never the key itself" in response.content.decode()
    assert not Judge.objects.exists()


def test_a_base_url_without_a_model_is_refused(client, staff, server):
    client.force_login(staff)
    response = client.post(reverse("judge-create"), judge_fields(server, model=""))
    assert response.status_code == 400 and not Judge.objects.exists()


def test_staff_change_a_judge(client, staff, server):
    judge = Judge.objects.create(name="loop", base_url=server.base_url, model="m")
    client.force_login(staff)
    response = client.post(reverse("judge-edit", args=[judge.pk]), judge_fields(server, model="other", max_tokens="64"))
    assert response.status_code == 302
    judge.refresh_from_db()
    assert judge.model == "other" and judge.max_tokens == 64


# --- the preview


def test_the_preview_shows_raw_answers_escaped_and_parsed_scores_and_stores_nothing(client, team, rubrics, server):
    make_responses(team.dataset, ["第一个回答", "第二个回答", "HOSTILE 回答", "第四个", "第五个", "第六个"])
    server.when("HOSTILE", Reply(content=f"分析：{HOSTILE}\n总体评分：[3]"))
    server.when("第二个回答", Reply(content="这个回答还可以，但我不打分。"))
    judge = Judge.objects.create(name="loop", base_url=server.base_url, model="m")
    client.force_login(team.admin)
    response = client.post(reverse("judge-preview", args=[judge.pk]), {"dataset": team.dataset.pk, "domain": "chat"})
    assert response.status_code == 200
    html = response.content.decode()
    assert server.requests == 5  # bounded: five of the six responses
    assert html.count('class="preview-row"') == 5
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html and HOSTILE not in html
    rows = response.context["preview_rows"]
    assert [r.parsed.score for r in rows] == [7.0, None, 3.0, 7.0, 7.0]
    assert rows[1].parsed.status == "parse_error" and "No score could be parsed" in html
    assert "the judge gives no overall score" in html
    # The rubric sent is the domain's latest, and the request is a real one the judge recorded.
    assert "你是一名严格、公正的中文大模型回答评审员" in server.bodies[0]
    assert Judgement.objects.count() == 0


def test_the_preview_as_htmx_returns_its_fragment(client, team, rubrics, server):
    make_responses(team.dataset, ["回答"])
    judge = Judge.objects.create(name="loop", base_url=server.base_url, model="m")
    client.force_login(team.admin)
    response = client.post(reverse("judge-preview", args=[judge.pk]), {"dataset": team.dataset.pk},
                           headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and 'id="judge-preview"' in html
    assert '<strong class="score">7</strong>' in html


def test_the_preview_says_when_the_key_variable_is_unset_and_sends_nothing(client, team, rubrics, server, monkeypatch):
    monkeypatch.delenv("COIGP_JUDGE_KEY_PREVIEW_TEST", raising=False)
    make_responses(team.dataset, ["回答"])
    judge = Judge.objects.create(name="loop", base_url=server.base_url, model="m", api_key_env="COIGP_JUDGE_KEY_PREVIEW_TEST")
    client.force_login(team.admin)
    page = client.get(reverse("judge-edit", args=[judge.pk])).content.decode()
    assert "COIGP_JUDGE_KEY_PREVIEW_TEST is not set in the web process" in page
    assert "where the worker runs" in page
    response = client.post(reverse("judge-preview", args=[judge.pk]), {"dataset": team.dataset.pk})
    assert response.context["preview_error"] == ("Nothing was sent: the environment variable "
                                                 "COIGP_JUDGE_KEY_PREVIEW_TEST is not set in the web process.")
    assert server.requests == 0


def test_the_preview_sends_the_key_from_the_environment(client, team, rubrics, monkeypatch):
    monkeypatch.setenv("COIGP_JUDGE_KEY_PREVIEW_TEST", "sk-loop")
    make_responses(team.dataset, ["回答"])
    with LLMServer(api_key="sk-loop") as server:
        judge = Judge.objects.create(name="loop", base_url=server.base_url, model="m",
                                     api_key_env="COIGP_JUDGE_KEY_PREVIEW_TEST")
        client.force_login(team.admin)
        response = client.post(reverse("judge-preview", args=[judge.pk]), {"dataset": team.dataset.pk})
    assert response.context["preview_rows"][0].parsed.score == 7.0
    assert "sk-loop" not in response.content.decode()


def test_a_provider_error_is_shown_per_response_without_a_score(client, team, rubrics, server):
    make_responses(team.dataset, ["BAD 回答", "好回答"])
    server.when("BAD", Reply(status=400, error="model does not exist"))
    judge = Judge.objects.create(name="loop", base_url=server.base_url, model="m")
    client.force_login(team.admin)
    response = client.post(reverse("judge-preview", args=[judge.pk]), {"dataset": team.dataset.pk})
    rows = response.context["preview_rows"]
    assert "model does not exist" in rows[0].error and rows[0].parsed is None
    assert rows[1].parsed.score == 7.0


def test_a_judge_that_hangs_is_cut_at_its_timeout(client, team, rubrics, server):
    make_responses(team.dataset, ["HANG 回答"])
    server.when("HANG", Reply(hang=True))
    judge = Judge.objects.create(name="loop", base_url=server.base_url, model="m", timeout_s=0.5)
    client.force_login(team.admin)
    response = client.post(reverse("judge-preview", args=[judge.pk]), {"dataset": team.dataset.pk})
    row = response.context["preview_rows"][0]
    assert "no answer within 0.5 s" in row.error and row.parsed is None


def test_a_dataset_the_user_does_not_administer_cannot_be_previewed(client, team, rubrics, server):
    other = Team.create("other")
    make_responses(other.dataset, ["秘密回答"])
    judge = Judge.objects.create(name="loop", base_url=server.base_url, model="m")
    client.force_login(team.admin)
    response = client.post(reverse("judge-preview", args=[judge.pk]), {"dataset": other.dataset.pk})
    assert response.status_code == 400 and server.requests == 0


def test_staff_who_administer_no_dataset_are_told_why_they_cannot_try_a_judge(client, staff, server, team):
    judge = Judge.objects.create(name="loop", base_url=server.base_url, model="m")
    client.force_login(staff)
    assert 'id="no-dataset"' in client.get(reverse("judge-edit", args=[judge.pk])).content.decode()
    client.force_login(team.admin)
    assert 'id="no-dataset"' not in client.get(reverse("judge-edit", args=[judge.pk])).content.decode()


# --- rubrics


def test_editing_a_rubric_adds_a_version_and_keeps_the_history(client, staff, rubrics):
    client.force_login(staff)
    url = reverse("rubric-edit", args=["math"])
    new_text = DEFAULT_RUBRICS["math"] + "\n补充：请特别检查单位。"
    response = client.post(url, {"text": new_text})
    assert response.status_code == 302
    versions = list(Rubric.objects.filter(domain="math").values_list("version", "text"))
    assert versions == [(2, new_text), (1, DEFAULT_RUBRICS["math"])]
    assert Rubric.objects.get(domain="math", version=2).created_by == staff
    page = client.get(url).content.decode()
    assert 'data-version="2"' in page and 'data-version="1"' in page


def test_saving_the_same_rubric_text_adds_no_version(client, staff, rubrics):
    client.force_login(staff)
    response = client.post(reverse("rubric-edit", args=["chat"]), {"text": DEFAULT_RUBRICS["chat"]})
    assert response.status_code == 400
    assert Rubric.objects.filter(domain="chat").count() == 1


def test_a_rubric_without_a_bracketed_score_is_refused(client, staff, rubrics):
    client.force_login(staff)
    response = client.post(reverse("rubric-edit", args=["chat"]), {"text": "请评分。"})
    assert response.status_code == 400 and Rubric.objects.filter(domain="chat").count() == 1


def test_an_unknown_domain_is_404(client, staff):
    client.force_login(staff)
    assert client.get(reverse("rubric-edit", args=["nope"])).status_code == 404


# --- who may do what: staff change; dataset admins look and try; everyone else is refused

ROLES = ["staff", "admin", "reviewer", "viewer", "outsider"]
MATRIX = {
    ("judge-list", "GET"): (200, 200, 403, 403, 403),
    ("judge-create", "GET"): (200, 403, 403, 403, 403),
    ("judge-create", "POST"): (302, 403, 403, 403, 403),
    ("judge-edit", "GET"): (200, 200, 403, 403, 403),
    ("judge-edit", "POST"): (302, 403, 403, 403, 403),
    ("judge-preview", "POST"): (400, 200, 403, 403, 403),  # staff administer no dataset here
    ("rubric-list", "GET"): (200, 200, 403, 403, 403),
    ("rubric-edit", "GET"): (200, 200, 403, 403, 403),
    ("rubric-edit", "POST"): (302, 403, 403, 403, 403),
}


@pytest.mark.parametrize(("name", "method"), list(MATRIX))
def test_access_matrix(client, team, staff, rubrics, server, name, method):
    make_responses(team.dataset, ["回答"])
    judge = Judge.objects.create(name="existing", base_url=server.base_url, model="m")
    args = {"judge-edit": [judge.pk], "judge-preview": [judge.pk], "rubric-edit": ["chat"]}.get(name, [])
    data = {"judge-create": judge_fields(server), "judge-edit": judge_fields(server, name="existing"),
            "judge-preview": {"dataset": team.dataset.pk}, "rubric-edit": {"text": "新的评分标准 [7]"}}.get(name, {})
    users = {"staff": staff, "admin": team.admin, "reviewer": team.reviewer, "viewer": team.viewer,
             "outsider": team.outsider}
    for role, expected in zip(ROLES, MATRIX[(name, method)]):
        client.force_login(users[role])
        url = reverse(name, args=args)
        response = client.get(url) if method == "GET" else client.post(url, data)
        assert response.status_code == expected, f"{role} {method} {name}: {response.status_code}"
        Judge.objects.filter(name="loop").delete()


def test_anonymous_users_are_sent_to_log_in(client, server, db):
    judge = Judge.objects.create(name="existing", base_url=server.base_url, model="m")
    for url in (reverse("judge-list"), reverse("judge-edit", args=[judge.pk]), reverse("rubric-list")):
        assert client.get(url).status_code == 302
    assert client.post(reverse("judge-preview", args=[judge.pk])).status_code == 302


def test_the_preview_needs_a_csrf_token(team, server, rubrics):
    from django.test import Client

    judge = Judge.objects.create(name="existing", base_url=server.base_url, model="m")
    client = Client(enforce_csrf_checks=True)
    client.force_login(team.admin)
    response = client.post(reverse("judge-preview", args=[judge.pk]), {"dataset": team.dataset.pk})
    assert response.status_code == 403 and server.requests == 0


def test_wrong_methods_are_405(client, staff, server):
    judge = Judge.objects.create(name="existing", base_url=server.base_url, model="m")
    client.force_login(staff)
    assert client.get(reverse("judge-preview", args=[judge.pk])).status_code == 405
    assert client.post(reverse("judge-list")).status_code == 405
