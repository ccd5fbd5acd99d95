"""/metrics in Prometheus's text format: a fresh registry per scrape, its one collector reading the
database (forwarding.metric_values: bounded, indexed queries). Off unless RELAY_METRICS_TOKEN (a
bearer token) or RELAY_METRICS_ALLOW (IPs and networks, matched against REMOTE_ADDR) is set;
with both set, a scrape needs both."""

import hmac
import ipaddress
import logging
from functools import lru_cache

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from forwarding import metric_values as values

logger = logging.getLogger(__name__)


@require_GET
def metrics(request):
    token = getattr(settings, "RELAY_METRICS_TOKEN", "") or ""
    allow = getattr(settings, "RELAY_METRICS_ALLOW", "") or ""
    if not token and not allow:
        return HttpResponse("Metrics are off (set RELAY_METRICS_TOKEN or RELAY_METRICS_ALLOW).\n", status=404)
    if allow and not address_allowed(request.META.get("REMOTE_ADDR", ""), allow):
        return HttpResponse("This address may not read the metrics.\n", status=403)
    if token and not token_matches(request.headers.get("Authorization", ""), token):
        response = HttpResponse("A bearer token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RelayCollector())
    response = HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response


def token_matches(header, token):
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def address_allowed(address, allow):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == network.version and ip in network for network in networks(allow))


@lru_cache(maxsize=8)
def networks(allow):
    """RELAY_METRICS_ALLOW parsed ("10.0.0.0/8, 192.0.2.7"); an entry that is no address is left out."""
    found = []
    for entry in allow.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            found.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            logger.warning("RELAY_METRICS_ALLOW: %r is no IP address or network; left out", entry)
    return tuple(found)


class RelayCollector:
    """Yields every metric family from the database at each scrape (never cached in the process:
    every web worker answers the same)."""

    def collect(self):
        now = timezone.now()
        yield from deliveries(now)
        yield from ingestion(now)
        yield from backlog(now)
        window = values.attempts(now)
        yield from attempts(window)
        yield from requests(window)
        status = values.intercom_status()
        yield from intercom(status, values.rate_limit(), now)
        yield from slots(status)


def gauge(name, documentation, value=None, labels=(), samples=()):
    family = GaugeMetricFamily(name, documentation, value=value, labels=list(labels) or None)
    for label_values, sample in samples:
        family.add_metric(label_values, sample)
    return family


def deliveries(now):
    tallies = values.tallies(now)
    yield gauge(
        "relay_deliveries",
        f"Deliveries received in the last {values.TALLY_DAYS} days, by their state now (the delivery tallies).",
        labels=["state"],
        samples=[([state], n) for state, n in sorted(tallies.by_state.items())],
    )
    yield gauge(
        "relay_ingest_accepted_calls",
        "Calls accepted in the current clock hour so far, and in the previous one (the delivery tallies).",
        labels=["hour"],
        samples=[(["current"], tallies.this_hour), (["previous"], tallies.last_hour)],
    )


def ingestion(now):
    yield gauge(
        "relay_ingest_rejected_messages",
        "Messages refused by ingestion in the last hour, by code (the rejected messages kept).",
        labels=["code"],
        samples=[([code], n) for code, n in sorted(values.rejected_by_code(now).items())],
    )


def backlog(now):
    found = values.backlog(now)
    yield gauge(
        "relay_backlog_due",
        f"Pending deliveries due now (counted up to {values.BACKLOG_COUNTED_UP_TO}).",
        value=found.due,
    )
    yield gauge(
        "relay_backlog_oldest_due_seconds",
        "How long the longest-due pending delivery has been due (0: none is due).",
        value=found.oldest_due_seconds,
    )


def attempts(window):
    minutes = int(values.ATTEMPT_WINDOW.total_seconds() // 60)
    yield gauge(
        "relay_attempts_recent",
        f"Finished delivery attempts of the last {minutes} minutes (relay_attempts_recent_window_seconds), "
        "by outcome and cause.",
        labels=["outcome", "cause"],
        samples=[([outcome, cause], n) for (outcome, cause), n in sorted(window.counts.items())],
    )
    yield gauge(
        "relay_attempts_recent_window_seconds",
        f"The span the recent attempts and requests cover: {minutes} minutes, or less when more than "
        f"{values.ATTEMPTS_SCANNED} attempts were made in them.",
        value=window.window_seconds,
    )


def requests(window):
    found = values.intercom_requests(window.first_pk)
    yield gauge(
        "relay_intercom_requests_recent",
        "HTTP requests to Intercom made by the recent attempts, by status (none: no answer).",
        labels=["status"],
        samples=[
            ([str(status) if status is not None else "none"], n)
            for status, n in sorted(found.by_status.items(), key=str)
        ],
    )
    histogram = HistogramMetricFamily(
        "relay_intercom_request_duration_seconds",
        "How long the recent attempts' HTTP requests to Intercom took (over the recent window, not since start).",
    )
    buckets = [(repr(bound), n) for bound, n in found.buckets] + [("+Inf", found.count)]
    histogram.add_metric([], buckets, found.seconds)
    yield histogram


def intercom(status, window, now):
    unreachable_for = (now - status.unreachable_since).total_seconds() if status and status.unreachable_since else 0
    yield gauge(
        "relay_intercom_up",
        "1 while the last request to Intercom succeeded (no refused token, not unreachable), else 0.",
        value=int(bool(status and status.last_success_at and not status.auth_failed_at and not unreachable_for)),
    )
    yield gauge(
        "relay_intercom_auth_failed",
        "1 while Intercom refuses the token (401/403 since the last success).",
        value=int(bool(status and status.auth_failed_at)),
    )
    yield gauge(
        "relay_intercom_unreachable_seconds",
        "How long Intercom has been unreachable (network errors, timeouts or a run of 5xx); 0 when it answers.",
        value=max(0.0, unreachable_for),
    )
    yield gauge(
        "relay_intercom_consecutive_failures",
        "Failed requests to Intercom since its last success.",
        value=status.failures if status else 0,
    )
    if status and status.last_success_at:
        yield gauge(
            "relay_intercom_last_success_timestamp_seconds",
            "When a request to Intercom last succeeded (Unix time).",
            value=status.last_success_at.timestamp(),
        )
    if window is not None and window.remaining is not None:
        yield gauge(
            "relay_intercom_rate_limit_remaining",
            "Requests left in Intercom's rate-limit window, as its last answer said.",
            value=window.remaining,
        )
        if window.limit is not None:
            yield gauge("relay_intercom_rate_limit_limit", "Intercom's rate limit per window.", value=window.limit)
        if window.reset_at is not None:
            yield gauge(
                "relay_intercom_rate_limit_reset_seconds",
                "Seconds until Intercom's rate-limit window resets (0: reset).",
                value=max(0.0, (window.reset_at - now).total_seconds()),
            )


def slots(status):
    usage = values.event_name_usage()
    yield gauge("relay_event_name_slots_used", "Event names holding one of Intercom's slots.", value=usage.used)
    yield gauge("relay_event_name_slots_limit", "INTERCOM_EVENT_NAME_LIMIT.", value=usage.limit)
    yield gauge("relay_event_names_held", "Event names holding deliveries now.", value=values.names_held())
    yield gauge(
        "relay_data_attribute_slots_used",
        "Custom data attributes Intercom holds in the shown workspace, by model (contacts' and companies' "
        "count together against the limit).",
        labels=["model"],
        samples=[([model], n) for model, n in sorted(values.attribute_slots(status).items())],
    )
    yield gauge("relay_data_attribute_slots_limit", "INTERCOM_ATTRIBUTE_LIMIT.", value=values.attribute_limit())
