"""The event-name registry and the operators' actions on it (forwarding.event_names' verbs, written
to the admin log as the event-names page does)."""

from django.contrib.admin.models import ADDITION
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from dashboard.api.base import ApiView, Conflict, Error, StrictBoolean, Text, describe, invalid, log_action, names
from dashboard.api.paging import KEYSET_AFTER, LIMIT, keyset, page
from dashboard.api.serializers import EventNameOut
from dashboard.views.event_names import INTERCOM_ARCHIVE_REMINDER, archive, plural, unarchive
from forwarding import event_names
from forwarding.models import EventName, NameStatus
from forwarding.transformations import store

NAME_MAX = EventName._meta.get_field("name").max_length
EventNamePage = page("EventNamePage", EventNameOut)


def out(entry, renames=None):
    entry.refresh_from_db()
    return EventNameOut(entry, context={"renames": store.renames() if renames is None else renames}).data


def entry_of(pk):
    entry = EventName.objects.filter(pk=pk).first()
    if entry is None:
        raise exceptions.NotFound(f"There is no event name {pk}.")
    return entry


def text_param(request, name, limit=255):
    value = request.query_params.get(name, "")
    if len(value) > limit or "\x00" in value:
        raise invalid(f"{name}: at most {limit} characters, no NUL")
    return value.strip()


PARAMETERS = [
    OpenApiParameter("status", str, enum=["", *NameStatus.values], description="active or archived."),
    OpenApiParameter("q", {"type": "string", "maxLength": 255}, description="Part of the name (any case)."),
    KEYSET_AFTER,
    LIMIT,
]


class EventNames(ApiView):
    query_names = names(PARAMETERS)

    @describe(summary="The event-name registry, by id", parameters=PARAMETERS, responses=EventNamePage)
    def get(self, request):
        names = EventName.objects.all()
        state = request.query_params.get("status", "")
        if state:
            if state not in NameStatus.values:
                raise invalid(f"status: {state[:30]!r} is not active or archived")
            names = names.filter(status=state)
        query = text_param(request, "q")
        if query:
            names = names.filter(key__contains=event_names.key_of(query))
        rows, cursor = keyset(names, ["id"], request)
        context = {"renames": store.renames()}
        return Response({"results": EventNameOut(rows, many=True, context=context).data, "next": cursor})


class ArchiveOut(serializers.Serializer):
    event_name = EventNameOut()
    released = serializers.ListField(child=serializers.CharField(), help_text="Held names that got its slot.")
    reminder = serializers.CharField()


class UnarchiveOut(serializers.Serializer):
    event_name = EventNameOut()
    resent = serializers.IntegerField(help_text="Its suppressed calls tried again.")
    held = serializers.BooleanField(help_text="No slot is free: its calls are held until one frees.")


class RenameIn(serializers.Serializer):
    new_name = Text(max_length=NAME_MAX, help_text="An existing or a new name.")
    resend = StrictBoolean(default=False, help_text="Also resend its held and failed calls under the new name.")


class RenameOut(serializers.Serializer):
    event_name = EventNameOut()
    target = EventNameOut(help_text="The name its calls are forwarded as from now on.")
    resent = serializers.IntegerField()


class ReleaseOut(serializers.Serializer):
    event_name = EventNameOut()
    released = serializers.IntegerField(help_text="Held calls tried again now.")


CONFLICT = OpenApiResponse(Error, "Nothing to do: it is already in that state.")


class Archive(ApiView):
    @describe(summary="Archive a name (its slot frees)", request=None, responses={200: ArchiveOut, 409: CONFLICT})
    def post(self, request, pk):
        entry = entry_of(pk)
        if entry.status == NameStatus.ARCHIVED:
            raise Conflict(f"'{entry.name}' is already archived.", "already_archived")
        released, done = archive(entry)
        log_action(request, entry, done)
        return Response({"event_name": out(entry), "released": released, "reminder": INTERCOM_ARCHIVE_REMINDER})


class Unarchive(ApiView):
    @describe(summary="Make a name active again", request=None, responses={200: UnarchiveOut, 409: CONFLICT})
    def post(self, request, pk):
        entry = entry_of(pk)
        if entry.status == NameStatus.ACTIVE:
            raise Conflict(f"'{entry.name}' is not archived.", "not_archived")
        moved, done = unarchive(entry)
        log_action(request, entry, done)
        entry.refresh_from_db()
        held = entry.slot_used_at is None and event_names.usage().full
        return Response({"event_name": out(entry), "resent": moved, "held": held})


class Rename(ApiView):
    @describe(
        summary="Forward a name's calls under another name from now on",
        request=RenameIn,
        responses={200: RenameOut},
    )
    def post(self, request, pk):
        entry = entry_of(pk)
        given = self.read(RenameIn)
        new_name = given["new_name"].strip()
        if not new_name:
            raise invalid("new_name: cannot be blank")
        existed = EventName.objects.filter(key=event_names.key_of(new_name)).exists()
        try:
            target, moved = event_names.rename(entry, new_name, resend_held_and_failed=given["resend"], by=request.user)
        except ValueError as error:
            raise invalid(f"Cannot rename '{entry.name}': {error}") from None
        done = f"Renamed '{entry.name}' to '{target.name}'"
        if given["resend"]:
            done += f"; resent {plural(moved, 'held or failed call')} under '{target.name}'"
        if not existed:
            log_action(request, target, f"Added as the new name of '{entry.name}'", flag=ADDITION)
        log_action(request, entry, done)
        renames = store.renames()
        return Response({"event_name": out(entry, renames), "target": out(target, renames), "resent": moved})


class Release(ApiView):
    @describe(summary="Try a name's held calls again now", request=None, responses=ReleaseOut)
    def post(self, request, pk):
        entry = entry_of(pk)
        moved = event_names.release(entry)
        log_action(request, entry, f"Released {plural(moved, 'held call')} of '{entry.name}'")
        return Response({"event_name": out(entry), "released": moved})
