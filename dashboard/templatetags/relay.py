"""Template helpers of the dashboard: the connection banners and a few formats."""

import json

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from dashboard.queries import overview

register = template.Library()


@register.inclusion_tag("dashboard/includes/banners.html", takes_context=True)
def relay_banners(context):
    """On every dashboard page: red while the workers are stalled (one EXISTS while they are not);
    from the configured connection's status only (one query, shared with the page), red while
    Intercom refuses the token, amber while it is unreachable."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return {"refused": None, "unreachable": None, "stalled": None}
    from dashboard.views.common import intercom_status, worker_stall

    stalled = worker_stall(request)
    status = intercom_status(request)
    if status is None:
        return {"refused": None, "unreachable": None, "stalled": stalled}
    refused = status if status.auth_failed_at else None
    unreachable = status if status.unreachable_since and not refused else None
    return {"refused": refused, "unreachable": unreachable, "stalled": stalled}


@register.filter
def milliseconds(value):
    """1234 -> "1.23 s", 87 -> "87 ms"."""
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value} ms"


@register.filter
def state_group(state):
    """The chart colour group of a delivery state."""
    return overview.GROUP_OF_STATE.get(state, state)


@register.filter
def pretty_json(text):
    """A stored JSON body indented for reading; other text (a cut body) as it is."""
    if not text:
        return text
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


@register.filter
def thousands(value):
    """12345 -> "12,345"."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return value


@register.filter
def ago(moment, now=None):
    """ "just now" under a minute, else "5 minutes ago"."""
    if moment is None:
        return "never"
    now = now or timezone.now()
    if (now - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment, now)} ago"
