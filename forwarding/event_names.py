"""The event-name rules (docs/architecture.md, "Event names"): the registry kept as calls arrive and deliveries end,
usage against INTERCOM_EVENT_NAME_LIMIT, hold at the cap, archive, rename and release."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from forwarding import name_counts
from forwarding.delivery import queue
from forwarding.models import (
    CallType,
    Delivery,
    EventName,
    EventNameHour,
    IntercomStatus,
    NameStatus,
    Rule,
    RuleCallType,
    State,
    Trigger,
)
from forwarding.transformations import store

ARCHIVE_CANDIDATE_AFTER = timedelta(days=30)


def key_of(name):
    """Intercom compares event names case-insensitively."""
    return name.strip().lower()[:255]


def call_event_name(call):
    """The event name a call is registered under: track's event, or the page event name."""
    if call.type == CallType.TRACK:
        return call.event
    if call.type == CallType.PAGE:
        return settings.INTERCOM_PAGE_EVENT_NAME
    return ""


def limit():
    """The cap the relay enforces (the operator may set it below Intercom's 120)."""
    return settings.INTERCOM_EVENT_NAME_LIMIT


def used():
    """Names holding a slot."""
    return EventName.objects.filter(slot_used_at__isnull=False).count()


@dataclass(frozen=True)
class Usage:
    used: int
    limit: int

    @property
    def full(self):
        return self.used >= self.limit

    @property
    def percent(self):
        return min(100, round(100 * self.used / self.limit)) if self.limit else 100


def usage():
    return Usage(used(), limit())


# -- as calls arrive -----------------------------------------------------------------------------


def record_arrivals(calls):
    """Count arriving calls per name (one row per name, one bucket per hour); returns
    {call pk: registry key} for the deliveries. Runs inside the ingestion transaction, in a fixed
    number of queries whatever the number of names."""
    keys, seen = {}, {}
    for call in calls:
        name = call_event_name(call)
        if not name or not name.strip():
            continue
        key = key_of(name)
        keys[call.pk] = key
        first, count, earliest, last = seen.get(key, (name, 0, call.received_at, call.received_at))
        seen[key] = (first, count + 1, min(earliest, call.received_at), max(last, call.received_at))
    if not seen or (len(seen) == 1 and _count_known(*next(iter(seen.items())))):
        return keys
    EventName.objects.bulk_create(
        [
            EventName(key=key, name=name[:255], first_seen_at=earliest, last_seen_at=earliest)
            for key, (name, _, earliest, _) in seen.items()  # in order of arrival: ties go by id
        ],
        ignore_conflicts=True,
    )
    # Locked in id order before they are counted: concurrent requests that counted the same names
    # in whatever order their UPDATE met the rows would deadlock (PostgreSQL).
    names = EventName.objects.filter(key__in=list(seen)).order_by("pk").select_for_update()
    ids = dict(names.values_list("key", "pk"))
    name_counts.add_arrivals({ids[key]: (count, last) for key, (_, count, _, last) in seen.items()})
    name_counts.add_to_hours({(ids[key], hour_of(last)): count for key, (_, count, _, last) in seen.items()})
    _remember(ids)
    return keys


# {key: id} of the names this process has counted: a request of one name (a website's single
# call) counts it in two statements instead of four. Names are never deleted, and every use checks
# the id still holds the key (a row rolled back, or a test's database emptied, can give an id
# to another name): a miss forgets the entry and counts the long way, which remembers it again.
_known_ids = {}
KNOWN_IDS_MAX = 10_000  # a flood of new names only empties it


def _count_known(key, seen):
    pk = _known_ids.get(key)
    if pk is None:
        return False
    _, count, _, last = seen
    if not name_counts.add_arrivals({pk: (count, last)}, keys={pk: key}):
        _known_ids.pop(key, None)
        return False
    name_counts.add_to_hours({(pk, hour_of(last)): count})
    return True


def _remember(ids):
    if len(_known_ids) + len(ids) > KNOWN_IDS_MAX:
        _known_ids.clear()
    _known_ids.update(ids)


def hour_of(moment):
    """The hourly bucket a moment counts in."""
    return moment.replace(minute=0, second=0, microsecond=0)


def recent_counts(since):
    """{event name id: calls since `since`} from the hourly buckets."""
    hour = hour_of(since)
    rows = EventNameHour.objects.filter(hour__gte=hour).values("event_name").annotate(n=Sum("count"))
    return {row["event_name"]: row["n"] for row in rows}


# -- as deliveries are tried ---------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where a delivery's event goes: `name` to forward under, or the state it stops in."""

    name: str = ""
    state: str = ""
    reason: str = ""
    warning: str = ""


def entries(keys):
    """The registry entries of `keys`, for a task to route its deliveries with one query: {key: EventName}."""
    return {entry.key: entry for entry in EventName.objects.filter(key__in=list(keys))}


def registered(name):
    """The registry entry of `name`, added when a rule gives a call a name never seen."""
    entry, _ = EventName.objects.get_or_create(key=key_of(name), defaults={"name": name.strip()[:255]})
    return entry


def route(event_key, forwarded_name=None, forced=False, known=None):
    """Forward under `forwarded_name` (the name after the transformation rules; the call's own
    when None) when it has a slot or one is free; else hold or suppress. A forced resend (the
    operator's, of one call) goes out under an archived name all the same, with a warning, and
    without taking a slot for it. `known` (see `entries`) saves the queries."""
    known = {} if known is None else known
    if event_key not in known:
        known.update(entries([event_key]))
    entry = known.get(event_key)
    if entry is None:
        return Route(state=State.FAILED, reason=f"event name {event_key!r} is not in the registry")
    if entry.status == NameStatus.ARCHIVED:
        reason = f"event name {entry.name!r} is archived"
        return forced_route(entry, reason) if forced else Route(state=State.SUPPRESSED, reason=reason)
    target = entry
    if forwarded_name and key_of(forwarded_name) != event_key:
        target = known.get(key_of(forwarded_name)) or registered(forwarded_name)
        known[target.key] = target  # the task's other calls renamed alike route without asking
        if target.status == NameStatus.ARCHIVED:
            reason = f"renamed to {target.name!r}, which is archived"
            return forced_route(target, reason) if forced else Route(state=State.SUPPRESSED, reason=reason)
    if target.slot_used_at is None and not take_slot(target):
        return Route(
            state=State.HELD,
            reason=f"event name cap full ({limit()} names): {target.name!r} has no slot",
        )
    return Route(name=target.name)


def forced_route(entry, reason):
    warning = f"sent by a forced resend though {reason}: Intercom counts the name as active until it is archived there"
    return Route(name=entry.name, warning=warning)


def take_slot(entry):
    """Give `entry` a slot if usage allows; serialised so two workers cannot pass the cap together."""
    with transaction.atomic():
        # One lock for every slot decision: the status row (SQLite serialises writers anyway).
        IntercomStatus.objects.select_for_update().get_or_create(name="intercom")
        if EventName.objects.filter(pk=entry.pk, slot_used_at__isnull=False).exists():
            entry.slot_used_at = entry.slot_used_at or timezone.now()
            return True
        if used() >= limit():
            return False
        now = timezone.now()
        if not EventName.objects.filter(pk=entry.pk, slot_used_at__isnull=True).update(slot_used_at=now):
            return False
        entry.slot_used_at = now  # the task's other deliveries of this name route without asking
        return True


def refused_by_intercom(event_key, forwarded_name):
    """Intercom's cap 422: it counts names the relay did not send. Give the slot back and flag it."""
    now = timezone.now()
    target_key = key_of(forwarded_name) if forwarded_name else event_key
    EventName.objects.filter(key=target_key).update(slot_used_at=None, intercom_refused_at=now)
    IntercomStatus.objects.update_or_create(
        name="intercom", defaults={"cap_refused_at": now, "cap_refused_usage": used()}
    )


def count_deltas(old_state, new_state, delivered_before=False):
    """{counter: change} that a delivery moving from `old_state` to `new_state` makes to its
    name's delivered, held and suppressed counts. A call delivered again (a resend) counts once:
    "delivered" never exceeds the calls received."""
    if old_state == new_state:
        return {}
    deltas = {}
    if new_state == State.DELIVERED and not delivered_before:
        deltas["delivered_count"] = 1
    if new_state == State.SUPPRESSED:
        deltas["suppressed_count"] = 1
    if new_state == State.HELD:
        deltas["held_count"] = 1
    if old_state == State.HELD:
        deltas["held_count"] = -1
    return deltas


def count_outcome(event_key, old_state, new_state, delivered_before=False):
    """Keep the per-name counts as a delivery ends (see `count_deltas`)."""
    deltas = count_deltas(old_state, new_state, delivered_before)
    if event_key and deltas:
        EventName.objects.filter(key=event_key).update(**{name: F(name) + n for name, n in deltas.items()})


# -- operators' actions ------------------------------------------------------------------------


def archive(entry):
    """Stop counting the name; its new calls are suppressed. Frees its slot, so held names move up."""
    EventName.objects.filter(pk=entry.pk).update(
        status=NameStatus.ARCHIVED, slot_used_at=None, archived_at=timezone.now()
    )
    return release_held()


def unarchive(entry):
    """Active again, without a slot until one is free; its suppressed calls are tried again."""
    EventName.objects.filter(pk=entry.pk).update(status=NameStatus.ACTIVE, archived_at=None)
    moved = reopen(entry.key, [State.SUPPRESSED], Trigger.RELEASE)
    release_held()
    return moved


def rename(entry, new_name, resend_held_and_failed=False, by=None):
    """Forward calls named `entry` as `new_name` from now on (an existing or a new name): a
    rename-event rule (docs/delivery.md, "Transformations"), made or changed by `by`."""
    new_key = key_of(new_name)
    if new_key == entry.key:
        raise ValueError("a name cannot be renamed to itself")
    current = store.renames()
    if new_key in current:
        raise ValueError(f"{new_name.strip()!r} is itself renamed to {current[new_key].to!r}")
    target = registered(new_name)
    with transaction.atomic():
        existing = current.get(entry.key)
        rule = existing.rule if existing else Rule(call_type=RuleCallType.TRACK, event=entry.name)
        rule.name = rule.name or f"rename {entry.name}"
        rule.operations = [{"op": "rename_event", "to": target.name}]
        store.save(rule, by, f"Renames '{entry.name}' to '{target.name}'.")
        # Names renamed to this one follow it to the new target.
        for key, other in current.items():
            if key_of(other.to) == entry.key and key != entry.key:
                other.rule.operations = [{"op": "rename_event", "to": target.name}]
                following = f"Renames '{other.rule.event}' to '{target.name}', following '{entry.name}'."
                store.save(other.rule, by, following)
    moved = 0
    if resend_held_and_failed:
        moved = reopen(entry.key, [State.HELD, State.FAILED], Trigger.MANUAL)
    return target, moved


def renamed_to(entry, renames=None):
    """The entry `entry`'s calls are forwarded under by an event-names rename (itself when none)."""
    found = (store.renames() if renames is None else renames).get(entry.key)
    if found is None:
        return entry
    return EventName.objects.filter(key=key_of(found.to)).first() or entry


def release(entry):
    """Try the name's held deliveries again now (they hold again if it still has no slot)."""
    return reopen(entry.key, [State.HELD], Trigger.RELEASE)


def release_held():
    """While slots are free, give them to held names, oldest first seen first, and send their
    deliveries in order. Returns the names released."""
    released, renames = [], store.renames()
    for entry in EventName.objects.filter(held_count__gt=0, status=NameStatus.ACTIVE).order_by("first_seen_at", "pk"):
        target = renamed_to(entry, renames)
        if target.slot_used_at is None and not take_slot(target):
            break
        reopen(entry.key, [State.HELD], Trigger.RELEASE)
        released.append(entry.name)
    return released


def reopen(event_key, states, trigger):
    """Move a name's deliveries in `states` back to pending, in order received, and enqueue them."""

    deliveries = Delivery.objects.filter(event_key=event_key, state__in=states).order_by("created_at", "pk")
    pks = list(deliveries.values_list("pk", flat=True))
    return queue.reopen(pks, trigger)


def archive_candidates(now=None):
    """Active names not seen for 30 days."""
    now = now or timezone.now()
    return EventName.objects.filter(status=NameStatus.ACTIVE, last_seen_at__lt=now - ARCHIVE_CANDIDATE_AFTER)
