"""The sandbox running in a background thread, for tests, e2e tests and benchmarks.

with running_sandbox(token="t", event_name_limit=5) as sandbox:
    settings.INTERCOM_API_BASE = sandbox.url
    ...
    assert sandbox.violations == []
    assert sandbox.state.contact_by_external_id("u1")["email"] == "a@example.com"
"""

from contextlib import contextmanager

from forwarding.sandbox.app import Sandbox
from forwarding.sandbox.config import DEFAULT_TOKEN
from forwarding.sandbox.server import SandboxHTTPServer

API_VERSION = "2.16"


class RunningSandbox:
    """A sandbox served on 127.0.0.1 from a daemon thread."""

    def __init__(self, token=DEFAULT_TOKEN, *, tokens=None, host="127.0.0.1", port=0, verbose=False, **config):
        tokens = tuple(tokens or (token,))
        self.token = token if token in tokens else tokens[0]  # the one headers() sends
        self.sandbox = Sandbox(tokens=tokens, **config)
        self.server = SandboxHTTPServer(self.sandbox, host, port, verbose=verbose)
        self.url = self.server.url  # base URL, no trailing slash: use as INTERCOM_API_BASE
        self.port = self.server.server_address[1]
        self._thread = self.server.serve_in_thread()

    @property
    def state(self):
        """The workspace (SandboxState): .contacts, .companies, .attachments, .events,
        .event_names, .data_attributes, .contact_by_external_id(), .events_for(), seeding helpers."""
        return self.sandbox.state

    @property
    def violations(self):
        return self.sandbox.violations

    @property
    def requests(self):
        return self.sandbox.requests

    @property
    def counters(self):
        return self.sandbox.counters

    @property
    def internal_errors(self):
        return self.sandbox.internal_errors

    def assert_clean(self):
        """Fail (AssertionError listing them) if any request broke the OpenAPI description or
        the sandbox itself raised: the check every test that talks to Intercom should end with."""
        problems = [f"{v['method']} {v['path']}: {'; '.join(v['messages'])}" for v in self.violations] + [
            f"sandbox error: {error.strip().splitlines()[-1]}" for error in self.internal_errors
        ]
        assert not problems, "Intercom sandbox:\n  " + "\n  ".join(problems)

    def requests_to(self, method=None, path=None):
        return self.sandbox.requests_to(method, path)

    def configure(self, **changes):
        """Change settings at runtime (see Sandbox.configure)."""
        return self.sandbox.configure(**changes)

    def fail_next(self, count=1, status=503, method=None, path=None):
        self.sandbox.fail_next(count, status, method, path)

    def reset(self, config=False):
        self.sandbox.reset(config=config)

    def headers(self, **extra):
        """Headers a well-behaved Intercom client sends (bearer token, version, JSON)."""
        return {
            "Authorization": f"Bearer {self.token}",
            "Intercom-Version": API_VERSION,
            "Accept": "application/json",
            "Content-Type": "application/json",
            **extra,
        }

    def stop(self):
        """Stop serving and close every connection (idempotent)."""
        if self._thread is not None:
            self.server.stop()
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


@contextmanager
def running_sandbox(token=DEFAULT_TOKEN, **config):
    """Start a sandbox on 127.0.0.1 (a free port unless port= is given), yield it, stop it.

    Keyword arguments are SandboxConfig settings (rate_limit=, error_rate=, event_name_limit=,
    ...), plus tokens=, host=, port=, verbose= and seed= (fault randomness)."""
    running = RunningSandbox(token, **config)
    try:
        yield running
    finally:
        running.stop()
