"""The event-names page (docs/architecture.md, "Event names"): usage against the cap, the
registry, and the operators' actions. The rules are forwarding.event_names' verbs; this module only reads and asks."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.admin.models import ADDITION
from django.core.paginator import Paginator
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone

from dashboard.views.common import Action, Page, audit, can_operate, gauge_level, intercom_status, safe_next
from forwarding import event_names
from forwarding.models import EventName, EventNameHour, NameStatus
from forwarding.transformations import store

PER_PAGE = 100
# ?sort=<key> or ?sort=-<key>: the columns the table sorts by, and the field each one orders on.
SORTS = {
    "name": "key",
    "status": "status",
    "first_seen": "first_seen_at",
    "last_seen": "last_seen_at",
    "total": "total_count",
    "day": "day_count",
    "week": "week_count",
    "delivered": "delivered_count",
    "held": "held_count",
    "suppressed": "suppressed_count",
}
DEFAULT_SORT = "-last_seen"
COLUMNS = [
    ("name", "Name"),
    ("status", "Status"),
    (None, "Slot"),
    (None, "Renamed to"),
    ("first_seen", "First seen"),
    ("last_seen", "Last seen"),
    ("total", "Total"),
    ("day", "24 h"),
    ("week", "7 days"),
    ("delivered", "Delivered"),
    ("held", "Held"),
    ("suppressed", "Suppressed"),
]
INTERCOM_ARCHIVE_REMINDER = (
    "Intercom still counts it until it is archived in Intercom too: Settings > Data > Events "
    "(Intercom's API cannot archive event names)."
)


def urls(site):
    def page(view):
        return site.admin_view(view.as_view(site=site))

    return [
        path("event-names/", page(EventNames), name="event_names"),
        path("event-names/<relay_id:pk>/archive/", page(Archive), name="event_name_archive"),
        path("event-names/<relay_id:pk>/unarchive/", page(Unarchive), name="event_name_unarchive"),
        path("event-names/<relay_id:pk>/rename/", page(Rename), name="event_name_rename"),
        path("event-names/<relay_id:pk>/release/", page(Release), name="event_name_release"),
    ]


# -- the page ------------------------------------------------------------------------------------


class EventNames(Page):
    """Usage gauge, Intercom's cap warning, and the registry table (sorted, filtered, paged)."""

    template_name = "dashboard/event_names.html"
    title = "Event names"

    def get(self, request):
        return self.render(request, page_context(request))


def page_context(request):
    """The page's own context (the admin's comes from `Page`)."""
    now = timezone.now()
    sort = request.GET.get("sort", DEFAULT_SORT)
    if sort.lstrip("-") not in SORTS:
        sort = DEFAULT_SORT
    conditions = filters(now)
    show = request.GET.get("show", "all")
    if show not in conditions:
        show = "all"
    query = request.GET.get("q", "").strip()

    counts = EventName.objects.aggregate(
        **{key: Count("pk", filter=condition or None) for key, (_, condition) in conditions.items()}
    )
    names = registry(now).filter(conditions[show][1])
    if query:
        names = names.filter(key__contains=event_names.key_of(query))
    field = SORTS[sort.lstrip("-")]
    ordering = f"-{field}" if sort.startswith("-") else field
    names = names.order_by(ordering, "key")
    page_obj = Paginator(names, PER_PAGE).get_page(request.GET.get("page"))
    renames = store.renames()
    for entry in page_obj:  # the name a rename-event rule forwards it as, if any
        found = renames.get(entry.key)
        entry.renamed_to = found.to if found else ""

    operator = can_operate(request.user)
    return {
        "usage": gauge(event_names.usage()),
        "refused": refused_for_cap(request),
        "page_obj": page_obj,
        "previous_url": page_obj.has_previous() and query_url(request.GET, page=str(page_obj.previous_page_number())),
        "next_url": page_obj.has_next() and query_url(request.GET, page=str(page_obj.next_page_number())),
        "columns": header(COLUMNS, sort, request.GET),
        "filters": [
            {"key": key, "label": label, "count": counts[key], "url": query_url(request.GET, show=key, page=None)}
            for key, (label, _) in conditions.items()
        ],
        "show": show,
        "sort": sort,
        "query": query,
        "candidate_days": event_names.ARCHIVE_CANDIDATE_AFTER.days,
        "targets": rename_targets() if operator else [],
        "next": request.get_full_path(),
        "archive_reminder": INTERCOM_ARCHIVE_REMINDER,
    }


def refused_for_cap(request):
    """The configured connection's status when Intercom refused a new name for its cap, or None
    (the status the banners read: a refusal noted with another base URL or token is not shown)."""
    status = intercom_status(request)
    return status if status is not None and status.cap_refused_at else None


def registry(now):
    """Every name with its 24 h and 7 day counts (from the hourly buckets) and its archive
    candidacy, so that the table can sort and filter on them in the database."""
    return EventName.objects.annotate(
        day_count=calls_since(now - timedelta(hours=24)),
        week_count=calls_since(now - timedelta(days=7)),
        is_candidate=Exists(event_names.archive_candidates(now).filter(pk=OuterRef("pk"))),
    )


def filters(now):
    """{?show= key: (label, condition)}, in the order shown."""
    candidates = event_names.archive_candidates(now).values("pk")
    return {
        "all": ("All", Q()),
        "active": ("Active", Q(status=NameStatus.ACTIVE)),
        "archived": ("Archived", Q(status=NameStatus.ARCHIVED)),
        "held": ("Held", Q(held_count__gt=0)),
        "renamed": ("Renamed", Q(key__in=list(store.renames()))),
        "candidates": ("Archive candidates", Q(pk__in=candidates)),
    }


def calls_since(since):
    """One name's calls since `since`, summed over its hourly buckets (as recent_counts does)."""
    hour = since.replace(minute=0, second=0, microsecond=0)
    buckets = (
        EventNameHour.objects.filter(event_name=OuterRef("pk"), hour__gte=hour)
        .values("event_name")
        .annotate(n=Sum("count"))
        .values("n")
    )
    return Coalesce(Subquery(buckets, output_field=IntegerField()), Value(0))


def gauge(usage):
    """The usage and its colour: green, then amber from 75 %, red from 95 % of the limit."""
    fraction = usage.used / usage.limit if usage.limit else 1
    return {
        "used": usage.used,
        "limit": usage.limit,
        "free": max(usage.limit - usage.used, 0),
        "percent": usage.percent,
        "level": gauge_level(fraction),
        "full": usage.full,
    }


def header(columns, sort, params):
    """Column headings, each sortable one with the URL that sorts by it (toggling on a repeat)."""
    current, descending = sort.lstrip("-"), sort.startswith("-")
    cells = []
    for key, label in columns:
        cell = {"label": label, "key": key, "sorted": key == current, "descending": descending}
        if key:
            # Counts and dates sort largest/newest first on the first click, words A to Z.
            first = key if key in ("name", "status") else f"-{key}"
            target = (key if descending else f"-{key}") if key == current else first
            cell["url"] = query_url(params, sort=target, page=None)
        cells.append(cell)
    return cells


def query_url(params, **changes):
    """`?…` with `changes` applied to the current query (None removes a parameter)."""
    query = params.copy()
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return f"?{query.urlencode()}"


def rename_targets():
    """Names an operator may rename to: active and not renamed themselves."""
    return list(
        EventName.objects.filter(status=NameStatus.ACTIVE)
        .exclude(key__in=list(store.renames()))
        .order_by("key")
        .values_list("name", flat=True)
    )


# -- the operators' actions ----------------------------------------------------------------------


class NameAction(Action):
    """A POST on one name by an operator, written to the admin log and reported in a message;
    then back to the page it came from (its sort and filter).

    No transaction around it: the verbs take the slot lock themselves, and holding the name's row
    across them would take the two locks in the opposite order to the worker's."""

    def post(self, request, pk):
        self.act(request, get_object_or_404(EventName, pk=pk))
        return HttpResponseRedirect(safe_next(request, reverse("admin:event_names")))

    def act(self, request, entry):
        raise NotImplementedError


def archive(entry):
    """Archive `entry` (event_names.archive); returns (the names released, what was done in words),
    for the page's message, the API's answer and the admin log."""
    held_before = dict(EventName.objects.filter(held_count__gt=0).values_list("name", "held_count"))
    released = event_names.archive(entry)
    done = f"Archived '{entry.name}'"
    if released:
        done += "; released " + ", ".join(
            f"'{name}' ({plural(held_before.get(name, 0), 'held call')})" for name in released
        )
    return released, done


def unarchive(entry):
    """Make `entry` active again; returns (how many suppressed calls are tried again, in words)."""
    moved = event_names.unarchive(entry)
    done = f"Unarchived '{entry.name}'"
    if moved:
        done += f"; trying {plural(moved, 'suppressed call')} again"
    return moved, done


class Archive(NameAction):
    """Archive the name (its slot frees, held names move up)."""

    def act(self, request, entry):
        if entry.status == NameStatus.ARCHIVED:
            messages.info(request, f"'{entry.name}' is already archived.")
            return
        _, done = archive(entry)
        audit(request, entry, done)
        messages.success(request, f"{done}. {INTERCOM_ARCHIVE_REMINDER}")


class Unarchive(NameAction):
    """Make the name active again; its suppressed calls are tried again."""

    def act(self, request, entry):
        if entry.status == NameStatus.ACTIVE:
            messages.info(request, f"'{entry.name}' is not archived.")
            return
        _, done = unarchive(entry)
        audit(request, entry, done)
        entry.refresh_from_db()
        if entry.slot_used_at is None and event_names.usage().full:
            messages.warning(request, f"{done}. No slot is free: its calls are held until one frees.")
        else:
            messages.success(request, f"{done}.")


class Rename(NameAction):
    """Forward the name's calls under another (existing or new) name from now on."""

    def act(self, request, entry):
        new_name = request.POST.get("new_name", "").strip()
        resend = request.POST.get("resend") == "on"
        if not new_name:
            messages.error(request, f"Renaming '{entry.name}' needs a new name.")
            return
        if len(new_name) > EventName._meta.get_field("name").max_length:
            messages.error(request, "An event name is at most 255 characters.")
            return
        existed = EventName.objects.filter(key=event_names.key_of(new_name)).exists()
        try:
            target, moved = event_names.rename(entry, new_name, resend_held_and_failed=resend, by=request.user)
        except ValueError as error:
            messages.error(request, f"Cannot rename '{entry.name}': {error}.")
            return
        done = f"Renamed '{entry.name}' to '{target.name}'"
        if resend:
            done += f"; resent {plural(moved, 'held or failed call')} under '{target.name}'"
        if not existed:
            audit(request, target, f"Added as the new name of '{entry.name}'", flag=ADDITION)
        audit(request, entry, done)
        if target.status == NameStatus.ARCHIVED:
            messages.warning(request, f"{done}. '{target.name}' is archived: its calls are suppressed.")
        elif target.slot_used_at is None and event_names.usage().full:
            messages.warning(request, f"{done}. '{target.name}' has no slot and none is free: its calls are held.")
        else:
            messages.success(request, f"{done}.")


class Release(NameAction):
    """Try the name's held calls again now."""

    def act(self, request, entry):
        moved = event_names.release(entry)
        done = f"Released {plural(moved, 'held call')} of '{entry.name}'"
        audit(request, entry, done)
        target = event_names.renamed_to(entry)
        if moved and target.slot_used_at is None and event_names.usage().full:
            messages.warning(request, f"{done}. '{target.name}' has no slot and none is free: they will be held again.")
        else:
            messages.success(request, f"{done}.")


def plural(count, noun):
    return f"{count} {noun}{'' if count == 1 else 's'}"
