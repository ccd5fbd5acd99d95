"""The only module that speaks HTTP to Intercom. It never touches the database and never
raises for an HTTP status: every call returns a `Response` value."""

import json
import os
import time
from copy import copy as _copy
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

import certifi
import requests
import urllib3
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


def _parsed(content):
    """An answer's body: JSON when it is, else its text."""
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def base_url():
    """INTERCOM_API_BASE, else the region's base URL."""
    if settings.INTERCOM_API_BASE:
        return settings.INTERCOM_API_BASE.rstrip("/")
    return REGION_BASES.get(settings.INTERCOM_REGION.lower(), REGION_BASES["us"])


class Client:
    """Keep-alive connections to one Intercom workspace, through urllib3 itself: requests' own
    layer (sessions, hooks, cookies, adapters) cost more CPU per request than urllib3's pool."""

    recorder = None  # see `recorded`

    def __init__(self, base, token, version, timeout):
        self.base = base
        self.timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Intercom-Version": version,
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "intercom-relay",
        }
        # The environment's proxy (HTTPS_PROXY, NO_PROXY...) and CA bundle, read once, as requests
        # reads them.
        proxies = requests.utils.get_environ_proxies(base)
        proxy = proxies.get(urlsplit(base).scheme) or proxies.get("all")
        ca_certs = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
        options = {"num_pools": 2, "maxsize": 1, "cert_reqs": "CERT_REQUIRED", "ca_certs": ca_certs}
        self.pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)

    def recorded(self, recorder):
        """This client (its connections shared), telling `recorder` before and after each
        request: `recorder.before_request()`, `recorder.after_request(response)`."""
        copy = _copy(self)
        copy.recorder = recorder
        return copy

    def request(self, method, path, body=None, params=None):
        if self.recorder is None:
            return self._request(method, path, body, params)
        self.recorder.before_request()
        response = self._request(method, path, body, params)
        self.recorder.after_request(response)
        return response

    def _request(self, method, path, body, params):
        started = time.monotonic()
        url = self.base + path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body, allow_nan=False).encode()
        try:
            http = self.pool.urlopen(
                method, url, body=data, headers=self.headers, timeout=self.timeout, retries=False, redirect=False
            )
        except urllib3.exceptions.NewConnectionError as exc:  # refused, unreachable: not a timeout
            return self._failed(method, path, body, started, f"network: {exc.__class__.__name__}")
        except urllib3.exceptions.TimeoutError as exc:
            return self._failed(method, path, body, started, f"timeout: {exc.__class__.__name__}")
        except urllib3.exceptions.HTTPError as exc:
            return self._failed(method, path, body, started, f"network: {exc.__class__.__name__}")
        duration = int((time.monotonic() - started) * 1000)
        headers = {name: http.headers[name] for name in RESPONSE_HEADERS_KEPT if name in http.headers}
        return Response(method, path, body, http.status, _parsed(http.data), headers, duration)

    @staticmethod
    def _failed(method, path, body, started, error):
        return Response(method, path, body, duration_ms=int((time.monotonic() - started) * 1000), error=error)

    def kept_request_headers(self):
        return {name: self.headers[name] for name in REQUEST_HEADERS_KEPT if name in self.headers}

    # The operations the relay uses, one line each.

    def me(self):
        return self.request("GET", "/me")

    def find_contact(self, external_id):
        return self.request("GET", f"/contacts/find_by_external_id/{quote(external_id, safe='')}")

    def create_contact(self, body):
        return self.request("POST", "/contacts", body)

    def update_contact(self, contact_id, body):
        return self.request("PUT", f"/contacts/{quote(contact_id, safe='')}", body)

    def delete_contact(self, contact_id):
        return self.request("DELETE", f"/contacts/{quote(contact_id, safe='')}")

    def unarchive_contact(self, contact_id):
        return self.request("POST", f"/contacts/{quote(contact_id, safe='')}/unarchive")

    def create_event(self, body):
        return self.request("POST", "/events", body)

    def upsert_company(self, body):
        return self.request("POST", "/companies", body)

    def find_company(self, company_id):
        return self.request("GET", "/companies", params={"company_id": company_id})

    def detach_company(self, contact_id, company_id):
        return self.request("DELETE", f"/contacts/{quote(contact_id, safe='')}/companies/{quote(company_id, safe='')}")

    def attach_company(self, contact_id, company_id):
        return self.request("POST", f"/contacts/{quote(contact_id, safe='')}/companies", {"id": company_id})

    def tag_company(self, name, company_id):
        return self.request("POST", "/tags", {"name": name, "companies": [{"id": company_id}]})

    def list_data_attributes(self, model=None):
        return self.request("GET", "/data_attributes", params={"model": model} if model else None)

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
