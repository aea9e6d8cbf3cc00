"""The store: Alembic migrations create exactly the model's schema; SQLite runs in WAL mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

from pki import PKI
from pki.store import models  # noqa: F401  (registers the tables)
from pki.store.db import Database
from tests.conftest import database_url, drop_database


def test_migrations_match_the_models(tmp_path: Path) -> None:
    url, name = database_url(tmp_path)
    database = Database(url)
    try:
        database.migrate()
        database.migrate()  # idempotent
        with database.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        assert diff == []
    finally:
        database.dispose()
        drop_database(name)


def test_sqlite_uses_wal_and_normal_sync(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    database.dispose()


def test_failed_write_transaction_leaves_nothing(pki: PKI) -> None:
    before = pki.audit.count()
    database: Database = pki._ctx.database
    try:
        with database.write() as session:
            from pki.operations import audit

            audit.append(session, at=pki.clock.now(), actor="test", action="noop")
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    assert pki.audit.count() == before
    assert pki.audit.verify().ok


def test_a_value_the_database_refuses_is_invalid_input(fresh_pki) -> None:  # type: ignore[no-untyped-def]
    from pki.core.errors import InvalidInput

    if not fresh_pki.settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("SQLite compares NUL characters; PostgreSQL refuses them (the case this maps)")
    with pytest.raises(InvalidInput, match="NUL"):
        fresh_pki.audit.records(action="bad\x00action")
    assert fresh_pki.audit.verify().ok  # the session is usable again
