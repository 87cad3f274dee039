"""The pair list: PairFilter's new filters, substring search (Chinese, short queries; the index: test_search.py),
keyset pagination, htmx fragments and access."""

import re

import pytest
from django.http import QueryDict
from django.urls import reverse

from annotation.models import Judgement, Pair, RewardModel, RewardScore
from review.models import Review
from review.selections import select_pairs

from .helpers import Team
from .judged import judge
from .pair_data import make_pair


def ids(params, dataset):
    pairs, form = select_pairs(dataset, QueryDict(params))
    assert pairs is not None, form.errors
    return set(pairs.values_list("pk", flat=True))


@pytest.fixture
def world(team):
    ds = team.dataset
    p = {
        "math": make_pair(ds, "求解方程 x^2 = 4 的所有实数根", "x = 2 或 x = -2", "x = 2", domain="math",
                          chosen_score=9.0, rejected_score=4.0),
        "poem": make_pair(ds, "写一首关于秋天的诗", "秋风萧瑟天气凉，草木摇落露为霜。", "秋天来了。",
                          chosen_score=7.0, rejected_score=6.0),
        "code": make_pair(ds, "How do I reverse a list in Python?", "Use `items[::-1]` or reversed(items).",
                          "你可以用循环。", domain="code", chosen_score=8.0, rejected_score=2.0),
        "unscored": make_pair(ds, "你好", "你好！有什么可以帮你？", "嗯。"),
    }
    gpt, glm = judge("gpt-4o"), judge("glm-4")
    Judgement.objects.create(response=p["math"].chosen, judge=gpt, score=9, status="ok")
    Judgement.objects.create(response=p["math"].rejected, judge=gpt, score=4, status="ok")
    Judgement.objects.create(response=p["poem"].chosen, judge=glm, score=7, status="ok")
    Judgement.objects.create(response=p["poem"].rejected, judge=glm, score=6, status="ok")
    Judgement.objects.create(response=p["code"].rejected, judge=gpt, score=2, status="ok")
    model = RewardModel.objects.create(name="crm", backend="builtin", trained_on=ds)
    for pair, (rc, rr) in {"math": (1.5, -0.5), "poem": (0.1, 0.4), "code": (2.5, 0.0)}.items():
        RewardScore.objects.create(response=p[pair].chosen, reward_model=model, reward=rc)
        RewardScore.objects.create(response=p[pair].rejected, reward_model=model, reward=rr)
    Review.objects.create(pair=p["poem"], reviewer=team.reviewer, verdict="rejected_better")
    Review.objects.create(pair=p["math"], reviewer=team.admin, verdict="chosen_better")
    Review.objects.create(pair=p["code"], reviewer=team.reviewer, verdict="chosen_better")
    return team, {name: pair.pk for name, pair in p.items()}


def test_judge_and_score_range_filters(world):
    team, p = world
    ds = team.dataset
    assert ids("judge=gpt-4o", ds) == {p["math"], p["code"]}
    assert ids("judge=gpt-4o&score_max=3", ds) == {p["code"]}
    assert ids("judge=gpt-4o&score_max=3&score_side=chosen", ds) == set()
    assert ids("score_min=6.5&score_max=7.5", ds) == {p["poem"]}
    assert ids("score_min=5&score_side=rejected", ds) == {p["poem"]}


def test_gap_and_margin_ranges(world):
    team, p = world
    ds = team.dataset
    assert ids("gap_min=5", ds) == {p["math"], p["code"]}
    assert ids("gap_max=1", ds) == {p["poem"]}
    assert ids("margin_max=0", ds) == {p["poem"]}
    assert ids("margin_min=1.9", ds) == {p["math"], p["code"]}
    assert ids("margin_min=1.9&margin_max=2.1", ds) == {p["math"]}


def test_reviewer_and_verdict_filters_combine(world):
    team, p = world
    ds = team.dataset
    assert ids(f"reviewer={team.reviewer.username}", ds) == {p["poem"], p["code"]}
    assert ids("verdict=chosen_better", ds) == {p["math"], p["code"]}
    assert ids(f"verdict=chosen_better&reviewer={team.reviewer.username}", ds) == {p["code"]}
    assert ids("verdict=rejected_better&verdict=tie", ds) == {p["poem"]}


def test_bad_ranges_and_unknown_judges_are_refused_by_name(world):
    team, _ = world
    pairs, form = select_pairs(team.dataset, QueryDict("gap_min=3&gap_max=1"))
    assert pairs is None and "gap_max" in form.errors
    pairs, form = select_pairs(team.dataset, QueryDict("judge=nobody"))
    assert pairs is None and "judge" in form.errors
    pairs, form = select_pairs(team.dataset, QueryDict("score_min=lots"))
    assert pairs is None and "score_min" in form.errors


def test_search_finds_chinese_substrings_in_prompts_and_both_responses(world):
    team, p = world
    ds = team.dataset
    assert ids("q=关于秋天", ds) == {p["poem"]}          # prompt
    assert ids("q=草木摇落", ds) == {p["poem"]}          # chosen response
    assert ids("q=可以用循环", ds) == {p["code"]}         # rejected response
    assert ids("q=REVERSE A LIST", ds) == {p["code"]}   # case-insensitive
    assert ids("q=不存在的文字", ds) == set()


def test_one_and_two_character_queries_work(world):
    team, p = world
    ds = team.dataset
    assert ids("q=秋", ds) == {p["poem"]}
    assert ids("q=你好", ds) == {p["unscored"]}
    assert ids("q=X", ds) == {p["math"]}  # one Latin letter, case-insensitive
    assert ids("q=%25", ds) == set()  # a LIKE wildcard is a literal character


def test_search_wildcards_are_literal(world):
    team, p = world
    make_pair(team.dataset, "百分比 50%_done 怎么读", "五十", "不知道")
    assert len(ids("q=50%_d", team.dataset)) == 1
    assert ids("q=0%x", team.dataset) == set()


def test_search_never_leaks_another_datasets_pairs(world):
    team, p = world
    other = Team.create("other")
    make_pair(other.dataset, "写一首关于秋天的诗", "秋", "冬")
    assert ids("q=关于秋天", team.dataset) == {p["poem"]}


def _page(client, url, params):
    response = client.get(url, params)
    assert response.status_code == 200
    html = response.content.decode()
    rows = [int(x) for x in re.findall(r'data-pair="(\d+)"', html)]
    match = re.search(r'id="next-page" href="[^"]*after=(\d+)"', html)
    return rows, (int(match.group(1)) if match else None), html


def test_keyset_pages_cover_every_pair_once_in_order_and_carry_the_filters(client, team):
    for i in range(120):
        make_pair(team.dataset, f"问题{i}", f"回答{i}", f"坏回答{i}", domain="math" if i % 3 else "chat")
    client.force_login(team.viewer)
    url = reverse("pair-list", args=[team.dataset.pk])
    seen, after, pages = [], None, 0
    while True:
        params = {"domain": "math"} | ({"after": after} if after else {})
        rows, after, html = _page(client, url, params)
        pages += 1
        seen += rows
        if after is None:
            break
        assert "domain=math&amp;after=" in html
    math = Pair.objects.filter(dataset=team.dataset, domain="math")
    expected = list(math.order_by("pk").values_list("pk", flat=True))
    assert seen == expected and len(expected) == 80 and pages == 2


def test_rows_show_escaped_excerpts_and_link_to_the_pair_page(client, world):
    team, p = world
    hostile = make_pair(team.dataset, "<script>alert(1)</script>问题", "<b>粗</b>", "**星**")
    client.force_login(team.viewer)
    html = client.get(reverse("pair-list", args=[team.dataset.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;问题" in html and "<b>粗</b>" not in html
    assert "**星**" in html  # excerpts are text, not rendered Markdown
    assert reverse("pair-detail", args=[team.dataset.pk, hostile.pk]) in html


def test_an_htmx_filter_change_gets_only_the_results_fragment(client, world):
    team, p = world
    client.force_login(team.viewer)
    response = client.get(reverse("pair-list", args=[team.dataset.pk]), {"q": "秋天"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and 'id="pair-results"' in html
    assert re.findall(r'data-pair="(\d+)"', html) == [str(p["poem"])]


def test_invalid_filters_answer_400_with_the_problem_named(client, world):
    team, _ = world
    client.force_login(team.viewer)
    response = client.get(reverse("pair-list", args=[team.dataset.pk]), {"gap_min": "abc"})
    assert response.status_code == 400 and 'id="filter-errors"' in response.content.decode()


def test_a_views_settings_are_kept_in_the_filter_form(client, world):
    team, _ = world
    client.force_login(team.viewer)
    html = client.get(reverse("pair-list", args=[team.dataset.pk]), {"view": "small-gap", "gap": "1.5"}).content
    assert b'name="gap" value="1.5"' in html


@pytest.mark.parametrize("role,status", [("admin", 200), ("reviewer", 200), ("viewer", 200), ("outsider", 404)])
def test_the_list_is_for_members_and_read_only(client, team, role, status):
    client.force_login(getattr(team, role))
    url = reverse("pair-list", args=[team.dataset.pk])
    assert client.get(url).status_code == status
    assert client.post(url).status_code == 405


def test_anonymous_users_are_sent_to_log_in(client, team):
    response = client.get(reverse("pair-list", args=[team.dataset.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]
