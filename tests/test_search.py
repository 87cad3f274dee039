"""Search in the pair list (review/search.py): both plans (the trigram index once a dataset is indexed,
the bounded walk before that and for short or common queries), keyset pages without gaps or repeats,
the not-yet-indexed state and the job that resolves it."""

import re

import pytest
from django.db import connection
from django.urls import reverse

from annotation import jobs
from annotation.ingest.importer import import_params
from annotation.models import Dataset, Job, Pair, Prompt, Response
from review import pair_views, search

from .conftest import wait_for
from .helpers import Team, generated_pairs, write_jsonl
from .pair_data import make_pair

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)><a href="javascript:alert(2)">光合作用</a>'


def _trigram_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_trgm_indexed'")
        return {row[0] for row in cursor.fetchall()}


def index(dataset):
    """Run the dataset's search-index job to its end in this process."""
    job = search.start(dataset, None)
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    return job


def page(client, dataset, **params):
    response = client.get(reverse("pair-list", args=[dataset.pk]), params)
    assert response.status_code == 200
    html = response.content.decode()
    rows = [int(x) for x in re.findall(r'data-pair="(\d+)"', html)]
    match = re.search(r'id="next-page" href="[^"]*after=(\d+)"', html)
    return rows, (int(match.group(1)) if match else None), html


def every_page(client, dataset, **params):
    """Follow the next/continue links to the end: (rows in order, htmls)."""
    seen, htmls, after = [], [], None
    while True:
        rows, after, html = page(client, dataset, **params, **({"after": after} if after else {}))
        seen += rows
        htmls.append(html)
        if after is None:
            return seen, htmls


@pytest.fixture
def corpus(team):
    ds = team.dataset
    p = {
        "prompt": make_pair(ds, "请解释光合作用的过程", "植物把光能变成化学能。", "不知道。", domain="math"),
        "chosen": make_pair(ds, "植物怎样获得能量？", "通过光合作用，叶绿体吸收阳光。", "靠吃东西。"),
        "rejected": make_pair(ds, "绿色植物为什么是绿色的？", "叶绿素反射绿光。", "因为光合作用喜欢绿色。",
                              status="kept"),
        "other": make_pair(ds, "写一段代码", "print('hello')", "不会写代码。", domain="code"),
    }
    return team, {k: v.pk for k, v in p.items()}


@pytest.fixture(params=["walk", "indexed"])
def plan(request, corpus):
    team, _ = corpus
    if request.param == "indexed":
        index(team.dataset)
        if not _trigram_indexes():
            pytest.skip("this PostgreSQL has no pg_trgm: only the walk exists")
    return request.param


def test_search_finds_pairs_by_prompt_chosen_and_rejected_text(client, corpus, plan):
    team, p = corpus
    client.force_login(team.viewer)
    expected_plan = plan == "indexed"
    for q, expected in [("光合作用", ["prompt", "chosen", "rejected"]),   # 4 characters, in all three places
                        ("叶绿体吸收", ["chosen"]), ("喜欢绿色", ["rejected"]), ("请解释光", ["prompt"]),
                        ("光合", ["prompt", "chosen", "rejected"]),         # 2 characters: no trigram
                        ("代码", ["other"]), ("绿", ["chosen", "rejected"]), ("不存在的词", []),
                        ("PRINT", ["other"]), ("Hello", ["other"])]:            # Latin: case-insensitive
        rows, after, _ = page(client, team.dataset, q=q)
        assert rows == [p[k] for k in expected], q
        assert after is None
        found = search.page(Pair.objects.filter(dataset=team.dataset), team.dataset, q)
        assert found.indexed == (expected_plan and len(q) >= 3), q


def test_search_combines_with_the_other_filters(client, corpus, plan):
    team, p = corpus
    client.force_login(team.viewer)
    assert page(client, team.dataset, q="光合作用", domain="chat")[0] == [p["chosen"], p["rejected"]]
    assert page(client, team.dataset, q="光合作用", status="kept")[0] == [p["rejected"]]
    assert page(client, team.dataset, q="光合", domain="math", status="pending")[0] == [p["prompt"]]
    assert page(client, team.dataset, q="光合作用", domain="code")[0] == []


def test_search_never_finds_another_datasets_pairs(client, corpus, plan):
    team, p = corpus
    other = Team.create("other")
    make_pair(other.dataset, "光合作用是什么", "光合作用", "光合作用")
    index(other.dataset)
    client.force_login(team.viewer)
    assert page(client, team.dataset, q="光合作用")[0] == [p["prompt"], p["chosen"], p["rejected"]]


@pytest.mark.parametrize("q, indexed", [("光合", False), ("光合作用", False), ("光合作用", True), ("PHOTOSYN", False)])
def test_pages_of_a_search_cover_every_match_once_in_order(client, team, monkeypatch, q, indexed):
    monkeypatch.setattr(pair_views, "PAGE_SIZE", 4)
    monkeypatch.setattr(search, "WALK_PAIRS", 7)
    for i in range(60):
        text = "光合作用 photosynthesis" if i % 3 == 0 else "呼吸作用"
        where = i % 4  # in the prompt (0), the chosen (1) or the rejected response (2, 3)
        make_pair(team.dataset, f"问题{i}" + (text if where == 0 else ""), f"回答{i}" + (text if where == 1 else ""),
                  f"坏回答{i}" + (text if where in (2, 3) else ""), domain="math" if i % 2 else "chat")
    if indexed:
        index(team.dataset)
        if not _trigram_indexes():
            pytest.skip("this PostgreSQL has no pg_trgm")
    client.force_login(team.viewer)
    seen, htmls = every_page(client, team.dataset, q=q)
    pairs = Pair.objects.filter(dataset=team.dataset)
    expected = list(search.narrow(pairs, team.dataset, q).order_by("pk").values_list("pk", flat=True))
    assert seen == expected and len(expected) == 20
    stopped = [h for h in htmls if 'id="search-stopped"' in h]
    if indexed:  # the index finds every match: plain pages, no walk to continue
        assert not stopped and len(htmls) == 5
    else:  # 60 pairs walked 7 at a time: the walk stops and says so, and "continue" goes on from there
        assert stopped and "Continue searching" in stopped[0]
        assert len(htmls) >= 60 // 7
    # with another filter, across pages
    seen, _ = every_page(client, team.dataset, q=q, domain="math")
    assert seen == [pk for pk in expected if Pair.objects.get(pk=pk).domain == "math"]


def test_a_query_too_common_for_the_index_is_walked_instead(team, monkeypatch):
    for i in range(10):
        make_pair(team.dataset, f"问题{i}", "光合作用", "呼吸作用")
    index(team.dataset)
    if not _trigram_indexes():
        pytest.skip("this PostgreSQL has no pg_trgm")
    pairs = Pair.objects.filter(dataset=team.dataset)
    assert search.page(pairs, team.dataset, "光合作用").indexed
    monkeypatch.setattr(search, "MAX_INDEXED_MATCHES", 5)
    found = search.page(pairs, team.dataset, "光合作用")
    assert not found.indexed and len(found.ids) == 10


def test_hostile_text_in_search_results_stays_inert(client, team):
    make_pair(team.dataset, HOSTILE, HOSTILE, HOSTILE)
    client.force_login(team.viewer)
    for indexed in (False, True):
        if indexed:
            index(team.dataset)
        rows, _, html = page(client, team.dataset, q="光合作用")
        assert len(rows) == 1
        results = html[html.index('id="pair-results"'):]
        assert "<script>alert" not in results and "<img" not in results and 'href="javascript:' not in results
        # The excerpt starts just before the match (the script tag is cut off); what shows is escaped, the match marked.
        assert "&lt;a href=&quot;javascript:alert(2)&quot;&gt;<mark>光合作用</mark>&lt;/a&gt;" in results


def test_the_page_says_when_texts_are_not_indexed_and_an_admin_can_start_the_job(client, corpus):
    team, p = corpus
    url = reverse("pair-list", args=[team.dataset.pk])
    client.force_login(team.viewer)
    html = client.get(url, {"q": "光合作用"}).content.decode()
    assert 'id="search-not-indexed"' in html and 'id="search-index-form"' not in html
    assert 'id="search-not-indexed"' not in client.get(url).content.decode()  # only when searching
    start = reverse("search-index", args=[team.dataset.pk])
    assert client.post(start).status_code == 403
    client.force_login(team.admin)
    html = client.get(url, {"q": "光合作用"}).content.decode()
    assert 'id="search-index-form"' in html and f'action="{start}"' in html
    assert client.get(start).status_code == 405
    response = client.post(start)
    job = Job.objects.get(kind=search.KIND, dataset=team.dataset)
    assert response.status_code == 302 and response["Location"] == reverse("job-detail", args=[job.pk])
    assert client.post(start)["Location"] == response["Location"]  # one job at a time
    html = client.get(url, {"q": "光合作用"}).content.decode()
    assert 'id="search-index-form"' not in html and reverse("job-detail", args=[job.pk]) in html
    jobs.execute(job.pk)
    html = client.get(url, {"q": "光合作用"}).content.decode()
    assert 'id="search-not-indexed"' not in html
    assert Job.objects.get(pk=job.pk).done == 4 + 8  # 4 prompts, 8 responses


def test_an_outsider_cannot_search_or_start_indexing(client, corpus):
    team, _ = corpus
    client.force_login(team.outsider)
    assert client.get(reverse("pair-list", args=[team.dataset.pk]), {"q": "光合"}).status_code in (403, 404)
    assert client.post(reverse("search-index", args=[team.dataset.pk])).status_code in (403, 404)
    assert not Job.objects.filter(kind=search.KIND).exists()


def test_the_trigram_plan_reads_the_partial_indexes(corpus):
    team, _ = corpus
    index(team.dataset)
    if not _trigram_indexes():
        pytest.skip("this PostgreSQL has no pg_trgm")
    # On tiny tables the planner rightly prefers other plans; with sequential scans off only the trigram
    # index can answer, and it must answer correctly.
    for model, column in ((Prompt, "query"), (Response, "text")):
        rows = model.objects.filter(search_indexed=True).filter(search._contains(column, "光合作用"))
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")
            sql, params = rows.values("pk").query.sql_with_params()
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(r[0] for r in cursor.fetchall())
            found = len(list(rows.values_list("pk", flat=True)))
            cursor.execute("SET enable_seqscan = on")
        assert f"{model._meta.model_name}_" in plan and "_trgm_indexed" in plan, plan
        assert found == (1 if model is Prompt else 2)


@pytest.mark.worker
def test_an_import_on_the_worker_is_followed_by_search_indexing(thread_worker, tmp_path, client):
    dataset = Dataset.objects.create(name="indexed after import")
    job = jobs.create_job("import", dataset=dataset, params=import_params(write_jsonl(tmp_path / "p.jsonl",
                                                                                       generated_pairs(30))))
    indexing = wait_for(lambda: Job.objects.filter(kind=search.KIND, params__after_import=job.pk).first(),
                        timeout=60, message="the search-index job")
    wait_for(lambda: Job.objects.get(pk=indexing.pk).is_finished(), timeout=60, message="indexing to finish")
    indexing.refresh_from_db()
    assert indexing.status == Job.Status.SUCCEEDED, indexing.error
    texts = Prompt.objects.filter(dataset=dataset).count() + Response.objects.filter(dataset=dataset).count()
    assert indexing.done == texts > 30 and search.is_indexed(dataset)
    assert not Prompt.objects.filter(dataset=dataset, search_indexed=False).exists()


@pytest.mark.worker
def test_an_admin_starts_indexing_and_the_worker_resolves_the_not_indexed_state(thread_worker, client):
    team = Team.create("indexed by a worker")
    for i in range(12):
        make_pair(team.dataset, f"问题{i}光合作用", f"回答{i}", f"坏回答{i}")
    url = reverse("pair-list", args=[team.dataset.pk])
    client.force_login(team.admin)
    assert 'id="search-not-indexed"' in client.get(url, {"q": "光合作用"}).content.decode()
    response = client.post(reverse("search-index", args=[team.dataset.pk]))
    job = Job.objects.get(kind=search.KIND, dataset=team.dataset)
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    wait_for(lambda: Job.objects.get(pk=job.pk).is_finished(), timeout=60, message="the search-index job")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.done == 12 * 3 and job.celery_task_id
    rows, _, html = page(client, team.dataset, q="光合作用")
    assert 'id="search-not-indexed"' not in html and len(rows) == 12
    found = search.page(Pair.objects.filter(dataset=team.dataset), team.dataset, "光合作用")
    assert found.indexed == bool(_trigram_indexes())


def test_without_pg_trgm_indexes_search_walks_and_finds_the_same_pairs(client, corpus):
    team, p = corpus
    index(team.dataset)
    with connection.cursor() as cursor:  # as on the embedded server of `make demo` (rolled back after)
        cursor.execute("DROP INDEX IF EXISTS prompt_query_trgm_indexed")
        cursor.execute("DROP INDEX IF EXISTS response_text_trgm_indexed")
    assert not search.trigram_indexes_exist()
    client.force_login(team.viewer)
    rows, _, html = page(client, team.dataset, q="光合作用")
    assert rows == [p["prompt"], p["chosen"], p["rejected"]]
    assert 'id="search-not-indexed"' not in html  # the job ran: nothing to wait for
    assert not search.page(Pair.objects.filter(dataset=team.dataset), team.dataset, "光合作用").indexed
    pairs = search.narrow(Pair.objects.filter(dataset=team.dataset), team.dataset, "喜欢绿色")
    assert list(pairs.values_list("pk", flat=True)) == [p["rejected"]]
