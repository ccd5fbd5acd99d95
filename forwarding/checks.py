"""System checks: production (DJANGO_DEBUG off) refuses to start without its secrets.

Every management command runs them (`qcluster`, `migrate`, `check`), except the few that declare
otherwise (`run_relay`, which creates the secret key, `intercom_sandbox`, `shell`).
"""

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register(deploy=False)
def check_secrets(app_configs, **kwargs):
    errors = []
    try:
        secret_key = settings.SECRET_KEY
    except ImproperlyConfigured:
        secret_key = ""
    if not secret_key:
        errors.append(
            Error(
                "DJANGO_SECRET_KEY is not set.",
                hint="Set DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE), or DJANGO_DEBUG=true for development.",
                id="relay.E001",
            )
        )
    if not settings.DEBUG and not settings.INTERCOM_ACCESS_TOKEN and not settings.INTERCOM_API_BASE:
        # Without a token the relay runs against the sandbox, and INTERCOM_API_BASE then names it
        # (`make run` sets both): with neither, every delivery would go to Intercom unauthenticated.
        errors.append(
            Error(
                "INTERCOM_ACCESS_TOKEN is not set.",
                hint="Set INTERCOM_ACCESS_TOKEN (or INTERCOM_ACCESS_TOKEN_FILE); or, to forward to the sandbox, "
                "INTERCOM_API_BASE and its token (`make run` does); or DJANGO_DEBUG=true for development.",
                id="relay.E002",
            )
        )
    return errors
