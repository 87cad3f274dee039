"""Reviewers working at once, each in a thread with its own database connection, through the views:
without overlap no pair reaches two reviewers; with overlap k every pair reaches exactly k."""

import re
import threading
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from annotation.models import Membership, Pair, Role
from review.models import Review, ReviewSettings

from .helpers import Team, generated_pairs, write_jsonl


@pytest.fixture
def crowd(transactional_db, tmp_path):
    team = Team.create("crowd")
    path = write_jsonl(tmp_path / "pairs.jsonl", generated_pairs(40))
    call_command("import_pairs", str(path), dataset=team.dataset.name, no_progress=True, no_near_duplicates=True)
    people = []
    for i in range(4):
        user = get_user_model().objects.create_user(username=f"reviewer{i}", password="x")
        Membership.objects.create(dataset=team.dataset, user=user, role=Role.REVIEWER)
        people.append(user)
    return team, people


def work_at_once(team, people):
    """Every reviewer takes and reviews pairs until the queue has none left for them; returns who got what."""
    received, errors = {p.username: [] for p in people}, []
    start = threading.Barrier(len(people))
    url = reverse("review-queue", args=[team.dataset.pk])
    submit = reverse("review-submit", args=[team.dataset.pk])

    def work(person):
        client = Client()
        client.force_login(person)
        start.wait()
        try:
            while True:
                page = client.get(url, HTTP_HX_REQUEST="true").content.decode()
                pair = re.search(r'id="review-item"[^>]*data-pair="(\d*)"', page).group(1)
                if not pair:
                    return
                received[person.username].append(int(pair))
                response = client.post(submit, {"pair": pair, "queue": "", "verdict": "a", "better_correct": "on"},
                                       HTTP_HX_REQUEST="true")
                if response.status_code != 200:
                    errors.append((person.username, pair, response.status_code))
                    return
        except Exception as exc:  # reported below: an exception in a thread would otherwise vanish
            errors.append((person.username, repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    return received


def test_reviewers_working_at_once_never_receive_the_same_pair_without_overlap(crowd):
    team, people = crowd
    received = work_at_once(team, people)
    handed = Counter(p for pairs in received.values() for p in pairs)
    all_pairs = set(Pair.objects.filter(dataset=team.dataset).values_list("pk", flat=True))
    assert set(handed) == all_pairs and set(handed.values()) == {1}
    assert sum(1 for pairs in received.values() if pairs) >= 2, "the work was shared"
    assert Review.objects.count() == len(all_pairs)


def test_with_overlap_k_every_pair_is_received_exactly_k_times(crowd):
    team, people = crowd
    ReviewSettings.objects.create(dataset=team.dataset, reviews_per_pair=3)
    received = work_at_once(team, people)
    handed = Counter(p for pairs in received.values() for p in pairs)
    all_pairs = set(Pair.objects.filter(dataset=team.dataset).values_list("pk", flat=True))
    assert set(handed) == all_pairs and set(handed.values()) == {3}
    assert all(len(set(pairs)) == len(pairs) for pairs in received.values()), "never twice to the same reviewer"
    assert Counter(Review.objects.values_list("pair_id", flat=True)) == handed
