"""The sandbox's own HTTP API under `/_sandbox/`, for users in another process (make run,
benchmarks, e2e tests). It is not Intercom's API: no OpenAPI validation, no bearer token.

    GET  /_sandbox/health                         {"ok": true}
    GET  /_sandbox/state[?requests=N]             Sandbox.snapshot(): workspace id_code, settings,
                                                  counters, contacts, companies, attachments,
                                                  events, event names, data attributes,
                                                  violations (+ last N requests)
    GET  /_sandbox/requests[?limit=N&method=M&path=/prefix]   the request log, oldest first
    GET  /_sandbox/violations                     requests the OpenAPI description does not allow
    GET  /_sandbox/config                         the settings
    POST /_sandbox/config   {"error_rate": 0.2, "rate_limit": 100, "refuse_token": true, ...,
                             "fail_next": {"count": 3, "status": 503},
                             "prefill_event_names": ["a", "b"], "archive_event_names": ["a"]}
    POST /_sandbox/fail     {"count": 3, "status": 503, "method": "POST", "path": "/events"}
    POST /_sandbox/reset    {"config": false}     a new, empty workspace and logs (config: also settings)
    POST /_sandbox/archive_data_attribute  {"name": "plan", "model": "contact"}
                                                  archive a custom attribute, as an operator can
                                                  in Intercom's UI; answers the attribute
    POST /_sandbox/delete_contact  {"external_id": "u1"}
                                                  delete a contact (archived too) with its events
                                                  and company links, as an operator can in
                                                  Intercom's UI; its id goes stale

Errors answer 400/404/405 with {"error": "..."} (404 also when the named attribute or contact
does not exist).
"""

import json
from urllib.parse import parse_qs

from forwarding.sandbox.answers import Answer


class NotFound(Exception):
    """The request names an attribute or contact the workspace does not have: 404."""


def handle(sandbox, method, path, query_string, body):
    """Answer one control request."""

    query = {name: values[-1] for name, values in parse_qs(query_string).items()}
    action = path.removeprefix("/_sandbox").strip("/")
    route = ROUTES.get((method, action))
    if route is None:
        allowed = sorted(m for m, a in ROUTES if a == action)
        if allowed:
            return Answer.json(
                405, {"error": f"{method} not allowed; use {', '.join(allowed)}"}, {"Allow": ", ".join(allowed)}
            )
        return Answer.json(404, {"error": f"no sandbox control endpoint {path}"})
    try:
        payload = json.loads(body) if body else {}
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object")
        return Answer.json(200, route(sandbox, query, payload))
    except NotFound as exc:
        return Answer.json(404, {"error": str(exc)})
    except (ValueError, TypeError) as exc:
        return Answer.json(400, {"error": str(exc)})


def _int(query, name, default):
    return int(query[name]) if name in query else default


def _text(payload, name, default=None):
    value = payload.get(name, default)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _requests(sandbox, query, payload):
    entries = sandbox.requests_to(query.get("method"), query.get("path"))
    limit = _int(query, "limit", 0)
    return entries[-limit:] if limit else entries


def _reset(sandbox, query, payload):
    sandbox.reset(config=bool(payload.get("config", False)))
    return {"reset": True}


def _fail(sandbox, query, payload):
    sandbox.fail_next(**payload)
    return {"queued_failures": sandbox.faults.queued}


def _archive_data_attribute(sandbox, query, payload):
    name, model = _text(payload, "name"), _text(payload, "model", "contact")
    try:
        return sandbox.state.archive_data_attribute(name, model)
    except KeyError:
        raise NotFound(f"no custom {model} data attribute named {name!r}") from None


def _delete_contact(sandbox, query, payload):
    external_id = _text(payload, "external_id")
    try:
        return sandbox.state.delete_contact(external_id)
    except KeyError:
        raise NotFound(f"no contact with external_id {external_id!r}") from None


ROUTES = {
    ("GET", "health"): lambda sandbox, query, payload: {"ok": True},
    ("GET", "state"): lambda sandbox, query, payload: sandbox.snapshot(requests=_int(query, "requests", 0)),
    ("GET", "requests"): _requests,
    ("GET", "violations"): lambda sandbox, query, payload: sandbox.violations,
    ("GET", "config"): lambda sandbox, query, payload: sandbox.config.as_dict(),
    ("POST", "config"): lambda sandbox, query, payload: sandbox.configure(**payload),
    ("POST", "fail"): _fail,
    ("POST", "reset"): _reset,
    ("POST", "archive_data_attribute"): _archive_data_attribute,
    ("POST", "delete_contact"): _delete_contact,
}
