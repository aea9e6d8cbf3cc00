"""Backup and restore: the database and the encrypted key files in one ``tar.gz`` with a manifest.

Archive layout (mode 0600)::

    manifest.json              format version, created, alembic revision, database kind,
                               table row counts, PKCS#11 key references, SHA-256 of every file
    database/<table>.jsonl     one JSON object per row, in primary-key order
    keys/<key id>.pem          the key files exactly as they are: still encrypted

The database is dumped as JSON lines through SQLAlchemy inside one read transaction (a
``REPEATABLE READ`` snapshot on PostgreSQL; on SQLite in WAL mode a read transaction is a
snapshot too), so the dump is consistent while the CA keeps working, and it restores into either
kind of database -- SQLite <-> SQLite, PostgreSQL <-> PostgreSQL, and across. Keys held on a
PKCS#11 token never leave it: the manifest names them (CA id, key id) and restore expects the
same token to be configured.

Restore checks every SHA-256 before touching anything, refuses a target that already holds a
PKI (unless ``force``), writes all tables in one transaction, and verifies the audit chain
inside that transaction, so a restore either yields a verified PKI or changes nothing in the
database.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Connection, DateTime, LargeBinary, Table, delete, func, insert, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from pki.core.errors import Conflict, IntegrityError, InvalidInput, Unavailable
from pki.core.settings import Settings
from pki.operations import audit
from pki.store import models as _models  # noqa: F401  (registers the tables in SQLModel.metadata)
from pki.store.db import Database

__all__ = ["FORMAT_VERSION", "BackupReport", "RestoreReport", "create_backup", "restore_backup"]

FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_BATCH = 500
_MAX_MANIFEST = 1 << 20


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    revision: str
    database: str
    tables: dict[str, int]
    keys: int
    pkcs11_keys: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    revision: str
    tables: dict[str, int]
    keys: int
    audit_records: int


def _tables() -> list[Table]:
    return [table for table in SQLModel.metadata.sorted_tables if table.name != "alembic_version"]


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _decoder(table: Table) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    for column in table.columns:
        if isinstance(column.type, DateTime):
            kinds[column.name] = _decode_datetime
        elif isinstance(column.type, LargeBinary):
            kinds[column.name] = base64.b64decode
    return kinds


def _decode_datetime(text_value: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text_value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _revision(connection: Connection) -> str:
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    if revision is None:
        raise Unavailable("the database has no schema revision: run 'evpki init' first")
    return str(revision)


# -- backup ------------------------------------------------------------------------------------


def create_backup(settings: Settings, out: Path, *, now: dt.datetime | None = None) -> BackupReport:
    """Write a backup of the configured database and key directory to ``out`` (mode 0600)."""
    database = Database(settings.resolved_database_url)
    try:
        files: dict[str, bytes] = {}
        counts: dict[str, int] = {}
        with _snapshot(database) as connection:
            revision = _revision(connection)
            for table in _tables():
                lines = [
                    json.dumps({key: _encode(value) for key, value in row._mapping.items()}, sort_keys=True)
                    for row in connection.execute(select(table).order_by(*table.primary_key.columns))
                ]
                files[f"database/{table.name}.jsonl"] = ("\n".join(lines) + "\n" if lines else "").encode()
                counts[table.name] = len(lines)
            hsm_keys = [
                {"ca": str(ca), "key_id": str(key_id), "backend": str(backend)}
                for ca, key_id, backend in connection.execute(
                    text("SELECT id, key_id, key_backend FROM certificate_authority ORDER BY id")
                )
                if backend != "file"
            ]
        kind = database.engine.dialect.name
    finally:
        database.dispose()
    keys = 0
    if settings.keys_dir.is_dir():
        for path in sorted(settings.keys_dir.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                files[f"keys/{path.name}"] = path.read_bytes()
                keys += 1
    manifest = {
        "format": "evpki-backup",
        "version": FORMAT_VERSION,
        "created": (now or dt.datetime.now(dt.UTC)).isoformat(),
        "alembic_revision": revision,
        "database": kind,
        "tables": counts,
        "pkcs11_keys": hsm_keys,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    _write_archive(out, manifest, files)
    return BackupReport(out, revision, kind, counts, keys, hsm_keys)


@contextlib.contextmanager
def _snapshot(database: Database) -> Iterator[Connection]:
    """One read transaction that sees a single point in time."""
    options = {} if database.is_sqlite else {"isolation_level": "REPEATABLE READ"}
    try:
        connection = database.engine.connect().execution_options(**options)
    except OperationalError as exc:
        raise Unavailable(f"database unavailable: {str(exc.orig or exc).strip().splitlines()[0]}") from None
    try:
        with connection.begin():
            yield connection
    finally:
        connection.close()


def _write_archive(out: Path, manifest: dict[str, Any], files: dict[str, bytes]) -> None:
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise InvalidInput(f"{out}: {exc.strerror}") from None
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT; a backup holds secrets
    with os.fdopen(descriptor, "wb") as handle, tarfile.open(fileobj=handle, mode="w:gz") as archive:
        _add(archive, _MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
        for name, data in files.items():
            _add(archive, name, data)


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(data))


# -- restore -----------------------------------------------------------------------------------


def _read_archive(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and every file it lists, each checked against its SHA-256; nothing else is read."""
    try:
        archive = tarfile.open(path, mode="r:gz")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except (OSError, tarfile.TarError) as exc:
        raise InvalidInput(f"{path}: not an evpki backup ({exc})") from None
    with archive:
        members = {member.name: member for member in archive.getmembers() if member.isfile()}
        if _MANIFEST not in members or members[_MANIFEST].size > _MAX_MANIFEST:
            raise InvalidInput(f"{path}: not an evpki backup (no manifest)")
        manifest = json.loads(_extract(archive, members[_MANIFEST]))
        if manifest.get("format") != "evpki-backup" or manifest.get("version") != FORMAT_VERSION:
            raise InvalidInput(
                f"{path}: unsupported backup format {manifest.get('format')!r} v{manifest.get('version')}"
            )
        files: dict[str, bytes] = {}
        for name, digest in manifest["files"].items():
            pure = PurePosixPath(name)
            if (
                pure.is_absolute()
                or ".." in pure.parts
                or pure.parts[0] not in ("database", "keys")
                or len(pure.parts) != 2
            ):
                raise IntegrityError(f"backup lists an unexpected file {name!r}")
            if name not in members:
                raise IntegrityError(f"backup file {name} is missing")
            data = _extract(archive, members[name])
            if hashlib.sha256(data).hexdigest() != digest:
                raise IntegrityError(f"backup file {name} does not match its SHA-256 in the manifest")
            files[name] = data
    return manifest, files


def _extract(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = archive.extractfile(member)
    if handle is None:
        raise InvalidInput(f"backup member {member.name} is not a file")
    return handle.read()


def restore_backup(settings: Settings, archive: Path, *, force: bool = False) -> RestoreReport:
    """Restore ``archive`` into the configured database and key directory.

    Refuses (:class:`Conflict`) a database or key directory that already holds a PKI unless
    ``force``; a schema revision other than the archive's is refused as well.
    """
    manifest, files = _read_archive(archive)
    database = Database(settings.resolved_database_url)
    staged: dict[Path, Path] = {}  # target key file -> its staging file
    try:
        database.migrate()
        with database.engine.connect() as connection:
            revision = _revision(connection)
        if revision != manifest["alembic_revision"]:
            raise InvalidInput(
                f"the backup is of schema revision {manifest['alembic_revision']}, this evpki is at {revision}"
            )
        key_files = {PurePosixPath(name).name: data for name, data in files.items() if name.startswith("keys/")}
        if not force:
            _refuse_non_empty(database, settings.keys_dir)
        # The keys are staged beside their targets and put in place only once the tables are loaded
        # and the audit chain verified, inside the transaction: a refused archive leaves the key
        # directory as it was. (A commit that fails after the keys moved is the one window left.)
        _stage_keys(settings.keys_dir, key_files, staged)
        counts: dict[str, int] = {}
        with database.transaction() as connection:
            if force:
                for table in reversed(_tables()):
                    connection.execute(delete(table))
            for table in _tables():
                payload = files.get(f"database/{table.name}.jsonl", b"")
                counts[table.name] = _load_table(connection, table, payload)
            if not database.is_sqlite:
                _reset_sequences(connection)
            verification = audit.verify(Session(bind=connection))
            if not verification.ok:
                raise IntegrityError(
                    f"the restored audit chain is broken at record {verification.first_broken_seq}: "
                    f"{verification.reason}; nothing was restored"
                )
            _install_keys(staged)
    finally:
        for staging in staged.values():
            staging.unlink(missing_ok=True)  # left over only when the restore was refused
        database.dispose()
    return RestoreReport(revision, counts, len(key_files), verification.records)


def _refuse_non_empty(database: Database, keys_dir: Path) -> None:
    with database.engine.connect() as connection:
        for table in _tables():
            if connection.execute(select(func.count()).select_from(table)).scalar_one():
                raise Conflict(f"the target database is not empty (table {table.name}); use --force to replace it")
    if keys_dir.is_dir() and any(p.is_file() for p in keys_dir.iterdir()):
        raise Conflict(f"the key directory {keys_dir} is not empty; use --force to replace it")


def _stage_keys(keys_dir: Path, key_files: dict[str, bytes], staged: dict[Path, Path]) -> None:
    """Key files as they were (still encrypted), written mode 0600 beside their targets in a 0700
    directory; ``staged`` gets target -> staging file as each is written (the caller cleans up)."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys_dir, 0o700)
    for name, data in key_files.items():
        staging = keys_dir / f".{name}.restore"
        staged[keys_dir / name] = staging
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def _install_keys(staged: dict[Path, Path]) -> None:
    """Move the staged key files into place (each an atomic rename); existing ones are replaced."""
    for target, staging in staged.items():
        os.replace(staging, target)


def _load_table(connection: Connection, table: Table, payload: bytes) -> int:
    """Insert the table's rows; references to the same table are set afterwards (rows may point forward)."""
    decoders = _decoder(table)
    self_refs = [
        fk.parent.name for fk in table.foreign_keys if fk.column.table is table and fk.parent.name in table.columns
    ]
    pk = [column.name for column in table.primary_key.columns]
    rows: list[dict[str, Any]] = []
    deferred: list[dict[str, Any]] = []
    for line in payload.decode().splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        row = {
            key: (decoders[key](value) if key in decoders and value is not None else value)
            for key, value in raw.items()
            if key in table.columns
        }
        later = {name: row[name] for name in self_refs if row.get(name) is not None}
        if later:
            deferred.append({**{f"pk_{k}": row[k] for k in pk}, **later})
            row.update(dict.fromkeys(later))
        rows.append(row)
    for start in range(0, len(rows), _BATCH):
        connection.execute(insert(table), rows[start : start + _BATCH])
    for item in deferred:
        condition = [table.columns[k] == item[f"pk_{k}"] for k in pk]
        values = {name: item[name] for name in self_refs if name in item}
        connection.execute(update(table).where(*condition).values(**values))
    return len(rows)


def _reset_sequences(connection: Connection) -> None:
    """PostgreSQL: serial columns continue after the restored ids, not at 1."""
    for table in _tables():
        columns = list(table.primary_key.columns)
        if len(columns) != 1 or columns[0].autoincrement is False or columns[0].type.python_type is not int:
            continue
        # Names come from our own table metadata, never from input.
        name, column = table.name, columns[0].name
        statement = (
            f"SELECT setval(seq, COALESCE((SELECT MAX({column}) FROM {name}), 1), "  # noqa: S608
            f"(SELECT MAX({column}) FROM {name}) IS NOT NULL) "
            f"FROM pg_get_serial_sequence('{name}', '{column}') AS seq WHERE seq IS NOT NULL"
        )
        connection.execute(text(statement))
