"""Bulk resends (dashboard.bulk): count what the log's filters match (`dry_run`), start a job in the
background, follow its progress, cancel it."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from dashboard import bulk
from dashboard.api import filters
from dashboard.api.base import ApiView, Conflict, Error, StrictBoolean, describe, log_action
from dashboard.api.serializers import JobOut
from dashboard.models import BulkResend
from dashboard.queries import log, resends


@extend_schema_field(filters.BODY_SCHEMA)
class FiltersField(serializers.JSONField):
    """The log's filters, checked by dashboard.api.filters.from_body."""


class BulkResendIn(serializers.Serializer):
    filters = FiltersField(required=False, default=dict)
    dry_run = StrictBoolean(default=False, help_text="true: count only, start nothing.")


class PreviewOut(serializers.Serializer):
    """What a bulk resend of these filters would look at (no job was started)."""

    dry_run = serializers.BooleanField()
    description = serializers.CharField(help_text="The filters in words.")
    filters = serializers.DictField(child=serializers.CharField(), help_text="The filters, as the log's query string.")
    total = serializers.IntegerField(help_text="Matching deliveries (at least this many when `capped`).")
    by_state = serializers.DictField(child=serializers.IntegerField(), help_text="Matching deliveries by state.")
    in_flight = serializers.IntegerField(help_text="Being sent now: left alone.")
    without_payload = serializers.IntegerField(help_text="Their payload is gone: cannot be resent.")
    resendable = serializers.IntegerField()
    capped = serializers.BooleanField(
        help_text=f"More than {resends.PREVIEW_CAP} match: the counts stop there; a started job counts them all."
    )
    message = serializers.CharField()


class BulkResends(ApiView):
    @describe(
        summary="Count, or start, a bulk resend of what the log's filters match",
        description=(
            'Send {"filters": {...}, "dry_run": true} first: the count, by state, and nothing started. Without '
            "dry_run the job starts (201) and resends the matching deliveries oldest first, in the background; "
            "calls arriving later are left out. When nothing matches, nothing starts (200)."
        ),
        request=BulkResendIn,
        responses={
            200: OpenApiResponse(PreviewOut, "The count (a dry run, or nothing to resend)."),
            201: OpenApiResponse(JobOut, "Started; follow it at /bulk-resends/{id}/."),
        },
    )
    def post(self, request):
        given = self.read(BulkResendIn)
        log_filter = filters.from_body(given["filters"])
        now = timezone.now()
        if not given["dry_run"]:
            job = bulk.create(log_filter, request.user, now)
            if job.total:
                bulk.start(job)
                log_action(request, job, f"Started a bulk resend of {job.total} deliveries: {job.description}.")
                return Response(JobOut(job).data, status=status.HTTP_201_CREATED)
            job.delete()
        preview = resends.preview(log_filter, now)
        if given["dry_run"]:
            message = f"{preview.total} deliveries match; {preview.resendable} would be made due again."
            if preview.capped:
                message = f"More than {resends.PREVIEW_CAP} deliveries match; the job counts them all when it starts."
        else:
            message = "Nothing to resend: no delivery matches these filters; nothing was started."
        return Response(
            {
                "dry_run": given["dry_run"],
                "description": log_filter.describe(log.sources() if log_filter.source is not None else None),
                "filters": log_filter.to_dict(),
                "total": preview.total,
                "by_state": preview.by_state,
                "in_flight": preview.in_flight,
                "without_payload": preview.without_payload,
                "resendable": preview.resendable,
                "capped": preview.capped,
                "message": message,
            }
        )


def job_of(pk):
    job = BulkResend.objects.select_related("created_by", "cancelled_by").filter(pk=pk).first()
    if job is None:
        raise exceptions.NotFound(f"There is no bulk resend {pk}.")
    return job


class BulkResendDetail(ApiView):
    @describe(summary="A bulk resend's progress", responses=JobOut)
    def get(self, request, pk):
        return Response(JobOut(job_of(pk)).data)


class BulkResendCancel(ApiView):
    @describe(
        summary="Cancel a bulk resend before its next chunk",
        request=None,
        responses={200: JobOut, 409: OpenApiResponse(Error, "It had already finished.")},
    )
    def post(self, request, pk):
        job = job_of(pk)
        if not bulk.cancel(job, request.user):
            finished = job.get_status_display().lower()
            raise Conflict(f"Not cancelled: this bulk resend is already {finished}.", "finished")
        job = job_of(pk)
        log_action(request, job, f"Cancelled the bulk resend after {job.processed} of {job.total} deliveries.")
        return Response(JobOut(job).data)
