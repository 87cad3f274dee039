"""The low-quality rules: each selects exactly the pairs built to break it, and a clean pair is in none."""


import pytest
from django.urls import reverse

from annotation.models import ContaminationMatch, Dataset, Judgement, NearDuplicateGroup, NearDuplicateMember, Pair
from review import quality_rules
from review.selections import REGISTRY

from .judged import judge
from .pair_data import make_pair

CLEAN = ("什么是光合作用？", "光合作用是植物利用光能把二氧化碳和水合成有机物并释放氧气的过程。",
         "光合作用就是植物呼吸。")


def clean(dataset, **kwargs):
    return make_pair(dataset, *CLEAN, chosen_score=8.0, rejected_score=3.0, **kwargs)


@pytest.fixture
def crafted(team):
    ds = team.dataset
    p = {"clean": clean(ds)}
    p["reward"] = clean(ds, status="filtered", status_reason="reward:crm v1 margin=-0.5 was=pending")
    p["rule_filtered"] = clean(ds, status="filtered", status_reason="rule:other")
    p["small_gap"] = make_pair(ds, *CLEAN, chosen_score=6.0, rejected_score=3.5)
    p["judge_fail"] = clean(ds)
    Judgement.objects.create(response=p["judge_fail"].rejected, judge=judge("glm-4"), status="parse_error",
                             raw_output="我觉得还行")
    p["near_dup"] = clean(ds)
    group = NearDuplicateGroup.objects.create(dataset=ds, threshold=0.8, size=2)
    NearDuplicateMember.objects.create(group=group, prompt=p["near_dup"].prompt, similarity=0.9)
    p["contaminated"] = clean(ds)
    bench = Dataset.objects.create(name="基准", is_benchmark=True)
    bench_pair = clean(bench)
    ContaminationMatch.objects.create(dataset=ds, prompt=p["contaminated"].prompt,
                                      benchmark_prompt=bench_pair.prompt, similarity=0.95)
    p["identical"] = make_pair(ds, "1+1=?", "答案是 2。", "答案是2", chosen_score=8.0, rejected_score=3.0)
    p["nearly_identical"] = make_pair(ds, "写一句诗", "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
                                      "床前明月光疑是地上霜举头望明月低头思故乡啊", chosen_score=8.0, rejected_score=3.0)
    p["empty"] = make_pair(ds, "讲个故事", "从前有座山，山里有座庙，庙里有个老和尚在讲故事。", "  \n ", chosen_score=8.0,
                           rejected_score=3.0)
    p["unclosed_fence"] = make_pair(ds, "写个函数", "好的，下面是一个返回一的简单函数示例代码：\n```python\ndef f():\n    return 1", "不会写这个函数。",
                                    chosen_score=8.0, rejected_score=3.0)
    p["mid_sentence"] = make_pair(ds, "介绍长城", "长城是中国古代的军事防御工程，始建于春秋战国时期，", "长城很长。",
                                  chosen_score=8.0, rejected_score=3.0)
    p["refusal"] = make_pair(ds, "怎么开锁？", "抱歉，我无法提供这类信息。", "用发卡可以试试，不过最好找锁匠。",
                             chosen_score=8.0, rejected_score=3.0)
    p["english"] = make_pair(ds, "请解释牛顿第一定律。", "An object stays at rest or in uniform motion unless a force "
                             "acts on it. $F = ma$ is the second law.", "牛顿第一定律说力是维持运动的原因。",
                             chosen_score=8.0, rejected_score=3.0)
    p["english_prompt"] = make_pair(ds, "Explain Newton's first law.", "An object stays at rest unless pushed.",
                                    "Objects move.", chosen_score=8.0, rejected_score=3.0)
    p["chinese_with_code"] = make_pair(ds, "用 Python 打印列表", "可以这样写：\n```python\nitems = [1, 2, 3]\n"
                                       "for item in items:\n    print(item)\n```\n这样就会逐行打印。", "不知道怎么写这个打印列表的程序，抱歉了。",
                                       chosen_score=8.0, rejected_score=3.0)
    p["chinese_with_math"] = make_pair(ds, "求导数", "对函数求导：\n$$\n\\frac{d}{dx} \\sin x = \\cos x\n$$\n同理 "
                                       "\\(\\frac{d}{dx} e^x = e^x\\)，所以答案如上。", "不会做这道求导的数学题。",
                                       chosen_score=8.0, rejected_score=3.0)
    p["long_short"] = make_pair(ds, "介绍黄河", "黄河" * 200 + "。", "黄河很长。", chosen_score=8.0,
                                rejected_score=3.0)
    return team, p


EXPECTED = {
    "reward-filtered": {"reward"},
    "small-gap": {"small_gap"},
    "judge-failures": {"judge_fail"},
    "near-duplicate-prompt": {"near_dup"},
    "contaminated": {"contaminated"},
    "identical-responses": {"identical", "nearly_identical"},
    "empty-or-truncated": {"empty", "unclosed_fence", "mid_sentence"},
    "refusal-chosen": {"refusal"},
    "non-chinese-answer": {"english"},
    "length-ratio": {"long_short"},
}


# small-gap is a confidence band listed with the charts, not a low-quality rule: it counts as no defect.
QUALITY = set(EXPECTED) - {"small-gap"}


@pytest.mark.parametrize("rule_name", list(EXPECTED))
def test_each_rule_selects_exactly_the_pairs_made_to_break_it(crafted, rule_name):
    team, pairs = crafted
    rule = REGISTRY[rule_name]
    selected = set(rule.narrow(Pair.objects.filter(dataset=team.dataset), team.dataset, dict(rule.settings))
                   .values_list("pk", flat=True))
    names = {name for name, pair in pairs.items() if pair.pk in selected}
    assert names == EXPECTED[rule_name]


def test_every_rule_is_registered_in_the_quality_group():
    assert {r.name for r in quality_rules.rules()} == QUALITY
    assert all(r.description and r.label for r in quality_rules.rules())


def test_small_gap_is_a_confidence_band_not_a_defect_rule(crafted):
    team, pairs = crafted
    assert REGISTRY["small-gap"].group == "confidence"
    assert "small-gap" not in [r.name for r in quality_rules.flags_of(pairs["small_gap"])]


def test_settings_change_what_a_rule_selects(crafted):
    team, pairs = crafted
    rule = REGISTRY["small-gap"]
    everything = Pair.objects.filter(dataset=team.dataset)
    wider = set(rule.narrow(everything, team.dataset, {"gap": 6.0}).values_list("pk", flat=True))
    assert pairs["small_gap"].pk in wider and pairs["clean"].pk in wider
    ratio = REGISTRY["length-ratio"]
    assert not ratio.narrow(everything, team.dataset, {"ratio": 1000.0}).exists()


def test_flags_of_a_pair_name_the_rules_that_select_it(crafted):
    team, pairs = crafted
    assert quality_rules.flags_of(pairs["clean"]) == []
    assert [r.name for r in quality_rules.flags_of(pairs["refusal"])] == ["refusal-chosen"]


def test_the_quality_page_counts_each_rule_by_domain_and_links_to_the_list(client, crafted):
    team, pairs = crafted
    make_pair(team.dataset, "1+1", "2", "2 ", domain="math")  # identical, in another domain
    client.force_login(team.viewer)
    response = client.get(reverse("quality-rules", args=[team.dataset.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    row = html[html.index('data-rule="identical-responses"'):]
    row = row[:row.index("</tr>")]
    assert 'data-domain="chat"><a href="/datasets/%d/pairs/?view=identical-responses&amp;domain=chat">2</a>' % (
        team.dataset.pk) in row
    assert 'data-domain="math"><a href="/datasets/%d/pairs/?view=identical-responses&amp;domain=math">1</a>' % (
        team.dataset.pk) in row
    assert ">3</a>" in row[row.index("data-total"):]


@pytest.mark.parametrize("role,status", [("admin", 200), ("reviewer", 200), ("viewer", 200), ("outsider", 404)])
def test_the_quality_page_is_for_members(client, team, role, status):
    client.force_login(getattr(team, role))
    assert client.get(reverse("quality-rules", args=[team.dataset.pk])).status_code == status
    assert client.post(reverse("quality-rules", args=[team.dataset.pk])).status_code in (405, 404)


def test_a_rule_links_to_the_list_that_shows_its_pairs(client, crafted):
    team, pairs = crafted
    client.force_login(team.viewer)
    response = client.get(reverse("pair-list", args=[team.dataset.pk]), {"view": "refusal-chosen"})
    rows = response.content.decode().count("data-pair=")
    assert response.status_code == 200 and rows == 1
    assert f'data-pair="{pairs["refusal"].pk}"' in response.content.decode()


def test_a_counting_job_stores_the_counts_and_the_page_shows_them_with_their_time(
        client, crafted, django_capture_on_commit_callbacks):
    from annotation import jobs
    from annotation.models import Job

    team, pairs = crafted
    client.force_login(team.admin)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("quality-recount", args=[team.dataset.pk]))
    job = Job.objects.get(kind="quality_counts")
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.counts["identical-responses"] == {"chat": 2} and job.counts["reward-filtered"] == {"chat": 1}
    assert job.done == job.total == len(QUALITY)
    # A pair added after the count is not in the stored numbers (the page says when they were made).
    make_pair(team.dataset, "1+1", "2", "2 ", domain="math")
    html = client.get(reverse("quality-rules", args=[team.dataset.pk])).content.decode()
    assert 'id="quality-freshness"' in html and "Counted at" in html
    row = html[html.index('data-rule="identical-responses"'):]
    assert ">2</a>" in row[row.index("data-total"):row.index("</tr>")]
    # ... nor in the number of pairs they are out of, nor its domain among the columns.
    assert job.counts["pairs"] == {"chat": len(pairs)} and f"out of {len(pairs)} pairs" in html
    assert 'data-domain="math"' not in html


def test_a_large_dataset_without_a_count_is_not_counted_live(client, crafted, settings, monkeypatch):
    team, _ = crafted
    monkeypatch.setattr(quality_rules, "LIVE_LIMIT", 3)
    client.force_login(team.viewer)
    html = client.get(reverse("quality-rules", args=[team.dataset.pk])).content.decode()
    assert "Not counted yet" in html and 'id="quality-recount"' not in html


@pytest.mark.parametrize("role,status", [("admin", 302), ("reviewer", 403), ("viewer", 403), ("outsider", 404)])
def test_only_admins_start_a_count(client, team, role, status, django_capture_on_commit_callbacks):
    client.force_login(getattr(team, role))
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(reverse("quality-recount", args=[team.dataset.pk])).status_code == status
    assert client.get(reverse("quality-recount", args=[team.dataset.pk])).status_code == 405


def _listed(client, dataset, query):
    html = client.get(reverse("pair-list", args=[dataset.pk]) + "?" + query).content.decode()
    stored = html[html.index('id="list-freshness" data-stored="') + len('id="list-freshness" data-stored="'):]
    return {int(pk) for pk in __import__("re").findall(r'<tr data-pair="(\d+)"', html)}, stored[:stored.index('"')]


def test_the_counting_job_stores_each_costly_rules_pairs_and_its_list_reads_them(client, crafted):
    from annotation import jobs
    from annotation.jobs import create_job
    from review.models import SelectionMember

    team, pairs = crafted
    client.force_login(team.viewer)
    ds = team.dataset
    stored_rules = [r for r in quality_rules.rules() if hasattr(r.narrow, "stored_at")]
    assert {r.name for r in stored_rules} == QUALITY - {"reward-filtered"}  # status changes outside jobs
    for rule in stored_rules:  # before any count: live, and the list says so
        assert _listed(client, ds, f"view={rule.name}")[1] == "false"
    assert jobs.execute(create_job("quality_counts", dataset=ds).pk) == "succeeded"
    for rule in stored_rules:
        live = set(rule.narrow.live(Pair.objects.filter(dataset=ds), ds, dict(rule.settings)).values_list("pk", flat=True))
        members = set(SelectionMember.objects.filter(dataset=ds, view=rule.name).values_list("pair_id", flat=True))
        assert members == live == {pairs[name].pk for name in EXPECTED[rule.name]}
        assert _listed(client, ds, f"view={rule.name}") == (live, "true")
    # A pair that breaks a rule, added outside any job: the stored list does not have it yet ...
    late = make_pair(ds, "2+2=?", "答案是 4。", "答案是4", domain="math", chosen_score=8.0, rejected_score=3.0)
    assert late.pk not in _listed(client, ds, "view=identical-responses")[0]
    # ... other settings are always listed live ...
    assert _listed(client, ds, "view=identical-responses&similarity=0.85") == (
        {pairs["identical"].pk, pairs["nearly_identical"].pk, late.pk}, "false")
    # ... while a URL that spells out the default setting reads the stored list.
    assert _listed(client, ds, "view=identical-responses&similarity=0.8")[1] == "true"


def test_a_job_that_changes_the_dataset_sends_the_rule_lists_live_until_the_next_count(client, crafted):
    from django.utils import timezone

    from annotation import jobs
    from annotation.jobs import create_job
    from annotation.models import Job

    team, pairs = crafted
    ds = team.dataset
    client.force_login(team.viewer)
    assert jobs.execute(create_job("quality_counts", dataset=ds).pk) == "succeeded"
    late = make_pair(ds, "2+2=?", "答案是 4。", "答案是4", domain="math", chosen_score=8.0, rejected_score=3.0)
    quality_page = reverse("quality-rules", args=[ds.pk])
    assert 'data-stale="false"' in client.get(quality_page).content.decode()
    # Jobs that only read the data (a dashboard refresh under way, a search-index job, an export) keep
    # the stored lists.
    Job.objects.create(kind="dashboard_refresh", dataset=ds, status="running")
    Job.objects.create(kind="search_index", dataset=ds, status="succeeded", finished_at=timezone.now())
    Job.objects.create(kind="export", dataset=ds, status="succeeded", finished_at=timezone.now())
    assert _listed(client, ds, "view=identical-responses")[1] == "true"
    # A scoring job of another dataset changes nothing here; one of this dataset does.
    other = Dataset.objects.create(name="另一个")
    Job.objects.create(kind="score", dataset=other, status="succeeded", finished_at=timezone.now())
    assert _listed(client, ds, "view=identical-responses")[1] == "true"
    Job.objects.create(kind="score", dataset=ds, status="succeeded", finished_at=timezone.now())
    assert _listed(client, ds, "view=identical-responses") == (
        {pairs["identical"].pk, pairs["nearly_identical"].pk, late.pk}, "false")
    html = client.get(quality_page).content.decode()
    assert 'data-stale="true"' in html and "listed live" in html
    assert quality_rules.flags_of(late) == [REGISTRY["identical-responses"]]
    # The next count stores the lists again, the new pair included.
    assert jobs.execute(create_job("quality_counts", dataset=ds).pk) == "succeeded"
    assert _listed(client, ds, "view=identical-responses") == (
        {pairs["identical"].pk, pairs["nearly_identical"].pk, late.pk}, "true")
    assert 'data-stale="false"' in client.get(quality_page).content.decode()


def test_a_count_made_before_members_were_stored_leaves_the_lists_live(client, crafted):
    from django.utils import timezone

    from annotation.models import Job

    team, pairs = crafted
    client.force_login(team.viewer)
    now = timezone.now()
    Job.objects.create(kind="quality_counts", dataset=team.dataset, status="succeeded", started_at=now,
                       finished_at=now, counts={"refusal-chosen": {"chat": 1}}, cursor={"done": ["refusal-chosen"]})
    assert _listed(client, team.dataset, "view=refusal-chosen") == ({pairs["refusal"].pk}, "false")


def test_beat_recounts_a_dataset_whose_stored_rule_lists_a_job_made_stale(crafted):
    from django.utils import timezone

    from annotation import jobs
    from annotation.models import Job
    from review.tasks import recount_stale_quality

    team, _ = crafted
    ds = team.dataset
    assert recount_stale_quality() == []  # never counted: left to the admins' button
    assert jobs.execute(quality_rules.start_count(ds).pk) == "succeeded"
    assert recount_stale_quality() == []  # nothing changed
    Job.objects.create(kind="dashboard_refresh", dataset=ds, status="succeeded", finished_at=timezone.now())
    assert recount_stale_quality() == []  # a refresh only reads the data
    build = Job.objects.create(kind="build_pairs", dataset=ds, status="running")
    assert recount_stale_quality() == []  # not while a job of the dataset is under way
    Job.objects.filter(pk=build.pk).update(status="succeeded", finished_at=timezone.now())
    started = recount_stale_quality()
    assert started == list(Job.objects.filter(kind="quality_counts", status="pending").values_list("pk", flat=True))
    assert len(started) == 1 and recount_stale_quality() == []  # waiting: not twice
    assert quality_rules.start_count(ds).pk == started[0]
