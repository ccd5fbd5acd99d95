"""System checks: production refuses to start without its secrets."""

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
    return errors
