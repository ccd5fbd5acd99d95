"""The overview (the admin's index): activity by state over 24 hours and 7 days, the backlog, the
cap, the connection to Intercom and the top failure reasons."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from dashboard import charts
from dashboard.filters import LogFilter
from dashboard.queries import overview
from dashboard.views.common import Page, gauge_level, intercom_status
from forwarding import event_names, intercom

# Where each group of states leads in the log (the log filters one state at a time).
GROUP_STATE = {"delivered": "delivered", "in_progress": "pending", "waiting": "waiting", "held": "held"}
GROUP_STATE |= {"suppressed": "suppressed", "skipped": "skipped", "failed": "failed"}
# The gauge turns amber, then red, as the slots fill (as on the event-names page).


class Overview(Page):
    template_name = "dashboard/overview.html"
    title = "Overview"

    def get(self, request):
        now = timezone.now()
        log = reverse("admin:delivery_log")
        day = overview.activity(now, "hour")
        week = overview.activity(now, "day")
        causes_since = event_names.hour_of(now) - timedelta(days=7)  # the tallies count by the hour
        status = intercom_status(request)
        rate_limit = overview.rate_limit_window()
        usage = self.base_context(request).get("event_name_usage") or event_names.usage()
        dropped = overview.delivered_with_data_dropped(now)
        return self.render(
            request,
            {
                "now": now,
                "windows": [
                    _window("Last 24 hours", day, log, "24h", hour_labels=True),
                    _window("Last 7 days", week, log, "7d", hour_labels=False),
                ],
                "backlog": overview.backlog(now),
                "usage": usage,
                "usage_level": _level(usage),
                "status": status,
                "connection": _connection(status),
                "base_url": intercom.base_url(),
                "rate_limit": rate_limit,
                "dropped": [
                    {
                        "key": key,
                        "label": label,
                        "value": value,
                        "href": log + LogFilter(state="delivered", warned=True, since=since).query(),
                    }
                    for key, label, value, since in [
                        ("24h", "Last 24 hours", dropped.day, dropped.day_since),
                        ("7d", "Last 7 days", dropped.week, dropped.week_since),
                    ]
                ],
                "causes": [
                    {
                        **cause,
                        "href": log + LogFilter(state="failed", cause=cause["error_cause"], since=causes_since).query(),
                    }
                    for cause in overview.top_failure_causes(causes_since)
                ],
                "causes_since": causes_since,
                "log_url": log,
                "failed_url": log + LogFilter(state="failed").query(),
                "pending_url": log + LogFilter(state="pending").query(),
                "event_names_url": reverse("admin:event_names"),
                "attributes_url": reverse("admin:data_attributes"),
            },
        )


def _window(title, activity, log, range_key, hour_labels):
    """One window's cards and chart; every figure links to the log filtered to it."""
    groups = [(key, label) for key, label, _ in overview.STATE_GROUPS]

    def href(bucket):
        return log + LogFilter(since=bucket.start, until=bucket.end).query()

    def label(bucket):
        return bucket.start.strftime("%H:00") if hour_labels else bucket.start.strftime("%a %d")

    def title_of(bucket):
        spell = f"{bucket.start:%Y-%m-%d %H:00}" if hour_labels else f"{bucket.start:%A %Y-%m-%d}"
        parts = [f"{name}: {bucket.counts[key]}" for key, name in groups if bucket.counts[key]]
        return f"{spell} UTC — {bucket.total} received" + (f" ({', '.join(parts)})" if parts else "")

    chart = charts.stacked_bars(activity.buckets, groups, label, title_of, href, label_every=3 if hour_labels else 1)
    since = activity.since
    received = log + LogFilter(since=since).query()
    cards = [{"key": "received", "label": "Received", "value": activity.received, "href": received}]
    for key, name in groups:
        state_filter = LogFilter(state=GROUP_STATE[key], since=since)
        cards.append({"key": key, "label": name, "value": activity.totals[key], "href": log + state_filter.query()})
    return {"title": title, "range": range_key, "chart": chart, "cards": cards, "groups": groups, "since": since}


def _connection(status):
    """(key, headline) of the configured connection: connected only while the last request
    succeeded; a row of another base URL or token is no status of this one (None)."""
    if status is None:
        return "unknown", "Not contacted yet"
    if status.auth_failed_at:
        return "bad", "Token refused"
    if status.unreachable_since:
        return "warn", "Unreachable"
    if status.last_success_at:
        return "ok", "Connected"
    return "unknown", "No success yet"


def _level(usage):
    return gauge_level(usage.used / usage.limit if usage.limit else 1)
