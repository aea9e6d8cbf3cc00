"""The operator-call feed (pki.stations.call_feed): what tells a bridge process that a call was filed elsewhere.

PostgreSQL: the filing transaction NOTIFYs ``evpki_station_calls`` with the station; the feed's listener
names it, and after every (re)connection says "anything" (None). SQLite: the feed is due only once the
file has seen a commit. "Another process" is a second PKI on the same database (own engine and pool).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from pki import PKI
from pki.stations import CallFeed
from tests.conftest import PG_URL

WAIT = 30.0  # only bounds a failure: every wait ends on the event it waits for


class Heard:
    """What a feed told its listener, from the feed's thread."""

    def __init__(self) -> None:
        self.told: list[frozenset[str] | None] = []
        self._changed = threading.Condition()

    def __call__(self, stations: frozenset[str] | None) -> None:
        with self._changed:
            self.told.append(stations)
            self._changed.notify_all()

    def wait_for(self, stations: frozenset[str] | None, *, count: int = 1) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.told.count(stations) >= count, timeout=WAIT), self.told


@pytest.fixture
def other(fresh_pki: PKI) -> Iterator[PKI]:
    instance = PKI.open(fresh_pki.settings, clock=fresh_pki.clock, migrate=False)
    yield instance
    instance.close()


def _station(pki: PKI, identity: str) -> str:
    pki.stations.add(identity=identity, serial=f"SN-{identity}", security_profile=3)
    pki.stations.record_connection(identity, "2.0.1")
    return identity


@pytest.mark.skipif(PG_URL is not None, reason="SQLite only: PostgreSQL announces calls by NOTIFY")
def test_sqlite_feed_is_due_only_after_a_commit(fresh_pki: PKI, other: PKI) -> None:
    identity = _station(fresh_pki, "CS-FEED-SQLITE")
    feed: CallFeed = fresh_pki.station_calls.feed(Heard())
    try:
        assert not feed.due()  # nothing committed since it opened: an idle bridge makes no query
        other.station_calls.trigger(identity, message="v2g")
        assert feed.due()
        assert not feed.due()  # counted as looked at
    finally:
        feed.close()


@pytest.mark.skipif(PG_URL is None, reason="PostgreSQL only (LISTEN/NOTIFY): set EVPKI_TEST_DATABASE_URL")
def test_postgres_feed_names_the_station_a_call_was_filed_for(fresh_pki: PKI, other: PKI) -> None:
    identity = _station(fresh_pki, "CS-FEED-PG")
    heard = Heard()
    feed = fresh_pki.station_calls.feed(heard)
    try:
        heard.wait_for(None)  # listening: anything filed before is to be looked for once
        other.station_calls.trigger(identity, message="v2g")
        heard.wait_for(frozenset({identity}))
    finally:
        feed.close()


@pytest.mark.skipif(PG_URL is None, reason="PostgreSQL only (LISTEN/NOTIFY): set EVPKI_TEST_DATABASE_URL")
def test_postgres_feed_listens_again_after_losing_its_connection(fresh_pki: PKI, other: PKI) -> None:
    identity = _station(fresh_pki, "CS-FEED-LOST")
    heard = Heard()
    feed = fresh_pki.station_calls.feed(heard)
    try:
        heard.wait_for(None)
        with other._ctx.database.transaction() as connection:
            ended = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'evpki-call-feed'"
                )
            ).all()
        assert ended == [(True,)]
        heard.wait_for(None, count=2)  # reconnected: what was filed meanwhile must be looked for
        other.station_calls.trigger(identity, message="v2g")
        heard.wait_for(frozenset({identity}))
    finally:
        feed.close()
