"""Search in the pair list (review/search.py): both plans (the block filters once a dataset is indexed,
the bounded walk before that and for short or common queries), keyset pages without gaps or repeats,
the not-yet-indexed state and the job that resolves it; the filters' exactness (review/search_blocks.py)."""

import re

import pytest
from django.db import connection
from django.urls import reverse

from annotation import jobs
from annotation.ingest.importer import import_params
from annotation.models import Dataset, Job, Pair, Prompt, Response
from review import pair_views, search, search_blocks
from review.models import SearchSegment

from .conftest import wait_for
from .helpers import Team, generated_pairs, write_jsonl
from .pair_data import make_pair

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)><a href="javascript:alert(2)">光合作用</a>'


def index(dataset):
    """Run the dataset's search-index job to its end in this process."""
    job = search.start(dataset, None)
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
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
    assert sum(SearchSegment.objects.filter(dataset=dataset).values_list("rows", flat=True)) == texts


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
    assert search.page(Pair.objects.filter(dataset=team.dataset), team.dataset, "光合作用").indexed




MIXED = [  # (prompt, chosen, rejected): Chinese, Latin in mixed case, both, digits and punctuation
    ("请解释光合作用的过程", "植物把光能变成化学能。", "不知道。"),
    ("Write a Python function", "def add(a, b): return a + b  # Python 3", "I cannot write CODE."),
    ("用Python写一个排序", "可以用 sorted() 函数：Python内置。", "PYTHON不行"),
    ("编号4711）的订单", "订单编号4711）已发货", "没有这个订单"),
    ("机器学习是什么", "Machine Learning（机器学习）是人工智能的分支", "机器"),
    ("温度的单位", "开尔文（\u212aelvin）是温度单位", "摄氏度"),
    ("Istanbul 在哪里", "\u0130stanbul 在土耳其", "不知道"),
    ("50%的折扣_是多少", "打五折：50%_off", "100%"),
]
QUERIES = ["光合作用", "光合", "光", "python", "PYTHON", "PyThOn", "Python内置", "用PYTHON写", "编号4711）",
           "4711", "机器学习", "器学", "kelvin", "KELVIN", "istanbul", "50%_", "%的折", "不存在的词", "Zq", "o",
           "人工智能的分支", "ode."]


def _brute_force(dataset, text):
    """Pairs whose texts contain `text` as PostgreSQL's ILIKE decides it, one text at a time."""
    pattern = search.like_pattern(text)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.id FROM annotation_pair p JOIN annotation_prompt q ON q.id = p.prompt_id "
            "JOIN annotation_response c ON c.id = p.chosen_id JOIN annotation_response r ON r.id = p.rejected_id "
            "WHERE p.dataset_id = %s AND (q.query ILIKE %s OR c.text ILIKE %s OR r.text ILIKE %s) ORDER BY p.id",
            [dataset.pk, pattern, pattern, pattern])
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of two rows, segments of two blocks: every few texts a block or segment boundary."""
    monkeypatch.setattr(search_blocks, "BLOCK_ROWS", 2)
    monkeypatch.setattr(search_blocks, "SEGMENT_BLOCKS", 2)


def test_filtered_search_finds_exactly_what_ilike_finds_across_blocks_and_segments(client, team, small_blocks):
    for round_ in range(3):  # each text several times, at every position in a block
        for i, (prompt, chosen, rejected) in enumerate(MIXED):
            make_pair(team.dataset, f"{prompt}（{round_}）", f"{chosen}{'。' * i}", f"{rejected}{round_}")
    job = index(team.dataset)
    assert SearchSegment.objects.filter(dataset=team.dataset).count() > 4  # several segments per table
    assert job.done == Prompt.objects.count() + Response.objects.count()
    pairs = Pair.objects.filter(dataset=team.dataset)
    client.force_login(team.viewer)
    for q in QUERIES:
        expected = _brute_force(team.dataset, q)
        assert list(search.narrow(pairs, team.dataset, q).order_by("pk").values_list("pk", flat=True)) == expected, q
        found = search.page(pairs, team.dataset, q, limit=1000)
        assert found.ids == expected, q
        if len(q) >= 3 and "\\" not in q:
            assert found.indexed or search_blocks.query_buckets(q, search._is_caseless(q)) is None, q
        assert every_page(client, team.dataset, q=q)[0] == expected, q
    # The filters prune: a word of one text leaves most blocks unread.
    ranges = search.candidate_ranges(team.dataset, "编号4711）")
    blocks = sum(SearchSegment.objects.filter(dataset=team.dataset, table="response").values_list("blocks", flat=True))
    assert 0 < len(ranges["response"][0]) < blocks / 2


def test_which_queries_the_filters_answer():
    assert len(search_blocks.query_buckets("光合作用", caseless=True)) == 2
    assert search_blocks.query_buckets("光合", caseless=True) is None  # no trigram: walks
    assert search_blocks.query_buckets("a\nbc", caseless=True) is None  # COPY escapes the newline
    assert search_blocks.query_buckets("a\\bc", caseless=True) is None  # and the backslash
    assert len(search_blocks.query_buckets("KELVIN", caseless=False)) == 4
    # A cased letter beyond ASCII lower-cases outside ASCII folding: its trigrams are not looked up.
    assert search_blocks.query_buckets("ÄÖÜ", caseless=False) is None
    assert len(search_blocks.query_buckets("ÄÖÜabcd", caseless=False)) == 2  # abc, bcd


def test_block_filters_have_every_trigram_of_their_texts():
    import random

    rng = random.Random(7)
    alphabet = "光合作用机器学习人工智能abcXYZ0123 ，。！%_é€😀"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))) for _ in range(300)]
    copy_output = bytearray("".join(f"{1000 + i}\t{t}\n" for i, t in enumerate(texts)).encode())
    ids, row_ends, data = search_blocks.split_copy_rows(copy_output)
    assert ids.tolist() == list(range(1000, 1300))
    filters = search_blocks.block_filters(data, row_ends, block_rows=16)
    blocks = (len(texts) + 15) // 16
    rows = [bytes(filters[b]) for b in range(search_blocks.BUCKETS)]
    for _ in range(500):
        i = rng.randrange(len(texts))
        text = texts[i]
        if len(text) < 3:
            continue
        start = rng.randrange(len(text) - 2)
        query = text[start:start + rng.randrange(3, 8)]
        for caseless in (True, False):
            buckets = search_blocks.query_buckets(query if caseless else query.upper(), caseless)
            if buckets is None:
                continue
            candidates = search_blocks.candidate_blocks([rows[b] for b in buckets], blocks)
            assert i // 16 in candidates.tolist(), (query, caseless)


def test_rows_imported_after_indexing_are_searched_and_indexed_by_the_next_job(client, team, small_blocks):
    first = make_pair(team.dataset, "旧问题：量子纠缠", "旧回答", "旧坏回答")
    index(team.dataset)
    pairs = Pair.objects.filter(dataset=team.dataset)
    assert search.page(pairs, team.dataset, "量子纠缠").indexed
    second = make_pair(team.dataset, "新问题", "新回答：量子纠缠是什么", "不知道")  # a second import's rows
    assert not search.is_indexed(team.dataset)
    found = search.page(pairs, team.dataset, "量子纠缠")
    assert not found.indexed and found.ids == [first.pk, second.pk]
    assert list(search.narrow(pairs, team.dataset, "量子纠缠").values_list("pk", flat=True)) == [first.pk, second.pk]
    job = index(team.dataset)
    assert job.done == 3  # only the new prompt and its two responses
    found = search.page(pairs, team.dataset, "量子纠缠")
    assert found.indexed and found.ids == [first.pk, second.pk]


class WorkerDied(BaseException):  # as a killed worker: nothing in the job runner catches it
    pass


def test_an_indexing_job_killed_after_a_segment_resumes_after_it(team, small_blocks, short_lease):
    from datetime import timedelta

    from django.utils import timezone

    for i in range(10):
        make_pair(team.dataset, f"问题{i}光合作用", f"回答{i}", f"坏回答{i}")
    job = search.start(team.dataset, None)

    def die_in_the_second_segment(job_state, counts):
        if job_state.done > 4:  # a segment of prompts is 2 blocks of 2 rows
            raise WorkerDied()

    with pytest.raises(WorkerDied):
        jobs.execute(job.pk, on_progress=die_in_the_second_segment)
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.done == 4 and job.total == 30
    assert not search.is_indexed(team.dataset)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=10))
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.done == job.total == 30 and job.counts == {"prompts_indexed": 10, "responses_indexed": 20}
    segments = SearchSegment.objects.filter(dataset=team.dataset).order_by("table", "first_id")
    for table, count in (("prompt", 10), ("response", 20)):
        runs = [(s.first_id, s.last_id, s.rows) for s in segments if s.table == table]
        assert sum(rows for _f, _l, rows in runs) == count
        assert all(runs[k][1] < runs[k + 1][0] for k in range(len(runs) - 1))  # no row covered twice
    found = search.page(Pair.objects.filter(dataset=team.dataset), team.dataset, "光合作用")
    assert found.indexed and len(found.ids) == 10
