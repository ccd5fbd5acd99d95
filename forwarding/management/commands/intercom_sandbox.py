"""`manage.py intercom_sandbox`: serve the Intercom sandbox in the foreground until Ctrl-C."""

import signal

from django.core.management.base import BaseCommand, CommandError

from forwarding.sandbox import DEFAULT_TOKEN, Sandbox
from forwarding.sandbox.persistence import StateFile
from forwarding.sandbox.server import SandboxHTTPServer


class Command(BaseCommand):
    help = (
        "Serves the Intercom sandbox (Intercom's REST API in memory, every request checked against "
        "the OpenAPI description) until Ctrl-C. Its control API is under /_sandbox/."
    )
    requires_system_checks = []  # an in-memory server: none of the relay's checks apply

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8001, help="port (default 8001; 0 picks a free one)")
        parser.add_argument(
            "--token",
            action="append",
            dest="tokens",
            help=f"accepted bearer token, repeatable (default {DEFAULT_TOKEN})",
        )
        parser.add_argument("--rate-limit", type=int, help="requests per window before 429 (default: not enforced)")
        parser.add_argument(
            "--rate-limit-window", type=int, default=10, help="rate limit window in seconds (default 10)"
        )
        parser.add_argument("--error-rate", type=float, default=0.0, help="probability of answering 500/503")
        parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every request")
        parser.add_argument("--slow-rate", type=float, default=0.0, help="probability of a slow answer")
        parser.add_argument("--slow-ms", type=int, default=30_000, help="how long a slow answer takes")
        parser.add_argument("--event-name-limit", type=int, default=120, help="active event names (default 120)")
        parser.add_argument("--data-attribute-limit", type=int, default=250, help="custom data attributes (250)")
        parser.add_argument("--prefill-event-names", type=int, default=0, help="event names other senders used")
        parser.add_argument("--no-validate", action="store_true", help="do not check requests against OpenAPI")
        parser.add_argument(
            "--state-file",
            help="keep the workspace in this JSON file: loaded at start, saved after changes and on stop "
            "(default: in memory only)",
        )
        parser.add_argument("--url-file", help="write the base URL to this file once listening")
        parser.add_argument("--log-requests", action="store_true", help="print one line per request")

    def handle(self, *args, **options):
        try:
            sandbox = Sandbox(
                tokens=options["tokens"] or (DEFAULT_TOKEN,),
                rate_limit=options["rate_limit"],
                rate_limit_window=options["rate_limit_window"],
                error_rate=options["error_rate"],
                latency_ms=options["latency_ms"],
                slow_rate=options["slow_rate"],
                slow_ms=options["slow_ms"],
                event_name_limit=options["event_name_limit"],
                data_attribute_limit=options["data_attribute_limit"],
                validate=not options["no_validate"],
            )
            server = SandboxHTTPServer(sandbox, options["host"], options["port"], verbose=options["log_requests"])
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        state_file = None
        if options["state_file"]:
            state_file = StateFile(sandbox.state, options["state_file"])
            loaded = state_file.load()
            state_file.start()
            self.stdout.write(
                f"Workspace {sandbox.state.workspace_id}: "
                f"{'loaded from' if loaded else 'new, saved to'} {options['state_file']}"
                f" ({len(sandbox.state.contacts)} contacts)"
            )
        if options["prefill_event_names"]:
            sandbox.state.prefill_event_names(f"other-sender-{n}" for n in range(options["prefill_event_names"]))
        # make run stops its children with SIGTERM: leave as cleanly as on Ctrl-C.
        signal.signal(signal.SIGTERM, interrupt)
        if options["url_file"]:
            with open(options["url_file"], "w") as handle:
                handle.write(server.url + "\n")
        self.stdout.write(f"Intercom sandbox listening on {server.url} (control API: {server.url}/_sandbox/state)")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            # A second Ctrl-C must not cut the last save short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            server.stop()
            if state_file is not None:
                state_file.stop()
        counters = sandbox.counters
        self.stdout.write(
            f"Intercom sandbox stopped after {counters.get('requests', 0)} requests, "
            f"{counters.get('violations', 0)} OpenAPI violations."
        )


def interrupt(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop is enough; a second must not break it
    raise KeyboardInterrupt
