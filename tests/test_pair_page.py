"""The pair page: what it shows, who sees it, and its admin actions (rescore, rebuild, unfilter)."""

import pytest
from django.urls import reverse

from annotation.models import Job, Judge, Judgement, Pair, PairBuildRun, RewardModel, RewardScore, Rubric
from annotation.pairing import BuildParams
from annotation.rubrics import DEFAULT_RUBRICS
from review.models import Review, ReviewEvent

from .judged import judge, scored_prompt
from .pair_data import make_pair

ROLES = ["admin", "reviewer", "viewer", "outsider"]


@pytest.fixture
def world(team):
    for domain, text in DEFAULT_RUBRICS.items():
        Rubric.objects.get_or_create(domain=domain, version=1, defaults={"text": text})
    pair = make_pair(
        team.dataset, "求 $\\int_0^1 x\\,dx$ 的值", "答案是 $\\frac{1}{2}$。\n\n```python\nprint(1/2)\n```",
        "答案是 1。", domain="math", system="你是一个数学老师。",
        history=[{"role": "user", "content": "我们来做积分题。"}, {"role": "assistant", "content": "好的，请出题。"}],
        chosen_model="qwen2-72b", rejected_model="llama3-8b", chosen_score=9.0, rejected_score=3.0,
        status="filtered", status_reason="reward:crm v1 margin=-0.2000 was=kept",
    )
    gpt = judge("gpt-4o")
    rubric = Rubric.objects.get(domain="math", version=1)
    Judgement.objects.create(response=pair.chosen, judge=gpt, rubric=rubric, score=9, status="ok",
                             analysis="推导**正确**。", cost="0.001200", input_tokens=300, output_tokens=80)
    Judgement.objects.create(response=pair.rejected, judge=judge("glm-4"), status="parse_error",
                             raw_output="无法判断分数")
    model = RewardModel.objects.create(name="crm", backend="builtin", trained_on=team.dataset)
    RewardScore.objects.create(response=pair.chosen, reward_model=model, reward=0.3)
    RewardScore.objects.create(response=pair.rejected, reward_model=model, reward=0.5)
    review = Review.objects.create(pair=pair, reviewer=team.reviewer, verdict="chosen_better", note="过程清楚")
    ReviewEvent.objects.create(review=review, pair=pair, actor=team.reviewer, before=None,
                               after=review.snapshot())
    api_judge = Judge.objects.create(name="loop", base_url="http://127.0.0.1:9/v1", model="m")
    return team, pair, api_judge


def url(name, pair):
    return reverse(name, args=[pair.dataset_id, pair.pk])


def test_the_page_shows_the_whole_pair(client, world):
    team, pair, _ = world
    client.force_login(team.viewer)
    response = client.get(url("pair-detail", pair))
    assert response.status_code == 200
    html = response.content.decode()
    # conversation: system prompt, history, the last user turn; math kept for KaTeX
    for text in ("你是一个数学老师。", "我们来做积分题。", "好的，请出题。", "$\\int_0^1 x\\,dx$"):
        assert text in html
    # both responses rendered, with models and panel scores
    assert "$\\frac{1}{2}$" in html and 'class="language-python"' in html
    assert "qwen2-72b" in html and "llama3-8b" in html and "9.00" in html
    # judgements with analysis, rubric version, cost; a parse failure with its raw output
    assert "推导<strong>正确</strong>。" in html and "math v1" in html and "0.0012" in html
    assert "Parse error" in html and "无法判断分数" in html
    # rewards and margin
    assert "0.3000" in html and "0.5000" in html and "-0.2000" in html
    # flags with the rule, the status reason, reviews and their history
    assert 'data-rule="reward-filtered"' in html and 'data-rule="judge-failures"' in html
    signals = html[html.index('id="signals"'):]  # signals, not defect flags (Selection.signal)
    assert 'data-rule="reward-filtered"' in signals and 'data-rule="judge-failures"' in signals
    assert "reward:crm v1 margin=-0.2000 was=kept" in html
    assert "过程清楚" in html and 'id="review-history"' in html
    assert "vendor/katex/katex.min.js" in html and "js/render.js" in html


def test_viewers_and_reviewers_see_no_admin_actions(client, world):
    team, pair, _ = world
    for user in (team.viewer, team.reviewer):
        client.force_login(user)
        html = client.get(url("pair-detail", pair)).content.decode()
        assert 'id="admin-actions"' not in html and "rescore-form" not in html and "unfilter-form" not in html


def test_admins_see_the_actions_that_apply(client, world):
    team, pair, _ = world
    client.force_login(team.admin)
    html = client.get(url("pair-detail", pair)).content.decode()
    assert 'id="rescore-form"' in html and 'id="unfilter-form"' in html
    assert 'id="rebuild-form"' not in html  # an imported pair: only the build page applies
    assert reverse("build-runs", args=[pair.dataset_id]) in html


def test_a_pair_of_another_dataset_is_not_found_under_this_one(client, world):
    team, pair, _ = world
    other = make_pair(type(team.dataset).objects.create(name="其他"), "问", "答", "错")
    client.force_login(team.admin)
    assert client.get(reverse("pair-detail", args=[team.dataset.pk, other.pk])).status_code == 404


# (view, method) -> expected status for admin, reviewer, viewer, outsider
MATRIX = {
    ("pair-detail", "GET"): (200, 200, 200, 404),
    ("pair-detail", "POST"): (405, 405, 405, 405),
    ("pair-unfilter", "POST"): (302, 403, 403, 404),
    ("pair-unfilter", "GET"): (405, 405, 405, 405),
    ("pair-rescore", "POST"): (302, 403, 403, 404),
    ("pair-rescore", "GET"): (405, 405, 405, 405),
    ("pair-rebuild", "POST"): (302, 403, 403, 404),
    ("pair-rebuild", "GET"): (405, 405, 405, 405),
}


@pytest.mark.parametrize("view,method", list(MATRIX))
@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
def test_access_matrix(client, world, view, method, role_index, role, django_capture_on_commit_callbacks):
    team, pair, api_judge = world
    client.force_login(getattr(team, role))
    data = {"judges": [api_judge.pk], "rescore": "on"} if view == "pair-rescore" else {}
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url(view, pair), data) if method == "POST" else client.get(url(view, pair))
    assert response.status_code == MATRIX[(view, method)][role_index]
    pair.refresh_from_db()
    if role != "admin" or method == "GET":
        assert pair.status == "filtered" and not Job.objects.exists()


def test_unfilter_restores_the_status_the_reward_filter_recorded(client, world):
    team, pair, _ = world
    client.force_login(team.admin)
    response = client.post(url("pair-unfilter", pair))
    assert response.status_code == 302 and response["Location"] == url("pair-detail", pair)
    pair.refresh_from_db()
    assert pair.status == "kept" and pair.status_reason == ""


def test_unfilter_sets_other_filtered_pairs_pending_and_refuses_unfiltered_ones(client, world):
    team, pair, _ = world
    Pair.objects.filter(pk=pair.pk).update(status_reason="rule:manual")
    client.force_login(team.admin)
    client.post(url("pair-unfilter", pair))
    pair.refresh_from_db()
    assert pair.status == "pending"
    response = client.post(url("pair-unfilter", pair), follow=True)
    assert "not filtered" in response.content.decode()
    pair.refresh_from_db()
    assert pair.status == "pending"


def test_rescore_starts_a_scoring_job_for_the_pairs_two_responses(client, world, django_capture_on_commit_callbacks):
    team, pair, api_judge = world
    client.force_login(team.admin)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url("pair-rescore", pair), {"judges": [api_judge.pk], "rescore": "on"})
    job = Job.objects.get(kind="score")
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    assert job.params["pair_ids"] == [pair.pk] and job.params["rescore"] is True
    assert job.params["judges"] == ["loop"] and list(job.params["rubrics"]) == ["math"]
    from annotation.judging import Selection

    assert Selection(pair.dataset_id, job.params).count() == 2  # chosen and rejected, one judge


def test_rescore_without_a_judge_shows_the_form_error(client, world):
    team, pair, _ = world
    client.force_login(team.admin)
    response = client.post(url("pair-rescore", pair), {"rescore": "on"})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert not Job.objects.exists()


def test_rebuild_runs_the_pairs_build_again_for_its_prompt_only(client, team, django_capture_on_commit_callbacks):
    made = scored_prompt(team.dataset, "怎么学好数学？", {"A": {"gpt-4o": 9, "glm-4": 8}, "B": {"gpt-4o": 4, "glm-4": 3}})
    scored_prompt(team.dataset, "另一个问题", {"C": {"gpt-4o": 9, "glm-4": 9}, "D": {"gpt-4o": 2, "glm-4": 2}})
    params = {**BuildParams(threshold=1.5).to_dict(), "judges": ["glm-4", "gpt-4o"], "judge_ids": [1, 2]}
    run = PairBuildRun.objects.create(dataset=team.dataset, params=params)
    pair = Pair.objects.create(dataset=team.dataset, prompt=made["A"].prompt, domain="chat", chosen=made["A"],
                               rejected=made["B"], origin="constructed", build_run=run, chosen_score=8.5,
                               rejected_score=3.5)
    client.force_login(team.admin)
    assert 'id="rebuild-form"' in client.get(url("pair-detail", pair)).content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url("pair-rebuild", pair))
    job = Job.objects.get(kind="build_pairs")
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    assert job.params["prompts"] == [pair.prompt_id] and job.params["threshold"] == 1.5
    assert job.params["judges"] == ["glm-4", "gpt-4o"]
    from annotation import jobs

    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.total == 1  # one prompt visited, not the other
    pair.refresh_from_db()
    assert pair.build_run_id != run.pk and pair.status == "pending"
    assert not Pair.objects.filter(prompt__query="另一个问题").exists()


def test_rebuild_of_an_imported_pair_is_refused(client, world):
    team, pair, _ = world
    client.force_login(team.admin)
    response = client.post(url("pair-rebuild", pair), follow=True)
    assert "not built from judge scores" in response.content.decode()
    assert not Job.objects.exists()
