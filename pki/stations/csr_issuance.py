"""A station's CSR answered: its certificate issued, and the CertificateSigned delivery that carries it.

:func:`issue_for_station` checks the station's CSR as any issuance does, *then* looks at the
pending delivery of its topic: the same key gets the same delivery (a station that re-sends its
CSR with back-off, OCPP A02.FR.17-19, does not get a second certificate); another key gets a new
certificate, and the pending one is revoked. Certificate and delivery commit together. The
delivery is then re-sent and closed like any other (:mod:`pki.stations.deliveries`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection, bindparam, select

from pki.ca.authority import serial_hex
from pki.ca.issuance import IssueRequest, approve, issue
from pki.ca.policy import RequestIdentity
from pki.core.errors import Conflict
from pki.revocation.reasons import RevocationReason, revoke_row
from pki.runtime.context import Context
from pki.stations.deliveries import PENDING_ON_TOPIC, DeliveryView, insert_delivery
from pki.stations.registry import station_record
from pki.store import repository
from pki.store.db import joined_session
from pki.store.models import CertificateRow, StationRow

__all__ = ["StationDisabled", "issue_for_station"]

_CERTIFICATES = CertificateRow.__table__  # type: ignore[attr-defined]
# Built once: a station's enrollment runs these on its hot path.
_ISSUER_OF_ROW = select(_CERTIFICATES.c.issuer_id).where(_CERTIFICATES.c.id == bindparam("row_id"))
_STATIONS = StationRow.__table__  # type: ignore[attr-defined]
# Serialises a station's enrollments: SQLite's write lock does it anyway, PostgreSQL needs the row lock
# (under READ COMMITTED, two transactions would each miss the other's uncommitted delivery).
_LOCK_STATION = select(_STATIONS.c.identity).where(_STATIONS.c.identity == bindparam("station")).with_for_update()
_DER_OF_CERTIFICATE = select(_CERTIFICATES.c.der).where(
    _CERTIFICATES.c.issuer_id == bindparam("issuer"), _CERTIFICATES.c.serial == bindparam("serial")
)


def issue_for_station(
    ctx: Context,
    *,
    station: str,
    profile: str,
    csr: str | bytes,
    topic: str,
    payload_for: Callable[[str], dict[str, Any]],
    identity: RequestIdentity | None = None,
    ca_id: str | None = None,
    actor: str = "ocpp",
) -> tuple[DeliveryView, bool, str | None]:
    """The CertificateSigned delivery that answers a station's CSR on ``topic``.

    Returns the delivery, whether it is new, and the CA whose CRLs changed (if any). The CSR is
    parsed, its signature verified and the policy applied before any pending delivery is looked
    at, so a refusal raises as issuance does and leaves a pending delivery as it was. Then:

    - a pending delivery for the same public key is offered again (OCPP A02.FR.17-19: a station
      re-sends its CSR with back-off and must not get a second certificate);
    - otherwise a certificate is issued; should a delivery still be pending on the topic, its
      certificate is revoked (superseded: it was never installed) and the delivery closed, in the
      same transaction as the new certificate, its audit record and its delivery.

    ``payload_for`` turns the PEM chain (leaf first, no root) into the call's payload for the
    station's OCPP version. ``ca_id`` names the issuing CA where several issue ``profile`` (an ISO
    15118-20 SECC certificate comes from the -20 CPO sub-CA).
    """
    # One read before anything is decided: the station, and what is pending on the topic (with its
    # certificate's DER, to compare keys once the CSR has passed every check).
    with ctx.database.read() as session:
        connection = session.connection()
        row = station_record(connection, station)
        if row.status != "active":
            raise StationDisabled(f"station {station!r} is disabled")
        serial = row.serial
        pending_row = connection.execute(PENDING_ON_TOPIC, {"station": station, "topic": topic}).first()
        pending = DeliveryView.from_row(pending_row) if pending_row is not None else None
        pending_der = _certificate_der(connection, pending) if pending is not None else None
    identity = identity or RequestIdentity(station_id=station, station_serial=serial)
    leaf: list[x509.Certificate] = []
    created: list[DeliveryView] = []
    replaced_ca: list[str] = []

    def store_delivery(connection: Connection, row_id: int) -> None:
        # Only the last attempt counts: issuance may store again after a rolled-back one.
        del created[:], replaced_ca[:]
        issuer_id = connection.execute(_ISSUER_OF_ROW, {"row_id": row_id}).scalar_one()
        # Read again under the station's lock: the station may have answered the pending one meanwhile,
        # or the same CSR may have been signed at the same time.
        connection.execute(_LOCK_STATION, {"station": station})
        still_pending = connection.execute(PENDING_ON_TOPIC, {"station": station, "topic": topic}).first()
        if still_pending is not None:
            other = DeliveryView.from_row(still_pending)
            if _same_key(connection, other, leaf[0].public_key()):
                raise _StillPending(other)  # the same CSR twice at once: one certificate, not two
            revoked = _revoke_undelivered(ctx, connection, other, actor)
            if revoked is not None:
                replaced_ca.append(revoked)
        # Issuance has just checked the cached directory against this transaction's reading.
        directory = ctx.cached_ca_directory() or ctx.ca_directory(connection)
        chain = [leaf[0], *directory.presented(issuer_id)]
        payload = payload_for("".join(c.public_bytes(Encoding.PEM).decode() for c in chain))
        now = ctx.clock.now()
        certificate = (issuer_id, serial_hex(leaf[0].serial_number))
        delivery_id = insert_delivery(
            connection,
            station=station,
            action="CertificateSigned",
            topic=topic,
            payload=payload,
            now=now,
            certificate=certificate,
        )
        created.append(
            DeliveryView(
                delivery_id,
                station,
                "CertificateSigned",
                topic,
                payload,
                "pending",
                *certificate,
                0,
                now,
                None,
                None,
                None,
            )
        )

    request = IssueRequest(
        profile=profile,
        csr=csr,
        identity=identity,
        ca_id=ca_id,
        before_store=_keep_last(leaf),
        in_transaction=store_delivery,
    )
    approval = approve(ctx, request)
    if pending is not None and pending_der is not None and _is_key_of(pending_der, approval.approved.public_key):
        return pending, False, None
    try:
        issue(ctx, request, actor, approval=approval)
    except _StillPending as raced:
        return raced.delivery, False, None
    return created[0], True, (replaced_ca[0] if replaced_ca else None)


def _keep_last(leaf: list[x509.Certificate]) -> Callable[[x509.Certificate], None]:
    """Issuance signs again when it retries (a CA changed, a serial collided): keep the last one signed."""

    def keep(certificate: x509.Certificate) -> None:
        leaf[:] = [certificate]

    return keep


class StationDisabled(Conflict):
    """The station is registered but disabled: it gets no certificate."""


class _StillPending(Exception):
    """A delivery for the same key became pending while this one was being signed."""

    def __init__(self, delivery: DeliveryView) -> None:
        self.delivery = delivery


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _certificate_der(connection: Connection, pending: DeliveryView) -> bytes | None:
    """The DER of the pending delivery's certificate (None for a delivery without one)."""
    if pending.certificate_issuer is None or pending.certificate_serial is None:
        return None
    der: bytes = connection.execute(
        _DER_OF_CERTIFICATE, {"issuer": pending.certificate_issuer, "serial": pending.certificate_serial}
    ).scalar_one()
    return der


def _is_key_of(der: bytes, public_key: CertificatePublicKeyTypes) -> bool:
    return _spki(x509.load_der_x509_certificate(der).public_key()) == _spki(public_key)


def _same_key(connection: Connection, pending: DeliveryView, public_key: CertificatePublicKeyTypes) -> bool:
    """Whether the pending delivery's certificate is for ``public_key``."""
    der = _certificate_der(connection, pending)
    return der is not None and _is_key_of(der, public_key)


def _revoke_undelivered(ctx: Context, connection: Connection, pending: DeliveryView, actor: str) -> str | None:
    """Revoke the certificate of a pending CertificateSigned that a new CSR replaces; returns its CA.

    The delivery itself is closed as superseded by the new delivery's insert.
    """
    if pending.certificate_issuer is None or pending.certificate_serial is None:
        return None
    session = joined_session(connection)
    try:
        row = repository.find_certificate(session, pending.certificate_serial, pending.certificate_issuer)
        if row.status == "revoked":
            return None
        revoke_row(
            session,
            row,
            RevocationReason.SUPERSEDED,
            clock=ctx.clock,
            actor=actor,
            details={
                "station": pending.station_identity,
                "topic": pending.topic,
                "delivery": pending.id,
                "why": "a CSR for another key replaced the certificate before the station accepted it",
            },
        )
        session.flush()
        return row.issuer_id
    finally:
        session.close()
