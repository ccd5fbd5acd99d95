"""One call: the payload as received, the Intercom requests it maps to now, every attempt with its
HTTP exchanges, and Resend."""

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from dashboard.filters import LogFilter
from dashboard.queries import calls
from dashboard.views.common import Action, Page, audit, shown_workspace
from forwarding import services
from forwarding.models import Call, Delivery, State

# While a resend is on its way the page reloads itself to show the outcome.
REFRESH_SECONDS = 2
REFRESH_WHILE_DUE_WITHIN = timedelta(seconds=30)


def resend_refusal(call, delivery):
    """Why this call cannot be resent now, or ""."""
    if delivery is None:
        return "This call has no delivery."
    if call.payload is None:
        return "Its payload is no longer stored (expired or expunged), so there is nothing to send again."
    if delivery.state == State.DELIVERING:
        return "A worker is sending it right now; wait for the outcome."
    return ""


class CallDetail(Page):
    template_name = "dashboard/call_detail.html"

    def get(self, request, pk):
        detail = calls.call_detail(pk, shown_workspace(request))
        if detail is None:
            raise Http404("No such call.")
        call, delivery = detail.call, detail.delivery
        now = timezone.now()
        log = reverse("admin:delivery_log")
        user_url = reverse("admin:user_history")
        person = delivery.user_id if delivery and delivery.user_id else call.user_id or call.anonymous_id
        self.title = f"{call.get_type_display()} {call.event or call.group_id or ''}".strip()
        return self.render(
            request,
            {
                "detail": detail,
                "call": call,
                "delivery": delivery,
                "refusal": resend_refusal(call, delivery),
                "refresh": REFRESH_SECONDS if _in_motion(delivery, now) else 0,
                "user_url": f"{user_url}?{urlencode({'q': person})}" if person else "",
                "event_log_url": log + LogFilter(event=detail.registry.name).query() if detail.registry else "",
                "event_names_url": reverse("admin:event_names"),
                "log_url": log,
                "message_log_url": log + LogFilter(q=call.message_id).query(),
                "attempts_hidden": max(0, (delivery.attempt_count if delivery else 0) - len(detail.attempts)),
            },
        )


class Resend(Action):
    def post(self, request, pk):
        delivery = get_object_or_404(Delivery.objects.select_related("call"), pk=pk)
        detail_url = reverse("admin:call_detail", args=[pk])
        refusal = resend_refusal(delivery.call, delivery)
        if refusal:
            messages.error(request, f"Not resent: {refusal}")
            return HttpResponseRedirect(detail_url)
        if not services.resend(delivery):
            messages.error(request, "Not resent: a worker took it meanwhile; its outcome will show below.")
            return HttpResponseRedirect(detail_url)
        audit(request, delivery, f"Resent from the dashboard (was {delivery.state}).")
        messages.success(request, "Resend queued: the new attempt shows below once a worker has tried it.")
        return HttpResponseRedirect(detail_url)


class Expunge(Action):
    """Remove the call's personal data (payload, email, exchange bodies); the attempts stay."""

    def post(self, request, pk):
        call = get_object_or_404(Call, pk=pk)
        detail_url = reverse("admin:call_detail", args=[pk])
        if call.payload is None and not call.email:
            messages.info(request, "Its payload was already removed.")
            return HttpResponseRedirect(detail_url)
        if Delivery.objects.filter(pk=pk, state=State.DELIVERING).exists():
            messages.error(request, "Not expunged: a worker is sending it right now; try again in a moment.")
            return HttpResponseRedirect(detail_url)
        services.expunge(call, f"expunged by {request.user.get_username()}")
        audit(request, call, "Expunged the payload (personal data); the attempt history stays.")
        messages.success(
            request, "Payload expunged. The call's metadata and its attempts remain; it can no longer be resent."
        )
        return HttpResponseRedirect(detail_url)


def _in_motion(delivery, now):
    """A worker has it, or will have it within moments."""
    if delivery is None:
        return False
    if delivery.state == State.DELIVERING:
        return True
    return delivery.state == State.PENDING and delivery.next_attempt_at <= now + REFRESH_WHILE_DUE_WITHIN
