"""Decisions on pairs (review/decisions.py): keep, discard, swap any list or one pair, recorded with who, when and
why; undo puts back exactly what each pair was; the review policy; exports; the pages and who may use them."""

import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from annotation.models import Pair
from review import decisions
from review.models import DecisionBatch, PairDecision, Review, ReviewSettings

from .helpers import Team, generated_pairs, write_jsonl

ROLES = ["admin", "reviewer", "viewer", "outsider"]


@pytest.fixture
def team(db, tmp_path):
    team = Team.create("decisions")
    path = write_jsonl(tmp_path / "pairs.jsonl", generated_pairs(24))
    call_command("import_pairs", str(path), dataset=team.dataset.name, no_progress=True, no_near_duplicates=True)
    return team


def ids(team, **filters):
    return list(Pair.objects.filter(dataset=team.dataset, **filters).order_by("pk").values_list("pk", flat=True))


def states(team):
    return dict((pk, (s, r)) for pk, s, r in Pair.objects.filter(dataset=team.dataset)
                .values_list("pk", "status", "status_reason"))


def reward_filter(pks):
    Pair.objects.filter(pk__in=pks).update(status="filtered", status_reason="reward:crm v1 margin=-0.5 was=pending")


def test_a_bulk_keep_over_a_list_records_each_pairs_prior_state_and_undo_restores_it_exactly(team):
    everything = ids(team)
    reward_filter(everything[:5])
    Pair.objects.filter(pk=everything[5]).update(status="withdrawn", status_reason="withdrawn by build run 3")
    Pair.objects.filter(pk=everything[6]).update(status="kept", status_reason="kept by hand")
    before = states(team)
    batch = decisions.decide_list(team.dataset, "", "keep", team.admin, "  the reward model is wrong here ")
    assert batch.changed == 22 and batch.unchanged == {"already": 1, "withdrawn": 1}
    assert batch.actor == team.admin and batch.reason == "the reward model is wrong here" and batch.at is not None
    after = states(team)
    assert after[everything[5]] == before[everything[5]] and after[everything[6]] == before[everything[6]]
    assert all(after[pk] == ("kept", f"decision batch={batch.pk}") for pk in everything if pk not in everything[5:7])
    recorded = {d.pair_id: (d.prior_status, d.prior_reason, d.status) for d in PairDecision.objects.filter(batch=batch)}
    assert recorded == {pk: (*before[pk], "kept") for pk in everything if pk not in everything[5:7]}

    decisions.undo(batch, team.reviewer)
    assert states(team) == before
    batch.refresh_from_db()
    assert batch.undone_by == team.reviewer and batch.restored == 22 and batch.left == 0
    with pytest.raises(decisions.DecisionError):
        decisions.undo(batch, team.admin)


def test_undo_leaves_alone_a_pair_something_changed_since(team):
    first, second, *_ = ids(team)
    batch = decisions.decide(team.dataset, [first, second], "discard", team.admin, "both answers are wrong")
    assert Pair.objects.get(pk=first).status == "filtered"
    later = decisions.decide(team.dataset, [second], "swap", team.admin, "actually the rejected one is right")
    decisions.undo(batch, team.admin)
    batch.refresh_from_db()
    assert (batch.restored, batch.left) == (1, 1)
    assert Pair.objects.get(pk=first).status == "pending"
    assert (Pair.objects.get(pk=second).status, Pair.objects.get(pk=second).status_reason) == (
        "swapped", later.tag())
    decisions.undo(later, team.admin)  # back to what the first decision left, as it recorded
    assert Pair.objects.get(pk=second).status_reason == batch.tag()


def test_a_decision_over_a_filtered_list_covers_every_page_and_only_the_list(team):
    math = ids(team, domain="math")
    batch = decisions.decide_list(team.dataset, "domain=math&after=1", "swap", team.admin, "rubric bug in math")
    assert batch.changed == len(math) and batch.selection == "domain=math"
    assert set(ids(team, status="swapped")) == set(math)
    assert set(ids(team, status="pending")) == set(ids(team)) - set(math)


def test_a_decision_needs_a_reason_a_known_action_and_a_valid_list(team):
    with pytest.raises(decisions.DecisionError, match="reason"):
        decisions.decide(team.dataset, ids(team), "keep", team.admin, "   ")
    with pytest.raises(decisions.DecisionError):
        decisions.decide(team.dataset, ids(team), "delete", team.admin, "why not")
    with pytest.raises(decisions.DecisionError):
        decisions.decide_list(team.dataset, "gap_min=abc", "keep", team.admin, "bad list")
    assert not DecisionBatch.objects.exists()


def test_pairs_of_another_dataset_are_never_decided(team, tmp_path):
    other = Team.create("other decisions")
    path = write_jsonl(tmp_path / "other.jsonl", generated_pairs(4, seed=9))
    call_command("import_pairs", str(path), dataset=other.dataset.name, no_progress=True, no_near_duplicates=True)
    foreign = list(Pair.objects.filter(dataset=other.dataset).values_list("pk", flat=True))
    batch = decisions.decide(team.dataset, foreign, "discard", team.admin, "not mine")
    assert batch.changed == 0 and not Pair.objects.filter(pk__in=foreign).exclude(status="pending").exists()


def test_the_list_of_a_decision_and_the_one_pair_selection(team, client):
    first, second, third, *_ = ids(team)
    batch = decisions.decide(team.dataset, [first, third], "discard", team.admin, "duplicates")
    client.force_login(team.viewer)
    page = client.get(reverse("pair-list", args=[team.dataset.pk]) + f"?decision={batch.pk}").content.decode()
    assert f'data-pair="{first}"' in page and f'data-pair="{third}"' in page and f'data-pair="{second}"' not in page
    page = client.get(reverse("pair-list", args=[team.dataset.pk]) + f"?pair={second}").content.decode()
    assert f'data-pair="{second}"' in page and f'data-pair="{first}"' not in page


# --- the review policy ------------------------------------------------------------------------------------


def review(pair_id, user, verdict, correct=True):
    pair = Pair.objects.get(pk=pair_id)
    return Review.objects.create(pair=pair, reviewer=user, verdict=verdict,
                                 better_correct=None if verdict == "both_bad" else correct)


def test_without_a_quorum_reviews_change_no_status(team):
    first = ids(team)[0]
    review(first, team.reviewer, "chosen_better")
    assert decisions.apply_review_policy(team.dataset) is None
    assert Pair.objects.get(pk=first).status == "pending"


def test_k_agreeing_reviews_keep_swap_or_discard_and_an_admins_decision_stands(team):
    ReviewSettings.objects.create(dataset=team.dataset, status_quorum=2)
    keep, swap, discard, split, decided, *_ = ids(team)
    for pair_id, verdicts in [(keep, ["chosen_better", "chosen_better"]), (swap, ["rejected_better", "rejected_better"]),
                              (discard, ["both_bad", "both_bad"]), (split, ["chosen_better", "both_bad"]),
                              (decided, ["chosen_better", "chosen_better"])]:
        for user, verdict in zip([team.reviewer, team.admin], verdicts):
            review(pair_id, user, verdict)
    manual = decisions.decide(team.dataset, [decided], "discard", team.admin, "off-topic prompt")
    batch = decisions.apply_review_policy(team.dataset, user=team.admin)
    assert batch.action == "policy" and batch.changed == 3
    status = dict(Pair.objects.filter(pk__in=[keep, swap, discard, split, decided]).values_list("pk", "status"))
    assert status == {keep: "kept", swap: "swapped", discard: "filtered", split: "pending", decided: "filtered"}
    assert Pair.objects.get(pk=decided).status_reason == manual.tag()
    assert Pair.objects.get(pk=keep).status_reason == f"review-policy batch={batch.pk}"


def test_the_queue_applies_the_policy_as_the_kth_review_comes_in_and_undoes_it_with_the_review(team, client):
    ReviewSettings.objects.create(dataset=team.dataset, status_quorum=1, blind_review=False)
    client.force_login(team.reviewer)
    queue = reverse("review-queue", args=[team.dataset.pk])
    page = client.get(queue, HTTP_HX_REQUEST="true").content.decode()
    pair_id = int(page.split('data-pair="')[1].split('"')[0])
    client.post(reverse("review-submit", args=[team.dataset.pk]),
                {"pair": pair_id, "queue": "", "verdict": "b", "better_correct": "on", "prompt_ok": "on"},
                HTTP_HX_REQUEST="true")
    assert Pair.objects.get(pk=pair_id).status == "swapped"
    client.post(reverse("review-undo", args=[team.dataset.pk]), {"queue": ""}, HTTP_HX_REQUEST="true")
    assert (Pair.objects.get(pk=pair_id).status, Pair.objects.get(pk=pair_id).status_reason) == ("pending", "")


def test_saving_a_quorum_applies_it_to_the_reviews_already_in(team, client):
    first = ids(team)[0]
    review(first, team.reviewer, "both_bad")
    client.force_login(team.admin)
    client.post(reverse("review-settings", args=[team.dataset.pk]),
                {"reviews_per_pair": "1", "blind_review": "on", "status_quorum": "1"})
    assert Pair.objects.get(pk=first).status == "filtered"


# --- exports ----------------------------------------------------------------------------------------------


def export_rows(team, tmp_path):
    out = tmp_path / "out" / "pairs.jsonl"
    out.parent.mkdir()
    call_command("export_pairs", "--dataset", team.dataset.name, "--format", "trl", "--out", str(out), "--with-meta",
                 "--no-progress")
    manifest = json.loads((out.parent / "manifest.json").read_text(encoding="utf-8"))
    rows = {row["pair_id"]: row for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    return rows, manifest


def test_exports_write_swapped_pairs_the_other_way_round_and_leave_discarded_ones_out(team, tmp_path):
    swap, discard, keep_despite_review, *_ = ids(team)
    decisions.decide(team.dataset, [swap], "swap", team.admin, "rejected is right")
    decisions.decide(team.dataset, [discard], "discard", team.admin, "harmful prompt")
    review(keep_despite_review, team.reviewer, "both_bad")  # a review alone would leave it out
    decisions.decide(team.dataset, [keep_despite_review], "keep", team.admin, "the reviewer misread it")
    rows, manifest = export_rows(team, tmp_path)
    pair = Pair.objects.select_related("chosen", "rejected").get(pk=swap)
    # The trl format starts each completion with the separator TRL's standard format expects.
    assert rows[swap]["chosen"] == "\n" + pair.rejected.text and rows[swap]["rejected"] == "\n" + pair.chosen.text
    assert rows[swap]["swapped"] is True and rows[swap]["status"] == "swapped"
    assert discard not in rows and keep_despite_review in rows and rows[keep_despite_review]["swapped"] is False
    assert manifest["decisions"]["pairs_by_status"] == {"swapped": 1, "filtered": 1, "kept": 1}
    assert [b["reason"] for b in manifest["decisions"]["batches"]] == [
        "the reviewer misread it", "harmful prompt", "rejected is right"]
    assert manifest["decisions"]["batches"][0]["by"] == team.admin.username


# --- pages, access, CSRF ----------------------------------------------------------------------------------


def url(name, team, batch=None):
    return reverse(name, args=[team.dataset.pk] + ([batch.pk] if batch else []))


MATRIX = {  # (view, method): admin, reviewer, viewer, outsider
    ("decide", "POST"): (302, 403, 403, 404),
    ("decide", "GET"): (405, 405, 405, 405),
    ("decision-undo", "POST"): (302, 403, 403, 404),
    ("decision-undo", "GET"): (405, 405, 405, 405),
    ("decision-list", "GET"): (200, 200, 200, 404),
    ("decision-detail", "GET"): (200, 200, 200, 404),
}


@pytest.mark.parametrize("view,method", list(MATRIX))
@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
def test_access_matrix(client, team, view, method, role_index, role):
    batch = decisions.decide(team.dataset, ids(team)[:2], "discard", team.admin, "setup")
    client.force_login(getattr(team, role))
    target = url(view, team, batch if view.startswith("decision-") and view != "decision-list" else None)
    data = {"action": "keep", "reason": "by the matrix", "selection": "", "confirm": "True"}
    response = client.post(target, data) if method == "POST" else client.get(target)
    assert response.status_code == MATRIX[(view, method)][role_index]
    expected_batches = 2 if (view, method, role) == ("decide", "POST", "admin") else 1
    assert DecisionBatch.objects.count() == expected_batches
    undone = (view, method, role) == ("decision-undo", "POST", "admin")
    assert DecisionBatch.objects.get(pk=batch.pk).undone_at is not None if undone else \
        DecisionBatch.objects.get(pk=batch.pk).undone_at is None


def test_a_decision_of_another_dataset_is_not_found_under_this_one(client, team):
    other = Team.create("foreign decisions")
    foreign = DecisionBatch.objects.create(dataset=other.dataset, action="keep", actor=other.admin, reason="x")
    client.force_login(team.admin)
    assert client.get(reverse("decision-detail", args=[team.dataset.pk, foreign.pk])).status_code == 404
    assert client.post(reverse("decision-undo", args=[team.dataset.pk, foreign.pk])).status_code == 404


def test_posts_without_the_csrf_token_are_refused(team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(team.admin)
    response = client.post(url("decide", team), {"action": "keep", "reason": "x", "confirm": "True"})
    assert response.status_code == 403 and not DecisionBatch.objects.exists()


def test_the_bulk_form_asks_for_confirmation_with_the_counts_then_decides(client, team):
    client.force_login(team.admin)
    page = client.get(reverse("pair-list", args=[team.dataset.pk]) + "?domain=chat").content.decode()
    assert 'id="decide"' in page and 'value="domain=chat"' in page
    response = client.post(url("decide", team), {"action": "discard", "reason": "chat is off-topic",
                                                  "selection": "domain=chat"})
    page = response.content.decode()
    chat = ids(team, domain="chat")
    assert response.status_code == 200 and f'data-change="{len(chat)}"' in page and not DecisionBatch.objects.exists()
    response = client.post(url("decide", team), {"action": "discard", "reason": "chat is off-topic",
                                                  "selection": "domain=chat", "confirm": "True"})
    batch = DecisionBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == url("decision-detail", team, batch)
    assert set(ids(team, status="filtered")) == set(chat)
    assert client.post(url("decide", team), {"action": "keep", "reason": "", "selection": ""}).status_code == 400


def test_reviewers_and_viewers_see_no_decision_form(client, team):
    for user in (team.reviewer, team.viewer):
        client.force_login(user)
        assert 'id="decide"' not in client.get(reverse("pair-list", args=[team.dataset.pk])).content.decode()
        page = client.get(reverse("pair-detail", args=[team.dataset.pk, ids(team)[0]])).content.decode()
        assert 'id="pair-decide-form"' not in page


def test_the_pair_page_decides_one_pair_and_shows_its_history(client, team):
    pair_id = ids(team)[0]
    client.force_login(team.admin)
    detail = reverse("pair-detail", args=[team.dataset.pk, pair_id])
    response = client.post(url("decide", team), {"action": "swap", "reason": "B answers the question",
                                                  "selection": f"pair={pair_id}", "confirm": "True",
                                                  "next": detail})
    assert response.status_code == 302 and response["Location"] == detail
    assert Pair.objects.get(pk=pair_id).status == "swapped"
    page = client.get(detail).content.decode()
    assert 'id="pair-decision-history"' in page and "B answers the question" in page and 'id="pair-swapped"' in page
    assert 'id="review-this-pair"' in page and f"?pair={pair_id}" in page
    # An outside `next` is never followed.
    response = client.post(url("decide", team), {"action": "keep", "reason": "r", "selection": f"pair={pair_id}",
                                                  "confirm": "True", "next": "https://evil.example/"})
    assert response["Location"].startswith("/datasets/")


def test_dashboards_show_the_counts_a_decision_changed(client, team):
    client.force_login(team.admin)
    client.get(reverse("dataset-overview", args=[team.dataset.pk]))  # the snapshot
    decisions.decide(team.dataset, ids(team)[:3], "keep", team.admin, "checked")
    page = client.get(reverse("dataset-overview", args=[team.dataset.pk])).content.decode()
    assert 'data-stale="true"' in page, "a decision since the snapshot makes its counts stale"
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    assert '<span class="stat">3</span> Kept' in page, "the dataset page counts statuses live after a decision"


def test_a_list_larger_than_a_request_should_change_is_decided_and_undone_by_jobs_a_range_at_a_time(
        team, monkeypatch, django_capture_on_commit_callbacks):
    from annotation import jobs

    monkeypatch.setattr(decisions, "INLINE_MAX_PAIRS", 5)
    monkeypatch.setattr(decisions, "CHUNK_PAIRS", 7)  # 24 pairs: four ranges
    everything = ids(team)
    reward_filter(everything[:3])
    before = states(team)
    with django_capture_on_commit_callbacks(execute=False):
        batch = decisions.start_decision(team.dataset, "", "discard", team.admin, "a bad crawl")
    assert batch.job is not None and batch.changed == 0 and batch.unchanged == {"already": 3, "withdrawn": 0}
    assert states(team) == before, "nothing changes before the job runs"
    jobs.execute(batch.job.pk)
    batch.refresh_from_db()
    assert batch.job.status == "succeeded" and batch.job.counts["changed"] == 21 and batch.job.done == 24
    assert batch.changed == 21 and PairDecision.objects.filter(batch=batch).count() == 21
    assert all(states(team)[pk] == ("filtered", batch.tag()) for pk in everything[3:])
    with django_capture_on_commit_callbacks(execute=False):
        decisions.start_undo(batch, team.admin)
    batch.refresh_from_db()
    assert batch.undone_at is not None and batch.job.kind == "decision_undo"
    with pytest.raises(decisions.DecisionError):
        decisions.start_undo(batch, team.admin)
    jobs.execute(batch.job.pk)
    batch.refresh_from_db()
    assert states(team) == before and (batch.restored, batch.left) == (21, 0)


def test_reward_training_and_the_benchmark_gold_take_a_swapped_pair_the_other_way_round(team):
    from annotation.reward.benchmark import GOLD_SOURCES
    from annotation.reward.training import load_pairs

    swapped, kept = ids(team)[:2]
    decisions.decide(team.dataset, [swapped], "swap", team.admin, "rejected is right")
    decisions.decide(team.dataset, [kept], "keep", team.admin, "fine")
    data = load_pairs(team.dataset, ["kept", "swapped"])
    pairs = {p.pk: p for p in Pair.objects.filter(pk__in=[swapped, kept])}
    ids_by_index = sorted({r for p in pairs.values() for r in (p.chosen_id, p.rejected_id)})
    better = [ids_by_index[i] for i in data.chosen]
    assert sorted(better) == sorted([pairs[swapped].rejected_id, pairs[kept].chosen_id])
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute(GOLD_SOURCES["pairs"].sql, {"dataset": team.dataset.pk})
        gold = {row[0]: (row[2], row[3]) for row in cursor.fetchall()}
    assert gold[swapped] == (pairs[swapped].rejected_id, pairs[swapped].chosen_id)
    assert gold[kept] == (pairs[kept].chosen_id, pairs[kept].rejected_id)
