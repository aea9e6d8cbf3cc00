"""Engine, transactions and schema migration for SQLite (WAL) and PostgreSQL.

:meth:`Database.write` (ORM session) and :meth:`Database.transaction` (Core connection) are
the ways to change state: one transaction, committed on success and rolled back on any
error. On SQLite it starts with ``BEGIN IMMEDIATE`` so writers queue instead of failing
half-way on a lock upgrade; on PostgreSQL the code that needs ordering (audit head, CRL
number) takes row locks with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm import Session

from pki.core.errors import InvalidInput, Unavailable

__all__ = ["Database", "WriterQueue", "joined_session"]


def joined_session(connection: Connection) -> Session:
    """An ORM session inside ``connection``'s current transaction, SAVEPOINT included, that never ends it.

    SQLAlchemy's default for a connection inside a SAVEPOINT (``conditional_savepoint``) gives the
    session a SAVEPOINT of its own, which ``close()`` rolls back -- together with whatever the
    connection wrote meanwhile (a group-commit batch stores each issuance in a SAVEPOINT, so a
    renewal's certificate row vanished). ``rollback_only`` is what the default already does
    outside a SAVEPOINT: the session's statements are the caller's, committed or not by it.
    """
    return Session(bind=connection, join_transaction_mode="rollback_only")


_BUSY_TIMEOUT_S = 30


def _lock_path(url: str) -> Path | None:
    """Next to a SQLite database file: ``<file>-writer`` (as ``-wal`` and ``-shm``); None in memory."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(f"{path}-writer")


class WriterQueue:
    """The turn to write a SQLite database: threads of this process, then processes, in turn.

    A reentrant lock for the threads; around the outermost hold, an exclusive ``flock`` on the
    ``-writer`` file next to the database for the processes (two API workers, the bridge, the
    CLI). A blocked ``flock`` sleeps in the kernel and wakes when the holder lets go, where
    SQLite's busy handler would poll. It only orders evpki's own writers: SQLite's locking still
    decides, so a writer that does not take it (the ``sqlite3`` shell) meets the busy timeout as
    before. The kernel drops the lock of a process that dies.
    """

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        if path is not None:
            with contextlib.suppress(OSError):  # a read-only directory: threads still queue
                self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def __enter__(self) -> WriterQueue:
        self._lock.acquire()
        if self._depth == 0 and self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)  # releases the GIL while it waits
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *_: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # also drops the flock, should it be held
                self._fd = None


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, connect_args={"timeout": _BUSY_TIMEOUT_S})
            _configure_sqlite(self.engine)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._write_engine = self.engine.execution_options(evpki_write=True)
        # SQLite has one writer at a time. Writers queue here for it instead of in SQLite's busy
        # handler, which polls with sleeps of up to 100 ms: under concurrent writes (the bridge's
        # station threads, two API workers) that sleeping, not the work, set the pace.
        self._write_lock: contextlib.AbstractContextManager[object] = (
            WriterQueue(_lock_path(url)) if self.is_sqlite else contextlib.nullcontext()
        )

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One read-write transaction."""
        with self._write_lock:
            session = Session(self._write_engine, expire_on_commit=False)
            try:
                with _unavailable_on_connect_error():
                    session.begin()
                with _refused_data_is_invalid_input():
                    yield session
                    session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One read-write transaction on a Core connection, for hot paths that build no ORM objects.

        Same semantics as :meth:`write` (``BEGIN IMMEDIATE`` on SQLite, commit on success, roll
        back on any error) without the Session's bookkeeping, which costs more than the
        statements of an issuance. :func:`joined_session` joins it when ORM rows are needed.
        """
        with self._write_lock:
            with _unavailable_on_connect_error():
                connection = self._write_engine.connect()
            try:
                with _unavailable_on_connect_error():
                    transaction = connection.begin()
                try:
                    with _refused_data_is_invalid_input():
                        yield connection
                        transaction.commit()
                except BaseException:
                    transaction.rollback()
                    raise
            finally:
                connection.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        session = Session(self.engine, expire_on_commit=False)
        try:
            with _unavailable_on_connect_error():
                session.begin()
            with _refused_data_is_invalid_input():
                yield session
        finally:
            # close() ends the transaction without expiring loaded objects, which callers keep using.
            session.close()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        with _unavailable_on_connect_error(), self.engine.begin() as connection:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def is_initialised(self) -> bool:
        with _unavailable_on_connect_error():
            return inspect(self.engine).has_table("alembic_version")

    def dispose(self) -> None:
        self.engine.dispose()
        if isinstance(self._write_lock, WriterQueue):
            self._write_lock.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("pki.store") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextmanager
def _refused_data_is_invalid_input() -> Iterator[None]:
    """A value the database cannot hold is bad input, not a server error: PostgreSQL refuses NUL
    characters in text and integers beyond its column types, where SQLite stores or compares them."""
    try:
        yield
    except DataError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "value out of range"
        raise InvalidInput(f"a value cannot be stored or compared: {reason}") from None


@contextmanager
def _unavailable_on_connect_error() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise Unavailable(f"database unavailable: {reason}") from None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's own handling defers it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("evpki_write", False)
        # Straight to the driver: a full statement execution here cost as much as an INSERT,
        # once per transaction, and BEGIN has no parameters or result to process.
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
