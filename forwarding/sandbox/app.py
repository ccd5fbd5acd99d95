"""The sandbox as one object: an HTTP-agnostic request pipeline plus its inspection API.

`Sandbox.handle(method, target, headers, body)` answers one request the way Intercom would, in
this order: validate against the OpenAPI description (violations are recorded whatever the
answer), injected latency, bearer auth (401), rate limit (429), injected faults, 404/400 for what
the description does not allow, then the operation itself, then an injected slow answer. Paths
under `/_sandbox/` are the control API (control.py) instead: no auth, no validation.
"""

import hmac
import json
import threading
import time
import traceback
import uuid
from collections import Counter, deque

from forwarding.sandbox import control
from forwarding.sandbox.answers import Answer
from forwarding.sandbox.config import CONVERTERS, DEFAULT_TOKEN, SandboxConfig
from forwarding.sandbox.errors import ApiError
from forwarding.sandbox.faults import DROP, Faults
from forwarding.sandbox.openapi import OpenAPIValidator
from forwarding.sandbox.ratelimit import RateLimitDecision, RateLimiter
from forwarding.sandbox.routes import ROUTES
from forwarding.sandbox.state import SandboxState

CONTROL_PREFIX = "/_sandbox"
LOGGED_BODY_LIMIT = 20_000  # characters of a non-JSON body kept in the request log
FAULT_ERRORS = {
    400: ("bad_request", "Bad Request"),
    401: ("unauthorized", "Access Token Invalid"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Resource Not Found"),
    408: ("request_timeout", "Request Timeout"),
    409: ("conflict", "Conflict"),
    422: ("unprocessable_entity", "Unprocessable Entity"),
    500: ("server_error", "Server Error"),
    502: ("server_error", "Bad Gateway"),
    503: ("service_unavailable", "Service Unavailable"),
    504: ("server_error", "Gateway Timeout"),
}


def error_answer(status, errors, request_id, headers=None):
    """Intercom's error envelope: errors is [(code, message), ...]."""
    payload = {
        "type": "error.list",
        "request_id": request_id,
        "errors": [{"code": code, "message": message} for code, message in errors],
    }
    return Answer.json(status, payload, headers)


class Sandbox:
    """An in-memory Intercom workspace behind Intercom's REST API, with knobs and a record of
    every request. Thread-safe: the threaded server calls `handle` from many threads."""

    def __init__(self, tokens=(DEFAULT_TOKEN,), validator=None, seed=None, **config):
        self.config = SandboxConfig().update(tokens=tokens, **config)
        self.state = SandboxState(self.config)
        self.faults = Faults(self.config, seed)
        self.limiter = RateLimiter()
        self.validator = validator or OpenAPIValidator.default()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._clear_records()

    def _clear_records(self):
        with self._lock:
            self._requests = deque(maxlen=self.config.request_log_limit)
            self._violations = []
            self._internal_errors = []
            self._counters = Counter()
            self._sequence = 0

    # -- inspection ------------------------------------------------------------------------

    @property
    def requests(self):
        """The request log, oldest first: method, path, query, operation, status, headers
        (Authorization redacted), request and response bodies, duration, fault, violations."""
        with self._lock:
            return [dict(entry) for entry in self._requests]

    @property
    def violations(self):
        """Requests the OpenAPI description does not allow (or the sandbox does not serve)."""
        with self._lock:
            return [dict(entry) for entry in self._violations]

    @property
    def internal_errors(self):
        """Sandbox bugs: exceptions raised while answering (the client got a 500)."""
        with self._lock:
            return list(self._internal_errors)

    @property
    def counters(self):
        """Request counters (requests, status.<code>, operation.<id>, faults.*, ...) and the
        workspace's (contacts.created, events.stored, events.duplicate, ...)."""
        with self._lock:
            counters = dict(self._counters)
        counters.update(self.state.counters)
        return counters

    def requests_to(self, method=None, path=None):
        """Log entries with this method and a path starting with `path`."""
        return [
            entry
            for entry in self.requests
            if (method is None or entry["method"] == method.upper())
            and (path is None or entry["path"].startswith(path))
        ]

    def snapshot(self, requests=0):
        """Everything, JSON-ready: what GET /_sandbox/state answers."""
        state = self.state
        return {
            "workspace": {"id_code": state.workspace_id},
            "config": self.config.as_dict(),
            "queued_failures": self.faults.queued,
            "counters": self.counters,
            "contacts": state.contacts,
            "companies": state.companies,
            "attachments": state.attachments,
            "events": state.events,
            "event_names": state.event_names,
            "data_attributes": state.data_attributes,
            "violations": self.violations,
            "internal_errors": self.internal_errors,
            "requests": self.requests[-requests:] if requests else [],
        }

    # -- control ---------------------------------------------------------------------------

    def configure(self, **changes):
        """Change settings at runtime (see SandboxConfig), plus three actions:
        fail_next={count, status, method, path} (or a list of them),
        prefill_event_names=[...] and archive_event_names=[...]. Returns the settings."""
        failures = changes.pop("fail_next", None)
        prefill = changes.pop("prefill_event_names", None)
        archive = changes.pop("archive_event_names", None)
        self.config.update(**changes)
        if "request_log_limit" in changes:
            with self._lock:
                self._requests = deque(self._requests, maxlen=self.config.request_log_limit)
        for failure in [failures] if isinstance(failures, dict) else failures or []:
            self.faults.fail_next(**failure)
        if prefill:
            self.state.prefill_event_names(prefill)
        if archive:
            self.state.archive_event_names(archive)
        return self.config.as_dict()

    def fail_next(self, count=1, status=503, method=None, path=None):
        """The next `count` requests (matching method/path prefix, if given) answer `status`;
        status 0 closes the connection without an answer."""
        self.faults.fail_next(count, status, method, path)

    def reset(self, config=False):
        """Start a new, empty workspace (a new id_code too) and empty the logs, counters and
        queued failures; with config=True also restore default settings (tokens are kept)."""
        self.state.reset()
        self.faults.clear()
        self.limiter.reset()
        if config:
            defaults = SandboxConfig()
            self.config.update(**{name: getattr(defaults, name) for name in CONVERTERS if name != "tokens"})
        self._clear_records()

    def sleep(self, seconds):
        """Wait, unless the sandbox is stopping (so slow answers never hold a shutdown)."""
        self._stopping.wait(seconds)

    def stop_sleeping(self):
        """End current and future sleeps (the server is stopping)."""
        self._stopping.set()

    def allow_sleeping(self):
        self._stopping.clear()

    # -- the pipeline ----------------------------------------------------------------------

    def handle(self, method, target, headers, body=b""):
        """Answer one HTTP request. `headers` is any mapping of names to values."""
        path, _, query_string = target.partition("?")
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return control.handle(self, method, path, query_string, body)
        started = time.monotonic()
        headers = {name.lower(): value for name, value in headers.items()}
        request_id = str(uuid.uuid4())
        checked, answer, fault = None, None, None
        try:
            checked = self.validator.check(method, path, query_string, headers, body, validate=self.config.validate)
            self._record_violations(method, path, checked, request_id)
            answer, fault = self._answer(method, path, headers, checked, request_id)
        except Exception:  # a sandbox bug must not kill the server thread; tests see it
            with self._lock:
                self._internal_errors.append(traceback.format_exc())
            answer = error_answer(500, [("server_error", "Sandbox internal error")], request_id)
        answer.headers.setdefault("X-Request-Id", request_id)
        self._log(method, path, query_string, headers, body, checked, answer, fault, started)
        return answer

    def _answer(self, method, path, headers, checked, request_id):
        config = self.config
        if config.latency_ms:
            self.sleep(config.latency_ms / 1000)
        if not self._authorized(headers):
            return error_answer(401, [("unauthorized", "Access Token Invalid")], request_id), None
        decision = None
        if config.rate_limit:
            decision = self.limiter.hit(config.rate_limit, config.rate_limit_window, time.time())
            if not decision.allowed:
                message = f"Exceeded rate limit of {decision.limit} in {config.rate_limit_window}_seconds"
                return error_answer(429, [("rate_limit_exceeded", message)], request_id, decision.headers()), None
        rate_headers = decision.headers() if decision else {}
        failure = self.faults.failure_for(method, path)
        if failure == DROP:
            return Answer(0, drop=True), "drop"
        if failure is not None:
            return self._injected(failure, request_id, rate_headers), "error"
        if checked.unknown_operation:
            return error_answer(404, [("not_found", checked.violations[0])], request_id, rate_headers), None
        if checked.violations:
            errors = [("parameter_invalid", f"OpenAPI: {message}") for message in checked.violations]
            return error_answer(400, errors, request_id, rate_headers), None
        handler = ROUTES.get(checked.operation_id)
        if handler is None:
            message = f"the sandbox does not serve {checked.operation_id}"
            return error_answer(404, [("not_found", message)], request_id, rate_headers), None
        try:
            status, payload = handler(self.state, checked)
            answer = Answer.json(status, payload, rate_headers)
        except ApiError as error:
            answer = error_answer(error.status, [(error.code, error.message)], request_id, rate_headers)
        if self.faults.is_slow():
            # After processing: the client times out on a request Intercom did carry out.
            self.sleep(config.slow_ms / 1000)
            return answer, "slow"
        return answer, None

    def _injected(self, status, request_id, rate_headers):
        if status == 429:
            window = self.config.rate_limit_window
            now = time.time()
            limit = self.config.rate_limit or 0
            reset = int(now // window * window + window)
            rate_headers = RateLimitDecision(False, limit, 0, reset).headers()
            code, message = "rate_limit_exceeded", f"Exceeded rate limit of {limit} in {window}_seconds"
        else:
            code, message = FAULT_ERRORS.get(status, ("server_error" if status >= 500 else "client_error", "Error"))
        return error_answer(status, [(code, message)], request_id, rate_headers)

    def _authorized(self, headers):
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token or self.config.refuse_token:
            return False
        return any(hmac.compare_digest(token.strip().encode(), known.encode()) for known in self.config.tokens)

    def _record_violations(self, method, path, checked, request_id):
        messages = list(checked.violations) if self.config.validate or checked.unknown_operation else []
        if not messages and checked.operation_id and checked.operation_id not in ROUTES:
            messages = [f"the sandbox does not serve {checked.operation_id}"]
        if messages:
            entry = {
                "at": time.time(),
                "request_id": request_id,
                "method": method,
                "path": path,
                "operation": checked.operation_id,
                "messages": messages,
                "body": checked.body,
            }
            with self._lock:
                self._violations.append(entry)
                self._counters["violations"] += 1

    def _log(self, method, path, query_string, headers, body, checked, answer, fault, started):
        request_body = checked.body if checked is not None and checked.body is not None else None
        if request_body is None and body:
            request_body = body[:LOGGED_BODY_LIMIT].decode("utf-8", "replace")
        try:
            response_body = json.loads(answer.body) if answer.body else None
        except ValueError:
            response_body = answer.body[:LOGGED_BODY_LIMIT].decode("utf-8", "replace")
        operation = checked.operation_id if checked is not None else None
        with self._lock:
            self._sequence += 1
            self._requests.append(
                {
                    "id": self._sequence,
                    "at": time.time(),
                    "method": method,
                    "path": path,
                    "query": query_string,
                    "operation": operation,
                    "status": 0 if answer.drop else answer.status,
                    "request_headers": redacted(headers),
                    "request_body": request_body,
                    "response_headers": dict(answer.headers),
                    "response_body": response_body,
                    "duration_ms": round((time.monotonic() - started) * 1000, 3),
                    "fault": fault,
                }
            )
            counters = self._counters
            counters["requests"] += 1
            counters[f"status.{0 if answer.drop else answer.status}"] += 1
            counters[f"operation.{operation or 'unknown'}"] += 1
            if fault:
                counters[f"faults.{fault}"] += 1


def redacted(headers):
    """Headers as received, the bearer token replaced: it is never stored."""
    kept = dict(headers)
    if "authorization" in kept:
        scheme = kept["authorization"].partition(" ")[0]
        kept["authorization"] = f"{scheme} [redacted]"
    return kept
