"""What every dashboard (/admin/) response shares: a Content-Security-Policy that allows no inline
script or style, and a 400 for parameters that no database query can take."""

import functools

from django.contrib import admin
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.shortcuts import render
from django.urls import get_script_prefix, reverse

# Scripts, styles, images and fonts from the relay's own origin only: no inline <script>, no
# on…= handler, no style= attribute (the dashboard's own code is in dashboard/static/dashboard/).
# Django's admin templates need nothing more; the charts and gauges are SVG, and admin CSS
# draws a few icons from data: URLs.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def in_dashboard(request):
    return request.path_info.startswith(dashboard_path())


@functools.cache
def dashboard_path():
    """The admin site's path, without the script prefix. Found once: reverse() took some 20 µs,
    asked twice in every request, a sixth of a GET /health."""
    return "/" + reverse("admin:index").removeprefix(get_script_prefix())


@receiver(setting_changed)
def _urls_changed(*, setting, **kwargs):
    if setting == "ROOT_URLCONF":
        dashboard_path.cache_clear()


class ContentSecurityPolicyMiddleware:
    """Adds CONTENT_SECURITY_POLICY to every dashboard response (error pages and redirects too)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if in_dashboard(request):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class RefuseNulMiddleware:
    """A dashboard request with a NUL character in a query or form parameter gets a 400 page.
    PostgreSQL refuses NUL in text (so any filter, search or form field holding one was a 500),
    and no stored value holds one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if in_dashboard(request):
            name = _nul_parameter(request)
            if name is not None:
                message = f"The parameter “{name}” contains a NUL character, which no value here can hold."
                context = {
                    "title": "Bad request",
                    "site_title": admin.site.site_title,
                    "site_header": admin.site.site_header,
                    "message": message,
                }
                return render(request, "dashboard/bad_request.html", context, status=400)
        return self.get_response(request)


def _nul_parameter(request):
    """The (printable) name of the first GET or POST parameter with a NUL in its name or a value."""
    sources = [request.GET]
    if request.method == "POST" and request.content_type in FORMS:
        sources.append(request.POST)
    for params in sources:
        for name, values in params.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return name.replace("\x00", "\\x00")[:60]
    return None
