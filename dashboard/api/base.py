"""What every operator API view shares: token authentication, roles, the per-token rate limit,
JSON in and out, errors as {code, message, problems}, the OpenAPI description of the errors, and
the admin log."""

from django.contrib.admin.models import CHANGE
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView, exception_handler

from dashboard.api.auth import ApiTokenAuthentication, Role
from dashboard.api.throttles import TokenRateThrottle
from dashboard.views.common import audit

ERRORS = {
    "400": "Bad input: the message says what, `problems` lists each problem.",
    "401": "No token, a malformed Authorization header, or an unknown or revoked token (or its user is no "
    "longer active staff).",
    "403": "The token's user lacks the role: reading needs Viewers, actions need Operators (forwarding.operate).",
    "404": "No such object.",
    "429": "Over this token's rate limit (RELAY_API_RATE); wait Retry-After seconds.",
}


class Error(serializers.Serializer):
    """Every error answer."""

    code = serializers.CharField(help_text="A short machine-readable code, e.g. not_found, invalid, conflict.")
    message = serializers.CharField(help_text="What went wrong, for a person.")
    problems = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Each problem of the input, when it was invalid."
    )


class Conflict(exceptions.APIException):
    """409: the object is in a state that does not allow the action (in flight, already archived…)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object's current state does not allow this."
    default_code = "conflict"


def invalid(*problems):
    """A 400 listing `problems`."""
    return exceptions.ValidationError(list(problems))


def flatten(detail, prefix=""):
    """DRF's error detail (str, list or dict, nested) as lines "field: message"."""
    if isinstance(detail, dict):
        return [line for key, value in detail.items() for line in flatten(value, f"{prefix}{key}: ")]
    if isinstance(detail, list):
        return [line for value in detail for line in flatten(value, prefix)]
    return [f"{prefix}{detail}"]


def handle_exception(exc, context):
    """DRF's handler (headers such as Retry-After and WWW-Authenticate included), with the body
    as {code, message, problems}. Anything else is left to raise (a bug: 500)."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError) or isinstance(detail, list | dict):
        problems = flatten(detail)
        body = {"code": "invalid", "message": "; ".join(problems) or "Invalid input.", "problems": problems}
    else:
        body = {"code": getattr(detail, "code", None) or exc.default_code, "message": str(detail)}
    response.data = body
    return response


@csrf_exempt
def not_found(request, *args, **kwargs):
    """Any other path under /api/v1/: a JSON 404, as the API's own."""
    return JsonResponse({"code": "not_found", "message": "No such API route."}, status=404)


ID = OpenApiParameter(
    "id", {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}, OpenApiParameter.PATH, description="Its id."
)


class ApiSchema(AutoSchema):
    """Every operation also documents the errors every view can answer (400, 401, 403, 429; 404
    when its path has an id), each with the Error body; 429 with its Retry-After header."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "429"] + (["404"] if "{" in self.path else [])
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(OpenApiResponse(Error, ERRORS[code]), code)
        retry_after = {"schema": {"type": "integer"}, "required": True, "description": "Seconds to wait."}
        responses["429"]["headers"] = {"Retry-After": retry_after}
        return dict(sorted(responses.items()))

    def get_override_parameters(self):
        found = super().get_override_parameters()
        if "{id}" in self.path:
            found = [*found, ID]
        return found

    def get_description(self):
        # The view's own docstring only (ApiView's describes no operation).
        return type(self.view).__dict__.get("__doc__") or ""

    def get_operation_id(self):
        # get_calls, get_calls_id, post_calls_id_resend: one per route and method.
        parts = [part.strip("{}").replace("-", "_") for part in self.path.split("/") if part][2:]
        return "_".join([self.method.lower(), *parts])

    def get_tags(self):
        parts = [part for part in self.path.split("/") if part and not part.startswith("{")]
        return [parts[2] if len(parts) > 2 else "api"]


def names(parameters):
    """The names of OpenAPI parameters, for ApiView.query_names."""
    return frozenset(parameter.name for parameter in parameters)


def describe(**kwargs):
    """drf-spectacular's @extend_schema for a view method, on ApiSchema. (Given a method, it builds
    on REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS, which the settings leave as DRF's own; a `schema`
    attribute on the method is what it takes instead.)"""

    def decorator(method):
        method.schema = ApiSchema
        return extend_schema(**kwargs)(method)

    return decorator


class Parser(JSONParser):
    """JSON bodies; one nested too deeply for Python's parser is a 400 too, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from None


class ApiView(APIView):
    """A view of the operator API. Reads need a Viewer's token, anything else an Operator's."""

    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [Role]
    throttle_classes = [TokenRateThrottle]
    parser_classes = [Parser]
    renderer_classes = [JSONRenderer]
    schema = ApiSchema()
    # The query parameters its GET takes; any other (a typo such as ?stat=failed) is a 400 rather than
    # silently no filter. Other methods take none.
    query_names = frozenset()

    def get_exception_handler(self):
        return handle_exception

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not hasattr(self, request.method.lower()):
            return  # a method it does not take: 405
        known = self.query_names if request.method in ("GET", "HEAD") else frozenset()
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            listed = ", ".join(repr(name[:40]) for name in unknown[:5])
            expected = f" (known: {', '.join(sorted(known))})" if known else ""
            raise invalid(f"unknown query parameter {listed}{expected}")

    def read(self, serializer_class):
        """The request body, validated by `serializer_class` (400 listing the problems)."""
        data = self.request.data
        if not isinstance(data, dict):
            raise invalid("The body must be a JSON object.")
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def log_action(request, obj, message, flag=CHANGE):
    """The admin log's entry for an action, as the dashboard writes it, saying which token did it."""
    token = request.auth
    audit(request, obj, f"{message.rstrip('.')} (through the API, token {token.prefix}…).", flag=flag)


class Text(serializers.CharField):
    """Text from a JSON body, only text (DRF's CharField takes numbers too): no NUL (DRF refuses it
    already) and no lone surrogate, which no database column can hold. Not trimmed here, so that
    its length is checked as sent: the view strips it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        value = super().to_internal_value(data)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise serializers.ValidationError("contains a lone surrogate (invalid Unicode)") from None
        return value


class StrictBoolean(serializers.BooleanField):
    """true or false only (DRF's BooleanField also takes "yes", 1, "on"…)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data
