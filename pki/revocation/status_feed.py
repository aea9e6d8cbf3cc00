"""How a process learns which certificates changed status: its own commits at once, other processes' within a bound.

Every change of a certificate's status columns, whatever statement makes it, is counted by database
triggers (migration 0008): per CA, ``status_feed.seq`` counts up and ``status_change`` holds (CA, seq,
serial). A feed row stays locked from the change to its commit, so a reader that sees a CA at N has
seen every change of that CA up to N. :meth:`StatusFeed.sync` reads the heads, fetches what is new
and hands ``{ca_id: serials}`` (``None``: assume everything of that CA changed) to its listener.

* **This process** (:func:`watch_local_changes`): a flush that changes a certificate's status notes
  the certificate on its DB-API connection; when the connection goes back to the pool -- after the
  commit, before the code that committed gets control back -- the listener is told. So the process
  that committed a revocation never answers from what it knew before, once its commit has returned.
* **SQLite, other processes**: every answer from the cache first asks whether the file saw a commit
  since the last sync (:class:`pki.store.listen.SqliteCommits`: the WAL-index header, else ``PRAGMA
  data_version``) and syncs when it did. Other processes' changes are seen by the first answer after
  their commit: no window.
* **PostgreSQL, other processes**: a thread (:class:`pki.store.listen.PostgresListener`) LISTENs to
  ``evpki_status`` (the trigger NOTIFYs at commit) and, every :data:`POLL_INTERVAL`, also syncs
  from the tables (a lost notification or a restarted listener costs nothing).
  :meth:`StatusFeed.fresh` is true only while the last confirmed sync began less than
  :data:`FRESHNESS_BOUND` ago; the cache answers only then. A change committed elsewhere is
  therefore served stale for at most :data:`FRESHNESS_BOUND` (notifications make it a few
  milliseconds in practice), and not at all while the database cannot be reached.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from pki.store import Database
from pki.store.listen import PostgresListener, SqliteCommits, postgres_conninfo
from pki.store.models import CertificateRow

__all__ = ["FRESHNESS_BOUND", "POLL_INTERVAL", "Changes", "StatusFeed", "open_feed", "watch_local_changes"]

log = logging.getLogger("evpki.ocsp")

POLL_INTERVAL = 0.05  # seconds between syncs of the PostgreSQL listener from the tables
FRESHNESS_BOUND = 0.1  # seconds: PostgreSQL, the most a change committed elsewhere can be answered stale
_CHANNEL = "evpki_status"
_STATUS_COLUMNS = ("status", "status_version", "revoked_at", "revocation_reason")
_NOTED = "evpki_status_changes"

Changes = dict[str, set[str] | None]  # ca_id -> changed serials (upper-case hex); None: all of the CA
Listener = Callable[[Changes], None]


class StatusFeed(abc.ABC):
    """Tells ``listener`` of status changes committed by other processes (and, harmlessly, this one)."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._heads: dict[str, int] | None = None  # per CA, the last seq delivered; None before the first sync
        self._sync_lock = threading.Lock()

    @abc.abstractmethod
    def fresh(self) -> bool:
        """Whether the listener has heard of every change committed elsewhere (within the bound)."""

    @abc.abstractmethod
    def sync(self) -> None:
        """Read the feed now and deliver what is new."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop listening and release the feed's connection."""

    def _apply(self, heads: dict[str, int], fetch: Callable[[str, int, int], list[tuple[int, str]]]) -> None:
        """Deliver the changes between the heads last delivered and ``heads`` (called under the sync lock)."""
        known = self._heads
        self._heads = heads
        if known is None:
            return  # the first sync: nothing was cached before it
        changes: Changes = {}
        for ca_id in known.keys() - heads.keys():
            changes[ca_id] = None  # the feed lost a CA (a restored database): forget all of it
        for ca_id, seq in heads.items():
            seen = known.get(ca_id, 0)
            if seq == seen:
                continue
            if seq < seen:
                changes[ca_id] = None
                continue
            rows = fetch(ca_id, seen, seq)
            # Sequence numbers are dense; a gap means rows were pruned or restored: all of the CA.
            changes[ca_id] = {serial for _, serial in rows} if len(rows) == seq - seen else None
        if changes:
            self._listener(changes)


_HEADS_SQL = "SELECT ca_id, seq FROM status_feed"
_CHANGES_SQL = "SELECT seq, serial FROM status_change WHERE ca_id = {p} AND seq > {p} AND seq <= {p} ORDER BY seq"


class SqliteStatusFeed(StatusFeed):
    def __init__(self, path: str, listener: Listener) -> None:
        super().__init__(listener)
        self._commits = SqliteCommits(path, probe="SELECT count(*) FROM status_feed")
        self._mark = self._commits.mark()
        self.sync()

    def fresh(self) -> bool:
        if self._commits.changed(self._mark):
            self.sync()
        return True

    def sync(self) -> None:
        with self._sync_lock:
            # What is read first counts as seen: a commit landing during the queries is synced again.
            mark = self._commits.mark()
            with self._commits.lock:
                heads = dict(self._commits.connection.execute(_HEADS_SQL).fetchall())
            self._apply(heads, self._fetch)
            self._mark = mark

    def _fetch(self, ca_id: str, after: int, upto: int) -> list[tuple[int, str]]:
        with self._commits.lock:
            return self._commits.connection.execute(_CHANGES_SQL.format(p="?"), (ca_id, after, upto)).fetchall()

    def close(self) -> None:
        self._commits.close()


class PostgresStatusFeed(StatusFeed):
    def __init__(self, conninfo: str, listener: Listener) -> None:
        super().__init__(listener)
        self._conninfo = conninfo
        self._confirmed = float("-inf")  # monotonic time at which the last confirmed sync began
        self._listener_thread = PostgresListener(
            conninfo,
            _CHANNEL,
            interval=POLL_INTERVAL,
            on_notify=self._notified,
            on_sync=self._sync_on,
            name="evpki-status-feed",
        )

    def fresh(self) -> bool:
        return time.monotonic() - self._confirmed < FRESHNESS_BOUND

    def sync(self) -> None:
        """Sync on a connection of its own (the listener's is busy waiting for notifications)."""
        import psycopg

        with psycopg.connect(self._conninfo, autocommit=True) as connection:
            self._sync_on(connection)

    def _sync_on(self, connection: Any) -> None:
        started = time.monotonic()
        with self._sync_lock:
            heads = {ca_id: int(seq) for ca_id, seq in connection.execute(_HEADS_SQL).fetchall()}

            def fetch(ca_id: str, after: int, upto: int) -> list[tuple[int, str]]:
                return connection.execute(_CHANGES_SQL.format(p="%s"), (ca_id, after, upto)).fetchall()

            self._apply(heads, fetch)
            self._confirmed = max(self._confirmed, started)

    def _notified(self, payload: str) -> bool:
        """Deliver one notification; False when it does not follow the last one (the tables must tell)."""
        ca_id, _, rest = payload.partition(" ")
        seq_text, _, serial = rest.partition(" ")
        with self._sync_lock:
            heads = self._heads
            if heads is not None and seq_text.isdigit() and int(seq_text) == heads.get(ca_id, 0) + 1:
                heads[ca_id] = int(seq_text)
                self._listener({ca_id: {serial}})
                return True
        return False

    def close(self) -> None:
        self._listener_thread.close()


def open_feed(database: Database, listener: Listener) -> StatusFeed:
    url = database.engine.url
    if database.is_sqlite:
        path = url.database or ""
        if not path or path == ":memory:":
            raise ValueError("the OCSP status feed needs a SQLite file")
        return SqliteStatusFeed(os.path.abspath(path), listener)
    return PostgresStatusFeed(postgres_conninfo(url), listener)


# -- this process's own commits -------------------------------------------------------------------

_watchers: weakref.WeakKeyDictionary[Any, weakref.WeakSet[_LocalWatcher]] = weakref.WeakKeyDictionary()
_watchers_lock = threading.Lock()


class _LocalWatcher:
    """A listener for the commits made through one connection pool (see :func:`watch_local_changes`)."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def unwatch(self) -> None:
        self.listener = _ignore


def _ignore(_changes: Changes) -> None:
    return None


def watch_local_changes(database: Database, listener: Listener) -> _LocalWatcher:
    """Call ``listener`` once a transaction of ``database`` that changed statuses has ended.

    The call comes when the connection returns to the pool: after the commit (or a rollback, which
    makes the call needless but harmless) and before the code that committed continues. The watch
    lasts as long as the caller keeps the returned watcher (or until its ``unwatch``).
    """
    pool = database.engine.pool
    watcher = _LocalWatcher(listener)
    with _watchers_lock:
        watchers = _watchers.get(pool)
        if watchers is None:
            watchers = _watchers[pool] = weakref.WeakSet()
            event.listen(pool, "checkin", _checkin_listener(watchers))
        watchers.add(watcher)
    return watcher


def _checkin_listener(watchers: weakref.WeakSet[_LocalWatcher]) -> Callable[[object, Any], None]:
    def on_checkin(_dbapi_connection: object, record: Any) -> None:
        noted: Changes | None = record.info.pop(_NOTED, None) if record is not None else None
        if not noted:
            return
        for watcher in list(watchers):
            try:
                watcher.listener(noted)
            except Exception:
                log.exception("OCSP cache invalidation failed")

    return on_checkin


def _changed_certificates(session: Session) -> Iterable[tuple[str, str]]:
    deleted = session.deleted
    for instance in (*session.dirty, *deleted):
        if isinstance(instance, CertificateRow):
            state = inspect(instance)
            if instance in deleted or any(state.attrs[name].history.has_changes() for name in _STATUS_COLUMNS):
                yield instance.issuer_id, instance.serial


@event.listens_for(Session, "after_flush")
def _on_flush(session: Session, _context: object) -> None:
    changed = list(_changed_certificates(session))
    if changed:
        noted: Changes = session.connection().info.setdefault(_NOTED, {})
        for ca_id, serial in changed:
            serials = noted.setdefault(ca_id, set())
            if serials is not None:
                serials.add(serial)
