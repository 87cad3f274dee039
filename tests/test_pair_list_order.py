"""The pair list's sorts, count and pages: every sort walked forwards with *Next* and backwards with *Previous*
covers each pair once in the sort's order (ties and pairs without a key in id order, last), a jump starts the
page at the pair, the count is exact where the page holds the whole list and labelled an estimate otherwise,
and saved filters belong to the user who saved them."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from annotation.models import Pair, RewardModel, RewardScore
from review import pair_count, pair_views, suspicion
from review.models import PairSuspicion, SavedFilter

from .helpers import Team
from .pair_data import make_pair

PAGE = 4


@pytest.fixture
def pairs(team, monkeypatch):
    monkeypatch.setattr(pair_views, "PAGE_SIZE", PAGE)
    model = RewardModel.objects.create(name="crm", backend="builtin", trained_on=team.dataset)
    made = []
    start = timezone.now()
    for i in range(15):
        # Gaps 0..4 repeat (ties), every fifth pair has none; texts of varying length; dates out of id order.
        scores = (None, None) if i % 5 == 4 else (5.0 + i % 4, 5.0)
        pair = make_pair(team.dataset, f"问题{i}", "长" * (10 + (i * 7) % 11), "短" * (i % 3 + 1),
                         domain="math" if i % 2 else "chat", chosen_score=scores[0], rejected_score=scores[1])
        Pair.objects.filter(pk=pair.pk).update(created_at=start - timedelta(minutes=(i * 5) % 7))
        if i % 3:
            RewardScore.objects.create(response=pair.chosen, reward_model=model, reward=(i % 4) * 0.5)
            RewardScore.objects.create(response=pair.rejected, reward_model=model, reward=1.0)
        made.append(pair)
    suspicion.store(team.dataset)
    return team


def _expected(dataset, order):
    rows = list(Pair.objects.filter(dataset=dataset).values("pk", "chosen_score", "rejected_score", "created_at"))
    stored = {s.pair_id: s for s in PairSuspicion.objects.filter(dataset=dataset)}

    def gap(r):
        return None if r["chosen_score"] is None else r["chosen_score"] - r["rejected_score"]

    keys = {"gap": (gap, False, False), "margin": (lambda r: stored[r["pk"]].margin, False, False),
            "length": (lambda r: stored[r["pk"]].length, True, True),
            "newest": (lambda r: r["created_at"], True, True),
            "suspicious": (lambda r: stored[r["pk"]].score, True, False)}
    if order == "":
        return sorted(r["pk"] for r in rows)
    key, descending, ids_descending = keys[order]
    with_key = [r for r in rows if key(r) is not None]
    without = sorted((r["pk"] for r in rows if key(r) is None), reverse=ids_descending)
    with_key.sort(key=lambda r: -r["pk"] if ids_descending else r["pk"])
    with_key.sort(key=key, reverse=descending)
    return [r["pk"] for r in with_key] + without


def _get(client, dataset, params):
    response = client.get(reverse("pair-list", args=[dataset.pk]), params)
    assert response.status_code == 200
    html = response.content.decode()
    rows = [int(x) for x in re.findall(r'data-pair="(\d+)"', html)]
    links = {name: int(m.group(1)) if (m := re.search(rf'id="{name}-page" href="[^"]*{param}=(\d+)"', html)) else None
             for name, param in (("next", "after"), ("previous", "before"))}
    return rows, links, html


@pytest.mark.parametrize("order", ["", "gap", "margin", "length", "newest", "suspicious"])
def test_next_and_previous_walk_every_sort_in_its_order_each_pair_once(client, pairs, order):
    client.force_login(pairs.viewer)
    expected = _expected(pairs.dataset, order)
    assert len(set(expected)) == 15
    seen, pages, params = [], [], {"order": order}
    while True:
        rows, links, _ = _get(client, pairs.dataset, params)
        seen += rows
        pages.append(rows)
        if links["next"] is None:
            break
        params = {"order": order, "after": links["next"]}
    assert seen == expected and len(pages) == 4
    back = []
    while links["previous"] is not None:
        rows, links, _ = _get(client, pairs.dataset, {"order": order, "before": links["previous"]})
        back.append(rows)
    assert back == pages[-2::-1]  # previous from the last page gives the pages before it, in order, to the first


def test_the_sort_keys_are_those_of_the_pair(pairs):
    pair = Pair.objects.filter(dataset=pairs.dataset, chosen_score__isnull=False).order_by("pk").first()
    stored = PairSuspicion.objects.get(pair=pair)
    assert stored.length == len(pair.chosen.text) + len(pair.rejected.text)
    rewards = {s.response_id: s.reward for s in RewardScore.objects.filter(response__in=[pair.chosen, pair.rejected])}
    expected = rewards[pair.chosen_id] - rewards[pair.rejected_id] if len(rewards) == 2 else None
    assert stored.margin == expected


def test_a_jump_starts_the_page_at_that_pair_in_the_current_sort(client, pairs):
    client.force_login(pairs.viewer)
    expected = _expected(pairs.dataset, "gap")
    rows, links, _ = _get(client, pairs.dataset, {"order": "gap", "at": expected[6]})
    assert rows == expected[6:6 + PAGE] and links["previous"] == expected[6]
    rows, _, _ = _get(client, pairs.dataset, {"order": "gap", "before": links["previous"]})
    assert rows == expected[2:6]


def test_the_count_is_exact_when_the_page_holds_the_list_and_an_estimate_otherwise(client, pairs, monkeypatch):
    client.force_login(pairs.viewer)
    _, _, html = _get(client, pairs.dataset, {"domain": "math", "status": "kept"})
    assert 'data-exact="true"' in html and re.search(r'id="pair-count"[^>]*>\s*0 pairs', html)
    math = Pair.objects.filter(dataset=pairs.dataset, domain="math").count()
    _, _, html = _get(client, pairs.dataset, {"domain": "math"})  # two pages: small, so counted exactly
    assert 'data-exact="true"' in html and f"{math} pairs" in html
    monkeypatch.setattr(pair_count, "EXACT_BELOW", 0)  # as for a list too large to count
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_pair")
    _, _, html = _get(client, pairs.dataset, {"domain": "math"})
    estimate = pair_count.estimated(Pair.objects.filter(dataset=pairs.dataset, domain="math"))
    assert 'data-exact="false"' in html and f"about {estimate} pairs" in html and ">estimate<" in html


def test_search_excerpts_start_near_the_match_and_mark_it(client, team):
    make_pair(team.dataset, "前" * 200 + "秋天的诗" + "后" * 50, "好", "坏")
    client.force_login(team.viewer)
    _, _, html = _get(client, team.dataset, {"q": "秋天"})
    assert "<mark>秋天</mark>的诗" in html and "前" * 31 not in html.split('id="pair-table"')[1]


def test_multiple_choices_are_tick_boxes(client, team):
    client.force_login(team.viewer)
    _, _, html = _get(client, team.dataset, {})
    assert "<select multiple" not in html and 'type="checkbox" name="domain" value="math"' in html


def test_saved_filters_are_saved_listed_and_deleted_by_their_owner_only(client, pairs):
    ds = pairs.dataset
    client.force_login(pairs.reviewer)
    response = client.post(reverse("saved-filter-save", args=[ds.pk]),
                           {"name": "窄差距", "query": "order=gap&domain=math&after=5"})
    saved = SavedFilter.objects.get(user=pairs.reviewer, dataset=ds)
    assert saved.query == "order=gap&domain=math"  # where a page starts is not part of a filter
    assert response.status_code == 302 and response["Location"].endswith("?order=gap&domain=math")
    _, _, html = _get(client, ds, {})
    assert "窄差距" in html
    client.force_login(pairs.viewer)
    _, _, html = _get(client, ds, {})
    assert "窄差距" not in html
    delete = reverse("saved-filter-delete", args=[ds.pk, saved.pk])
    assert client.post(delete).status_code == 404  # someone else's
    client.force_login(pairs.reviewer)
    assert client.get(delete).status_code == 405
    assert client.post(delete).status_code == 302 and not SavedFilter.objects.exists()
    outsider = Team.create("other").outsider
    client.force_login(outsider)
    assert client.post(reverse("saved-filter-save", args=[ds.pk]), {"name": "x"}).status_code == 404
