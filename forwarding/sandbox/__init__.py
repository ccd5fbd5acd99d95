"""The Intercom sandbox: Intercom's REST API (the part the relay uses) in memory, for `make run`
without a token, for tests and for benchmarks. Part of the product, not a mock.

Modules, one job each:
- state.py: the workspace (contacts, companies, events, data attributes) and Intercom's rules,
  with shapes.py (objects as Intercom renders them), attributes.py (standard data attributes,
  naming rules), search.py (contact search filters) and errors.py (Intercom's error answers);
- openapi.py: validation of every request against Intercom's OpenAPI description;
- routes.py: which Intercom operations are served, and by what;
- ratelimit.py, faults.py: Intercom's rate limit and deliberate failures;
- config.py: the settings that may change at runtime;
- app.py: the request pipeline and the in-process inspection API (`Sandbox`);
- control.py: the HTTP control API under /_sandbox/;
- persistence.py: the workspace kept in a JSON file across restarts (`--state-file`);
- server.py: the threaded HTTP server; testing.py: `running_sandbox()` for tests.

Nothing here touches the database.
"""

from forwarding.sandbox.app import Sandbox
from forwarding.sandbox.config import DEFAULT_TOKEN, SandboxConfig

__all__ = ["DEFAULT_TOKEN", "Sandbox", "SandboxConfig"]
