"""How a bridge process learns that an operator call was filed, by whichever process filed it.

A call is stored by :func:`pki.stations.calls.create_call` (REST, CLI, any process); the bridge
holding the station's connection must send it within a bound, without querying the table of calls
all the time. :meth:`CallFeed.due` says when a look at the pending calls is worth making, and on
PostgreSQL the listener is also told at once.

* **PostgreSQL**: the filing transaction runs ``pg_notify('evpki_station_calls', <station>)``; the
  notification is delivered at its commit. A :class:`pki.store.listen.PostgresListener` LISTENs on
  a dedicated connection and calls the listener with the station (``{identity}``), and with
  ``None`` (anything may have been filed) after every (re)connection -- notifications sent while
  not listening are lost. :meth:`CallFeed.due` is true while no listening connection is confirmed
  (polling as before) and every :data:`FALLBACK_INTERVAL` anyway, should a call be stored some
  other way than :func:`~pki.stations.calls.create_call`.
* **SQLite**: no notifications; :meth:`CallFeed.due` is true when the database file has seen a
  commit since the last look (:class:`pki.store.listen.SqliteCommits`, a memory compare) -- any
  commit, since the counters do not say which table changed: an idle bridge then makes no query.
"""

from __future__ import annotations

import abc
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from pki.store import Database
from pki.store.listen import PostgresListener, SqliteCommits, postgres_conninfo

__all__ = ["CHANNEL", "FALLBACK_INTERVAL", "CallFeed", "Filed", "open_call_feed"]

CHANNEL = "evpki_station_calls"
FALLBACK_INTERVAL = 5.0  # seconds: PostgreSQL, the longest between two looks at the tables while listening
_CONFIRM_INTERVAL = 1.0  # seconds between the listener's confirmations that it still listens

Filed = Callable[[frozenset[str] | None], None]  # the stations with new calls; None: any station


class CallFeed(abc.ABC):
    """Whether operator calls may have been filed since the last look (thread-safe)."""

    @abc.abstractmethod
    def due(self) -> bool:
        """True when a look at the pending calls is due; the caller then makes it (the feed counts it done)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop listening and release the feed's connection."""


class SqliteCallFeed(CallFeed):
    def __init__(self, path: str) -> None:
        self._commits = SqliteCommits(path)
        self._mark = self._commits.mark()
        self._lock = threading.Lock()

    def due(self) -> bool:
        with self._lock:
            if not self._commits.changed(self._mark):
                return False
            # Marked before the caller reads: a commit landing during its read makes the next look due.
            self._mark = self._commits.mark()
            return True

    def close(self) -> None:
        self._commits.close()


class PostgresCallFeed(CallFeed):
    def __init__(self, conninfo: str, filed: Filed) -> None:
        self._filed = filed
        self._confirmed = float("-inf")  # monotonic time the listener last confirmed it listens
        self._looked = time.monotonic()
        self._connection: Any = None  # the listening connection last confirmed
        self._listener = PostgresListener(
            conninfo,
            CHANNEL,
            interval=_CONFIRM_INTERVAL,
            on_notify=self._notified,
            on_sync=self._synced,
            name="evpki-call-feed",
        )

    def _notified(self, payload: str) -> bool:
        self._filed(frozenset({payload}))
        return True

    def _synced(self, connection: Any) -> None:
        connection.execute("SELECT 1")  # the connection is alive: every notification since LISTEN arrived
        if connection is not self._connection:
            self._connection = connection
            self._filed(None)  # (re)connected: what was filed while nobody listened was not announced
        self._confirmed = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._confirmed > 2 * _CONFIRM_INTERVAL or now - self._looked > FALLBACK_INTERVAL:
            self._looked = now
            return True
        return False

    def close(self) -> None:
        self._listener.close()


def open_call_feed(database: Database, filed: Filed) -> CallFeed:
    """The feed of ``database``; ``filed`` is called from the listener's thread (PostgreSQL only)."""
    if database.is_sqlite:
        path = database.engine.url.database or ""
        if not path or path == ":memory:":
            raise ValueError("the operator-call feed needs a SQLite file")
        return SqliteCallFeed(os.path.abspath(path))
    return PostgresCallFeed(postgres_conninfo(database.engine.url), filed)
