"""Websites, end to end in Chromium: the browser libraries, unmodified and offline, send to the relay.

A small HTTP server of the test plays the website (another origin than the relay, so CORS is
real): its pages hold the analytics.js snippet the dashboard hands out, which loads analytics.js
from the relay (the vendored copy, chunks included), or RudderStack's SDK v3 from
tests/clients/browser/node_modules. Calls go to the live server, a real worker forwards them to the
Intercom sandbox. Nothing is fetched from anywhere else: every request the page makes is checked.
"""

import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from forwarding.ingestion.snippets import analytics_js_snippet
from forwarding.models import Call, Delivery, State
from tests.processes import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

NODE_MODULES = Path(__file__).resolve().parents[1] / "clients" / "browser" / "node_modules"
RUDDERSTACK_SDK = "@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js"
PAGE = (
    '<!doctype html><html><head><meta charset=utf-8><link rel=icon href="data:,"><title>{title}</title>{head}</head>'
    "<body>{body}</body></html>"
)


class Website(ThreadingHTTPServer):
    """The website: pages set by the test, and files of tests/clients/browser/node_modules."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), WebsiteHandler)
        self.pages = {}
        self.url = f"http://127.0.0.1:{self.server_port}"

    def add(self, path, title, head="", body=""):
        self.pages[path] = PAGE.format(title=title, head=head, body=body).encode()
        return self.url + path


class WebsiteHandler(SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(NODE_MODULES), **kwargs)

    def do_GET(self):
        page = self.server.pages.get(urlsplit(self.path).path)
        if page is None:
            if not self.path.startswith("/node_modules/"):
                self.send_error(404)
                return
            self.path = self.path.removeprefix("/node_modules")
            super().do_GET()  # SimpleHTTPRequestHandler keeps to `directory`
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args):
        pass


@pytest.fixture
def website():
    server = Website()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Watched:
    """What the browser reported while the test ran: console errors and uncaught exceptions, and any
    request to an origin other than the website's and the relay's."""

    def __init__(self, page, *origins):
        self.errors = []
        self.foreign = []
        self.paths = []
        self.origins = origins
        page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("request", self._request)

    def _request(self, request):
        if request.url.startswith(self.origins):
            self.paths.append(f"{request.method} {urlsplit(request.url).path}")
        else:
            self.foreign.append(request.url)

    def assert_clean(self):
        assert self.errors == []
        assert self.foreign == []


def calls():
    """(type, event or name, user id, anonymous or not) of each stored call, in arrival order."""
    return [
        (call.type, call.event, call.user_id, bool(call.anonymous_id))
        for call in Call.objects.order_by("received_at", "pk")
    ]


def wait_for_calls(count, timeout=20):
    wait_until(lambda: Call.objects.count() >= count, timeout, message=f"{count} calls stored ({calls()})")


def wait_until_delivered(count, timeout=60):
    def done():
        states = list(Delivery.objects.values_list("state", flat=True))
        return len(states) == count and all(state == State.DELIVERED for state in states)

    wait_until(
        done,
        timeout,
        interval=0.3,
        message=f"{count} deliveries ({list(Delivery.objects.values_list('call__type', 'call__event', 'state'))})",
    )


def loaded(page, condition="window.analytics && window.analytics.initialized === true"):
    page.wait_for_function(condition)


def test_analytics_js_from_the_relay_sends_every_call(page, live_server, website, source, cluster, sandbox):
    _, key = source
    # The snippet the dashboard hands out, as it is: analytics.js from the relay, chunks too.
    snippet = analytics_js_snippet(live_server.url, key)
    shop = website.add("/shop/", "Shop", snippet, '<a id="pricing" href="/shop/pricing">Pricing</a>')
    website.add("/shop/pricing", "Pricing", snippet, "<h1>Pricing</h1>")
    away = website.add("/away", "Another site", body="<h1>Elsewhere, without analytics.js</h1>")
    watched = Watched(page, website.url, live_server.url)

    page.goto(shop)  # the snippet's page call
    loaded(page)
    # analytics.js builds the snippet's buffered page call when it flushes its buffer, which may be
    # after `initialized`: a visitor who identifies later is anonymous on that first page, so wait.
    wait_for_calls(1)
    page.evaluate(
        """async () => {
        await analytics.identify("web-ada", {email: "ada@example.com", name: "Ada Lovelace"});
        await analytics.group("org-web", {name: "Webshop Inc", employees: 12});
        await analytics.track("Product Viewed", {sku: "X-1", price: 9.5});
    }"""
    )
    # trackLink (the auto-track chunk): the click is tracked, then the link followed.
    page.evaluate(
        """() => analytics.trackLink(document.getElementById("pricing"), "Pricing Clicked", {plan: "team"})"""
    )
    page.click("#pricing")
    page.wait_for_url(website.url + "/shop/pricing")
    loaded(page)  # the pricing page's page call
    # A link from an email: ?ajs_event= is tracked (the queryString chunk), with ?ajs_prop_ properties.
    page.goto(shop + "?ajs_event=Newsletter%20Opened&ajs_prop_campaign=spring")
    loaded(page)
    wait_for_calls(8)
    # A track right before the visitor leaves for a page without analytics.js: the request may be
    # cut short by the navigation; analytics.js then keeps the call (localStorage) and sends it on
    # the next visit. Either way it arrives once.
    page.evaluate("""() => { analytics.track("Checkout Started", {items: 2}); location.href = "/away"; }""")
    page.wait_for_url(away)
    page.goto(shop)
    loaded(page)
    wait_for_calls(10)

    assert sorted(calls()) == sorted(
        [
            ("page", "", "", True),  # before identify: anonymous
            ("identify", "", "web-ada", True),
            ("group", "", "web-ada", True),
            ("track", "Product Viewed", "web-ada", True),
            ("track", "Pricing Clicked", "web-ada", True),
            ("page", "", "web-ada", True),
            ("page", "", "web-ada", True),
            ("track", "Newsletter Opened", "web-ada", True),
            ("track", "Checkout Started", "web-ada", True),
            ("page", "", "web-ada", True),
        ]
    )
    for call in Call.objects.all():
        assert call.payload["context"]["library"]["name"] == "analytics.js"
    assert {call.payload["context"]["page"]["path"] for call in Call.objects.filter(type="page")} == {
        "/shop/",
        "/shop/pricing",
    }
    assert Call.objects.get(event="Newsletter Opened").payload["properties"]["campaign"] == "spring"
    assert Call.objects.get(event="Pricing Clicked").payload["properties"]["plan"] == "team"
    # Only the relay served analytics.js: its loader, its settings, and the two chunks it needed.
    key_paths = {path.replace(key, "KEY") for path in watched.paths}
    assert {"GET /analytics.js/v1/KEY/analytics.min.js", "GET /v1/projects/KEY/settings"} <= key_paths
    assert {path.split("/")[-1].split(".")[0] for path in key_paths if "/analytics-next/bundles/" in path} == {
        "auto-track",
        "queryString",
    }

    wait_until_delivered(10)
    contact = sandbox.state.contact_by_external_id("web-ada")
    assert (contact["email"], contact["name"]) == ("ada@example.com", "Ada Lovelace")
    assert [company["name"] for company in sandbox.state.companies] == ["Webshop Inc"]
    assert len(sandbox.state.attachments) == 1
    # Intercom keeps one event per name, user and second: some of the page views may be one event.
    assert {event["event_name"] for event in sandbox.state.events_for("web-ada")} == {
        "Product Viewed",
        "Pricing Clicked",
        "Newsletter Opened",
        "Checkout Started",
        settings.INTERCOM_PAGE_EVENT_NAME,
    }
    watched.assert_clean()


@pytest.mark.parametrize("use_beacon", [False, True], ids=["xhr", "beacon"])
def test_rudderstack_sdk_v3_sends_every_call(page, live_server, website, source, cluster, sandbox, use_beacon):
    _, key = source
    options = {"configUrl": live_server.url, "useBeacon": use_beacon, "beaconQueueOptions": {"flushQueueInterval": 200}}
    # The SDK's "bundled" build, from the npm package: its plugins inside, nothing from a CDN.
    head = (
        f'<script src="/node_modules/{RUDDERSTACK_SDK}"></script><script>'
        "window.rudder = new rudderanalytics.RudderAnalytics();"
        f"rudder.load({json.dumps(key)}, {json.dumps(live_server.url)}, {json.dumps(options)});"
        "rudder.ready(() => { window.rudderReady = true; });"
        "</script>"
    )
    app = website.add("/app/", "App", head)
    away = website.add("/away", "Another site", body="<h1>Elsewhere</h1>")
    watched = Watched(page, website.url, live_server.url)

    page.goto(app)
    loaded(page, "window.rudderReady === true")  # only once /sourceConfig/ answered
    page.evaluate(
        """() => {
        rudder.page("Docs", "Getting Started", {path: "/docs"});
        rudder.identify("rs-user", {email: "rs@example.com", name: "Rudder User"});
        rudder.group("org-rs", {name: "Rudder Org", employees: 7});
        rudder.track("Signed Up", {plan: "team"});
    }"""
    )
    wait_for_calls(4)
    expected = [
        ("group", "", "rs-user", True),
        ("identify", "", "rs-user", True),
        ("page", "Getting Started", "", True),
        ("track", "Signed Up", "rs-user", True),
    ]
    if use_beacon:
        # A beacon outlives the page: the SDK flushes its queue with sendBeacon as the page goes.
        page.evaluate("""() => { rudder.track("Checkout Started", {items: 3}); location.href = "/away"; }""")
        page.wait_for_url(away)
        wait_for_calls(5)
        expected.append(("track", "Checkout Started", "rs-user", True))
    assert sorted(calls()) == sorted(expected)
    for call in Call.objects.all():
        assert call.payload["channel"] == "web"
        assert call.payload["context"]["library"]["name"] == "RudderLabs JavaScript SDK"
    key_paths = [path.replace(key, "KEY") for path in watched.paths]
    assert "GET /sourceConfig/" in key_paths
    posts = {path for path in key_paths if path.startswith("POST")}
    if use_beacon:
        assert posts == {"POST /beacon/v1/batch"}
    else:
        assert posts == {"POST /v1/page", "POST /v1/identify", "POST /v1/group", "POST /v1/track"}

    wait_until_delivered(len(expected))
    contact = sandbox.state.contact_by_external_id("rs-user")
    assert (contact["email"], contact["name"]) == ("rs@example.com", "Rudder User")
    assert [company["name"] for company in sandbox.state.companies] == ["Rudder Org"]
    names = {event["event_name"] for event in sandbox.state.events_for("rs-user")}
    assert names == {"Signed Up", settings.INTERCOM_PAGE_EVENT_NAME} | ({"Checkout Started"} if use_beacon else set())
    watched.assert_clean()
