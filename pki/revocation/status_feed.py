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
* **SQLite, other processes**: every answer from the cache first compares the WAL-index header (the
  ``-shm`` file, mapped read-only; it changes with every commit, https://sqlite.org/walformat.html)
  with the one of the last sync, and syncs when it differs. Other processes' changes are seen by the
  first answer after their commit: no window. Without the mapping, ``PRAGMA data_version`` does the
  same for ~3 µs more.
* **PostgreSQL, other processes**: a thread LISTENs to ``evpki_status`` (the trigger NOTIFYs at
  commit) and, every :data:`POLL_INTERVAL`, also syncs from the tables (a lost notification or a
  restarted listener costs nothing). :meth:`StatusFeed.fresh` is true only while the last
  confirmed sync began less than :data:`FRESHNESS_BOUND` ago; the cache answers only then. A change
  committed elsewhere is therefore served stale for at most :data:`FRESHNESS_BOUND` (notifications
  make it a few milliseconds in practice), and not at all while the database cannot be reached.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import mmap
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from pki.store import Database
from pki.store.models import CertificateRow

__all__ = ["FRESHNESS_BOUND", "POLL_INTERVAL", "Changes", "StatusFeed", "open_feed", "watch_local_changes"]

log = logging.getLogger("evpki.ocsp")

POLL_INTERVAL = 0.05  # seconds between syncs of the PostgreSQL listener from the tables
FRESHNESS_BOUND = 0.1  # seconds: PostgreSQL, the most a change committed elsewhere can be answered stale
_RECONNECT_DELAY = 1.0
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
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._connection.execute("PRAGMA query_only=ON")
        self._header = b""
        self._shm: mmap.mmap | None = None
        self._data_version = -1
        with contextlib.suppress(OSError, ValueError):
            self._connection.execute("SELECT count(*) FROM status_feed").fetchone()  # opens the WAL index
            with open(f"{path}-shm", "rb") as handle:
                self._shm = mmap.mmap(handle.fileno(), 4096, access=mmap.ACCESS_READ)
        self.sync()

    def fresh(self) -> bool:
        shm = self._shm
        if shm is not None:
            # The first copy of the WAL-index header: iChange, mxFrame, salts, checksums.
            if shm[:48] != self._header:
                self.sync()
        elif self._version() != self._data_version:
            self.sync()
        return True

    def _version(self) -> int:
        with self._sync_lock:
            return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def sync(self) -> None:
        with self._sync_lock:
            # What is read first counts as seen: a commit landing during the queries is synced again.
            header = self._shm[:48] if self._shm is not None else b""
            version = int(self._connection.execute("PRAGMA data_version").fetchone()[0])
            heads = dict(self._connection.execute(_HEADS_SQL).fetchall())
            self._apply(heads, self._fetch)
            self._header, self._data_version = header, version

    def _fetch(self, ca_id: str, after: int, upto: int) -> list[tuple[int, str]]:
        return self._connection.execute(_CHANGES_SQL.format(p="?"), (ca_id, after, upto)).fetchall()

    def close(self) -> None:
        with self._sync_lock:
            if self._shm is not None:
                self._shm.close()
                self._shm = None
            self._connection.close()


class PostgresStatusFeed(StatusFeed):
    def __init__(self, conninfo: str, listener: Listener) -> None:
        super().__init__(listener)
        self._conninfo = conninfo
        self._confirmed = float("-inf")  # monotonic time at which the last confirmed sync began
        self._closed = threading.Event()
        self._connection: Any = None
        self._thread = threading.Thread(target=self._run, name="evpki-status-feed", daemon=True)
        self._thread.start()

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

    def _run(self) -> None:
        import psycopg

        while not self._closed.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    self._connection = connection
                    connection.execute(f"LISTEN {_CHANNEL}")
                    self._sync_on(connection)  # after LISTEN: nothing committed since is missed
                    while not self._closed.is_set():
                        # The generator holds the connection: the sync comes after it, never inside.
                        for notification in connection.notifies(timeout=POLL_INTERVAL):
                            if not self._notified(notification.payload):
                                break
                        self._sync_on(connection)
            except Exception as exc:  # the database went away: the cache stops answering (fresh() goes false)
                if self._closed.is_set():
                    return
                log.warning("OCSP status feed interrupted (%s); retrying", exc)
                self._closed.wait(_RECONNECT_DELAY)
            finally:
                self._connection = None

    def close(self) -> None:
        self._closed.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.cancel_safe()
        self._thread.join(timeout=5)


def open_feed(database: Database, listener: Listener) -> StatusFeed:
    url = database.engine.url
    if database.is_sqlite:
        path = url.database or ""
        if not path or path == ":memory:":
            raise ValueError("the OCSP status feed needs a SQLite file")
        return SqliteStatusFeed(os.path.abspath(path), listener)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresStatusFeed(conninfo, listener)


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
