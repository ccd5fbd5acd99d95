"""Request validation against Intercom's official OpenAPI description (v2.16, `forwarding/openapi/`).

Every request the sandbox receives is matched to an operation of `api.intercom.io.yaml`, then its
path, query and header parameters, its Content-Type and its JSON body are checked against what
that operation declares. Each problem is a violation: a short message naming the parameter or the
body location (`$.metadata.plan`) and what is wrong.

Checked more strictly than OpenAPI 3.0 requires, so that a typo in a request fails a test:
- an object schema that lists `properties` and says nothing about `additionalProperties` is
  closed: a body field the description does not name is a violation (Intercom itself answers
  unknown fields with 400 "bad 'test' parameter" on some endpoints);
- a query parameter the operation does not declare is a violation;
- a body sent to an operation that declares none is a violation.

Not checked: `format` (an annotation here: the description puts `date-time` on Unix-second
integers and `uuid` on 24-hex ids), `readOnly`, and `security` (the sandbox's own bearer check
answers 401 before anything else).

Relaxed, exactly two schemas (docs/architecture.md, "Intercom's description"). The description
types both as maps of strings, which contradicts Intercom's documentation in the same file:
- `create_data_event_request.metadata` values may also be numbers, booleans, monetary amounts
  `{"amount": <integer >= 0, cents>, "currency": <string>}` and rich links
  `{"url": <string>, "value": <string>}` (the metadata types table of `POST /events`);
- `create_or_update_company_request.custom_attributes` values may also be numbers and booleans
  (the property's own example has `paid_subscriber: true`, `monthly_spend: 155.5`).
Null stays refused in both: Intercom documents no null there, and a strict sandbox never lets
through a request the real API might reject.

One body is told apart by its keys, not by `oneOf`: `POST /tags` lists four request shapes whose
branches overlap (a body tagging companies is also a valid untag body, `untag` being optional, and
the open create branch accepts anything with a `name`), so `oneOf` refuses every body that tags
something. Intercom reads the keys: `users` tags contacts, `companies` tags companies (untags them
when an item says `untag`), else the tag is created or renamed. The sandbox picks that one branch
(`BRANCHES`) and checks the body against it, closed.

How: the YAML is parsed once with libyaml and cached as JSON in the temp directory, keyed by the
file's SHA-256 (about 0.5 s the first time, 20 ms after). An operation's schemas are converted to
JSON Schema 2020-12 (`nullable` becomes a `null` type, closed objects get
`unevaluatedProperties: false`, which sees through `allOf`/`anyOf`/`oneOf` and `$ref`) and
compiled with jsonschema the first time the operation is requested.
"""

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, unquote

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi" / "api.intercom.io.yaml"
CACHE_FORMAT = 1  # bump when the cached document's shape changes
MAX_MESSAGES = 10
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
COMPONENT_PREFIX = "#/components/schemas/"

# The two relaxations (docs/architecture.md, "Intercom's description"), written as OpenAPI 3.0
# schemas and converted like the rest.
SCALAR_VALUES = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
EVENT_METADATA_VALUE = {
    "anyOf": [
        *SCALAR_VALUES,
        {
            "type": "object",
            "required": ["amount", "currency"],
            "properties": {"amount": {"type": "integer", "minimum": 0}, "currency": {"type": "string"}},
        },
        {
            "type": "object",
            "required": ["url", "value"],
            "properties": {"url": {"type": "string"}, "value": {"type": "string"}},
        },
    ]
}
COMPANY_ATTRIBUTE_VALUE = {"anyOf": SCALAR_VALUES}
RELAXATIONS = {
    ("create_data_event_request", "metadata"): EVENT_METADATA_VALUE,
    ("create_or_update_company_request", "custom_attributes"): COMPANY_ATTRIBUTE_VALUE,
}


def _tag_branch(body):
    """The one POST /tags request shape a body is, read from its keys as Intercom reads them."""
    if "users" in body:
        return "tag_multiple_users_request"
    if "companies" in body:
        items = body["companies"] if isinstance(body["companies"], list) else []
        untag = any(isinstance(item, dict) and "untag" in item for item in items)
        return "untag_company_request" if untag else "tag_company_request"
    return "create_or_update_tag_request"


# operationId -> function(parsed JSON object body) -> the component its body is checked against.
BRANCHES = {"createTag": _tag_branch}

# JSON Schema keywords that mean the same in OpenAPI 3.0 and 2020-12; other keys are annotations.
KEPT_KEYWORDS = frozenset(
    "type enum required minimum maximum minLength maxLength pattern minItems maxItems uniqueItems "
    "multipleOf minProperties maxProperties".split()
)
COMPOSITIONS = ("allOf", "anyOf", "oneOf")


def load_description(path=SPEC_PATH):
    """The OpenAPI document as plain JSON data, parsed once per file content and cached on disk."""
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    cache = Path(tempfile.gettempdir()) / f"intercom-relay-openapi-{digest[:24]}-v{CACHE_FORMAT}.json"
    try:
        return json.loads(cache.read_bytes())
    except (OSError, ValueError):
        pass
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    # Through JSON, so a fresh parse and a cached one are the same data (YAML dates become strings).
    document = json.loads(json.dumps(yaml.load(raw, Loader=loader), default=str))
    partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(json.dumps(document))
        os.replace(partial, cache)
    except OSError:
        pass  # a read-only temp dir only costs the parse next time
    return document


def relax(document):
    """Apply the two relaxations to the document's component schemas (in place)."""
    schemas = document["components"]["schemas"]
    for (component, prop), value_schema in RELAXATIONS.items():
        target = schemas[component]["properties"][prop]
        # Fail loudly if a new description moved things: the relaxation must not silently vanish.
        if target.get("additionalProperties") != {"type": "string"}:
            raise ValueError(f"{component}.{prop} is no longer a map of strings; review RELAXATIONS")
        target["additionalProperties"] = value_schema
    return document


@dataclass
class Checked:
    """What validation learned about one request."""

    operation_id: str | None = None
    template: str | None = None
    path_params: dict = field(default_factory=dict)
    query: dict = field(default_factory=dict)
    body: object = None
    violations: list = field(default_factory=list)
    unknown_operation: bool = False


class SchemaConverter:
    """OpenAPI 3.0 component schemas converted to JSON Schema 2020-12 on demand.

    `closed=False` leaves every object open, as OpenAPI itself does (for checking responses,
    where Intercom sends more than the description lists)."""

    def __init__(self, components, closed=True):
        self.components = components
        self.closed = closed
        self._converted = {}
        self._objecty = {}

    def convert(self, schema, refs, close=True):
        """`schema` in 2020-12, recording component names it refers to in `refs`."""
        if not isinstance(schema, dict):
            return schema
        if "$ref" in schema:
            # OpenAPI 3.0 ignores siblings of $ref, so they are dropped here too.
            name = component_name(schema["$ref"])
            refs.add(name)
            out = {"$ref": "#/$defs/" + name}
            if close and self.closed and self.component_is_objecty(name):
                out["unevaluatedProperties"] = False
            return out
        out = {}
        for key, value in schema.items():
            if key in KEPT_KEYWORDS:
                out[key] = value
            elif key == "properties":
                out[key] = {name: self.convert(sub, refs) for name, sub in value.items()}
            elif key in ("items", "not"):
                out[key] = self.convert(value, refs)
            elif key == "additionalProperties":
                out[key] = value if isinstance(value, bool) else self.convert(value, refs)
            elif key in COMPOSITIONS:
                # Branches stay open: the schema that composes them closes over all of them.
                out[key] = [self.convert(branch, refs, close=False) for branch in value]
        if close and self.closed and self.is_objecty(schema):
            out["unevaluatedProperties"] = False
        if schema.get("nullable") is True:
            out = with_null(out)
        return out

    def is_objecty(self, schema, seen=frozenset()):
        """True when `schema` describes an object by listing its properties, without an explicit
        additionalProperties: the kind this validator closes."""
        if not isinstance(schema, dict):
            return False
        if "$ref" in schema:
            return self.component_is_objecty(component_name(schema["$ref"]), seen)
        if "additionalProperties" in schema:
            return False
        if "properties" in schema:
            return True
        return any(self.is_objecty(branch, seen) for key in COMPOSITIONS for branch in schema.get(key, ()))

    def component_is_objecty(self, name, seen=frozenset()):
        if name not in self._objecty:
            if name in seen:
                return False  # a cycle adds nothing the first visit did not see
            self._objecty[name] = self.is_objecty(self.components[name], seen | {name})
        return self._objecty[name]

    def component(self, name):
        """(converted schema, names it refers to) for one component, memoized."""
        if name not in self._converted:
            refs = set()
            self._converted[name] = (self.convert(self.components[name], refs, close=False), refs)
        return self._converted[name]

    def definitions(self, names):
        """`$defs` holding every component reachable from `names`."""
        defs, todo = {}, list(names)
        while todo:
            name = todo.pop()
            if name not in defs:
                schema, refs = self.component(name)
                defs[name] = schema
                todo.extend(refs - defs.keys())
        return defs

    def validator(self, schema):
        """A compiled jsonschema validator for an OpenAPI schema, and the 2020-12 schema it checks."""
        refs = set()
        converted = self.convert(schema, refs)
        root = {**converted, "$defs": self.definitions(refs)} if refs else converted
        return Draft202012Validator(root), root


def component_name(ref):
    if not ref.startswith(COMPONENT_PREFIX):
        raise ValueError(f"unsupported $ref {ref!r}")
    return ref[len(COMPONENT_PREFIX) :]


def with_null(schema):
    """`schema` that also accepts null (OpenAPI 3.0 `nullable: true`)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        schema = {**schema, "type": [kind, "null"]}
    if "enum" in schema and None not in schema["enum"]:
        schema = {**schema, "enum": [*schema["enum"], None]}
    if kind is None and any(key in schema for key in COMPOSITIONS):
        schema = {"anyOf": [{"type": "null"}, schema]}
    return schema


@dataclass
class Parameter:
    name: str
    location: str  # path, query or header
    required: bool
    validator: Draft202012Validator
    schema: dict  # the converted 2020-12 root, for coercing strings to the declared type
    explode: bool
    object_form: bool  # an exploded object: its properties arrive as separate query keys


@dataclass
class Operation:
    """One method on one path template, compiled on first use."""

    method: str
    template: str
    operation_id: str
    spec: dict
    path_level_parameters: list
    _compiled: tuple | None = None


class OpenAPIValidator:
    """Matches requests to operations of the description and lists what they violate."""

    def __init__(self, document):
        self.document = document
        self.converter = SchemaConverter(document["components"]["schemas"])
        self._lock = threading.Lock()
        self._branches = {}  # component name -> compiled validator, for BRANCHES
        self._templates = {}  # segment count -> [(segments, {method: Operation})], literal-first
        for template, item in document["paths"].items():
            segments = tuple(
                (None, part[1:-1]) if part.startswith("{") and part.endswith("}") else (part, None)
                for part in template.split("/")[1:]
            )
            operations = {
                method.upper(): Operation(
                    method.upper(), template, spec.get("operationId", ""), spec, item.get("parameters", [])
                )
                for method, spec in item.items()
                if method in HTTP_METHODS
            }
            self._templates.setdefault(len(segments), []).append((segments, operations))
        for candidates in self._templates.values():
            # OpenAPI: a concrete path wins over a templated one (/contacts/search vs /contacts/{id}).
            candidates.sort(key=lambda entry: [literal is None for literal, _ in entry[0]])

    @classmethod
    @lru_cache(maxsize=1)
    def default(cls):
        """The validator for the bundled description, relaxed, shared by every sandbox in the process."""
        return cls(relax(load_description()))

    def match(self, method, path):
        """(operation, path parameters) for a request, or (None, reason)."""
        parts = path.split("/")[1:] if path.startswith("/") else None
        if not parts:
            return None, f"no path in the description matches {path}"
        path_matched = False
        for segments, operations in self._templates.get(len(parts), ()):
            params = {}
            for (literal, name), part in zip(segments, parts, strict=True):
                if literal is not None:
                    if unquote(part) != literal:
                        break
                elif part:
                    params[name] = unquote(part)
                else:
                    break
            else:
                path_matched = True
                if method in operations:
                    return operations[method], params
        if path_matched:
            return None, f"{method} is not an operation of {path} in the description"
        return None, f"no path in the description matches {path}"

    def check(self, method, path, query_string, headers, body, validate=True):
        """Match and (unless `validate` is false) validate one request.

        `headers` has lower-cased names; `body` is the raw bytes. The parsed JSON body comes back
        in `Checked.body` either way, so handlers never parse twice.
        """
        checked = Checked()
        operation, found = self.match(method, path)
        query = parse_qs(query_string, keep_blank_values=True)
        if operation is None:
            checked.unknown_operation = True
            checked.violations.append(found)
            checked.query = {name: values[-1] for name, values in query.items()}
            checked.body = parse_json(body)[0]
            return checked
        checked.operation_id, checked.template, checked.path_params = operation.operation_id, operation.template, found
        parameters, body_spec = self._compiled(operation)
        problems = checked.violations
        query_left = dict(query)
        for param in parameters:
            if param.location == "path":
                value = coerce(found.get(param.name), param.schema)
                checked.path_params[param.name] = value
                self._check_value(param, value, problems, validate)
            elif param.location == "header":
                if param.name.lower() in headers:
                    self._check_value(param, coerce(headers[param.name.lower()], param.schema), problems, validate)
                elif param.required and validate:
                    problems.append(f"header '{param.name}' is required")
            elif param.location == "query":
                if param.object_form:
                    continue  # takes whatever the other query parameters leave, below
                values = query_left.pop(param.name, None)
                if values is None:
                    if param.required and validate:
                        problems.append(f"query parameter '{param.name}' is required")
                    continue
                value = query_value(values, param)
                checked.query[param.name] = value
                self._check_value(param, value, problems, validate)
        for param in parameters:
            if param.location == "query" and param.object_form:
                value = {
                    name: coerce(values[-1], property_schema(param.schema, name)) for name, values in query_left.items()
                }
                query_left = {}
                checked.query.update(value)
                if value or param.required:
                    self._check_value(param, value, problems, validate)
        for name, values in query_left.items():
            checked.query[name] = values[-1]
            if validate:
                problems.append(f"query parameter '{name}' is not in the description of {operation.operation_id}")
        self._check_body(body_spec, headers, body, checked, validate)
        if not validate:
            checked.violations = []
        return checked

    def _check_body(self, body_spec, headers, body, checked, validate):
        if not body:
            if body_spec and body_spec[0] and validate:
                checked.violations.append("a request body is required")
            return
        parsed, error = parse_json(body)
        checked.body = parsed
        if not validate:
            return
        if body_spec is None:
            checked.violations.append(f"{checked.operation_id} takes no request body")
            return
        required, media = body_spec
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if not content_type:
            checked.violations.append("Content-Type is missing for a request body")
            return
        if content_type not in media:
            checked.violations.append(f"Content-Type {content_type} is not one of {', '.join(sorted(media))}")
            return
        if error:
            checked.violations.append(f"the body is not valid JSON: {error}")
            return
        validator = media[content_type]
        choose = BRANCHES.get(checked.operation_id)
        if choose is not None and isinstance(parsed, dict):
            validator = self._branch(choose(parsed))
        if validator is not None:
            checked.violations.extend(describe(validator, parsed, "body"))

    @staticmethod
    def _check_value(param, value, problems, validate):
        if validate:
            label = (
                f"header '{param.name}'" if param.location == "header" else f"{param.location} parameter '{param.name}'"
            )
            problems.extend(describe(param.validator, value, label))

    def _branch(self, component):
        """The compiled validator of one component schema, closed (for BRANCHES)."""
        with self._lock:
            if component not in self._branches:
                self._branches[component] = self.converter.validator({"$ref": COMPONENT_PREFIX + component})[0]
            return self._branches[component]

    def _compiled(self, operation):
        if operation._compiled is None:
            with self._lock:
                if operation._compiled is None:
                    operation._compiled = self._compile(operation)
        return operation._compiled

    def _compile(self, operation):
        declared = {(p["name"], p["in"]): p for p in operation.path_level_parameters}
        declared.update({(p["name"], p["in"]): p for p in operation.spec.get("parameters", [])})
        parameters = []
        for (name, location), spec in declared.items():
            schema = spec.get("schema", {})
            validator, root = self.converter.validator(schema)
            explode = spec.get("explode", spec.get("style", "form") == "form")
            object_form = location == "query" and explode and "object" in types_of(root)
            required = spec.get("required", False) or location == "path"
            parameters.append(Parameter(name, location, required, validator, root, explode, object_form))
        body_spec = None
        request_body = operation.spec.get("requestBody")
        if request_body:
            media = {}
            for content_type, content in request_body.get("content", {}).items():
                schema = content.get("schema")
                media[content_type.lower()] = self.converter.validator(schema)[0] if schema else None
            body_spec = (bool(request_body.get("required")), media)
        return parameters, body_spec


def parse_json(body):
    """(value, error message) for a raw body; (None, "") when there is none."""
    if not body:
        return None, ""
    try:
        return json.loads(body), ""
    except (ValueError, UnicodeDecodeError) as exc:
        return None, str(exc)


def describe(validator, instance, label):
    """Readable messages for what `instance` violates, the most specific cause of each."""
    messages = []
    for error in validator.iter_errors(instance):
        where, message = explain(error, validator.schema.get("$defs", {}))
        if message:
            messages.append(f"{label} {where}: {message}" if label == "body" else f"{label}: {message}")
        if len(messages) >= MAX_MESSAGES:
            break
    return messages


def explain(error, defs):
    """(JSON path, message) for one error; the message is "" when it only echoes another error.

    A branch of anyOf/oneOf that fails evaluates nothing, so `unevaluatedProperties` also
    reports that branch's declared fields as unexpected: only undeclared ones are kept.
    """
    if error.validator == "unevaluatedProperties" and isinstance(error.instance, dict):
        declared = declared_properties(error.schema, defs)
        unknown = [name for name in error.instance if name not in declared]
        if not unknown:
            return error.json_path, ""
        return (
            error.json_path,
            f"{', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not in the description",
        )
    cause = best_match([error])
    if cause.context:
        # No single branch is the best match: say what each alternative wanted.
        reasons = list(dict.fromkeys(sub.message for sub in cause.context))
        return cause.json_path, f"{cause.message} ({'; '.join(reasons[:6])})"
    return cause.json_path, cause.message


def declared_properties(schema, defs, seen=None):
    """Every property name a converted schema declares, through $ref and compositions."""
    seen = set() if seen is None else seen
    if not isinstance(schema, dict) or id(schema) in seen:
        return set()
    seen.add(id(schema))
    names = set(schema.get("properties", ()))
    if "$ref" in schema:
        names |= declared_properties(defs.get(schema["$ref"].rsplit("/", 1)[-1]), defs, seen)
    for key in COMPOSITIONS:
        for branch in schema.get(key, ()):
            names |= declared_properties(branch, defs, seen)
    return names


def query_value(values, param):
    """A query parameter's value, shaped and typed as its schema declares."""
    schema = param.schema
    if "array" in types_of(schema):
        items = values if param.explode else [part for value in values for part in value.split(",")]
        return [coerce(item, schema.get("items", {})) for item in items]
    return coerce(values[-1], schema)


def types_of(schema, defs=None):
    """The JSON types a converted schema admits, looking through $ref and compositions."""
    if not isinstance(schema, dict):
        return set()
    defs = schema.get("$defs", defs) or {}
    if "$ref" in schema:
        return types_of(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    kind = schema.get("type")
    kinds = {kind} if isinstance(kind, str) else set(kind or ())
    for key in COMPOSITIONS:
        for branch in schema.get(key, ()):
            kinds |= types_of(branch, defs)
    return kinds


def property_schema(schema, name):
    """The schema of property `name` anywhere in an object schema's compositions."""
    stack = [schema]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            if name in current.get("properties", {}):
                return current["properties"][name]
            for key in COMPOSITIONS:
                stack.extend(current.get(key, ()))
    return {}


def coerce(value, schema):
    """A string from a URL or header, converted to the type its schema declares when it parses."""
    if not isinstance(value, str):
        return value
    kinds = types_of(schema)
    if "integer" in kinds:
        try:
            return int(value)
        except ValueError:
            pass
    if "number" in kinds:
        try:
            return float(value)
        except ValueError:
            pass
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    return value
