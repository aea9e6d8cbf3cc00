"""The OCSP responder's database side: statuses, the pre-signed response store and pre-signing in bulk.

This module owns the statements the responder runs -- a certificate's status, alone or joined with
its stored response for one CertID hash -- the conversion of a stored status into what a response
states (``certificateHold`` while on hold), storing signed responses (``ocsp_response`` rows keyed by
CA, serial and CertID hash, with the ``status_version`` and responder they state), and
:func:`presign_responses`, which signs ahead for every unexpired certificate lacking a current one
(RFC 5019 §2.1: pre-produced responses for nonce-less requests).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from sqlalchemy import and_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import OperationalError

from pki.core.clock import utc
from pki.core.errors import EvpkiError
from pki.revocation.ocsp_requests import CERT_ID_HASHES, CertId, issuer_hashes
from pki.revocation.ocsp_responses import CertStatus, response_window, sign_single_response
from pki.revocation.ocsp_signers import Responder, ResponderDirectory
from pki.revocation.reasons import RevocationReason
from pki.runtime.context import Context
from pki.store import repository
from pki.store.models import CertificateRow, OcspResponseRow

__all__ = ["presign_responses", "read_presigned", "read_statuses", "store_response", "stored_status"]

log = logging.getLogger("evpki.ocsp")

_PRESIGNED_HASHES = ("sha1", "sha256")

_CERTIFICATE = CertificateRow.__table__  # type: ignore[attr-defined]
_STORED = OcspResponseRow.__table__  # type: ignore[attr-defined]
_STATUS_COLUMNS = (
    _CERTIFICATE.c.status,
    _CERTIFICATE.c.revoked_at,
    _CERTIFICATE.c.revocation_reason,
    _CERTIFICATE.c.status_version,
)
# Built once: the hot path only binds values (building a statement per request costs more than
# running it). A certificate joined with its stored response for one CertID hash, if any.
_WITH_STORED = _CERTIFICATE.outerjoin(
    _STORED,
    and_(
        _STORED.c.ca_id == _CERTIFICATE.c.issuer_id,
        _STORED.c.serial == _CERTIFICATE.c.serial,
        _STORED.c.hash_algorithm == bindparam("hash_algorithm"),
    ),
)
_PRESIGNED_QUERY = (
    select(
        *_STATUS_COLUMNS,
        _STORED.c.status_version,
        _STORED.c.responder_serial,
        _STORED.c.this_update,
        _STORED.c.next_update,
        _STORED.c.der,
    )
    .select_from(_WITH_STORED)
    .where(_CERTIFICATE.c.issuer_id == bindparam("ca_id"), _CERTIFICATE.c.serial == bindparam("serial"))
)
# Unexpired certificates whose stored response is missing, outdated, by another responder or due.
_STALE_QUERY = (
    select(_CERTIFICATE.c.serial, *_STATUS_COLUMNS)
    .select_from(_WITH_STORED)
    .where(
        _CERTIFICATE.c.issuer_id == bindparam("ca_id"),
        _CERTIFICATE.c.not_after > bindparam("now"),
        (_STORED.c.der.is_(None))
        | (_STORED.c.status_version != _CERTIFICATE.c.status_version)
        | (_STORED.c.responder_serial != bindparam("responder_serial"))
        | (_STORED.c.next_update <= bindparam("refresh_at")),
    )
)
_STATUS_QUERY = select(_CERTIFICATE.c.serial, *_STATUS_COLUMNS).where(
    _CERTIFICATE.c.issuer_id == bindparam("ca_id"), _CERTIFICATE.c.serial == bindparam("serial")
)
_STATUSES_QUERY = select(_CERTIFICATE.c.serial, *_STATUS_COLUMNS).where(
    _CERTIFICATE.c.issuer_id == bindparam("ca_id"), _CERTIFICATE.c.serial.in_(bindparam("serials", expanding=True))
)


def stored_status(stored: str, revoked_at: dt.datetime | None, reason: str | None, version: int) -> CertStatus:
    if stored in ("revoked", "on-hold") and revoked_at is not None:
        if stored == "on-hold":
            reason = RevocationReason.CERTIFICATE_HOLD.value
        return CertStatus("revoked", utc(revoked_at).replace(microsecond=0), reason, version)
    return CertStatus("good", version=version)


def read_presigned(ctx: Context, ca_id: str, cert_id: CertId) -> Row[Any] | None:
    """The certificate's status columns then its stored response's (version, responder, window, DER).

    ``None`` when ``ca_id`` never issued the serial; the stored columns are ``None`` when nothing is stored.
    """
    serial = format(cert_id.serial, "X")
    with ctx.database.engine.connect() as connection:
        return connection.execute(
            _PRESIGNED_QUERY, {"ca_id": ca_id, "serial": serial, "hash_algorithm": cert_id.hash_algorithm}
        ).first()


def read_statuses(ctx: Context, ca_id: str, serials: Iterable[int]) -> dict[str, CertStatus]:
    """The status of each serial (upper-case hex), ``unknown`` for one ``ca_id`` never issued."""
    wanted = {format(serial, "X") for serial in serials}
    found: dict[str, CertStatus] = dict.fromkeys(wanted, CertStatus("unknown"))
    with ctx.database.engine.connect() as connection:
        if len(wanted) == 1:
            rows = connection.execute(_STATUS_QUERY, {"ca_id": ca_id, "serial": next(iter(wanted))})
        else:
            rows = connection.execute(_STATUSES_QUERY, {"ca_id": ca_id, "serials": sorted(wanted)})
        for row in rows:
            found[row[0]] = stored_status(row[1], row[2], row[3], row[4])
    return found


def store_response(
    ctx: Context,
    responder: Responder,
    cert_id: CertId,
    status: CertStatus,
    this_update: dt.datetime,
    next_update: dt.datetime,
    der: bytes,
) -> None:
    _upsert(ctx, [_stored_values(responder, cert_id, status, this_update, next_update, der)])


def _upsert(ctx: Context, rows: list[dict[str, object]]) -> None:
    # A response stored from a status that changed meanwhile carries the old version and is
    # never served, so storing needs no lock against revocations.
    engine = ctx.database.engine
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_STORED)
    statement = statement.on_conflict_do_update(
        index_elements=["ca_id", "serial", "hash_algorithm"],
        set_={
            name: statement.excluded[name]
            for name in ("status_version", "responder_serial", "this_update", "next_update", "der")
        },
    )
    try:
        with ctx.database.transaction() as connection:
            connection.execute(statement, rows)
    except (EvpkiError, OperationalError) as exc:  # busy: the answer is still right, just not kept
        log.info("pre-signed OCSP response not stored: %s", exc)


def _stored_values(
    responder: Responder,
    cert_id: CertId,
    status: CertStatus,
    this_update: dt.datetime,
    next_update: dt.datetime,
    der: bytes,
) -> dict[str, object]:
    """One ``ocsp_response`` row: the response and the status version and responder it states."""
    return {
        "ca_id": responder.ca_id,
        "serial": format(cert_id.serial, "X"),
        "hash_algorithm": cert_id.hash_algorithm,
        "status_version": status.version,
        "responder_serial": responder.serial,
        "this_update": this_update,
        "next_update": next_update,
        "der": der,
    }


def presign_responses(ctx: Context, responders: ResponderDirectory, ca_id: str, *, batch: int = 500) -> int:
    """Sign and store responses for every unexpired certificate of ``ca_id`` that lacks a current one.

    Returns how many responses were signed. Run periodically (``evpki serve`` does) so that
    nonce-less requests never wait for a signature.
    """
    now = ctx.clock.now()
    responder = responders.get(ca_id)
    refresh_at = now + ctx.settings.duration("ocsp_refresh_before")
    ca_certificate = _ca_certificate(ctx, ca_id)
    signed = 0
    pending: list[dict[str, object]] = []
    for hash_name in _PRESIGNED_HASHES:
        algorithm = CERT_ID_HASHES[hash_name]
        name_hash, key_hash = issuer_hashes(ca_certificate, algorithm)
        with ctx.database.engine.connect() as connection:
            rows = connection.execute(
                _STALE_QUERY,
                {
                    "ca_id": ca_id,
                    "hash_algorithm": hash_name,
                    "now": now,
                    "refresh_at": refresh_at,
                    "responder_serial": responder.serial,
                },
            ).all()
        for serial, status_name, revoked_at, reason, version in rows:
            status = stored_status(status_name, revoked_at, reason, version)
            cert_id = CertId(hash_name, name_hash, key_hash, int(serial, 16))
            this_update, next_update = response_window(ctx, responder, now)
            der = sign_single_response(responder, cert_id, status, None, this_update, next_update)
            pending.append(_stored_values(responder, cert_id, status, this_update, next_update, der))
            signed += 1
            if len(pending) >= batch:
                _upsert(ctx, pending)
                pending = []
    if pending:
        _upsert(ctx, pending)
    return signed


def _ca_certificate(ctx: Context, ca_id: str) -> x509.Certificate:
    with ctx.database.read() as session:
        return ctx.ca_certificate(repository.get_ca(session, ca_id))
