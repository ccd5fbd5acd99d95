"""What every dashboard page shares: permission checks, the admin's context, the audit log."""

from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

VIEW = "forwarding.view_delivery"
OPERATE = "forwarding.operate"


def can_operate(user):
    return user.has_perm(OPERATE)


class Page(View):
    """A dashboard page. `admin_view()` only checks that the user is active staff, so the page
    checks its own permission: viewing needs `view_delivery`, actions `forwarding.operate`."""

    site = None
    permission = VIEW
    template_name = ""
    title = ""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perm(self.permission):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def base_context(self, request):
        """The admin's context for every page (computed once per request)."""
        if not hasattr(self, "_base_context"):
            self._base_context = {
                **self.site.each_context(request),
                "title": self.title,
                "can_operate": can_operate(request.user),
            }
        return self._base_context

    def render(self, request, context, status=200):
        request.current_app = self.site.name
        return TemplateResponse(request, self.template_name, {**self.base_context(request), **context}, status=status)


class Action(Page):
    """A POST that changes something: operators only, CSRF-protected by admin_view."""

    permission = OPERATE
    http_method_names = ["post"]


def shown_workspace(request):
    """The Intercom workspace whose cached ids and data attributes the dashboard shows
    (forwarding.delivery.workspace.shown()), read once per request."""
    if not hasattr(request, "relay_workspace"):
        from forwarding.delivery import workspace

        request.relay_workspace = workspace.shown()
    return request.relay_workspace


def intercom_status(request):
    """The configured connection's status row or None (forwarding.delivery.connection.current()), read
    once per request: the overview's box and the banners of every page share it."""
    if not hasattr(request, "relay_intercom_status"):
        from forwarding.delivery import connection

        request.relay_intercom_status = connection.current()
    return request.relay_intercom_status


def worker_stall(request):
    """queries.overview.stalled_workers() (a Stall or None), read once per request: the banner of every page."""
    if not hasattr(request, "relay_worker_stall"):
        from dashboard.queries import overview

        request.relay_worker_stall = overview.stalled_workers()
    return request.relay_worker_stall


def attribute_usage(request):
    """The shown workspace's custom data attributes against Intercom's limit, counted once per
    request (the header's badge and the data-attributes page)."""
    if not hasattr(request, "relay_attribute_usage"):
        from dashboard.queries import attributes

        request.relay_attribute_usage = attributes.attribute_usage(shown_workspace(request))
    return request.relay_attribute_usage


def audit(request, obj, message, flag=CHANGE):
    """Write the action to the admin log (Recent actions, and the object's history)."""
    LogEntry.objects.log_actions(request.user.pk, [obj], flag, change_message=message, single_object=True)


def gauge_level(fraction, amber_from=0.75, red_from=0.95):
    """A gauge's colour as a share of its limit fills: green, then amber, then red."""
    return "red" if fraction >= red_from else "amber" if fraction >= amber_from else "green"


def safe_next(request, fallback):
    """The `next` URL posted with a form, if it stays on this site."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback
