"""`manage.py prune`: apply the retention settings now (a daily schedule does it too)."""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from forwarding import retention


class Command(BaseCommand):
    help = (
        "Removes payloads older than RELAY_PAYLOAD_RETENTION_DAYS, then log entries older than "
        "RELAY_LOG_RETENTION_DAYS, then rejected messages older than RELAY_REJECTED_RETENTION_DAYS, "
        "in batches. Calls still being delivered are kept."
    )

    def handle(self, *args, **options):
        payload_days, log_days = settings.RELAY_PAYLOAD_RETENTION_DAYS, settings.RELAY_LOG_RETENTION_DAYS
        rejected_days = settings.RELAY_REJECTED_RETENTION_DAYS
        self.stdout.write(
            f"Payloads are kept {payload_days} days, log entries {log_days} days, "
            f"rejected messages {rejected_days} days."
        )
        counts = retention.prune(progress=self.progress)
        self.stdout.write("")
        self.stdout.write(
            f"Pruned {counts['payloads']} payloads, {counts['log_entries']} log entries "
            f"and {counts['rejected']} rejected messages."
        )

    def progress(self, what, done):
        end = "\r" if sys.stdout.isatty() else "\n"
        self.stdout.write(f"  {what}: {done} pruned", ending=end)
