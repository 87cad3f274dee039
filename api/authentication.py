"""`Authorization: Bearer <token>` for the API, and the throttle that counts each user's calls in Redis."""

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from .tokens import token_for


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("The Authorization header must be 'Bearer <token>'."))
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked token.")) from None
        token = token_for(secret)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked token."))
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword  # 401, not 403, for a call without credentials


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A personal API token, made on the API tokens page (/settings/tokens/)."}


class UserRateThrottle(throttling.UserRateThrottle):
    """Calls per user (per address for anonymous ones) in the shared Redis cache, so every web process counts
    together. The rate is read at each call (API_THROTTLE_RATE), not frozen at import."""

    def get_rate(self):
        return settings.API_THROTTLE_RATE


class AnonRateThrottle(throttling.AnonRateThrottle):
    def get_rate(self):
        return settings.API_ANON_THROTTLE_RATE
