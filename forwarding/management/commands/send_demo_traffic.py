"""`manage.py send_demo_traffic`: realistic calls through the Segment Python client."""

import os
import random
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

PLANS = ["free", "team", "business"]
EVENTS = ["Signed Up", "Created Project", "Invited Teammate", "Upgraded Plan", "Exported Report"]
PAGES = [("Docs", "Getting Started", "/docs/start"), ("App", "Dashboard", "/app"), (None, "Pricing", "/pricing")]


class Command(BaseCommand):
    help = "Sends identify, group, track and page calls for a few demo users through the Segment client."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
        parser.add_argument("--write-key", default="", help="defaults to the key `make run` saved in var/write_key")
        parser.add_argument("--users", type=int, default=5)
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **options):
        from segment.analytics import Client

        key = options["write_key"] or self._saved_key()
        rng = random.Random(options["seed"])
        failures = []
        client = Client(
            key, host=options["url"], sync_mode=True, max_retries=2, on_error=lambda e, batch: failures.append(e)
        )
        sent = 0
        for number in range(1, options["users"] + 1):
            sent += self._user(client, rng, number)
        client.flush()
        if failures:
            raise CommandError(f"the relay refused calls: {failures[0]}")
        self.stdout.write(f"Sent {sent} calls for {options['users']} users to {options['url']}.")
        self.stdout.write(f"Watch them arrive in Intercom (or the sandbox): {options['url']}/admin/")

    def _user(self, client, rng, number):
        user_id = f"demo-user-{number}"
        anonymous_id = f"demo-anon-{number}"
        company = f"demo-company-{(number - 1) // 2 + 1}"
        # An anonymous page view first: it waits until the identify below links it to the user.
        client.page(
            anonymous_id=anonymous_id, category="Marketing", name="Home", properties={"url": "https://example.com/"}
        )
        client.identify(
            user_id,
            {
                "email": f"{user_id}@example.com",
                "firstName": "Demo",
                "lastName": f"User {number}",
                "plan": rng.choice(PLANS),
                "createdAt": "2026-01-15T09:30:00Z",
                "logins": rng.randint(1, 50),
            },
            anonymous_id=anonymous_id,
        )
        client.group(user_id, company, {"name": f"Demo Company {company[-1]}", "plan": "business", "employees": 12})
        calls = 3
        for event in rng.sample(EVENTS, 3):
            properties = {"source": "demo"}
            if event == "Upgraded Plan":
                properties.update(revenue=49.99, currency="USD")
            client.track(user_id, event, properties)
            calls += 1
        category, name, path = rng.choice(PAGES)
        client.page(user_id, category, name, {"url": f"https://example.com{path}", "path": path})
        return calls + 1

    def _saved_key(self):
        path = Path(settings.BASE_DIR) / "var" / "write_key"
        if not path.exists():
            raise CommandError("No --write-key given and no var/write_key (run `make run` first, or add_source).")
        return path.read_text().strip()
