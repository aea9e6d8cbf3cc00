"""Storing signed certificates: one in a transaction of its own, or many in one shared transaction.

A :class:`Signed` certificate has passed every check before signing (:func:`pki.ca.issuance.approve`)
and has been signed; what is left happens inside the write transaction: the issuer chain is
checked against the CA directory as of this transaction (a CA may have been revoked or replaced
since the cache was read), the certificate row is written with its audit record, and, for a
renewal, the certificates it replaces are marked superseded.

:func:`store_one` does that in a transaction of its own. :func:`store_batch` does it for many
in one transaction (the group commit of :mod:`pki.ca.group_commit`, and the bulk issuance of
:func:`pki.ca.issuance.issue_many`), keeping each certificate's outcome its own:

- plain issuances (no renewal, no ``in_transaction`` hook) are inserted with one multi-row
  statement, and their audit records appended with :func:`pki.operations.audit.append_many_on`:
  one record per certificate, the audit head locked, read and updated once per batch;
- a renewal or an issuance with an ``in_transaction`` hook (a station's CertificateSigned
  delivery, a contract's current certificate) runs inside a SAVEPOINT of its own, so that a
  refusal there (the identity has nothing to renew, the hook raises) rolls back that issuance
  alone and is handed to its caller, while the others commit;
- a certificate the batch statement could not store (a serial collision, a value the database
  refuses) gets :class:`StoreAlone`: its caller signs again and stores it on its own, where such
  failures have their usual outcome. The others of the batch are not affected.

Nothing is acknowledged before the transaction has committed, so a crash mid-batch loses only
certificates nobody was told about.

On SQLite, processes that issue at once (``evpki serve --workers N``, a bridge and a bulk run)
take turns on a file lock beside the database before they begin: SQLite's own busy handler
polls with sleeps of up to 100 ms, so under steady load one process could starve the other's
batches for that long, while a waiter on ``flock`` is woken the moment the lock is free.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from pki.core.errors import Conflict, NotFound, PolicyViolation
from pki.operations import audit
from pki.runtime.context import CaDirectory, Context
from pki.runtime.views import CertificateView, IssuedCertificate
from pki.store import repository
from pki.store.db import Database, joined_session
from pki.store.models import CertificateRow

if TYPE_CHECKING:
    from pki.ca.issuance import Approval, IssueRequest

__all__ = ["DirectoryChanged", "Signed", "StoreAlone", "issued_view", "store_batch", "store_one"]

_INSERT_CERTIFICATES = insert(CertificateRow.__table__)  # type: ignore[attr-defined]


class DirectoryChanged(Exception):
    """A CA row changed after the certificate was signed with what the cache said: decide again."""


class StoreAlone(Exception):
    """The shared transaction could not store this certificate; sign it again and store it alone."""


@dataclass(frozen=True, slots=True)
class Signed:
    """A certificate signed for an approved request, not yet stored."""

    ctx: Context
    approval: Approval
    request: IssueRequest
    actor: str
    certificate: x509.Certificate
    der: bytes
    sha256: str
    subject: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    at: dt.datetime

    @property
    def ca_id(self) -> str:
        return self.approval.ca.id

    @property
    def alone(self) -> bool:
        """Whether storing it runs more than the two inserts (a renewal, a caller's hook)."""
        return self.request.renew or self.request.in_transaction is not None


def store_one(signed: Signed) -> None:
    """Store ``signed`` in a transaction of its own; raises as issuance does (nothing stored then)."""
    ctx = signed.ctx
    with _writers_turn(ctx.database), ctx.database.transaction() as connection:
        _check_issuer(ctx.ca_directory(connection), signed)
        _store_with_hooks(connection, signed)


def store_batch(ctx: Context, batch: Sequence[Signed]) -> list[BaseException | None]:
    """Store ``batch`` in one transaction; per certificate ``None`` (stored) or what refused it.

    The exceptions are the ones :func:`store_one` would have raised for that certificate alone,
    plus :class:`DirectoryChanged` and :class:`StoreAlone` for the caller to act on. Should the
    transaction fail as a whole (the database, the commit, or the multi-row insert of a batch of
    plain issuances only), nothing is stored and the error is raised.
    """
    outcomes: list[BaseException | None] = [None] * len(batch)
    with _writers_turn(ctx.database), ctx.database.transaction() as connection:
        current = ctx.ca_directory(connection)
        plain: list[int] = []
        for index, signed in enumerate(batch):
            try:
                _check_issuer(current, signed)
            except (DirectoryChanged, PolicyViolation) as refusal:
                outcomes[index] = refusal
                continue
            if not signed.alone:
                plain.append(index)
                continue
            savepoint = connection.begin_nested()
            try:
                _store_with_hooks(connection, signed)
            except DBAPIError:
                savepoint.rollback()
                outcomes[index] = StoreAlone()
            except Exception as refusal:  # the caller's hook may raise what it likes; it gets it back
                savepoint.rollback()
                outcomes[index] = refusal
            else:
                savepoint.commit()
        if plain and len(plain) == len(batch):
            # Nothing else in the transaction to protect: a failure fails it whole (each caller then
            # stores alone), which spares the SAVEPOINT's two statements on the common path.
            _insert_plain(connection, [batch[index] for index in plain])
        elif plain:
            savepoint = connection.begin_nested()
            try:
                _insert_plain(connection, [batch[index] for index in plain])
            except DBAPIError:
                savepoint.rollback()
                for index in plain:
                    outcomes[index] = StoreAlone()
            else:
                savepoint.commit()
    return outcomes


def _insert_plain(connection: Connection, plain: Sequence[Signed]) -> None:
    """The certificate rows in one statement, their audit records with one audit-head update."""
    connection.execute(_INSERT_CERTIFICATES, [_row(signed) for signed in plain])
    audit.append_many_on(connection, [_record(signed) for signed in plain])


def issued_view(signed: Signed) -> IssuedCertificate:
    """What :meth:`CertificateView.from_row` would derive for the stored row, without reading it back.

    A certificate stored this instant is neither revoked nor superseded, and ``validity_window``
    guarantees notAfter > now, so its status is "valid".
    """
    approved = signed.approval.approved
    view = CertificateView(
        issuer_id=signed.ca_id,
        serial=signed.serial,
        sha256=signed.sha256,
        profile=signed.approval.profile.name.value,
        subject=signed.subject,
        identity=approved.identity,
        station_serial=approved.station_serial,
        not_before=signed.not_before,
        not_after=signed.not_after,
        status="valid",
        revoked_at=None,
        revocation_reason=None,
        superseded_by=None,
        label=None,
        certificate_pem=signed.certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )
    return IssuedCertificate(view, signed.approval.chain)


_lock_files: weakref.WeakKeyDictionary[Database, tuple[threading.Lock, int]] = weakref.WeakKeyDictionary()
_lock_files_lock = threading.Lock()


@contextlib.contextmanager
def _writers_turn(database: Database) -> Iterator[None]:
    """On a SQLite file, hold the issuers' file lock (``<database>.issuers.lock``) for the transaction.

    ``flock`` belongs to the open file, which this process's threads share: they queue on a
    thread lock first, so that the file lock is held by one of them at a time.
    """
    lock = _lock_file(database)
    if lock is None:
        yield
        return
    threads, descriptor = lock
    with threads:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # blocks without the GIL
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


def _lock_file(database: Database) -> tuple[threading.Lock, int] | None:
    if not database.is_sqlite:
        return None
    with _lock_files_lock:
        found = _lock_files.get(database)
        if found is None:
            path = database.url.split(":///", 1)[1] if ":///" in database.url else ""
            if not path or path == ":memory:":
                return None
            descriptor = os.open(f"{path}.issuers.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            found = _lock_files[database] = (threading.Lock(), descriptor)
            weakref.finalize(database, os.close, descriptor)
        return found


def _check_issuer(current: CaDirectory, signed: Signed) -> None:
    """The issuer chain as of this transaction (``current``) decides: a CA may have been revoked,
    put on hold or replaced since the certificate was signed."""
    if signed.approval.directory.version != current.version:
        raise DirectoryChanged
    signed.ctx.check_chain_usable(current, signed.ca_id)


def _row(signed: Signed) -> dict[str, Any]:
    approved = signed.approval.approved
    return {
        "issuer_id": signed.ca_id,
        "serial": signed.serial,
        "sha256": signed.sha256,
        "profile": signed.approval.profile.name.value,
        "subject": signed.subject,
        "identity": approved.identity,
        "station_serial": approved.station_serial,
        "not_before": signed.not_before,
        "not_after": signed.not_after,
        "der": signed.der,
        "status": "valid",
        "status_version": 0,
        "created_at": signed.at,
    }


def _details(signed: Signed) -> dict[str, object]:
    return {
        "profile": signed.approval.profile.name.value,
        "identity": signed.approval.approved.identity,
        "subject": signed.subject,
        "sha256": signed.sha256,
        "not_after": signed.not_after.isoformat(),
    }


def _record(signed: Signed) -> audit.PendingRecord:
    return audit.PendingRecord(
        at=signed.at,
        actor=signed.actor,
        action="issue",
        ca_id=signed.ca_id,
        serial=signed.serial,
        details=_details(signed),
    )


def _store_with_hooks(connection: Connection, signed: Signed) -> None:
    """The certificate row, its renewal bookkeeping, the caller's hook and the audit record."""
    request, approval = signed.request, signed.approval
    renewal = joined_session(connection) if request.renew else None
    try:
        replaced = _replaced_by_renewal(renewal, signed) if renewal is not None else []
        new_id = repository.insert_certificate(
            connection,
            issuer_id=signed.ca_id,
            serial=signed.serial,
            sha256=signed.sha256,
            profile=approval.profile.name.value,
            subject=signed.subject,
            identity=approval.approved.identity,
            station_serial=approval.approved.station_serial,
            not_before=signed.not_before,
            not_after=signed.not_after,
            der=signed.der,
            created_at=signed.at,
        )
        details = _details(signed)
        if renewal is not None:
            repository.supersede(renewal, [old.id for old in replaced if old.id is not None], new_id)
            details["supersedes"] = [f"{old.issuer_id}/{old.serial}" for old in replaced]
    finally:
        if renewal is not None:
            renewal.close()
    if request.in_transaction is not None:
        request.in_transaction(connection, new_id)
    audit.append_on(
        connection,
        at=signed.at,
        actor=signed.actor,
        action="renew" if request.renew else "issue",
        ca_id=signed.ca_id,
        serial=signed.serial,
        details=details,
    )


def _replaced_by_renewal(session: Session, signed: Signed) -> list[CertificateRow]:
    profile, identity = signed.approval.profile.name.value, signed.approval.approved.identity
    replaced = repository.current_for_identity(session, profile, identity or "")
    if not replaced:
        raise NotFound(f"no current {profile} certificate for {identity!r} to renew")
    new_key = _spki(signed.certificate)
    for old in replaced:
        if _spki(x509.load_der_x509_certificate(old.der)) == new_key:
            raise Conflict("renewal must use a new key pair; the CSR reuses the current certificate's key")
    return replaced


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
