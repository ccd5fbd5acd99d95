"""`manage.py resend [filters] [--yes]`: the dashboard's bulk resend from the shell. It counts what
the filters match, asks, then makes them due again oldest first, with a progress bar; the worker
sends them. The filters are the delivery log's (dashboard.filters.LogFilter)."""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from dashboard import bulk
from dashboard.filters import RANGES, LogFilter
from dashboard.models import JobStatus
from dashboard.queries import log, resends
from forwarding.models import CallType, State

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Resend the deliveries a delivery-log filter matches (counted first, then confirmed)."

    def add_arguments(self, parser):
        parser.add_argument("--state", choices=State.values)
        parser.add_argument("--type", choices=CallType.values)
        parser.add_argument("--event", help="event name (case-insensitive; the page event name too)")
        parser.add_argument("--status", help="last HTTP status: 404, a class such as 5xx, or none")
        parser.add_argument("--cause", help="error cause, e.g. http_400 or timeout")
        parser.add_argument("--source", type=int, help="source id")
        parser.add_argument("--user", help="the userId the deliveries are forwarded for")
        parser.add_argument("--range", choices=list(RANGES), help="received within the last 1h, 24h, 7d or 30d")
        parser.add_argument("--since", help="received at or after (ISO 8601, UTC unless an offset is given)")
        parser.add_argument("--until", help="received before")
        parser.add_argument(
            "--warned",
            action="store_const",
            const="1",
            help="only deliveries whose last attempt dropped, cut or renamed data",
        )
        parser.add_argument("--search", dest="q", help="exact userId, anonymousId, messageId or email")
        parser.add_argument("--all", action="store_true", help="no filter: every delivery")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, **options):
        params = {name: str(options[name]) for name in LogFilter.__dataclass_fields__ if options.get(name) is not None}
        log_filter, problems = LogFilter.parse(params)
        if problems:
            raise CommandError("; ".join(problems))
        if not log_filter.is_active and not options["all"]:
            raise CommandError("Give at least one filter, or --all to resend every delivery.")
        now = timezone.now()
        log_filter = log_filter.resolved(now)
        preview = resends.preview(log_filter, now, exact=True)  # a shell can wait for every count
        sources = log.sources() if log_filter.source is not None else None
        self.stdout.write(f"{preview.total} deliveries match: {log_filter.describe(sources)}.")
        for state, n in sorted(preview.by_state.items(), key=lambda item: -item[1]):
            self.stdout.write(f"  {state:<11} {n}")
        if preview.in_flight or preview.without_payload:
            self.stdout.write(
                f"Left alone: {preview.in_flight} being sent now, {preview.without_payload} without a payload."
            )
        if not preview.resendable:
            self.stdout.write("Nothing to resend.")
            return
        if not options["yes"] and not self.confirm(f"Resend {preview.resendable} deliveries? [y/N] "):
            self.stdout.write("Nothing resent.")
            return
        job = bulk.create(log_filter, None, now)
        self.stdout.write(f"Bulk resend {job.pk} (it shows in the dashboard too):")
        self.draw(job)
        try:
            while bulk.run(job.pk, progress=self.draw):
                pass
        except KeyboardInterrupt:
            bulk.cancel(job)
            self.stdout.write("")
            raise CommandError(f"Interrupted: bulk resend {job.pk} cancelled.") from None
        job.refresh_from_db()
        self.draw(job)
        self.stdout.write("")
        if job.status != JobStatus.DONE:
            raise CommandError(f"Bulk resend {job.pk} ended {job.status}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Made {job.reopened} deliveries due again ({job.skipped} left alone); the worker sends them."
            )
        )

    def confirm(self, question):
        self.stdout.write(question, ending="")
        self.stdout.flush()
        answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    def draw(self, job):
        """One line, redrawn in place: [#######       ]  47%  470/1000."""
        total = max(job.total, 1)
        done = min(job.processed, total)
        filled = BAR_WIDTH * done // total
        bar = "#" * filled + " " * (BAR_WIDTH - filled)
        self.stdout.write(f"\r[{bar}] {100 * done // total:3d}%  {job.processed}/{job.total}", ending="")
        self.stdout.flush()
