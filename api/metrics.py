"""Prometheus metrics: ``GET /metrics`` and the counters behind it.

What is counted, and where:

* issuance by profile and outcome, revocations by reason, OCSP answers by status and cache
  (``hit``: a pre-signed response from the store; ``miss``: signed on the spot) come from
  :mod:`pki.core.events`, so every path is counted -- REST routes, the OCSP fast path that answers
  ahead of routing, and OCPP handlers running in this process;
* HTTP latency by route template comes from :class:`api.observability.RequestContext`;
* the gauge of certificates expiring within 30 days per CA is computed at scrape time with one
  grouped query and cached for a few seconds, so a scrape storm costs one query.

prometheus_client keeps one registry per process. With ``evpki serve --workers N`` set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by the workers (cleared before start):
counters and histograms are then aggregated across workers on every scrape; without it a scrape
shows the worker that happened to answer.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from api.deps import allow, pki_of
from pki import PKI
from pki.core import events
from pki.operations import Role

__all__ = ["EXPIRY_WINDOW", "install", "observe_http", "router"]

EXPIRY_WINDOW = dt.timedelta(days=30)
_EXPIRY_CACHE_S = 5.0
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ISSUANCE = Counter("evpki_issuance_total", "Issuance requests by profile and outcome", ["profile", "outcome"])
REVOCATIONS = Counter("evpki_revocations_total", "Revocations by reason", ["reason"])
OCSP_REQUESTS = Counter("evpki_ocsp_requests_total", "OCSP requests by answer status and cache", ["status", "cache"])
OCSP_LATENCY = Histogram(
    "evpki_ocsp_duration_seconds", "Time to answer an OCSP request", ["cache"], buckets=_LATENCY_BUCKETS
)
HTTP_LATENCY = Histogram(
    "evpki_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
EXPIRING = Gauge(
    "evpki_certificates_expiring_30d",
    "Valid certificates expiring within 30 days, per issuing CA",
    ["ca"],
    multiprocess_mode="mostrecent",
)

router = APIRouter(tags=["metrics"])

# Labelled children, looked up once: ``labels()`` costs more than the increment (the OCSP hot path).
# Series are bounded by the label values (routes are templates), and so are these dictionaries.
_ocsp_counters: dict[tuple[str, str], Counter] = {}
_ocsp_latencies: dict[str, Histogram] = {}
_http_latencies: dict[tuple[str, str, int], Histogram] = {}


def _observe(event: events.Event) -> None:
    if event.kind == "issuance":
        ISSUANCE.labels(event.labels["profile"], event.labels["outcome"]).inc()
    elif event.kind == "revocation":
        REVOCATIONS.labels(event.labels["reason"]).inc()
    elif event.kind == "ocsp":
        status, cache = event.labels["status"], event.labels["cache"]
        counter = _ocsp_counters.get((status, cache))
        if counter is None:
            counter = _ocsp_counters[(status, cache)] = OCSP_REQUESTS.labels(status, cache)
        counter.inc()
        if event.duration_s is not None:
            histogram = _ocsp_latencies.get(cache)
            if histogram is None:
                histogram = _ocsp_latencies[cache] = OCSP_LATENCY.labels(cache)
            histogram.observe(event.duration_s)


def install() -> None:
    """Start counting this process's domain events (idempotent)."""
    events.subscribe(_observe)


def observe_http(method: str, route: str, status: int, duration_s: float) -> None:
    key = (method, route, status)
    histogram = _http_latencies.get(key)
    if histogram is None:
        histogram = _http_latencies[key] = HTTP_LATENCY.labels(method, route, str(status))
    histogram.observe(duration_s)


class _ExpiryCache:
    """The last expiring-soon counts per PKI, refreshed at most every few seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at = -float("inf")
        self._owner: int | None = None
        self._shown: set[str] = set()

    def refresh(self, pki: PKI) -> None:
        now = time.monotonic()
        with self._lock:
            if self._owner == id(pki) and now - self._at < _EXPIRY_CACHE_S:
                return
            counts = pki.certificates.expiring_counts(EXPIRY_WINDOW)
            for ca in self._shown - set(counts):
                EXPIRING.labels(ca).set(0)  # a CA seen before stays visible at zero
            for ca, count in counts.items():
                EXPIRING.labels(ca).set(count)
            self._shown |= set(counts)
            self._owner, self._at = id(pki), now


_expiry = _ExpiryCache()


def _exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return _generate_latest(registry)
    return _generate_latest(REGISTRY)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition format", "content": {"text/plain": {}}}},
    **allow(Role.AUDITOR),
)
def metrics(request: Request) -> Response:
    """Counters, histograms and the expiring-soon gauge in the Prometheus text format (auditor or admin)."""
    _expiry.refresh(pki_of(request))
    return Response(_exposition(), media_type=CONTENT_TYPE_LATEST)
