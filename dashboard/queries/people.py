"""Who a search names, and a person's history of calls with their Intercom ids."""

from dataclasses import dataclass, field

from django.db.models import Q

from dashboard.queries import links
from dashboard.queries.cursors import encode_cursor, positioned
from dashboard.queries.log import Row, distinct
from forwarding.models import Call, CallType, Delivery, State

HISTORY_SIZE = 100


@dataclass
class Person:
    """Who a search found: a userId, or an anonymousId no identify has linked to a user."""

    user_id: str = ""
    anonymous_id: str = ""
    found_by: str = ""  # "userId", "email" or "anonymousId"

    @property
    def label(self):
        return self.user_id or self.anonymous_id


def find_people(text, limit=10):
    """The people an exact userId, email or anonymousId names (an email may name several users)."""
    if Delivery.objects.filter(user_id=text).exists():
        return [Person(user_id=text, found_by="userId")]
    by_email = distinct(Call.objects.filter(email=text).exclude(user_id=""), "user_id", limit)
    if by_email:
        return [Person(user_id=user_id, found_by="email") for user_id in by_email]
    linked = distinct(Call.objects.filter(anonymous_id=text).exclude(user_id=""), "user_id", limit)
    if linked:
        return [Person(user_id=user_id, found_by="anonymousId") for user_id in linked]
    if Call.objects.filter(anonymous_id=text).exists():
        return [Person(anonymous_id=text, found_by="anonymousId")]
    return []


RECENT_USERS_SCAN = 500  # newest calls read to find recent users: bounded whatever the table's size


def recent_users(limit=10):
    """The userIds of the newest calls (up to `limit`, newest first): a hint of who is there."""
    found = []
    recent = Call.objects.exclude(user_id="").order_by("-received_at", "-id").values_list("user_id", flat=True)
    for user_id in recent[:RECENT_USERS_SCAN]:
        if user_id not in found:
            found.append(user_id)
            if len(found) == limit:
                break
    return found


@dataclass
class History:
    person: Person
    rows: list  # oldest first
    earlier: str | None = None  # cursor: older calls than these
    later: str | None = None  # cursor: newer calls than these
    contact_id: str = ""
    companies: list = field(default_factory=list)  # (group_id, Intercom company id or "")
    anonymous_ids: list = field(default_factory=list)
    emails: list = field(default_factory=list)
    failed: int = 0


def user_history(person, workspace, cursor="", newer=False, size=HISTORY_SIZE):
    """A person's calls in the order received: the newest `size` (or those around `cursor`), with
    their Intercom contact and companies as cached for `workspace` (workspace.shown())."""
    history = History(person, [])
    if person.user_id:
        identities = list(
            Call.objects.filter(user_id=person.user_id, type=CallType.IDENTIFY)
            .order_by()
            .values_list("anonymous_id", "email")
            .distinct()[:50]
        )
        history.anonymous_ids = sorted({anon for anon, _ in identities if anon})[:20]
        history.emails = sorted({email for _, email in identities if email})[:5]
        # Anonymous calls are the user's once attributed; those still unattributed are included
        # when an identify of this user carried their anonymousId.
        condition = Q(user_id=person.user_id)
        if history.anonymous_ids:
            condition |= Q(anonymous_id__in=history.anonymous_ids, user_id="")
    else:
        condition = Q(anonymous_id=person.anonymous_id)
    queryset = Delivery.objects.filter(condition).select_related("call")
    queryset, order, position, newer = positioned(queryset, "created_at", cursor, newer)
    found = list(queryset.order_by(*order)[: size + 1])
    more = len(found) > size
    found = found[:size]
    if not newer:
        found.reverse()  # shown oldest first
    history.rows = [Row(delivery.call, delivery) for delivery in found]
    if found:
        first, last = found[0], found[-1]
        if (not newer and more) or (newer and position is not None):
            history.earlier = encode_cursor(first.created_at, first.pk)
        if (newer and more) or (not newer and position is not None):
            history.later = encode_cursor(last.created_at, last.pk)
    if person.user_id:
        history.contact_id = links.contact_id(workspace, person.user_id)
        group_ids = distinct(Call.objects.filter(user_id=person.user_id, type=CallType.GROUP), "group_id", 50)
        companies = links.company_ids(workspace, group_ids)
        history.companies = [(group_id, companies.get(group_id, "")) for group_id in sorted(group_ids)]
        history.failed = Delivery.objects.filter(user_id=person.user_id, state=State.FAILED).count()
    return history
