"""The operators' console: the Django admin, extended with the relay's own pages."""

from django.contrib import admin

# The header shows the data attributes' usage once more than this share of the limit is used.
ATTRIBUTE_BADGE_ABOVE = 0.8


class RelayAdminSite(admin.AdminSite):
    site_header = "Intercom Relay"
    site_title = "Intercom Relay"
    index_title = "Overview"
    site_url = None  # no public site: the header's "View site" led to a bare 404

    @property
    def login_form(self):
        from dashboard.auth import LoginForm

        return LoginForm

    def login(self, request, extra_context=None):
        """The admin's login; an attempt the login throttle refused gets the form with its message,
        429 and Retry-After (dashboard.throttle)."""
        response = super().login(request, extra_context)
        refusal = getattr(request, "relay_login_refusal", None)
        if refusal is not None:
            response.status_code = 429
            response["Retry-After"] = str(refusal.retry_after)
        return response

    def get_urls(self):
        from dashboard.views import urls

        # The relay's pages come first so that they win over the admin's catch-all.
        return urls(self) + super().get_urls()

    def each_context(self, request):
        from dashboard.views.common import attribute_usage
        from forwarding import event_names

        context = super().each_context(request)
        if request.user.is_active and request.user.is_staff:
            # Shown in the header of every dashboard page; the data attributes' once they run short.
            context["event_name_usage"] = event_names.usage()
            usage = attribute_usage(request)
            if usage.share > ATTRIBUTE_BADGE_ABOVE:
                context["attribute_usage"] = usage
        return context
