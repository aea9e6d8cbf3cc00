"""Prometheus metrics: ``GET /metrics`` and the counters behind it.

What is counted, and where:

* issuance by profile and outcome, revocations by reason, OCSP answers by status and cache
  (``hit``: a pre-signed response from the store; ``miss``: signed on the spot) come from
  :mod:`pki.core.events`, so every path is counted -- REST routes, the OCSP fast path that answers
  ahead of routing, and OCPP handlers running in this process;
* HTTP latency by route template comes from :class:`api.observability.RequestContext`;
* on the OCSP path (tens of thousands of answers per second) prometheus_client's per-observation
  cost -- a lock and a value object per bucket, sum and counter -- would be a fifth of an answer,
  so OCSP counts and both latency histograms are added up in :class:`_Tally` objects and handed
  over in bulk: every 512 observations, a second after the first one pending, and before every
  scrape of this process (with several workers a scrape may miss up to a second of another's);
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
from bisect import bisect_left
from typing import Any

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

_TALLY_COUNT = 512
_TALLY_AGE_S = 1.0


class _Tally:
    """Observations of one series, added up here and handed to prometheus_client in bulk.

    ``child`` is a labelled Histogram child (``bounds`` its buckets: observations go into its bucket
    and sum values, the ones ``observe`` adds to one at a time) or a Counter child (``bounds``
    ``None``: each observation counts one). Should a prometheus_client release keep a histogram's
    values elsewhere, pending observations are replayed through ``observe`` instead (slower, right).
    """

    __slots__ = ("_bounds", "_child", "_counts", "_lock", "_pending", "_since", "_sum", "_values")

    def __init__(self, child: Any, bounds: tuple[float, ...] | None) -> None:
        self._child = child
        self._lock = threading.Lock()
        self._pending = 0
        self._since = 0.0
        self._sum = 0.0
        self._values: list[float] | None = None  # replayed observations, when bulk is not possible
        if bounds is not None and not (hasattr(child, "_buckets") and hasattr(child, "_sum")):
            self._values, bounds = [], None
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1) if bounds is not None else []  # the last one: +Inf

    def add(self, value: float = 1.0) -> None:
        with self._lock:
            if self._bounds is not None:
                self._counts[bisect_left(self._bounds, value)] += 1  # the first bucket with value <= le
                self._sum += value
            elif self._values is not None:
                self._values.append(value)
            self._pending += 1
            if self._pending == 1:
                self._since = time.monotonic()
            elif self._pending >= _TALLY_COUNT or time.monotonic() - self._since >= _TALLY_AGE_S:
                self._hand_over()

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._hand_over()

    def _hand_over(self) -> None:
        child = self._child
        if self._bounds is not None:
            for index, count in enumerate(self._counts):
                if count:
                    child._buckets[index].inc(count)
                    self._counts[index] = 0
            child._sum.inc(self._sum)
            self._sum = 0.0
        elif self._values is not None:
            for value in self._values:
                child.observe(value)
            self._values.clear()
        else:
            child.inc(self._pending)
        self._pending = 0


_tallies: dict[tuple[str, ...], _Tally] = {}
_tallies_lock = threading.Lock()


def _tally(key: tuple[str, ...], family: Counter | Histogram, bounds: tuple[float, ...] | None) -> _Tally:
    """The tally of ``family``'s series labelled ``key[1:]``, made on first use."""
    tally = _tallies.get(key)
    if tally is None:
        with _tallies_lock:
            tally = _tallies.get(key)
            if tally is None:
                tally = _tallies[key] = _Tally(family.labels(*key[1:]), bounds)
    return tally


def flush() -> None:
    """Hand every pending observation of this process to prometheus_client (before a scrape)."""
    for tally in list(_tallies.values()):
        tally.flush()


def _observe(event: events.Event) -> None:
    if event.kind == "issuance":
        ISSUANCE.labels(event.labels["profile"], event.labels["outcome"]).inc()
    elif event.kind == "revocation":
        REVOCATIONS.labels(event.labels["reason"]).inc()
    elif event.kind == "ocsp":
        status, cache = event.labels["status"], event.labels["cache"]
        _tally(("ocsp", status, cache), OCSP_REQUESTS, None).add()
        if event.duration_s is not None:
            _tally(("ocsp-latency", cache), OCSP_LATENCY, _LATENCY_BUCKETS).add(event.duration_s)


def install() -> None:
    """Start counting this process's domain events (idempotent)."""
    events.subscribe(_observe)


def observe_http(method: str, route: str, status: int, duration_s: float) -> None:
    """One HTTP answer's latency, under its route template (a bounded set: one tally each)."""
    _tally(("http", method, route, str(status)), HTTP_LATENCY, _LATENCY_BUCKETS).add(duration_s)


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
    flush()
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
