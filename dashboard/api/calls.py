"""Calls and deliveries: the delivery log's lists (its filters, its keyset pages, newest first), one
call with its attempts, and resending one."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from dashboard.api import filters
from dashboard.api.base import ApiView, Conflict, Error, describe, invalid, log_action, names
from dashboard.api.paging import AFTER, LIMIT, limit_of, page
from dashboard.api.serializers import CallDetailOut, CallRowOut, DeliveryOut, DeliveryRowOut
from dashboard.queries import calls, cursors, log
from forwarding import services
from forwarding.models import Call, Delivery, State

LOG_PARAMETERS = [*filters.PARAMETERS, AFTER, LIMIT]
CallPage = page("CallPage", CallRowOut)
DeliveryPage = page("DeliveryPage", DeliveryRowOut)


def log_rows(request):
    """(rows, next cursor) of the log's page the query asks for (dashboard.queries.log.log_page: one
    query, read through an index, no count)."""
    log_filter = filters.from_query(request.query_params)
    after = request.query_params.get("after", "")
    if after and cursors.decode_cursor(after) is None:
        raise invalid(f"after: {after[:60]!r} is not a page position (use the previous page's next)")
    found = log.log_page(log_filter, timezone.now(), cursor=after, size=limit_of(request))
    return found.rows, found.older


class Calls(ApiView):
    query_names = names(LOG_PARAMETERS)

    @describe(
        summary="Calls, newest first, with the delivery log's filters",
        parameters=LOG_PARAMETERS,
        responses=CallPage,
    )
    def get(self, request):
        rows, cursor = log_rows(request)
        return Response({"results": CallRowOut([row.call for row in rows], many=True).data, "next": cursor})


class Deliveries(ApiView):
    query_names = names(LOG_PARAMETERS)

    @describe(
        summary="Deliveries, newest call first, with the delivery log's filters",
        description="The same pages as /calls/ (the same cursors), one delivery per call that has one.",
        parameters=LOG_PARAMETERS,
        responses=DeliveryPage,
    )
    def get(self, request):
        rows, cursor = log_rows(request)
        shown = [row.delivery for row in rows if row.delivery is not None]
        for row in rows:
            if row.delivery is not None:
                row.delivery.call = row.call
        return Response({"results": DeliveryRowOut(shown, many=True).data, "next": cursor})


class CallDetail(ApiView):
    @describe(
        summary="One call: its payload, its delivery, its latest attempts with their HTTP exchanges",
        responses=CallDetailOut,
    )
    def get(self, request, pk):
        found = calls.call_with_attempts(pk)
        if found is None:
            raise exceptions.NotFound(f"There is no call {pk}.")
        call, delivery, attempts = found
        call.shown_delivery, call.shown_attempts = delivery, attempts
        call.attempts_not_shown = max(0, (delivery.attempt_count if delivery else 0) - len(attempts))
        return Response(CallDetailOut(call).data)


class ResendOut(serializers.Serializer):
    was = serializers.CharField(help_text="The delivery's state before.")
    delivery = DeliveryOut()


def refusal(delivery):
    """Why the delivery cannot be resent now (with its code), or None."""
    why = services.resend_refusal(delivery.call)
    if why:
        return "no_payload", f"Not resent: {why}."
    if delivery.state == State.DELIVERING:
        return "in_flight", "Not resent: a worker is sending it right now; wait for the outcome."
    return None


class Resend(ApiView):
    @describe(
        summary="Resend one call now",
        request=None,
        responses={
            202: ResendOut,
            409: OpenApiResponse(Error, "It cannot be resent: no delivery, no payload left, or in flight."),
        },
    )
    def post(self, request, pk):
        delivery = Delivery.objects.select_related("call").filter(pk=pk).first()
        if delivery is None:
            if Call.objects.filter(pk=pk).exists():
                raise Conflict("Not resent: this call has no delivery.", "no_delivery")
            raise exceptions.NotFound(f"There is no call {pk}.")
        refused = refusal(delivery)
        if refused:
            raise Conflict(refused[1], refused[0])
        was = delivery.state
        if not services.resend(delivery):
            raise Conflict("Not resent: a worker took it meanwhile; its outcome will show.", "in_flight")
        log_action(request, delivery, f"Resent (was {was}).")
        delivery.refresh_from_db()
        return Response({"was": was, "delivery": DeliveryOut(delivery).data}, status=status.HTTP_202_ACCEPTED)
