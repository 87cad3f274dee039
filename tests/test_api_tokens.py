"""Personal API tokens: made on the settings page and shown once, stored as a hash, last use recorded,
revoked by their owner only; and the API's throttle, counted per user in Redis."""

import hashlib

import pytest
from django.urls import reverse

from api.models import ApiToken
from api.tokens import create_token

from .helpers import Team


@pytest.fixture
def team(db):
    return Team.create("tokens")


def _bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_the_page_shows_a_new_token_once_and_stores_only_its_hash(client, team):
    client.force_login(team.reviewer)
    response = client.post(reverse("api-tokens"), {"name": "pipeline"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = response.context["secret"]
    assert secret.startswith("coigp_") and len(secret) > 40 and secret in response.content.decode()
    token = ApiToken.objects.get(user=team.reviewer)
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {token.name, token.prefix, token.digest} and secret.startswith(token.prefix)
    again = client.get(reverse("api-tokens"))
    assert secret not in again.content.decode() and token.prefix in again.content.decode()


def test_a_token_needs_a_name(client, team):
    client.force_login(team.viewer)
    response = client.post(reverse("api-tokens"), {"name": "  "})
    assert response.status_code == 400 and not ApiToken.objects.exists()


def test_a_token_acts_as_its_user_and_records_its_last_use(client, team):
    token, secret = create_token(team.viewer, "read")
    assert token.last_used_at is None
    response = client.get(reverse("api-datasets"), **_bearer(secret))
    assert response.status_code == 200
    assert [(d["name"], d["role"]) for d in response.json()] == [("tokens", "viewer")]
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_revoked_or_unknown_token_is_refused(client, team):
    token, secret = create_token(team.admin, "old")
    client.force_login(team.admin)
    assert client.post(reverse("api-token-revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    for header in (secret, secret + "x", "coigp_nothing", "not-a-token"):
        response = client.get(reverse("api-datasets"), **_bearer(header))
        assert response.status_code == 401, header


def test_no_one_revokes_another_users_token(client, team):
    token, _secret = create_token(team.admin, "mine")
    client.force_login(team.reviewer)
    assert client.post(reverse("api-token-revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert client.get(reverse("api-token-revoke", args=[token.pk])).status_code == 405


def test_the_page_needs_a_login(client, team):
    response = client.get(reverse("api-tokens"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_calls_over_the_rate_are_throttled_per_user(client, team, settings):
    settings.API_THROTTLE_RATE = "3/minute"
    _token, secret = create_token(team.admin, "fast")
    _other, other_secret = create_token(team.viewer, "other")
    codes = [client.get(reverse("api-datasets"), **_bearer(secret)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get(reverse("api-datasets"), **_bearer(secret))
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert client.get(reverse("api-datasets"), **_bearer(other_secret)).status_code == 200
