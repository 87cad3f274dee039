"""The members page: find users by name, add them, and create accounts for reviewers and viewers with a
one-time link where they set a password."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from annotation.models import Membership, Role

from .helpers import Team

User = get_user_model()


@pytest.fixture
def people(db):
    User.objects.create_user(username="zhang.wei", first_name="Wei", last_name="Zhang", password="x")
    User.objects.create_user(username="li.na", first_name="Na", last_name="Li", password="x")
    User.objects.create_user(username="gone", first_name="Wei", last_name="Gone", password="x", is_active=False)


def test_admins_find_users_by_name_and_see_who_is_a_member(client, team, people):
    client.force_login(team.admin)
    url = reverse("dataset-members", args=[team.dataset.pk])
    page = client.get(url, {"q": "wei"}).content.decode()
    results = page.split('id="user-results"')[1].split("</table>")[0]
    assert "zhang.wei" in results and "li.na" not in results and "gone" not in results
    assert "?add=zhang.wei" in results
    page = client.get(url, {"q": team.reviewer.username}).content.decode()
    assert "already a member" in page.split('id="user-results"')[1]
    assert client.get(url, {"q": "z"}).status_code == 200  # too short: an error, no list
    assert 'id="user-results"' not in client.get(url, {"q": "z"}).content.decode()


def test_choosing_a_found_user_fills_the_form(client, team, people):
    client.force_login(team.admin)
    page = client.get(reverse("dataset-members", args=[team.dataset.pk]), {"add": "li.na"}).content.decode()
    assert re.search(r'name="username"[^>]*value="li.na"', page)


def test_an_admin_creates_a_reviewer_who_sets_a_password_with_the_link(client, team):
    client.force_login(team.admin)
    response = client.post(reverse("member-create", args=[team.dataset.pk]),
                           {"username": "new.reviewer", "name": "Xiao Ming", "email": "xm@example.com",
                            "role": "reviewer"})
    assert response.status_code == 200
    user = User.objects.get(username="new.reviewer")
    assert not user.has_usable_password() and not user.is_staff and user.first_name == "Xiao"
    assert Membership.objects.get(user=user).role == Role.REVIEWER
    link = response.context["invited"]["link"]
    assert link.startswith("http://testserver/invite/")

    guest = Client()
    response = guest.get(link, follow=True)  # the token moves into the session, as for a password reset
    assert response.status_code == 200 and b'id="invite-form"' in response.content
    response = guest.post(response.redirect_chain[-1][0],
                          {"new_password1": "a long enough passphrase 42", "new_password2": "a long enough passphrase 42"})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    user.refresh_from_db()
    assert user.check_password("a long enough passphrase 42")
    response = guest.post(reverse("login"), {"username": "new.reviewer", "password": "a long enough passphrase 42"})
    assert response.status_code == 302 and response["Location"] == reverse("dataset-list")
    # The link works once.
    again = Client().get(link, follow=True)
    assert b'id="invite-invalid"' in again.content


def test_a_new_account_cannot_be_an_admin_nor_take_an_existing_name(client, team, people):
    client.force_login(team.admin)
    url = reverse("member-create", args=[team.dataset.pk])
    response = client.post(url, {"username": "boss", "role": "admin"})
    assert response.status_code == 400 and not User.objects.filter(username="boss").exists()
    response = client.post(url, {"username": "Zhang.Wei", "role": "viewer"})
    assert response.status_code == 400 and "exists already" in response.content.decode()
    response = client.post(url, {"username": "bad name!", "role": "viewer"})
    assert response.status_code == 400 and not User.objects.filter(username="bad name!").exists()


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("reviewer", 403), ("viewer", 403), ("outsider", 404)])
def test_only_dataset_admins_create_accounts(client, team, role, status):
    client.force_login(getattr(team, role))
    response = client.post(reverse("member-create", args=[team.dataset.pk]), {"username": "x1", "role": "viewer"})
    assert response.status_code == status
    assert User.objects.filter(username="x1").exists() == (status == 200)


def test_creating_an_account_needs_a_csrf_token_and_a_login(team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(team.admin)
    assert client.post(reverse("member-create", args=[team.dataset.pk]),
                       {"username": "x2", "role": "viewer"}).status_code == 403
    anonymous = Client()
    assert anonymous.post(reverse("member-create", args=[team.dataset.pk]),
                          {"username": "x2", "role": "viewer"}).status_code == 302
    assert anonymous.get(reverse("member-create", args=[team.dataset.pk])).status_code == 302
    assert not User.objects.filter(username="x2").exists()


def test_an_admin_of_another_dataset_cannot_add_members_here(client, team):
    other = Team.create("other members")
    client.force_login(other.admin)
    assert client.post(reverse("member-create", args=[team.dataset.pk]),
                       {"username": "x3", "role": "viewer"}).status_code == 404
    assert client.get(reverse("dataset-members", args=[team.dataset.pk]), {"q": "admin"}).status_code == 404
