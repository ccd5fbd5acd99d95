"""The event-names page (docs/architecture.md, "Event names"): usage against the cap, the
registry, and the operators' actions. The rules are forwarding.event_names' verbs; this module only reads and asks."""

from datetime import timedelta
from functools import wraps

from django.contrib import messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from dashboard.views.common import intercom_status
from forwarding import event_names
from forwarding.models import EventName, EventNameHour, NameStatus

OPERATE = "forwarding.operate"
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
# The gauge turns amber, then red, as the slots fill (fractions of the limit).
AMBER_FROM = 0.75
RED_FROM = 0.95
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
    def page_view(request):
        return page(request, site)

    return [
        path("event-names/", site.admin_view(page_view), name="event_names"),
        path("event-names/<relay_id:pk>/archive/", site.admin_view(archive), name="event_name_archive"),
        path("event-names/<relay_id:pk>/unarchive/", site.admin_view(unarchive), name="event_name_unarchive"),
        path("event-names/<relay_id:pk>/rename/", site.admin_view(rename), name="event_name_rename"),
        path("event-names/<relay_id:pk>/release/", site.admin_view(release), name="event_name_release"),
    ]


# -- the page ------------------------------------------------------------------------------------


def page(request, site):
    """Usage gauge, Intercom's cap warning, and the registry table (sorted, filtered, paged)."""
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

    can_operate = request.user.has_perm(OPERATE)
    context = {
        **site.each_context(request),
        "title": "Event names",
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
        "can_operate": can_operate,
        "targets": rename_targets() if can_operate else [],
        "next": request.get_full_path(),
        "archive_reminder": INTERCOM_ARCHIVE_REMINDER,
    }
    return TemplateResponse(request, "dashboard/event_names.html", context)


def refused_for_cap(request):
    """The configured connection's status when Intercom refused a new name for its cap, or None
    (the status the banners read: a refusal noted with another base URL or token is not shown)."""
    status = intercom_status(request)
    return status if status is not None and status.cap_refused_at else None


def registry(now):
    """Every name with its 24 h and 7 day counts (from the hourly buckets) and its archive
    candidacy, so that the table can sort and filter on them in the database."""
    return EventName.objects.select_related("rename_to").annotate(
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
        "renamed": ("Renamed", Q(rename_to__isnull=False)),
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
    level = "red" if fraction >= RED_FROM else "amber" if fraction >= AMBER_FROM else "green"
    return {
        "used": usage.used,
        "limit": usage.limit,
        "free": max(usage.limit - usage.used, 0),
        "percent": usage.percent,
        "level": level,
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
        EventName.objects.filter(status=NameStatus.ACTIVE, rename_to__isnull=True)
        .order_by("key")
        .values_list("name", flat=True)
    )


# -- the operators' actions ----------------------------------------------------------------------


def action(verb):
    """A POST-only action on one name by an operator (403 without the permission), written to
    the admin log and reported in a message; then back to the page it came from.

    No transaction around it: the verbs take the slot lock themselves, and holding the name's row
    across them would take the two locks in the opposite order to the worker's."""

    def decorator(func):
        @wraps(func)
        @require_POST
        def view(request, pk):
            if not request.user.has_perm(OPERATE):
                raise PermissionDenied(f"{verb} needs the operator permission ({OPERATE})")
            func(request, get_object_or_404(EventName, pk=pk))
            return HttpResponseRedirect(back(request))

        return view

    return decorator


@action("Archive")
def archive(request, entry):
    """Archive the name (its slot frees, held names move up)."""
    if entry.status == NameStatus.ARCHIVED:
        messages.info(request, f"'{entry.name}' is already archived.")
        return
    held_before = dict(EventName.objects.filter(held_count__gt=0).values_list("name", "held_count"))
    released = event_names.archive(entry)
    done = f"Archived '{entry.name}'"
    if released:
        done += "; released " + ", ".join(
            f"'{name}' ({plural(held_before.get(name, 0), 'held call')})" for name in released
        )
    log(request, entry, CHANGE, done)
    messages.success(request, f"{done}. {INTERCOM_ARCHIVE_REMINDER}")


@action("Unarchive")
def unarchive(request, entry):
    """Make the name active again; its suppressed calls are tried again."""
    if entry.status == NameStatus.ACTIVE:
        messages.info(request, f"'{entry.name}' is not archived.")
        return
    moved = event_names.unarchive(entry)
    done = f"Unarchived '{entry.name}'"
    if moved:
        done += f"; trying {plural(moved, 'suppressed call')} again"
    log(request, entry, CHANGE, done)
    entry.refresh_from_db()
    if entry.slot_used_at is None and event_names.usage().full:
        messages.warning(request, f"{done}. No slot is free: its calls are held until one frees.")
    else:
        messages.success(request, f"{done}.")


@action("Rename")
def rename(request, entry):
    """Forward the name's calls under another (existing or new) name from now on."""
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
        target, moved = event_names.rename(entry, new_name, resend_held_and_failed=resend)
    except ValueError as error:
        messages.error(request, f"Cannot rename '{entry.name}': {error}.")
        return
    done = f"Renamed '{entry.name}' to '{target.name}'"
    if resend:
        done += f"; resent {plural(moved, 'held or failed call')} under '{target.name}'"
    if not existed:
        log(request, target, ADDITION, f"Added as the new name of '{entry.name}'")
    log(request, entry, CHANGE, done)
    if target.status == NameStatus.ARCHIVED:
        messages.warning(request, f"{done}. '{target.name}' is archived: its calls are suppressed.")
    elif target.slot_used_at is None and event_names.usage().full:
        messages.warning(request, f"{done}. '{target.name}' has no slot and none is free: its calls are held.")
    else:
        messages.success(request, f"{done}.")


@action("Release")
def release(request, entry):
    """Try the name's held calls again now."""
    moved = event_names.release(entry)
    done = f"Released {plural(moved, 'held call')} of '{entry.name}'"
    log(request, entry, CHANGE, done)
    target = entry.rename_to or entry
    if moved and target.slot_used_at is None and event_names.usage().full:
        messages.warning(request, f"{done}. '{target.name}' has no slot and none is free: they will be held again.")
    else:
        messages.success(request, f"{done}.")


def log(request, entry, flag, message):
    LogEntry.objects.log_actions(request.user.pk, [entry], flag, change_message=message, single_object=True)


def back(request):
    """The page the action came from (its sort and filter), or the page itself."""
    target = request.POST.get("next", "")
    page_url = reverse("admin:event_names")
    if target.startswith(page_url) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return page_url


def plural(count, noun):
    return f"{count} {noun}{'' if count == 1 else 's'}"
