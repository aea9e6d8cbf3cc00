"""Builders for PKIs that live longer than one test (module-scoped) or use their own hierarchy file.

``fresh_pki`` in ``tests/conftest.py`` costs an ``init`` per test; modules whose tests only add
state (new certificates, CRLs) share one instance built here instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pki import PKI
from pki.core.clock import FixedClock
from tests.conftest import ORG, database_url, drop_database, make_settings

__all__ = ["START", "open_pki"]

START = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


@contextmanager
def open_pki(home: Path, *, config: Path | None = None, init: bool = True) -> Iterator[PKI]:
    """A PKI with a :class:`FixedClock` at :data:`START` in ``home``, initialised unless ``init`` is False."""
    url, name = database_url(home)
    instance = PKI.open(make_settings(home, url), clock=FixedClock(START))
    try:
        if init:
            instance.cas.init(config=config, organization=ORG, actor="test")
        yield instance
    finally:
        instance.close()
        drop_database(name)
