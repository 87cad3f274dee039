"""The review queue: next pair, submit, skip, undo, history, overlap, leases, blind review and access."""

import json
import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from annotation.models import Judge, Judgement, Membership, Pair, Role
from review import queue as queues
from review.models import Review, ReviewAssignment, ReviewEvent, ReviewSettings

from .conftest import ROOT, _test_redis_url, database_url_for_tests
from .helpers import Team, generated_pairs, write_jsonl

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def team(db, tmp_path):
    team = Team.create("queue")
    # 24 pairs over 6 prompts, one prompt per domain, four pairs each.
    path = write_jsonl(tmp_path / "pairs.jsonl", generated_pairs(24))
    call_command("import_pairs", str(path), dataset=team.dataset.name, no_progress=True, no_near_duplicates=True)
    # Verdicts here are read in chosen/rejected terms ("a" = chosen better): labelled review. Blind review, the
    # default, has tests of its own below.
    ReviewSettings.objects.create(dataset=team.dataset, blind_review=False)
    return team


def reviewer(team, name):
    user = get_user_model().objects.create_user(username=name, password="x")
    Membership.objects.create(dataset=team.dataset, user=user, role=Role.REVIEWER)
    return user


def queue_url(team, query=""):
    return reverse("review-queue", args=[team.dataset.pk]) + (f"?{query}" if query else "")


def shown_pair(response):
    match = re.search(rb'id="review-item"[^>]*data-pair="(\d*)"', response.content)
    assert match, "the page has the review item"
    return int(match.group(1)) if match.group(1) else None


def next_pair(client, team, query=""):
    response = client.get(queue_url(team, query), **HX)
    assert response.status_code == 200
    return shown_pair(response)


def submit(client, team, pair, verdict="a", query="", **extra):
    data = {"pair": pair, "queue": query, "verdict": verdict, "better_correct": "on", "prompt_ok": "on", **extra}
    return client.post(reverse("review-submit", args=[team.dataset.pk]), data, **HX)


def pair_ids(team, **filters):
    return list(Pair.objects.filter(dataset=team.dataset, **filters).order_by("pk").values_list("pk", flat=True))


def test_a_reviewer_gets_the_first_pair_of_the_list_and_keeps_it_on_reload(client, team):
    client.force_login(team.reviewer)
    response = client.get(queue_url(team))
    assert response.status_code == 200 and b"<html" in response.content
    first = pair_ids(team)[0]
    assert shown_pair(response) == first
    assert next_pair(client, team) == first
    assignment = ReviewAssignment.objects.get(reviewer=team.reviewer)
    assert assignment.pair_id == first and assignment.status == "assigned" and assignment.expires_at > timezone.now()


def test_the_queue_draws_from_the_list_in_its_query_string(client, team):
    client.force_login(team.reviewer)
    assert next_pair(client, team, "domain=math") == pair_ids(team, domain="math")[0]
    response = client.get(queue_url(team, "domain=nonsense"))
    assert response.status_code == 400


def test_submitting_saves_the_review_records_the_change_and_returns_the_next_pair(client, team):
    client.force_login(team.reviewer)
    first, second = pair_ids(team)[:2]
    assert next_pair(client, team) == first
    response = submit(client, team, first, "b", note="太短了")
    assert response.status_code == 200 and b"<html" not in response.content
    assert json.loads(response["HX-Trigger"]) == {"reviewed": {}}
    assert shown_pair(response) == second
    review = Review.objects.get(pair_id=first, reviewer=team.reviewer)
    assert (review.verdict, review.better_correct, review.prompt_ok, review.note) == ("rejected_better", True, True,
                                                                                      "太短了")
    event = ReviewEvent.objects.get(pair_id=first)
    assert event.actor == team.reviewer and event.before is None and event.after["verdict"] == "rejected_better"
    assert event.kind == "submit"
    assert ReviewAssignment.objects.get(pair_id=first).status == "done"


def test_both_bad_leaves_correctness_empty_and_unticked_boxes_are_false(client, team):
    client.force_login(team.reviewer)
    first = next_pair(client, team)
    client.post(reverse("review-submit", args=[team.dataset.pk]),
                {"pair": first, "queue": "", "verdict": "both_bad", "better_correct": "on"}, **HX)
    review = Review.objects.get(pair_id=first)
    assert review.verdict == "both_bad" and review.better_correct is None and review.prompt_ok is False


def test_without_javascript_a_submit_redirects_back_to_the_queue(client, team):
    client.force_login(team.reviewer)
    first = next_pair(client, team, "domain=code")
    response = client.post(reverse("review-submit", args=[team.dataset.pk]),
                           {"pair": first, "queue": "domain=code", "verdict": "a", "better_correct": "on"})
    assert response.status_code == 302 and response["Location"] == queue_url(team, "domain=code")
    assert Review.objects.filter(pair_id=first).exists()


def test_a_submit_without_a_verdict_is_refused_and_the_pair_stays(client, team):
    client.force_login(team.reviewer)
    first = next_pair(client, team)
    response = client.post(reverse("review-submit", args=[team.dataset.pk]), {"pair": first, "queue": ""}, **HX)
    assert response.status_code == 400 and shown_pair(response) == first
    assert "Choose a verdict" in response.content.decode()
    assert not Review.objects.exists()


def test_a_pair_the_queue_did_not_hand_out_is_refused(client, team):
    client.force_login(team.reviewer)
    response = submit(client, team, pair_ids(team)[5])
    assert response.status_code == 409
    assert "not handed to you" in response.content.decode()
    assert not Review.objects.exists()


def test_two_reviewers_never_get_the_same_pair_without_overlap(client, team):
    other = reviewer(team, "second")
    client.force_login(team.reviewer)
    mine = next_pair(client, team)
    client.force_login(other)
    theirs = next_pair(client, team)
    assert mine != theirs
    client.force_login(team.reviewer)
    assert next_pair(client, team) == mine


def test_with_overlap_k_each_pair_goes_to_exactly_k_reviewers(client, team):
    ReviewSettings.objects.filter(dataset=team.dataset).update(reviews_per_pair=2)
    people = [team.reviewer, team.admin, reviewer(team, "third")]
    math = pair_ids(team, domain="math")
    # Round robin until nobody gets anything: each pair must end with exactly two reviews.
    active = list(people)
    while active:
        for person in list(active):
            client.force_login(person)
            pair = next_pair(client, team, "domain=math")
            if pair is None:
                active.remove(person)
                continue
            assert submit(client, team, pair, query="domain=math").status_code == 200
    counts = [Review.objects.filter(pair_id=p).count() for p in math]
    assert counts == [2] * len(math)
    assert Review.objects.count() == 2 * len(math)


def test_an_expired_lease_frees_the_pair_for_another_reviewer(client, team):
    other = reviewer(team, "second")
    client.force_login(team.reviewer)
    held = next_pair(client, team)
    ReviewAssignment.objects.filter(pair_id=held).update(expires_at=timezone.now() - timedelta(seconds=1))
    client.force_login(other)
    assert next_pair(client, team) == held
    # The first reviewer comes back too late: the pair went to the other one.
    client.force_login(team.reviewer)
    response = submit(client, team, held)
    assert response.status_code == 409 and not Review.objects.filter(pair_id=held).exists()


def test_a_skipped_pair_goes_to_another_reviewer_and_not_back(client, team):
    other = reviewer(team, "second")
    client.force_login(team.reviewer)
    first = next_pair(client, team)
    response = client.post(reverse("review-skip", args=[team.dataset.pk]), {"pair": first, "queue": ""}, **HX)
    assert response.status_code == 200 and shown_pair(response) not in (None, first)
    client.force_login(other)
    assert next_pair(client, team) == first


def test_undo_deletes_a_new_review_and_hands_the_pair_back(client, team):
    client.force_login(team.reviewer)
    first = next_pair(client, team)
    submit(client, team, first)
    response = client.post(reverse("review-undo", args=[team.dataset.pk]), {"queue": ""}, **HX)
    assert response.status_code == 200 and shown_pair(response) == first
    assert not Review.objects.filter(pair_id=first).exists()
    undo = ReviewEvent.objects.get(kind="undo")
    assert undo.before["verdict"] == "chosen_better" and undo.after is None and undo.actor == team.reviewer
    assert ReviewEvent.objects.get(kind="submit").undone
    response = client.post(reverse("review-undo", args=[team.dataset.pk]), {"queue": ""}, **HX)
    assert "Nothing to undo" in response.content.decode()


def test_undo_restores_the_state_before_an_edit(client, team):
    client.force_login(team.reviewer)
    first = next_pair(client, team)
    submit(client, team, first, "a")
    assignment = ReviewAssignment.objects.get(pair_id=first)
    response = client.get(queue_url(team, f"at={assignment.pk}"), **HX)
    assert shown_pair(response) == first and b'value="a" data-key="1" checked' in response.content
    submit(client, team, first, "tie")
    assert Review.objects.get(pair_id=first).verdict == "tie"
    response = client.post(reverse("review-undo", args=[team.dataset.pk]), {"queue": ""}, **HX)
    assert shown_pair(response) == first
    assert Review.objects.get(pair_id=first).verdict == "chosen_better"
    assert list(ReviewEvent.objects.order_by("pk").values_list("kind", flat=True)) == ["submit", "submit", "undo"]


def test_previous_and_next_walk_the_reviewers_own_history_in_this_queue(client, team):
    client.force_login(team.reviewer)
    first = next_pair(client, team)
    second = shown_pair(submit(client, team, first))
    submit(client, team, second)
    a1, a2 = (ReviewAssignment.objects.get(pair_id=p).pk for p in (first, second))
    fresh = client.get(queue_url(team), **HX).content.decode()
    assert f"at={a2}" in fresh and 'id="review-next"' not in fresh
    middle = client.get(queue_url(team, f"at={a2}"), **HX).content.decode()
    assert re.search(rf'id="review-prev" href="[^"]*at={a1}"', middle)
    assert re.search(r'id="review-next" href="[^"]*\?"', middle), "after the last one comes the fresh pair"
    # Another queue has its own history.
    other = client.get(queue_url(team, "domain=logic"), **HX).content.decode()
    assert 'id="review-prev"' not in other


def test_the_progress_fragment_counts_reviews(client, team):
    client.force_login(team.reviewer)
    first = next_pair(client, team, "domain=chat")
    submit(client, team, first, query="domain=chat")
    response = client.get(reverse("review-progress", args=[team.dataset.pk]) + "?domain=chat", **HX)
    assert b'data-total="4" data-reviewed="1" data-complete="1" data-mine="1"' in response.content


def progress_counts(client, team, query):
    page = client.get(reverse("review-progress", args=[team.dataset.pk]) + f"?{query}", **HX).content.decode()
    found = re.search(r'data-total="(\d+)" data-reviewed="(\d+)" data-complete="(\d+)" data-mine="(\d+)"', page)
    assert found and 'id="queue-progress-at"' in page
    return tuple(int(n) for n in found.groups())


def forget_counts(team, query):
    """The minute is over: the queue's stored counts expire."""
    queue, _form = queues.Queue.from_params(team.dataset, QueryDict(query))
    cache.delete(queues._progress_key(queue))


def test_a_verdict_in_the_queue_is_in_the_next_counts_and_they_never_go_backwards(transactional_db, client, team):
    # Two reviewers per pair, taking turns: after each verdict both see every review given so far.
    ReviewSettings.objects.filter(dataset=team.dataset).update(reviews_per_pair=2)
    other = reviewer(team, "second")
    seen = []
    for turn in range(6):
        user = (team.reviewer, other)[turn % 2]
        client.force_login(user)
        submit(client, team, next_pair(client, team, "domain=math"), query="domain=math")
        reviews = Review.objects.filter(pair__dataset=team.dataset, pair__domain="math")
        total, reviewed, complete, mine = progress_counts(client, team, "domain=math")
        assert (total, mine) == (4, reviews.filter(reviewer=user).count())
        assert reviewed == reviews.values("pair").distinct().count()
        assert complete == Pair.objects.filter(domain="math", dataset=team.dataset).alias(
            n=Count("reviews")).filter(n__gte=2).count()
        seen.append((reviewed, complete))
    assert seen == [(1, 0), (1, 1), (2, 1), (2, 2), (3, 2), (3, 3)]
    # A review the queue did not hand out (here: written directly) waits for the next count.
    Review.objects.create(pair=Pair.objects.get(pk=pair_ids(team, domain="math")[3]), reviewer=team.admin,
                          verdict="tie")
    assert progress_counts(client, team, "domain=math")[1:3] == (3, 3)
    forget_counts(team, "domain=math")
    assert progress_counts(client, team, "domain=math")[1:3] == (4, 3)


def test_a_verdict_already_in_a_count_is_not_added_to_it_again(transactional_db, team):
    queue, _form = queues.Queue.from_params(team.dataset, QueryDict("domain=code"))

    def committed_xid():
        with connection.cursor() as cursor:  # autocommit: a transaction of its own, committed at once
            cursor.execute("SELECT pg_current_xact_id()::text")
            return cursor.fetchone()[0]

    before = committed_xid()
    assert queues.progress(queue, team.reviewer)["reviewed"] == 0
    queues._count_verdict(queue, before, first=True, completed=True)  # committed before the count: in it
    assert queues.progress(queue, team.reviewer)["reviewed"] == 0
    queues._count_verdict(queue, committed_xid(), first=True, completed=True)  # after it: added
    assert (queues.progress(queue, team.reviewer)["reviewed"], queues.progress(queue, team.reviewer)["complete"]) == (
        1, 1)


def test_every_process_shows_the_same_counts(transactional_db, client, team):
    client.force_login(team.reviewer)
    submit(client, team, next_pair(client, team, "domain=math"), query="domain=math")
    queue, _form = queues.Queue.from_params(team.dataset, QueryDict("domain=math"))
    here = queues.progress(queue, team.reviewer)
    # Another process (a second gunicorn worker) reads the counts this one stored: same numbers, same time.
    code = ("import json; from django.http import QueryDict; from django.contrib.auth import get_user_model; "
            "from annotation.models import Dataset; from review import queue as q; "
            f"queue, _ = q.Queue.from_params(Dataset.objects.get(pk={team.dataset.pk}), QueryDict('domain=math')); "
            f"p = q.progress(queue, get_user_model().objects.get(pk={team.reviewer.pk})); "
            "print(json.dumps({**p, 'at': p['at'].isoformat()}))")
    env = dict(os.environ, DATABASE_URL=database_url_for_tests(), REDIS_URL=_test_redis_url())
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    there = json.loads(result.stdout.strip().splitlines()[-1])
    assert there == {**here, "at": here["at"].isoformat()}
    assert (there["total"], there["reviewed"], there["mine"]) == (4, 1, 1)


def test_the_queue_works_and_counts_live_when_the_cache_is_unreachable(client, team, settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    client.force_login(team.reviewer)
    response = submit(client, team, next_pair(client, team, "domain=logic"), query="domain=logic")
    assert response.status_code == 200
    assert progress_counts(client, team, "domain=logic") == (4, 1, 1, 1)


def test_blind_review_hides_scores_and_verdicts_and_maps_a_and_b_back(client, team):
    ReviewSettings.objects.filter(dataset=team.dataset).update(blind_review=True)
    Pair.objects.filter(dataset=team.dataset).update(chosen_score=8.5, rejected_score=3.0)
    other = reviewer(team, "second")
    # With overlap 1 the other reviewer's pair would never reach us: let both see each pair.
    ReviewSettings.objects.filter(dataset=team.dataset).update(reviews_per_pair=2)
    client.force_login(other)
    pair_id = next_pair(client, team)
    submit(client, team, pair_id, "b", note="另一位评审的意见")
    client.force_login(team.reviewer)
    response = client.get(queue_url(team), **HX)
    assert shown_pair(response) == pair_id
    page = response.content.decode()
    assert "Panel score" not in page and "8.5" not in page and "data-side" not in page
    assert "另一位评审的意见" not in page and 'id="other-reviews"' not in page
    pair = Pair.objects.get(pk=pair_id)
    swapped = ReviewAssignment.objects.get(pair=pair, reviewer=team.reviewer).rejected_first
    a_text = (pair.rejected if swapped else pair.chosen).text
    assert page.index(a_text) < page.index((pair.chosen if swapped else pair.rejected).text)
    submit(client, team, pair_id, "a")
    review = Review.objects.get(pair=pair, reviewer=team.reviewer)
    assert review.verdict == ("rejected_better" if swapped else "chosen_better")
    assert review.blind is True and review.rejected_first is swapped, "the order shown is recorded on the review"
    at = ReviewAssignment.objects.get(pair=pair, reviewer=team.reviewer).pk
    after = client.get(queue_url(team, f"at={at}"), **HX).content.decode()
    assert "另一位评审的意见" in after, "after one's own verdict the others' are shown"


def test_the_blind_order_is_drawn_per_pair_recorded_and_stable(client, team):
    ReviewSettings.objects.filter(dataset=team.dataset).update(blind_review=True)
    client.force_login(team.reviewer)
    shown = {}
    while (pair_id := next_pair(client, team)) is not None:
        page = client.get(queue_url(team), **HX).content.decode()  # a reload shows the same order
        pair = Pair.objects.select_related("chosen", "rejected").get(pk=pair_id)
        shown[pair_id] = page.index(pair.rejected.text) < page.index(pair.chosen.text)
        submit(client, team, pair_id, "a")
    recorded = dict(ReviewAssignment.objects.filter(reviewer=team.reviewer).values_list("pair_id", "rejected_first"))
    assert shown == recorded and len(shown) == 24
    assert 0 < sum(shown.values()) < len(shown), "both orders occur over 24 pairs (each a fair coin)"
    reviews = Review.objects.filter(reviewer=team.reviewer)
    assert {r.pair_id: r.rejected_first for r in reviews} == recorded and all(r.blind for r in reviews)
    assert all(r.verdict == ("rejected_better" if recorded[r.pair_id] else "chosen_better") for r in reviews)


def test_a_reviewer_cannot_unblind_a_queue_but_an_admin_can(client, team):
    ReviewSettings.objects.filter(dataset=team.dataset).update(blind_review=True)
    Pair.objects.filter(dataset=team.dataset).update(chosen_score=8.5, rejected_score=3.0)
    client.force_login(team.reviewer)
    page = client.get(queue_url(team, "blind=0")).content.decode()
    assert "data-side" not in page and "Panel score" not in page and 'id="queue-unblind"' not in page
    client.force_login(team.admin)
    page = client.get(queue_url(team)).content.decode()
    assert 'id="queue-unblind"' in page and "data-side" not in page
    page = client.get(queue_url(team, "blind=0")).content.decode()
    assert 'data-side="chosen"' in page and "Panel score" in page and 'id="queue-blind-on"' in page
    pair_id = shown_pair(client.get(queue_url(team, "blind=0"), **HX))
    submit(client, team, pair_id, "a", query="blind=0")
    review = Review.objects.get(pair_id=pair_id, reviewer=team.admin)
    assert review.verdict == "chosen_better" and review.blind is False and review.rejected_first is False


def test_blind_review_is_the_default_for_a_new_dataset(db):
    fresh = Team.create("fresh default")
    assert ReviewSettings.of(fresh.dataset).blind_review is True
    assert ReviewSettings.of(fresh.dataset).status_quorum == 0


def test_without_blind_review_scores_and_other_verdicts_are_shown(client, team):
    Pair.objects.filter(dataset=team.dataset).update(chosen_score=8.5, rejected_score=3.0)
    first = pair_ids(team)[0]
    Review.objects.create(pair_id=first, reviewer=team.admin, verdict="tie", note="管理员看过")
    ReviewSettings.objects.filter(dataset=team.dataset).update(reviews_per_pair=2)
    pair = Pair.objects.get(pk=first)
    Judgement.objects.create(response=pair.chosen, judge=Judge.objects.create(name="qwen-judge"), score=9,
                             analysis="最新的分析", status="ok")
    Judgement.objects.create(response=pair.chosen, judge=Judge.objects.create(name="glm-judge"), score=None,
                             status="refused", raw_output="拒绝")
    client.force_login(team.reviewer)
    page = client.get(queue_url(team), **HX).content.decode()
    assert shown_pair(client.get(queue_url(team), **HX)) == first
    assert "8.50" in page and "管理员看过" in page and 'data-side="chosen"' in page
    assert "qwen-judge" in page and "最新的分析" in page and "<strong>9</strong>" in page
    assert "glm-judge" not in page, "only judgements with a score are shown"


def test_model_output_is_escaped_on_the_queue_page(client, team, tmp_path):
    line = generated_pairs(1)[0]
    line["conversations"][0]["value"] = "恶意 <script>alert(1)</script>"
    line["chosen"]["value"] = "<img src=x onerror=alert(2)>"
    path = write_jsonl(tmp_path / "evil.jsonl", [line])
    hostile = Team.create("hostile")
    call_command("import_pairs", str(path), dataset=hostile.dataset.name, no_progress=True, no_near_duplicates=True)
    client.force_login(hostile.reviewer)
    response = client.get(reverse("review-queue", args=[hostile.dataset.pk]))
    page = response.content.decode()
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)" in page
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_the_dataset_page_links_the_queue_for_reviewers_only(client, team):
    client.force_login(team.reviewer)
    assert 'id="start-review"' in client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    client.force_login(team.viewer)
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    assert 'id="start-review"' not in page and 'id="review-progress"' in page


def test_admins_change_the_review_settings(client, team):
    client.force_login(team.admin)
    response = client.post(reverse("review-settings", args=[team.dataset.pk]),
                           {"reviews_per_pair": "3", "blind_review": "on"})
    assert response.status_code == 302
    settings = ReviewSettings.objects.get(dataset=team.dataset)
    assert settings.reviews_per_pair == 3 and settings.blind_review
    client.post(reverse("review-settings", args=[team.dataset.pk]), {"reviews_per_pair": "0"})
    assert ReviewSettings.objects.get(dataset=team.dataset).reviews_per_pair == 3


ACCESS = [("review-queue", "GET"), ("review-progress", "GET"), ("review-submit", "POST"), ("review-skip", "POST"),
          ("review-undo", "POST"), ("review-settings", "POST")]


@pytest.mark.parametrize("name,method", ACCESS)
def test_viewers_get_403_outsiders_404_and_anonymous_users_the_login_page(client, team, name, method):
    url = reverse(name, args=[team.dataset.pk])
    call = client.get if method == "GET" else client.post
    assert call(url).status_code == 302 and "/login/" in call(url)["Location"]
    client.force_login(team.viewer)
    assert call(url).status_code == 403
    client.force_login(team.outsider)
    assert call(url).status_code == 404
    client.force_login(team.reviewer)
    expected = {"review-settings": 403, "review-submit": 404, "review-skip": 404, "review-undo": 302}.get(name, 200)
    assert call(url).status_code == expected


@pytest.mark.parametrize("name", ["review-submit", "review-skip", "review-undo", "review-settings"])
def test_writes_refuse_get(client, team, name):
    client.force_login(team.admin)
    assert client.get(reverse(name, args=[team.dataset.pk])).status_code == 405
