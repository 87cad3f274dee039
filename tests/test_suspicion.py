"""The suspicion score (review/suspicion.py): stored per pair by the quality-count job, ranked worst first in
the pair list and the review queue, and explained on the pair page."""

import pytest
from django.http import QueryDict
from django.urls import reverse

from annotation import jobs
from annotation.models import Job, Judge, Judgement, Pair
from review import queue as review_queue
from review import suspicion
from review.models import PairSuspicion

from .helpers import Team
from .pair_data import make_pair


def _score(response, judge, score):
    Judgement.objects.create(response=response, judge=judge, score=score, status="ok")


@pytest.fixture
def world(db):
    """clean: a plain answer over a wrong one, both judges sure (wide gap). suspect: the chosen response
    refuses and one judge prefers the rejected one by 4 (a judge flip)."""
    team = Team.create("suspicion")
    ds = team.dataset
    j1, _ = Judge.objects.get_or_create(name="susp-one", defaults={"family": "qwen"})
    j2, _ = Judge.objects.get_or_create(name="susp-two", defaults={"family": "gpt"})
    clean = make_pair(ds, "北京是哪个国家的首都？", "北京是中国的首都，也是全国的政治和文化中心。",
                      "北京是日本的首都。", chosen_score=9.0, rejected_score=2.0)
    for judge, (c, r) in {j1: (9, 2), j2: (9, 2)}.items():
        _score(clean.chosen, judge, c)
        _score(clean.rejected, judge, r)
    suspect = make_pair(ds, "请介绍一下长城的历史。", "抱歉，我无法回答这个问题。",
                        "长城始建于春秋战国时期，秦朝统一后连接成万里长城，明朝又大规模重修。",
                        chosen_score=7.0, rejected_score=4.0)
    for judge, (c, r) in {j1: (9, 2), j2: (3, 7)}.items():
        _score(suspect.chosen, judge, c)
        _score(suspect.rejected, judge, r)
    job = jobs.create_job("quality_counts", dataset=ds, enqueue_it=False)
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    return team, clean, suspect


def test_the_quality_count_stores_a_score_that_ranks_a_refusal_with_a_flip_above_a_clean_wide_gap(world):
    team, clean, suspect = world
    scores = dict(PairSuspicion.objects.filter(dataset=team.dataset).values_list("pair_id", "score"))
    assert set(scores) == {clean.pk, suspect.pk}
    assert scores[suspect.pk] > 0.9 > 0.2 > scores[clean.pk]
    values = suspicion.signal_values(team.dataset)
    assert values[suspect.pk]["refusal-chosen"] == 1 and values[suspect.pk]["judge-flip"] == 4
    assert scores[suspect.pk] == pytest.approx(suspicion.score_of(values[suspect.pk]))


def test_the_pair_page_shows_the_score_and_its_reasons_in_words(client, world):
    team, clean, suspect = world
    client.force_login(team.viewer)
    html = client.get(reverse("pair-detail", args=[team.dataset.pk, suspect.pk])).content.decode()
    section = html[html.index('id="suspicion"'):]
    reasons = section[section.index("suspicion-reasons"):section.index("</ul>")]
    assert "The chosen response refuses" in reasons
    assert "A judge scores the rejected response 4 points higher" in reasons
    assert reasons.index("refuses") < reasons.index("A judge")  # the largest contribution first
    assert 'data-judge="susp-two">susp-two (+4.0)' in html  # which judge flipped


def test_the_pair_list_sorts_most_suspicious_first(client, world):
    team, clean, suspect = world
    client.force_login(team.viewer)
    url = reverse("pair-list", args=[team.dataset.pk])
    by_id = client.get(url).content.decode()
    assert by_id.index(f'data-pair="{clean.pk}"') < by_id.index(f'data-pair="{suspect.pk}"')
    worst = client.get(url, {"order": "suspicious"}).content.decode()
    assert worst.index(f'data-pair="{suspect.pk}"') < worst.index(f'data-pair="{clean.pk}"')
    assert "?order=suspicious" in worst  # the queue over it is one click away


def test_keyset_pages_of_the_suspicious_order_follow_the_score(client, world, monkeypatch):
    team, clean, suspect = world
    from review import pair_views

    monkeypatch.setattr(pair_views, "PAGE_SIZE", 1)
    client.force_login(team.viewer)
    url = reverse("pair-list", args=[team.dataset.pk])
    second = client.get(url, {"order": "suspicious", "after": suspect.pk}).content.decode()
    assert f'data-pair="{clean.pk}"' in second and f'data-pair="{suspect.pk}"' not in second


def test_the_queue_over_most_suspicious_first_serves_the_worst_pair_first(world):
    team, clean, suspect = world
    queue, form = review_queue.Queue.from_params(team.dataset, QueryDict("order=suspicious"))
    assert queue is not None, form.errors
    first = review_queue.next_assignment(queue, team.reviewer)
    assert first.pair_id == suspect.pk
    review_queue.skip(queue, team.reviewer, Pair.objects.get(pk=suspect.pk))
    plain, _ = review_queue.Queue.from_params(team.dataset, QueryDict(""))
    assert review_queue.next_assignment(plain, team.admin).pair_id == clean.pk  # id order otherwise


def test_a_pairwise_judge_that_prefers_the_rejected_response_in_both_orders_raises_the_score(world):
    import uuid

    from annotation.models import PairwiseVerdict

    team, clean, _suspect = world
    before = PairSuspicion.objects.get(pair=clean).score
    judge = Judge.objects.get(name="susp-one")
    PairwiseVerdict.objects.create(dataset=team.dataset, pair=clean, judge=judge, chosen_first="B",
                                   chosen_second="A", outcome="rejected", chosen_first_key=uuid.uuid4(),
                                   chosen_second_key=uuid.uuid4())
    job = jobs.create_job("quality_counts", dataset=team.dataset, enqueue_it=False)
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    values = suspicion.signal_values(team.dataset)[clean.pk]
    assert values["pairwise-against"] == 1
    after = PairSuspicion.objects.get(pair=clean).score
    assert after > before and after == pytest.approx(suspicion.score_of(values))


def _suspicious_ids(dataset, limit=10):
    from review.selections import keyset_ids

    return keyset_ids(Pair.objects.filter(dataset=dataset), dataset, "suspicious", limit=limit)


def test_while_the_count_is_current_the_list_asks_for_no_unscored_pairs(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    team, clean, suspect = world
    with CaptureQueriesContext(connection) as queries:
        assert _suspicious_ids(team.dataset) == [suspect.pk, clean.pk]
    # every pair has a score: the anti-join that finds those without one (all pairs at a million) is not run
    assert not any('LEFT OUTER JOIN "review_pairsuspicion"' in q["sql"] for q in queries.captured_queries)


def test_a_pair_added_by_a_job_after_the_count_comes_last_unscored(world):
    from django.utils import timezone

    team, clean, suspect = world
    added = make_pair(team.dataset, "新问题？", "新的回答。", "另一个回答。")
    Job.objects.create(kind="import", dataset=team.dataset, status=Job.Status.SUCCEEDED, started_at=timezone.now(),
                       finished_at=timezone.now())
    assert _suspicious_ids(team.dataset) == [suspect.pk, clean.pk, added.pk]
    queue, _ = review_queue.Queue.from_params(team.dataset, QueryDict("order=suspicious"))
    review_queue.skip(queue, team.reviewer, Pair.objects.get(pk=review_queue.next_assignment(queue, team.reviewer).pair_id))
    review_queue.skip(queue, team.reviewer, Pair.objects.get(pk=review_queue.next_assignment(queue, team.reviewer).pair_id))
    assert review_queue.next_assignment(queue, team.reviewer).pair_id == added.pk
