"""Bulk resend from any filter of the log: the count first, then a confirmation, then a background
job with its progress and a Cancel button."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from dashboard import bulk
from dashboard.filters import ID_PATTERN, LogFilter
from dashboard.models import BulkResend
from dashboard.queries import log, resends
from dashboard.views.common import Action, Page, audit

REFRESH_SECONDS = 2


class Confirm(Page):
    """How many deliveries the filter matches, by state, and (for operators) the form that starts it."""

    template_name = "dashboard/bulk_confirm.html"
    title = "Bulk resend"

    def get(self, request):
        now = timezone.now()
        log_filter, problems = LogFilter.parse(request.GET)
        sources = log.sources()
        preview = resends.preview(log_filter, now)
        return self.render(
            request,
            {
                "filter": log_filter,
                "problems": problems,
                "description": log_filter.describe(sources),
                "preview": preview,
                "cap": resends.PREVIEW_CAP,
                "by_state": sorted(preview.by_state.items(), key=lambda item: -item[1]),
                "params": log_filter.params().items(),
                "log_url": reverse("admin:delivery_log") + log_filter.query(),
                "jobs": BulkResend.objects.select_related("created_by")[:5],
                "jobs_url": reverse("admin:dashboard_bulkresend_changelist"),
            },
        )


class Start(Action):
    def post(self, request):
        log_filter, problems = LogFilter.parse(request.POST)
        confirm = reverse("admin:bulk_resend") + log_filter.query()
        if problems:
            messages.error(request, "Not started: " + "; ".join(problems))
            return HttpResponseRedirect(confirm)
        job = bulk.create(log_filter, request.user)
        expected = request.POST.get("expected", "")
        if not job.total:
            job.delete()
            messages.info(request, "Nothing to resend: no delivery matches this filter any more.")
            return HttpResponseRedirect(confirm)
        bulk.start(job)
        audit(request, job, f"Started a bulk resend of {job.total} deliveries: {job.description}.")
        if ID_PATTERN.fullmatch(expected) and int(expected) != job.total:
            changed = f"The count changed since you looked: {job.total} deliveries now, not {expected}."
            messages.warning(request, changed)
        return HttpResponseRedirect(reverse("admin:bulk_resend_job", args=[job.pk]))


class Job(Page):
    template_name = "dashboard/bulk_job.html"

    def get(self, request, pk):
        job = get_object_or_404(BulkResend.objects.select_related("created_by", "cancelled_by"), pk=pk)
        self.title = f"Bulk resend {job.pk}"
        log_filter = LogFilter.from_dict(job.filters)
        return self.render(
            request,
            {
                "job": job,
                "refresh": REFRESH_SECONDS if job.is_open else 0,
                "chunk": bulk.CHUNK,
                "log_url": reverse("admin:delivery_log") + log_filter.query(),
                "jobs_url": reverse("admin:dashboard_bulkresend_changelist"),
            },
        )


class Cancel(Action):
    def post(self, request, pk):
        job = get_object_or_404(BulkResend, pk=pk)
        if bulk.cancel(job, request.user):
            job.refresh_from_db()
            audit(request, job, f"Cancelled the bulk resend after {job.processed} of {job.total} deliveries.")
            messages.success(request, f"Cancelled after {job.processed} of {job.total} deliveries.")
        else:
            messages.info(request, f"This bulk resend had already {job.get_status_display().lower()}.")
        return HttpResponseRedirect(reverse("admin:bulk_resend_job", args=[pk]))
