"""The custom data attributes of the shown workspace (docs/fidelity.md) and the operators' actions
on them (forwarding.delivery.attributes' verbs; the rules and words of the data-attributes page)."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from dashboard.api.base import ApiView, Conflict, Error, Text, describe, invalid, log_action, names
from dashboard.api.paging import KEYSET_AFTER, LIMIT, keyset, page
from dashboard.api.serializers import AttributeOut
from dashboard.views.attributes import ALIAS_MAX, alias_problem, label
from forwarding.delivery import attributes, workspace
from forwarding.models import DataAttribute

AttributePage = page("AttributePage", AttributeOut)
CONFLICT = OpenApiResponse(Error, "Nothing to do: it is not refused, or already (not) ignored.")


def row_of(pk):
    """The attribute row `pk` of the shown workspace (404 for any other)."""
    row = DataAttribute.objects.filter(pk=pk, workspace=workspace.shown()).first()
    if row is None:
        raise exceptions.NotFound(f"There is no data attribute {pk} in this workspace.")
    return row


def answer(row, done):
    row.refresh_from_db()
    return Response({"attribute": AttributeOut(row).data, "message": f"{done}."})


class ActionOut(serializers.Serializer):
    attribute = AttributeOut()
    message = serializers.CharField()


PARAMETERS = [
    OpenApiParameter("model", str, enum=["", *DataAttribute.Model.values], description="contact or company."),
    KEYSET_AFTER,
    LIMIT,
]


class Attributes(ApiView):
    query_names = names(PARAMETERS)

    @describe(
        summary="The shown workspace's custom data attributes, by id", parameters=PARAMETERS, responses=AttributePage
    )
    def get(self, request):
        rows = DataAttribute.objects.filter(workspace=workspace.shown())
        model = request.query_params.get("model", "")
        if model:
            if model not in DataAttribute.Model.values:
                raise invalid(f"model: {model[:30]!r} is not contact or company")
            rows = rows.filter(model=model)
        found, cursor = keyset(rows, ["id"], request)
        return Response({"results": AttributeOut(found, many=True).data, "next": cursor})


class Retry(ApiView):
    @describe(
        summary="Create a refused attribute again at its next write",
        request=None,
        responses={200: ActionOut, 409: CONFLICT},
    )
    def post(self, request, pk):
        row = row_of(pk)
        if not row.refusal:
            raise Conflict(f"The {label(row)} is not refused.", "not_refused")
        attributes.retry(row)
        was = row.reason or row.get_refusal_display().lower()
        done = f"Retrying the {label(row)} (refused: {was})"
        log_action(request, row, done)
        return answer(row, done)


class Ignore(ApiView):
    @describe(
        summary="Drop the trait's values without a warning", request=None, responses={200: ActionOut, 409: CONFLICT}
    )
    def post(self, request, pk):
        row = row_of(pk)
        if row.ignored:
            raise Conflict(f"The {label(row)} is already ignored.", "already_ignored")
        attributes.ignore(row)
        done = f"Ignoring the {label(row)}: its values are dropped without a warning"
        log_action(request, row, done)
        return answer(row, done)


class Unignore(ApiView):
    @describe(summary="Send the trait's values again", request=None, responses={200: ActionOut, 409: CONFLICT})
    def post(self, request, pk):
        row = row_of(pk)
        if not row.ignored:
            raise Conflict(f"The {label(row)} is not ignored.", "not_ignored")
        attributes.ignore(row, ignored=False)
        done = f"Stopped ignoring the {label(row)}: its values are sent again"
        log_action(request, row, done)
        return answer(row, done)


class AliasIn(serializers.Serializer):
    alias = Text(
        max_length=ALIAS_MAX * 2,
        allow_blank=True,
        help_text="The attribute name to write the trait under from now on (its own name: no alias).",
    )


class Alias(ApiView):
    @describe(summary="Write the trait under another attribute name", request=AliasIn, responses=ActionOut)
    def post(self, request, pk):
        row = row_of(pk)
        alias = self.read(AliasIn)["alias"].strip()
        problem = alias_problem(alias)
        if problem:
            raise invalid(f"alias: {problem}")
        attributes.set_alias(row, alias)
        if alias == row.name:
            done = f"The {label(row)} is written under its own name again"
        else:
            done = f"The {label(row)} is written as '{alias}'"
        if row.alias and row.alias != alias:
            done += f" (was '{row.alias}')"
        log_action(request, row, done)
        return answer(row, done)
