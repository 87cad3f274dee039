"""People joining a dataset: finding an existing user by name, and the accounts a dataset admin creates.

The rule: a dataset admin may create an account only as a reviewer or viewer of a dataset they administer.
The account has no password and no staff rights; the admin gets a one-time link (Django's password-reset
token, valid PASSWORD_RESET_TIMEOUT, 3 days by default) to hand to the person, who sets a password there.
Nothing is e-mailed. Staff users create other accounts (admins, staff) in the Django admin.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from annotation.models import Membership, Role

SEARCH_LIMIT = 20
INVITABLE_ROLES = (Role.REVIEWER, Role.VIEWER)


def search_users(query, limit=SEARCH_LIMIT):
    """Active users whose username or name contains `query` (case-insensitive), at most `limit`."""
    words = query.split()
    users = get_user_model().objects.filter(is_active=True)
    for word in words:
        users = users.filter(Q(username__icontains=word) | Q(first_name__icontains=word)
                             | Q(last_name__icontains=word))
    return list(users.order_by("username")[:limit])


def create_member(dataset, *, username, role, name="", email=""):
    """A new account without a password, member of `dataset` with `role` (reviewer or viewer), and the
    path of the link where its owner sets a password."""
    if role not in INVITABLE_ROLES:
        raise ValueError(f"a new account joins as reviewer or viewer, not {role}")
    first, _sep, last = name.strip().partition(" ")
    with transaction.atomic():
        user = get_user_model()(username=username, email=email, first_name=first[:150], last_name=last[:150])
        user.set_unusable_password()
        user.save()
        Membership.objects.create(dataset=dataset, user=user, role=role)
    return user, invite_path(user)


def invite_path(user):
    return reverse("invite-accept", args=[urlsafe_base64_encode(force_bytes(user.pk)),
                                          default_token_generator.make_token(user)])
