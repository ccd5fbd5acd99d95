"""The Intercom token and the write keys never appear in the database, the logs, the dashboard's
pages or the stored attempts, after a full flow (ingestion, delivery, a refused token, resend)."""

import logging
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core import serializers
from segment.analytics import Client

from forwarding import services
from forwarding.models import Delivery, Exchange, Source, State
from tests.conftest import TOKEN
from tests.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SKIPPED_LINKS = re.compile(r"/admin/(logout|password_change)|/admin/r/|/delete/|\?_popup|/add/")


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


def crawl(client, start="/admin/", limit=250):
    """Every dashboard page reachable by links from the index: {url: text}."""
    pages, queue = {}, [start]
    while queue and len(pages) < limit:
        url = queue.pop(0)
        if url in pages:
            continue
        response = client.get(url)
        pages[url] = response.content.decode("utf-8", "replace")
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        links = Links()
        links.feed(pages[url])
        for href in links.hrefs:
            target = urljoin(url, href)
            parsed = urlparse(target)
            if parsed.netloc or not parsed.path.startswith("/admin/") or SKIPPED_LINKS.search(target):
                continue
            queue.append(parsed.path + (f"?{parsed.query}" if parsed.query else ""))
    return pages


def database_dump():
    """Every row of every table, serialized."""
    return "\n".join(serializers.serialize("json", model.objects.all()) for model in apps.get_models())


def test_it_never_shows_or_stores_the_token_or_a_write_key(live_server, cluster, sandbox, client, caplog):
    caplog.set_level(logging.DEBUG)
    _, key = Source.create_with_key("Website")
    _, other_key = Source.create_with_key("Back end")
    segment = Client(key, host=live_server.url, sync_mode=True, max_retries=0)
    segment.identify("secret-user", {"email": "s@example.com", "plan": "pro"})
    segment.group("secret-user", "org-1", {"name": "Org"})
    segment.track("secret-user", "Checked Secrets", {"revenue": 1.5})
    segment.page("secret-user", "Docs", "Home")
    wait_until(lambda: Delivery.objects.filter(state=State.DELIVERED).count() == 4, 30, message="4 delivered")

    # A refused token on the way: its error is stored and shown, the token itself never.
    sandbox.configure(refuse_token=True)
    segment.track("secret-user", "While Refused")
    wait_until(lambda: Exchange.objects.filter(status=401).exists(), 30, message="a 401 exchange")
    sandbox.configure(refuse_token=False)
    services.resend(Delivery.objects.filter(state=State.DELIVERED).first())
    wait_until(lambda: Delivery.objects.filter(state=State.DELIVERED).count() == 5, 30, message="5 delivered")

    User.objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    pages = crawl(client)
    assert len(pages) > 10, sorted(pages)

    secrets = {"the Intercom token": TOKEN, "a write key": key, "the other write key": other_key}
    places = {
        "the database": database_dump(),
        # The relay's logs: this process's (the live server's) and the worker's; not the test's client's.
        "the logs": "\n".join(r.getMessage() for r in caplog.records if r.name != "segment") + cluster.output(),
        **{f"page {url}": text for url, text in pages.items()},
    }
    leaks = [
        f"{name} in {place}" for name, secret in secrets.items() for place, text in places.items() if secret in text
    ]
    assert leaks == []
    assert Exchange.objects.count() >= 6  # the attempts were stored, and searched with the database
