"""The OCSP answer cache: a pre-signed answer kept in memory, keyed by the request's DER, while it is current.

The RFC 5019 case -- one CertID, no nonce -- is the same bytes every time a client asks about one
certificate, so the cache maps those bytes to the :class:`~pki.revocation.ocsp_responder.OcspAnswer`
the responder gave (a stored, pre-signed response). A hit costs a dictionary look-up, a clock read
and the status feed's check (:mod:`pki.revocation.status_feed`); no parsing, no database. A request
with a nonce must be signed anyway, but its certificate's status comes from the same cache
(:meth:`OcspAnswerCache.status`, per CA and serial) under the same rules.

An entry is dropped when:

* the feed reports a status change of its certificate (this process: before the commit returns to
  its caller; other processes: see the feed), or of the responder certificate that signed it (then
  the whole CA goes);
* its time is up: ``RECHECK_INTERVAL`` after the responder was last confirmed current (the pace at
  which :class:`~pki.revocation.ocsp_signers.ResponderDirectory` notices a rotation), or
  ``ocsp_refresh_before`` ahead of nextUpdate, whichever comes first, by the PKI's clock;
* the cache is full (oldest first).

**Fills racing invalidations.** :meth:`OcspAnswerCache.token` is read before the database is; a fill
is kept only if no invalidation happened since (:meth:`put`). An answer read before a revocation
committed therefore never lands after the revocation was noticed, and one read after it is right.
While the feed cannot vouch for freshness (PostgreSQL unreachable) nothing is served or kept.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pki.revocation.status_feed import Changes, StatusFeed

if TYPE_CHECKING:
    from pki.revocation.ocsp_responder import OcspAnswer
    from pki.revocation.ocsp_responses import CertStatus

__all__ = ["DEFAULT_ENTRIES", "OcspAnswerCache"]

DEFAULT_ENTRIES = 200_000  # a few hundred MB at most: ~1.5 kB per entry (request, response, HTTP head)


@dataclass(frozen=True, slots=True)
class _Entry:
    answer: OcspAnswer
    ca_id: str
    serial: str  # upper-case hex
    responder_serial: str
    valid_until: dt.datetime


class OcspAnswerCache:
    """Request DER -> current pre-signed answer; safe to share between threads."""

    def __init__(self, *, max_entries: int = DEFAULT_ENTRIES) -> None:
        self._entries: dict[bytes, _Entry] = {}
        self._by_certificate: dict[tuple[str, str], set[bytes]] = {}
        self._by_responder: dict[tuple[str, str], set[bytes]] = {}
        # The status alone, per (CA, serial), for answers signed on the spot (a nonce): no database read.
        self._statuses: dict[tuple[str, str], tuple[CertStatus, dt.datetime]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self.feed: StatusFeed | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, request_der: bytes, now: dt.datetime) -> OcspAnswer | None:
        entry = self._entries.get(request_der)
        if entry is None:
            return None
        feed = self.feed
        if feed is None or not feed.fresh():
            return None
        # The feed may just have dropped this entry; look again rather than serve what it had.
        entry = self._entries.get(request_der)
        if entry is None or now >= entry.valid_until:
            return None
        return entry.answer

    def status(self, ca_id: str, serial: str, now: dt.datetime) -> CertStatus | None:
        """The certificate's current status, if known; same freshness rules as :meth:`get`."""
        known = self._statuses.get((ca_id, serial))
        if known is None:
            return None
        feed = self.feed
        if feed is None or not feed.fresh():
            return None
        known = self._statuses.get((ca_id, serial))
        if known is None or now >= known[1]:
            return None
        return known[0]

    def put_status(
        self, ca_id: str, serial: str, token: int | None, status: CertStatus, valid_until: dt.datetime
    ) -> bool:
        """Keep a status read from the database (after ``token``) unless something was invalidated since."""
        if token is None or status.name == "unknown":
            return False
        with self._lock:
            if token != self._generation:
                return False
            if len(self._statuses) >= self._max_entries:
                del self._statuses[next(iter(self._statuses))]
            self._statuses[(ca_id, serial)] = (status, valid_until)
        return True

    def token(self) -> int | None:
        """What :meth:`put` needs, read before the database is; ``None`` when nothing may be kept now."""
        feed = self.feed
        if feed is None or not feed.fresh():
            return None
        return self._generation

    def put(
        self,
        request_der: bytes,
        token: int | None,
        answer: OcspAnswer,
        *,
        ca_id: str,
        serial: str,
        responder_serial: str,
        valid_until: dt.datetime,
    ) -> bool:
        """Keep ``answer`` unless something was invalidated since ``token`` was read."""
        if token is None:
            return False
        entry = _Entry(answer, ca_id, serial, responder_serial, valid_until)
        with self._lock:
            if token != self._generation:
                return False
            self._drop(request_der)
            while len(self._entries) >= self._max_entries:
                self._drop(next(iter(self._entries)))
            self._entries[request_der] = entry
            self._by_certificate.setdefault((ca_id, serial), set()).add(request_der)
            self._by_responder.setdefault((ca_id, responder_serial), set()).add(request_der)
        return True

    def invalidate(self, changes: Changes) -> None:
        """Drop what ``changes`` (CA -> serials, ``None`` for all of a CA) may have made wrong."""
        with self._lock:
            self._generation += 1
            for ca_id, serials in changes.items():
                if serials is None:
                    for key in [k for k, e in self._entries.items() if e.ca_id == ca_id]:
                        self._drop(key)
                    for status_key in [k for k in self._statuses if k[0] == ca_id]:
                        del self._statuses[status_key]
                    continue
                for serial in serials:
                    self._statuses.pop((ca_id, serial), None)
                    # A revoked responder: every answer it signed goes.
                    for key in list(self._by_responder.get((ca_id, serial), ())):
                        self._drop(key)
                    for key in list(self._by_certificate.get((ca_id, serial), ())):
                        self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._statuses.clear()
            self._by_certificate.clear()
            self._by_responder.clear()

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for index, name in ((self._by_certificate, entry.serial), (self._by_responder, entry.responder_serial)):
            keys = index.get((entry.ca_id, name))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[(entry.ca_id, name)]
