"""Dashboard pages: who may see them, that every number equals the size of the list it links to,
that hostile model output stays inert, and the snapshots with their refresh job."""

import html
import json
import math
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation import jobs
from annotation.models import Job, Judge, Judgement, Pair
from review.dashboards import REFRESH_KIND
from review.models import DashboardSnapshot, Review

from .dashboard_data import crafted, pair, prompt, response
from .helpers import Team

ROLES = ["admin", "reviewer", "viewer", "outsider"]
HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">x</a>'


@pytest.fixture
def world(db):
    team = Team.create("dashboards")
    return team, crafted(team)


def pages(team, data):
    ds = team.dataset.pk
    return [reverse("dataset-overview", args=[ds]), reverse("disagreements", args=[ds]),
            reverse("judge-analysis", args=[ds]), reverse("judge-detail", args=[ds, data.j1.pk])]


@pytest.mark.parametrize("page", range(4))
def test_every_member_reads_the_dashboards_and_outsiders_get_404(client, world, page):
    team, data = world
    url = pages(team, data)[page]
    for role, expected in zip(ROLES, (200, 200, 200, 404)):
        client.force_login(getattr(team, role))
        assert client.get(url).status_code == expected, role
    client.logout()
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    client.force_login(team.admin)
    assert client.post(url).status_code == 405


def test_only_admins_see_and_use_the_refresh_button(client, world):
    team, data = world
    url = reverse("dashboard-refresh", args=[team.dataset.pk])
    for role in ROLES[:3]:
        client.force_login(getattr(team, role))
        page = client.get(reverse("dataset-overview", args=[team.dataset.pk])).content.decode()
        assert ('id="dashboard-refresh"' in page) == (role == "admin"), role
    for role, expected in zip(ROLES, (302, 403, 403, 404)):
        client.force_login(getattr(team, role))
        assert client.post(url).status_code == expected, role
    assert Job.objects.filter(kind=REFRESH_KIND, dataset=team.dataset).count() == 1
    assert client.get(url).status_code == 405


def test_a_judge_without_judgements_in_the_dataset_is_404(client, world):
    team, _data = world
    stranger = Judge.objects.create(name="stranger")
    client.force_login(team.admin)
    assert client.get(reverse("judge-detail", args=[team.dataset.pk, stranger.pk])).status_code == 404


def _links(content):
    """(href, shown number) of every counted link on a page."""
    found = re.findall(r'<a href="([^"]+)" data-(?:count|domain)="[^"]*">([\d,]+)</a>', content)
    return [(html.unescape(href), int(n.replace(",", ""))) for href, n in found]


def _list_count(client, url):
    """The pairs the list at `url` shows, counted over all its pages."""
    count = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert 'id="filter-errors"' not in content, url
        count += len(re.findall(r'<tr data-pair="\d+">', content))
        more = re.search(r'<a id="next-page" href="([^"]+)"', content)
        url = html.unescape(more.group(1)) if more else None
    return count


def test_every_overview_number_equals_the_list_it_links_to(client, world):
    team, _data = world
    client.force_login(team.viewer)
    content = client.get(reverse("dataset-overview", args=[team.dataset.pk])).content.decode()
    links = _links(content)
    assert len(links) == 15, links  # the math row and the total row, 7 numbers each, and a filter reason
    for href, shown in links:
        assert href.startswith(reverse("pair-list", args=[team.dataset.pk]))
        assert _list_count(client, href) == shown, href
    shown = dict((href, n) for href, n in links)
    assert shown[reverse("pair-list", args=[team.dataset.pk]) + "?domain=math&status=filtered"] == 1
    assert shown[reverse("pair-list", args=[team.dataset.pk]) + "?domain=math&reviewed=yes"] == 3
    assert any("reason=reward%3Acrm+v1" in href and n == 1 for href, n in links)


def test_every_chart_bar_equals_the_list_it_opens(client, world):
    team, _data = world
    client.force_login(team.viewer)
    content = client.get(reverse("dataset-overview", args=[team.dataset.pk])).content.decode()
    charts = json.loads(html.unescape(re.search(r'id="dashboard-charts"[^>]*>(.*?)</script>', content, re.S).group(1)))
    for key in ("gaps", "margins", "progress"):
        chart = charts[key]
        assert not chart["empty"], key
        for dataset, links in zip(chart["datasets"], chart["links"]):
            for value, href in zip(dataset["data"], links):
                assert _list_count(client, href) == value, (key, href)
    # Reward agreement: 2 of the 3 math pairs with a margin and a gap agree; its bar opens the 1 that does not.
    assert charts["crm"]["datasets"][0]["data"] == [66.7]
    assert _list_count(client, charts["crm"]["links"][0][0]) == 1
    assert charts["acceptance"]["datasets"][0]["data"] == [60.0]  # 3 of 5 reviews accept the chosen response


def test_every_disagreement_count_equals_the_list_it_links_to(client, world):
    team, _data = world
    client.force_login(team.viewer)
    content = client.get(reverse("disagreements", args=[team.dataset.pk])).content.decode()
    links = _links(content)
    assert len(links) == 6 * 8  # six views: the total and seven domains each
    for href, shown in links:
        assert _list_count(client, href) == shown, href
    totals = dict(re.findall(r'data-count="([a-z-]+)">(\d+)</a>', content))
    # judge-order's one- and two-point flips and reward-vs-panel's −1 margin are within their default settings.
    assert totals == {"judge-spread": "2", "judge-order": "0", "reward-vs-panel": "0", "reviewer-vs-auto": "2",
                      "reviewer-vs-reviewer": "1", "pairwise-disagrees": "0"}


def test_disagreements_sort_by_count_or_name_and_filter_by_domain(client, world):
    team, _data = world
    client.force_login(team.viewer)
    url = reverse("disagreements", args=[team.dataset.pk])
    views, signals = client.get(url).content.decode().split('id="disagreement-signals"')
    counts = {"judge-spread": 2, "judge-order": 0, "reviewer-vs-auto": 2, "reward-vs-panel": 0, "pairwise-disagrees": 0,
              "reviewer-vs-reviewer": 1}
    for table, names in ((views, {"reviewer-vs-auto", "reviewer-vs-reviewer", "pairwise-disagrees"}),
                         (signals, {"judge-spread", "judge-order", "reward-vs-panel"})):
        order = re.findall(r'<tr data-view="([a-z-]+)"', table)
        assert set(order) == names
        assert [counts[v] for v in order] == sorted((counts[v] for v in names), reverse=True)
    for table in client.get(url, {"sort": "name"}).content.decode().split('id="disagreement-signals"'):
        labels = re.findall(r'<tr data-view="[a-z-]+"><td><strong>([^<]+)</strong>', table)
        assert labels == sorted(labels)
    chat = client.get(url, {"domain": "chat"}).content.decode()
    assert set(re.findall(r'data-count="[a-z-]+">(\d+)</a>', chat)) == {"0"}
    assert "domain=chat" in chat


def test_judge_pages_show_the_statistics(client, world):
    team, data = world
    client.force_login(team.viewer)
    page = client.get(reverse("judge-detail", args=[team.dataset.pk, data.j1.pk])).content.decode()
    assert 'data-figure="self-preference">4.500<' in page and 'data-figure="self-preference-raw">4.000<' in page
    assert f'data-figure="length">{-65 / math.sqrt(500 * 20.75):.3f}<' in page
    assert re.search(r'<tr data-domain="math"><td>Math</td><td class="num">4</td><td class="num">5.25</td>', page)
    table = client.get(reverse("judge-analysis", args=[team.dataset.pk])).content.decode()
    assert "-0.33" in table  # the kappa between the two judges


def test_hostile_text_in_prompts_responses_judges_and_analyses_stays_escaped(client, db):
    team = Team.create("hostile")
    judge = Judge.objects.create(name=f"judge {HOSTILE}", family="evil")
    p = prompt(team.dataset, f"问题 {HOSTILE}")
    a = response(p, f"回答 {HOSTILE}", model=HOSTILE, scores={judge: 8})
    b = response(p, "另一个回答", scores={judge: 3})
    Judgement.objects.filter(response=a).update(analysis=f"分析 {HOSTILE}")
    Judgement.objects.create(response=b, judge=Judge.objects.create(name=HOSTILE), score=5, status="ok",
                             analysis=HOSTILE)
    made = pair(a, b, (8, 3), status="filtered", reason=f"rule:{HOSTILE}")
    Review.objects.create(pair=made, reviewer=team.reviewer, verdict="tie", note=HOSTILE)
    client.force_login(team.viewer)
    urls = [reverse("dataset-overview", args=[team.dataset.pk]), reverse("disagreements", args=[team.dataset.pk]),
            reverse("judge-analysis", args=[team.dataset.pk]),
            reverse("judge-detail", args=[team.dataset.pk, judge.pk])]
    for url in urls:
        content = client.get(url).content.decode()
        assert "<script>alert" not in content and "<img src=x" not in content, url
        assert 'href="javascript:' not in content, url
        assert "alert(1)" in content or url.endswith("disagreements/"), url  # the text is there, escaped
    detail = client.get(urls[3]).content.decode()
    assert "回答 &lt;script&gt;alert(1)&lt;/script&gt;" in detail and "分析 &lt;script&gt;" in detail


def total_cell(page, key):
    return int(re.search(rf'<tfoot>.*?data-count="{key}">([\d,]+)<', page, re.S).group(1).replace(",", ""))


def test_a_snapshot_is_reused_until_refreshed_and_says_when_data_changed(client, world):
    team, data = world
    client.force_login(team.admin)
    url = reverse("dataset-overview", args=[team.dataset.pk])
    page = client.get(url).content.decode()
    assert 'data-stale="false"' in page and total_cell(page, "filtered") == 1 and total_cell(page, "reviewed") == 3
    first = DashboardSnapshot.objects.get(dataset=team.dataset, name="overview")
    Review.objects.create(pair=data.pairs["P4"], reviewer=team.viewer, verdict="tie")
    page = client.get(url).content.decode()
    # Review progress is counted live: the new review shows at once and does not make the snapshot stale.
    assert 'data-stale="false"' in page and total_cell(page, "reviewed") == 4
    Pair.objects.filter(pk=data.pairs["P3"].pk).update(status="filtered")
    Job.objects.create(kind="reward_filter", dataset=team.dataset, status=Job.Status.SUCCEEDED,
                       finished_at=timezone.now())
    page = client.get(url).content.decode()
    assert 'data-stale="true"' in page and total_cell(page, "filtered") == 1  # the old numbers, marked stale

    response = client.post(reverse("dashboard-refresh", args=[team.dataset.pk]))
    job = Job.objects.get(kind=REFRESH_KIND, dataset=team.dataset)
    assert response.url == reverse("job-detail", args=[job.pk])
    assert client.post(reverse("dashboard-refresh", args=[team.dataset.pk])).url == response.url  # not twice
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.done == job.total == 3
    assert DashboardSnapshot.objects.get(pk=first.pk).computed_at > first.computed_at
    page = client.get(url).content.decode()
    assert 'data-stale="false"' in page and total_cell(page, "filtered") == 2 and total_cell(page, "reviewed") == 4


def test_only_jobs_that_change_the_data_and_reviews_of_the_dataset_make_a_snapshot_stale(client, world):
    from django.utils import timezone

    from annotation.models import Dataset

    from .pair_data import make_pair

    team, data = world
    client.force_login(team.admin)
    url = reverse("dataset-overview", args=[team.dataset.pk])
    assert 'data-stale="false"' in client.get(url).content.decode()
    # A quality count only reads the data; a review of another dataset is not this one's.
    Job.objects.create(kind="quality_counts", dataset=team.dataset, status="succeeded", finished_at=timezone.now())
    other = make_pair(Dataset.objects.create(name="另一个"), "问", "答一", "答二")
    Review.objects.create(pair=other, reviewer=team.viewer, verdict="tie")
    assert 'data-stale="false"' in client.get(url).content.decode()
    Job.objects.create(kind="build_pairs", dataset=team.dataset, status="failed", finished_at=timezone.now())
    assert 'data-stale="true"' in client.get(url).content.decode()


def test_costly_views_list_their_stored_members_until_a_job_of_the_dataset_runs(world):
    from django.http import QueryDict
    from django.utils import timezone

    from review.dashboards import refresh_one
    from review.models import SelectionMember
    from review.selections import select_pairs

    from .judged import rubric

    team, data = world

    def listed(query="view=judge-spread"):
        names = {p.pk: name for name, p in data.pairs.items()}
        return {names[pk] for pk in select_pairs(team.dataset, QueryDict(query))[0].values_list("pk", flat=True)}

    refresh_one(team.dataset, "disagreements")
    assert set(SelectionMember.objects.filter(dataset=team.dataset, view="judge-spread")
               .values_list("pair_id", flat=True)) == {data.pairs["P1"].pk, data.pairs["P2"].pk}
    # j1 rescores b (its spread drops to 1) outside any job: the stored members still answer, like the counts.
    Judgement.objects.create(response=data.responses["b"], judge=data.j1, rubric=rubric("math"), score=6,
                             status="ok")
    assert listed() == {"P1", "P2"}
    assert listed("view=judge-spread&spread=2.5") == {"P4"}  # other settings are always live
    # Once a job of the dataset has run, the live query answers until the next refresh.
    Job.objects.create(kind="score", dataset=team.dataset, status="succeeded", finished_at=timezone.now())
    assert listed() == set()
    refresh_one(team.dataset, "disagreements")
    assert listed() == set() and not SelectionMember.objects.filter(view="judge-spread").exists()


def test_beat_refreshes_dashboards_a_finished_job_made_stale_once_no_job_runs(world):
    from django.utils import timezone

    from review.dashboards import refresh_one
    from review.tasks import refresh_stale_dashboards

    team, _data = world
    refresh_one(team.dataset, "overview")
    assert refresh_stale_dashboards() == []  # nothing changed
    running = Job.objects.create(kind="score", dataset=team.dataset, status="running")
    assert refresh_stale_dashboards() == []  # not while a job of the dataset is under way
    Job.objects.filter(pk=running.pk).update(status="succeeded", finished_at=timezone.now())
    started = refresh_stale_dashboards()
    assert started == list(Job.objects.filter(kind=REFRESH_KIND, dataset=team.dataset).values_list("pk", flat=True))
    assert len(started) == 1
    assert refresh_stale_dashboards() == []  # the refresh job is waiting: not twice


def test_beat_refreshes_a_filled_dataset_that_has_no_snapshot_once(world):
    from django.utils import timezone

    from review.tasks import refresh_stale_dashboards

    team, _data = world
    assert refresh_stale_dashboards() == []  # no job has filled it (the test data went in directly)
    Job.objects.create(kind="search_index", dataset=team.dataset, status="succeeded", finished_at=timezone.now())
    assert refresh_stale_dashboards() == []  # a read-only job fills nothing
    imported = Job.objects.create(kind="import", dataset=team.dataset, status="running")
    assert refresh_stale_dashboards() == []  # not while the import is under way
    Job.objects.filter(pk=imported.pk).update(status="succeeded", finished_at=timezone.now())
    started = refresh_stale_dashboards()
    assert started == list(Job.objects.filter(kind=REFRESH_KIND, dataset=team.dataset).values_list("pk", flat=True))
    assert len(started) == 1
    # That refresh failed: beat does not retry it every minute (the admins' button does).
    Job.objects.filter(pk=started[0]).update(status="failed", finished_at=timezone.now())
    assert refresh_stale_dashboards() == []


def test_an_import_that_finished_with_problems_filled_the_dataset_as_one_that_succeeded(world):
    from django.utils import timezone

    from review.tasks import refresh_stale_dashboards

    team, _data = world
    Job.objects.create(kind="import", dataset=team.dataset, status=Job.Status.PROBLEMS, finished_at=timezone.now(),
                       counts={"rows_read": 100, "rejected_rows": 3})
    started = refresh_stale_dashboards()
    assert started == list(Job.objects.filter(kind=REFRESH_KIND, dataset=team.dataset).values_list("pk", flat=True))
    assert len(started) == 1


def test_a_large_dataset_without_a_snapshot_is_computed_by_a_job_not_in_the_request(client, world, monkeypatch):
    from review import dashboards

    team, _data = world
    monkeypatch.setattr(dashboards, "INLINE_MAX_PAIRS", 3)  # the crafted dataset has 4 pairs
    client.force_login(team.viewer)
    for name in ("dataset-overview", "disagreements", "judge-analysis"):
        page = client.get(reverse(name, args=[team.dataset.pk])).content.decode()
        assert 'id="dashboard-pending"' in page, name
    job = Job.objects.get(kind=REFRESH_KIND, dataset=team.dataset)  # one job, however many pages asked
    assert reverse("job-detail", args=[job.pk]) in page
    assert not DashboardSnapshot.objects.filter(dataset=team.dataset).exists()
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    assert 'id="overview-counts"' in client.get(reverse("dataset-overview", args=[team.dataset.pk])).content.decode()


def _dataset_page_counts(client, dataset):
    page = client.get(reverse("dataset-detail", args=[dataset.pk])).content.decode()
    rows = dict(re.findall(r'<tr data-domain="(\w+)">.*?<td class="num" data-pairs>([\d,]+)</td>', page))
    return {d: int(n.replace(",", "")) for d, n in rows.items()}, 'id="counts-freshness"' in page


def test_the_dataset_page_counts_from_the_overview_snapshot_until_a_job_changes_the_data(client, world):
    from review.dashboards import refresh_one

    from .pair_data import make_pair

    team, data = world
    ds = team.dataset
    client.force_login(team.viewer)
    live = {d: Pair.objects.filter(dataset=ds, domain=d).count() for d in
            Pair.objects.filter(dataset=ds).values_list("domain", flat=True).distinct()}
    assert _dataset_page_counts(client, ds) == (live, False)  # no snapshot yet: counted live
    refresh_one(ds, "overview")
    late = make_pair(ds, "后来的问题", "答一", "答二", domain="math")
    # The snapshot answers (and says so) while no job has changed the data: the late pair is not in it.
    assert _dataset_page_counts(client, ds) == (live, True)
    # A search-index job only reads the data; an import changes it, and the page counts live again.
    Job.objects.create(kind="search_index", dataset=ds, status="succeeded", finished_at=timezone.now())
    assert _dataset_page_counts(client, ds) == (live, True)
    Job.objects.create(kind="import", dataset=ds, status="succeeded", finished_at=timezone.now())
    assert _dataset_page_counts(client, ds) == ({**live, "math": live.get("math", 0) + 1}, False)
    # A review carries its pair's dataset and domain, which the review numbers are counted by.
    review = Review.objects.create(pair=late, reviewer=team.reviewer, verdict="tie")
    assert (review.dataset_id, review.domain) == (ds.pk, "math")
