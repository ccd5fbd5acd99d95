"""The delivery log: every call, newest first, filtered and searched, one keyset page at a time."""

from django.urls import reverse
from django.utils import timezone

from dashboard.filters import RANGE_LABELS, LogFilter
from dashboard.queries import cursors, log
from dashboard.views.common import Page
from forwarding.models import CallType, State

STATUS_CHOICES = [("2xx", "2xx"), ("4xx", "4xx"), ("5xx", "5xx"), ("none", "No answer")]
# Filters typed in the sidebar's form rather than picked from a list.
TYPED = [
    ("event", "Event name", "e.g. Order Completed"),
    ("cause", "Error cause", "e.g. http_400, timeout"),
    ("status", "HTTP status", "e.g. 404 or 5xx"),
    ("user", "Forwarded for user", "userId"),
]


class Log(Page):
    template_name = "dashboard/log.html"
    title = "Delivery log"

    def get(self, request):
        now = timezone.now()
        log_filter, problems = LogFilter.parse(request.GET)
        cursor = request.GET.get("after") or request.GET.get("before") or ""
        bad_cursor = cursors.cursor_problem("after" if request.GET.get("after") else "before", cursor)
        problems += [bad_cursor] if bad_cursor else []
        page = log.log_page(log_filter, now, cursor=cursor, newer="before" in request.GET)
        sources = log.sources()
        base = reverse("admin:delivery_log")
        return self.render(
            request,
            {
                "filter": log_filter,
                "problems": problems,
                "page": page,
                "description": log_filter.describe(sources),
                "choices": _choices(log_filter, sources),
                "typed": [(name, label, hint, getattr(log_filter, name)) for name, label, hint in TYPED],
                "hidden_for_typed": _hidden(log_filter, exclude={name for name, _, _ in TYPED} | {"since", "until"}),
                "hidden_for_search": _hidden(log_filter, exclude={"q"}),
                "since_value": _local(log_filter.since),
                "until_value": _local(log_filter.until),
                "older_url": base + log_filter.query() + f"&after={page.older}" if page.older else "",
                "newer_url": base + log_filter.query() + f"&before={page.newer}" if page.newer else "",
                "newest_url": base + log_filter.query() if cursor else "",
                "clear_url": base,
                "bulk_url": reverse("admin:bulk_resend") + log_filter.query(),
                "user_url": reverse("admin:user_history"),
            },
        )


def _choices(log_filter, sources):
    """The sidebar's lists: (title, [(label, query, selected)])."""

    def options(name, values):
        current = getattr(log_filter, name)
        items = [("All" if name != "range" else "Any time", log_filter.query(**{name: None}), current in ("", None))]
        items += [(label, log_filter.query(**{name: value}), current == value) for value, label in values]
        return items

    lists = [
        ("state", options("state", [(value, label) for value, label in State.choices])),
        ("type", options("type", [(value, label) for value, label in CallType.choices])),
        ("time", options("range", list(RANGE_LABELS.items()))),
        ("HTTP status", options("status", STATUS_CHOICES)),
    ]
    warnings = [
        ("All", log_filter.query(warned=None), not log_filter.warned),
        ("Has warnings", log_filter.query(warned=True), log_filter.warned),
    ]
    lists.append(("warnings", warnings))
    if sources:
        lists.append(("source", options("source", list(sources.items()))))
    return lists


def _hidden(log_filter, exclude):
    return [(name, value) for name, value in log_filter.params().items() if name not in exclude]


def _local(moment):
    """A value for <input type="datetime-local"> (UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M") if moment else ""
