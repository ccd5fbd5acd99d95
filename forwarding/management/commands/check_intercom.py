"""`manage.py check_intercom`: call Intercom's GET /me and report."""

from django.core.management.base import BaseCommand, CommandError

from forwarding import intercom


class Command(BaseCommand):
    help = "Calls Intercom's GET /me with the configured token and reports the workspace."

    def handle(self, *args, **options):
        response = intercom.client().me()
        where = intercom.base_url()
        if not response.ok:
            reason = response.error_message or response.error or "no answer"
            raise CommandError(f"Intercom at {where} answered {response.status or 'nothing'}: {reason}")
        body = response.body if isinstance(response.body, dict) else {}
        app = body.get("app") or {}
        self.stdout.write(f"Intercom at {where}: OK ({response.duration_ms} ms)")
        self.stdout.write(f"  admin:     {body.get('name', '?')} <{body.get('email', '?')}>")
        self.stdout.write(
            f"  workspace: {app.get('name', '?')} ({app.get('id_code', '?')}), region {app.get('region', '?')}"
        )
        limit = response.headers.get("X-RateLimit-Limit")
        if limit:
            self.stdout.write(f"  rate limit: {limit} per window, {response.headers.get('X-RateLimit-Remaining')} left")
