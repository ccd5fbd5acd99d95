"""The only module that speaks HTTP to Intercom. It never touches the database and never
raises for an HTTP status: every call returns a `Response` value."""

import json
import os
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import requests
from django.conf import settings

REGION_BASES = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
# Headers kept in stored exchanges; Authorization is never among them.
REQUEST_HEADERS_KEPT = ("Intercom-Version", "Content-Type", "Accept")
RESPONSE_HEADERS_KEPT = (
    "Content-Type",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "X-Request-Id",
)


@dataclass(frozen=True)
class Response:
    """One HTTP exchange with Intercom, or the network error that stopped it."""

    method: str
    path: str
    request_body: dict | None
    status: int | None = None
    body: dict | list | str | None = None
    headers: dict = field(default_factory=dict)
    duration_ms: int = 0
    error: str = ""  # "timeout: ..." or "network: ..." when no status came back

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300

    @property
    def error_code(self):
        """The first error code of Intercom's error envelope, or ""."""
        errors = self.body.get("errors") if isinstance(self.body, dict) else None
        if errors and isinstance(errors[0], dict):
            return str(errors[0].get("code", ""))
        return ""

    @property
    def error_message(self):
        """The first error message of Intercom's error envelope (or the network error)."""
        errors = self.body.get("errors") if isinstance(self.body, dict) else None
        if errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", ""))
        return self.error

    def header_int(self, name):
        try:
            return int(float(self.headers.get(name, "")))
        except ValueError:
            return None


def base_url():
    """INTERCOM_API_BASE, else the region's base URL."""
    if settings.INTERCOM_API_BASE:
        return settings.INTERCOM_API_BASE.rstrip("/")
    return REGION_BASES.get(settings.INTERCOM_REGION.lower(), REGION_BASES["us"])


class Client:
    """A keep-alive session to one Intercom workspace."""

    def __init__(self, base, token, version, timeout):
        self.base = base
        self.timeout = timeout
        self.session = requests.Session()
        # The environment's proxy and CA settings are read once, here: requests would read them
        # (and match NO_PROXY) again on every request.
        self.session.trust_env = False
        self.session.proxies = requests.utils.get_environ_proxies(base)
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Intercom-Version": version,
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "intercom-relay",
            }
        )

    def request(self, method, path, body=None, params=None):
        started = time.monotonic()
        kwargs = {"timeout": self.timeout, "params": params}
        if body is not None:
            kwargs["data"] = json.dumps(body, allow_nan=False)
        try:
            http = self.session.request(method, self.base + path, **kwargs)
        except requests.Timeout as exc:
            return self._failed(method, path, body, started, f"timeout: {exc.__class__.__name__}")
        except requests.RequestException as exc:
            return self._failed(method, path, body, started, f"network: {exc.__class__.__name__}")
        duration = int((time.monotonic() - started) * 1000)
        try:
            parsed = http.json() if http.content else None
        except ValueError:
            parsed = http.text
        headers = {name: http.headers[name] for name in RESPONSE_HEADERS_KEPT if name in http.headers}
        return Response(method, path, body, http.status_code, parsed, headers, duration)

    @staticmethod
    def _failed(method, path, body, started, error):
        return Response(method, path, body, duration_ms=int((time.monotonic() - started) * 1000), error=error)

    def kept_request_headers(self):
        return {name: self.session.headers[name] for name in REQUEST_HEADERS_KEPT if name in self.session.headers}

    # The operations the relay uses, one line each.

    def me(self):
        return self.request("GET", "/me")

    def find_contact(self, external_id):
        return self.request("GET", f"/contacts/find_by_external_id/{quote(external_id, safe='')}")

    def create_contact(self, body):
        return self.request("POST", "/contacts", body)

    def update_contact(self, contact_id, body):
        return self.request("PUT", f"/contacts/{quote(contact_id, safe='')}", body)

    def unarchive_contact(self, contact_id):
        return self.request("POST", f"/contacts/{quote(contact_id, safe='')}/unarchive")

    def create_event(self, body):
        return self.request("POST", "/events", body)

    def upsert_company(self, body):
        return self.request("POST", "/companies", body)

    def attach_company(self, contact_id, company_id):
        return self.request("POST", f"/contacts/{quote(contact_id, safe='')}/companies", {"id": company_id})

    def list_data_attributes(self, model):
        return self.request("GET", "/data_attributes", params={"model": model})

    def create_data_attribute(self, model, name, data_type):
        return self.request("POST", "/data_attributes", {"name": name, "model": model, "data_type": data_type})


_client = None


def client():
    """This process's client, built from settings on first use."""
    global _client
    if _client is None or _client.base != base_url():
        _client = Client(
            base_url(),
            settings.INTERCOM_ACCESS_TOKEN,
            settings.INTERCOM_API_VERSION,
            (settings.INTERCOM_CONNECT_TIMEOUT, settings.INTERCOM_READ_TIMEOUT),
        )
    return _client


def reset_client():
    """Forget the cached client (tests change settings between cases)."""
    global _client
    _client = None
