"""Personal API tokens: made, looked up and revoked here; the settings page and the API's authentication
call these."""

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from .models import ApiToken

SCHEME = "coigp_"
PREFIX_CHARS = 12
# last_used_at is written at most this often per token: a client making 100 calls a second must not
# make 100 writes a second.
LAST_USED_EVERY = timedelta(seconds=60)


def digest_of(secret):
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(user, name):
    """(token row, secret). The secret is not stored: the caller shows it once."""
    secret = SCHEME + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name.strip()[:100], prefix=secret[:PREFIX_CHARS],
                                    digest=digest_of(secret))
    return token, secret


def token_for(secret):
    """The active token with this secret (its user loaded), or None."""
    if not secret.startswith(SCHEME):
        return None
    token = (ApiToken.objects.select_related("user").filter(digest=digest_of(secret), revoked_at__isnull=True)
             .first())
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke(token):
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
