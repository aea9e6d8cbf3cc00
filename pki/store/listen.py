"""Hearing of other processes' commits: SQLite's commit counters, PostgreSQL's LISTEN on a thread of its own.

Two consumers: the OCSP status feed (:mod:`pki.revocation.status_feed`) and the operator-call feed
(:mod:`pki.stations.call_feed`).

* :class:`SqliteCommits` tells whether any other connection has committed to a SQLite file since a
  mark. It compares the WAL-index header (the ``-shm`` file, mapped read-only; it changes with every
  commit, https://sqlite.org/walformat.html) -- a memory compare, no query -- and falls back to
  ``PRAGMA data_version`` (https://sqlite.org/pragma.html#pragma_data_version; ~3 µs more) where the
  mapping is not possible.
* :class:`PostgresListener` LISTENs to one channel on a dedicated psycopg connection in a daemon
  thread: each notification goes to ``on_notify``; ``on_sync`` runs on the same connection after
  every (re)connection -- after the LISTEN, so nothing committed since is missed -- and every
  ``interval``; a lost connection is retried every :data:`RECONNECT_DELAY`.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["RECONNECT_DELAY", "PostgresListener", "SqliteCommits", "postgres_conninfo"]

log = logging.getLogger("evpki.store")

RECONNECT_DELAY = 1.0  # seconds between attempts to get a lost listening connection back
_HEADER = 48  # bytes: the first copy of the WAL-index header (iChange, mxFrame, salts, checksums)

Mark = tuple[bytes, int]


class SqliteCommits:
    """Whether a SQLite database file has seen a commit from another connection since a :meth:`mark`.

    Its own read-only connection (``connection``, usable for queries under ``lock``); thread-safe.
    """

    def __init__(self, path: str, *, probe: str = "SELECT count(*) FROM sqlite_master") -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.connection.execute("PRAGMA query_only=ON")
        self.lock = threading.Lock()
        self._shm: mmap.mmap | None = None
        with contextlib.suppress(OSError, ValueError, sqlite3.Error):
            self.connection.execute(probe).fetchone()  # a read opens the WAL index
            with open(f"{path}-shm", "rb") as handle:
                self._shm = mmap.mmap(handle.fileno(), 4096, access=mmap.ACCESS_READ)

    def mark(self) -> Mark:
        """Where the file is now; take it *before* reading, so a commit landing during the read shows later."""
        header = self._shm[:_HEADER] if self._shm is not None else b""
        with self.lock:
            version = int(self.connection.execute("PRAGMA data_version").fetchone()[0])
        return header, version

    def changed(self, since: Mark) -> bool:
        shm = self._shm
        if shm is not None:
            return shm[:_HEADER] != since[0]
        with self.lock:
            return int(self.connection.execute("PRAGMA data_version").fetchone()[0]) != since[1]

    def close(self) -> None:
        with self.lock:
            if self._shm is not None:
                self._shm.close()
                self._shm = None
            self.connection.close()


class PostgresListener:
    """LISTEN ``channel`` in a thread: ``on_notify(payload)`` per notification (False ends the batch and
    syncs at once), ``on_sync(connection)`` after each (re)connection and at least every ``interval``."""

    def __init__(
        self,
        conninfo: str,
        channel: str,
        *,
        interval: float,
        on_notify: Callable[[str], bool],
        on_sync: Callable[[Any], None],
        name: str,
    ) -> None:
        if not channel.isidentifier():
            raise ValueError(f"not a channel name: {channel!r}")
        self._conninfo = conninfo
        self._channel = channel
        self._interval = interval
        self._on_notify = on_notify
        self._on_sync = on_sync
        self._closed = threading.Event()
        self._connection: Any = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def listening(self) -> bool:
        return self._connection is not None

    def _run(self) -> None:
        import psycopg

        while not self._closed.is_set():
            try:
                # Named after the thread, so that pg_stat_activity tells what the connection is for.
                connect = psycopg.connect(self._conninfo, autocommit=True, application_name=self._thread.name)
                with connect as connection:
                    connection.execute(f"LISTEN {self._channel}")
                    self._connection = connection
                    self._on_sync(connection)  # after LISTEN: nothing committed since is missed
                    while not self._closed.is_set():
                        # The generator holds the connection: the sync comes after it, never inside.
                        for notification in connection.notifies(timeout=self._interval):
                            if not self._on_notify(notification.payload):
                                break
                        self._on_sync(connection)
            except Exception as exc:
                if self._closed.is_set():
                    return
                log.warning("listening to %s interrupted (%s); retrying", self._channel, exc)
                self._closed.wait(RECONNECT_DELAY)
            finally:
                self._connection = None

    def close(self) -> None:
        self._closed.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.cancel_safe()
        self._thread.join(timeout=5)


def postgres_conninfo(url: Any) -> str:
    """A libpq connection string for a SQLAlchemy URL (``postgresql+psycopg://…``)."""
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))
