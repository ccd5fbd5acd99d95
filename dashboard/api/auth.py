"""Who may call the operator API: a staff user's token (dashboard.models.ApiToken) sent as
`Authorization: Bearer <token>` (or `Token <token>`), and the dashboard's roles: staff who may view
the dashboard read (Viewers), operators (`forwarding.operate`) act."""

import hmac
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from dashboard.models import ApiToken, hash_token
from dashboard.views.common import OPERATE, VIEW

SCHEMES = ("bearer", "token")
# last_used_at is written at most this often per token: one UPDATE a minute, not one per request.
LAST_USED_EVERY = timedelta(minutes=1)
MAX_TOKEN_LENGTH = 200


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`. No header: anonymous (the permission then answers 401);
    a malformed header, an unknown or revoked token, or a user no longer active staff: 401."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() not in SCHEMES:
            return None  # another scheme (Basic…): not ours, so anonymous
        if len(parts) != 2 or len(parts[1]) > MAX_TOKEN_LENGTH:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: send 'Bearer <token>'.")
        digest = hash_token(parts[1])
        token = ApiToken.objects.select_related("user").filter(token_hash=digest).first()
        if token is None or not hmac.compare_digest(token.token_hash, digest):
            raise exceptions.AuthenticationFailed("Unknown API token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API token was revoked.")
        user = token.user
        if not (user.is_active and user.is_staff):
            raise exceptions.AuthenticationFailed("The token's user is no longer active staff.")
        touch(token)
        return user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def touch(token, now=None):
    """Note the token's use, at most once a minute (a conditional UPDATE, skipped when fresh)."""
    now = now or timezone.now()
    if token.last_used_at is not None and token.last_used_at > now - LAST_USED_EVERY:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY)
    ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
    token.last_used_at = now


class Role(permissions.BasePermission):
    """Reading (GET, HEAD, OPTIONS) needs the dashboard's view permission; anything else
    `forwarding.operate`, as the dashboard's actions do."""

    message = "Your role cannot do this: reading needs the Viewers role, actions the Operators role."

    def has_permission(self, request, view):
        user = request.user
        if user is None or not user.is_authenticated:
            return False  # DRF answers 401: no credentials were given
        needed = VIEW if request.method in permissions.SAFE_METHODS else OPERATE
        return user.has_perm(needed)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of ApiTokenAuthentication."""

    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from the dashboard's API tokens page (Authorization: Bearer rly_…).",
        }
