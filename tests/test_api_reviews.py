"""Reviews through the API follow the review queue: a pair is reviewed once the queue handed it out, in the A/B
order blind review drew for the reviewer, and the verdict is stored in chosen/rejected terms."""

import pytest
from django.urls import reverse

from api.tokens import create_token
from review.models import Review, ReviewAssignment

from .helpers import Team
from .judged import imported_pair, scored_prompt


@pytest.fixture
def setup(db):
    team = Team.create("api reviews")
    made = scored_prompt(team.dataset, "问题", {"good": {"j1": 9}, "bad": {"j1": 3}})
    pair = imported_pair(team.dataset, made["good"], made["bad"])
    return team, pair, {"HTTP_AUTHORIZATION": f"Bearer {create_token(team.reviewer, 'r')[1]}"}


def test_a_reviewer_takes_the_next_pair_and_reviews_it_in_the_order_shown(client, setup):
    team, pair, auth = setup
    taken = client.post(reverse("api-review-next", args=[team.dataset.pk]), {"queue": "status=pending"},
                        content_type="application/json", **auth)
    assert taken.status_code == 200
    shown = taken.json()
    assert shown["pair"] == pair.pk and shown["queue"] == "status=pending"
    rejected_first = ReviewAssignment.objects.get(pair=pair, reviewer=team.reviewer).rejected_first
    expected_a = pair.rejected if shown["blind"] and rejected_first else pair.chosen
    assert shown["a"] == {"id": expected_a.pk, "text": expected_a.text}
    better = "a" if shown["a"]["id"] == pair.chosen_id else "b"  # the reviewer prefers the good response
    response = client.post(reverse("api-reviews", args=[team.dataset.pk]),
                           {"pair": pair.pk, "queue": shown["queue"], "verdict": better, "better_correct": True},
                           content_type="application/json", **auth)
    assert response.status_code == 201, response.content
    review = Review.objects.get(pair=pair, reviewer=team.reviewer)
    assert review.verdict == Review.Verdict.CHOSEN_BETTER and review.better_correct is True
    listed = client.get(reverse("api-reviews", args=[team.dataset.pk]), {"pair": pair.pk}, **auth).json()
    assert [(r["reviewer"], r["verdict"]) for r in listed] == [(team.reviewer.username, "chosen_better")]
    again = client.post(reverse("api-review-next", args=[team.dataset.pk]), {"queue": "status=pending"},
                        content_type="application/json", **auth)
    assert again.status_code == 204


def test_a_pair_the_queue_did_not_hand_out_is_refused(client, setup):
    team, pair, auth = setup
    response = client.post(reverse("api-reviews", args=[team.dataset.pk]), {"pair": pair.pk, "verdict": "a"},
                           content_type="application/json", **auth)
    assert response.status_code == 409 and "detail" in response.json()
    assert not Review.objects.exists()


def test_a_bad_verdict_names_the_field(client, setup):
    team, pair, auth = setup
    response = client.post(reverse("api-reviews", args=[team.dataset.pk]), {"pair": pair.pk, "verdict": "chosen"},
                           content_type="application/json", **auth)
    assert response.status_code == 400 and "verdict" in response.json()["errors"]
