"""ModelAdmins of the dashboard: the list of bulk resends (each one opens its progress page)."""

import re

from django.contrib import admin
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from dashboard.models import BulkResend
from dashboard.views import RowId


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows (COUNT over a LIMIT subquery), so a big table never costs a full count."""

    CAP = 10_000

    @cached_property
    def count(self):
        return self.object_list.order_by()[: self.CAP].count()


@admin.register(BulkResend)
class BulkResendAdmin(admin.ModelAdmin):
    list_display = ["created_at", "link", "status", "progress", "reopened", "skipped", "created_by"]
    list_filter = ["status"]
    list_select_related = ["created_by"]
    sortable_by = ["created_at"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 50

    @admin.display(description="filter")
    def link(self, job):
        return format_html('<a href="{}">{}</a>', reverse("admin:bulk_resend_job", args=[job.pk]), job.description)

    @admin.display(description="progress")
    def progress(self, job):
        return f"{job.processed} of {job.total} ({job.percent}%)"

    def has_add_permission(self, request):
        return False  # started from the delivery log's filters

    change_list_template = "dashboard/bulk_list.html"

    def has_module_permission(self, request):
        return False  # listed once, in the sidebar's Relay section, not again under its app

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not re.fullmatch(RowId.regex, object_id):
            raise Http404("No such bulk resend.")
        return HttpResponseRedirect(reverse("admin:bulk_resend_job", args=[object_id]))
