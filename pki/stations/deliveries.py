"""Calls a station still has to accept, kept until it does: the CSMS side of guaranteed delivery.

A certificate issued for a station's CSR is useless until the station accepts the
CertificateSigned call that carries it; a root is trusted only once InstallCertificate was
accepted. Each such call is a *delivery*: stored with its payload when it is created, re-sent on
every reconnect until the station answers, and closed by that answer.

- ``topic`` names what a delivery is about (``CertificateSigned:ChargingStationCertificate``,
  ``InstallCertificate:V2GRootCertificate:<sha256>``).
- :func:`issue_for_station` checks the station's CSR as any issuance does, *then* looks at the
  pending delivery of its topic: the same key gets the same delivery (a station that re-sends
  its CSR with back-off, OCPP A02.FR.17-19, does not get a second certificate); another key gets
  a new certificate, and the pending one is revoked. Certificate and delivery commit together.
- :func:`record_result` closes a delivery. For CertificateSigned, *Accepted* supersedes the
  station's previous certificates of that profile (the renewal takes effect only when the station
  has the new one); *Rejected* revokes the certificate that was never installed (reason
  superseded). Either way in the same transaction as the delivery's new status, with an audit
  record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from pki.ca.authority import serial_hex
from pki.ca.issuance import IssueRequest, approve, issue
from pki.ca.policy import RequestIdentity
from pki.core.clock import utc
from pki.core.errors import Conflict, InvalidInput, NotFound
from pki.operations import audit
from pki.revocation.reasons import RevocationReason, apply_revocation, status_change_time
from pki.runtime.context import Context
from pki.stations.registry import station_row
from pki.store import repository
from pki.store.models import CertificateRow, OcppDeliveryRow, StationRow

__all__ = [
    "SECC_CERTIFICATE_TOPIC",
    "STATION_CERTIFICATE_TOPIC",
    "DeliveryView",
    "RenewalDue",
    "create_delivery",
    "delivery",
    "find_pending",
    "issue_for_station",
    "last_delivery",
    "mark_sent",
    "pending_deliveries",
    "record_result",
]

_DELIVERIES = OcppDeliveryRow.__table__  # type: ignore[attr-defined]
_CERTIFICATES = CertificateRow.__table__  # type: ignore[attr-defined]
# Built once: a station's enrollment runs these on its hot path.
_PENDING_ON_TOPIC = (
    select(_DELIVERIES)
    .where(
        _DELIVERIES.c.station_identity == bindparam("station"),
        _DELIVERIES.c.topic == bindparam("topic"),
        _DELIVERIES.c.status == "pending",
    )
    .order_by(_DELIVERIES.c.id.desc())
    .limit(1)
)
_ISSUER_OF_ROW = select(_CERTIFICATES.c.issuer_id).where(_CERTIFICATES.c.id == bindparam("row_id"))
_STATIONS = StationRow.__table__  # type: ignore[attr-defined]
# Serialises a station's enrollments: SQLite's write lock does it anyway, PostgreSQL needs the row lock
# (under READ COMMITTED, two transactions would each miss the other's uncommitted delivery).
_LOCK_STATION = select(_STATIONS.c.identity).where(_STATIONS.c.identity == bindparam("station")).with_for_update()
_DER_OF_CERTIFICATE = select(_CERTIFICATES.c.der).where(
    _CERTIFICATES.c.issuer_id == bindparam("issuer"), _CERTIFICATES.c.serial == bindparam("serial")
)
_CLOSED_BY = {"Accepted": "accepted", "Rejected": "rejected"}
# Statuses that close a delivery as done although they are not "Accepted".
_DONE_ANYWAY = {("DeleteCertificate", "NotFound")}


# The CertificateSigned topics of the two certificates a station holds (OCPP certificateType values).
STATION_CERTIFICATE_TOPIC = "CertificateSigned:ChargingStationCertificate"
SECC_CERTIFICATE_TOPIC = "CertificateSigned:V2GCertificate"


@dataclass(frozen=True, slots=True)
class RenewalDue:
    """Which of a station's certificates should be renewed now (see :meth:`pki.PKI.renewal_due`)."""

    station: bool
    secc: bool


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    station_identity: str
    action: str
    topic: str
    payload: dict[str, Any]
    status: str
    certificate_issuer: str | None
    certificate_serial: str | None
    attempts: int
    created_at: dt.datetime
    last_sent_at: dt.datetime | None
    completed_at: dt.datetime | None
    result: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> DeliveryView:
        return cls(
            id=row.id,
            station_identity=row.station_identity,
            action=row.action,
            topic=row.topic,
            payload=json.loads(row.payload),
            status=row.status,
            certificate_issuer=row.certificate_issuer,
            certificate_serial=row.certificate_serial,
            attempts=row.attempts,
            created_at=utc(row.created_at),
            last_sent_at=utc(row.last_sent_at) if row.last_sent_at is not None else None,
            completed_at=utc(row.completed_at) if row.completed_at is not None else None,
            result=json.loads(row.result) if row.result else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stationId": self.station_identity,
            "action": self.action,
            "topic": self.topic,
            "payload": self.payload,
            "status": self.status,
            "certificateIssuer": self.certificate_issuer,
            "certificateSerial": self.certificate_serial,
            "attempts": self.attempts,
            "createdAt": self.created_at.isoformat(),
            "lastSentAt": self.last_sent_at.isoformat() if self.last_sent_at else None,
            "completedAt": self.completed_at.isoformat() if self.completed_at else None,
            "result": self.result,
        }


def _insert(
    connection: Connection,
    *,
    station: str,
    action: str,
    topic: str,
    payload: dict[str, Any],
    now: dt.datetime,
    certificate: tuple[str, str] | None,
) -> int:
    """Insert a pending delivery; an older pending one on the same topic is superseded by it."""
    connection.execute(
        update(_DELIVERIES)
        .where(
            _DELIVERIES.c.station_identity == station,
            _DELIVERIES.c.topic == topic,
            _DELIVERIES.c.status == "pending",
        )
        .values(status="superseded", completed_at=now)
    )
    result = connection.execute(
        insert(_DELIVERIES).values(
            station_identity=station,
            action=action,
            topic=topic,
            payload=json.dumps(payload, separators=(",", ":")),
            status="pending",
            certificate_issuer=certificate[0] if certificate else None,
            certificate_serial=certificate[1] if certificate else None,
            attempts=0,
            created_at=now,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _view(connection: Connection, delivery_id: int) -> DeliveryView:
    row = connection.execute(select(_DELIVERIES).where(_DELIVERIES.c.id == delivery_id)).first()
    if row is None:
        raise NotFound(f"no delivery {delivery_id}")
    return DeliveryView.from_row(row)


def create_delivery(
    ctx: Context,
    *,
    station: str,
    action: str,
    topic: str,
    payload: dict[str, Any],
    actor: str = "system",
) -> DeliveryView:
    """Store a pending call (InstallCertificate, DeleteCertificate, TriggerMessage, ...)."""
    now = ctx.clock.now()
    with ctx.database.transaction() as connection:
        delivery_id = _insert(
            connection, station=station, action=action, topic=topic, payload=payload, now=now, certificate=None
        )
        audit.append_on(
            connection, at=now, actor=actor, action="ocpp-delivery", details={"station": station, "topic": topic}
        )
        return _view(connection, delivery_id)


def find_pending(ctx: Context, station: str, topic: str) -> DeliveryView | None:
    with ctx.database.read() as session:
        row = session.execute(_PENDING_ON_TOPIC, {"station": station, "topic": topic}).first()
        return DeliveryView.from_row(row) if row is not None else None


def last_delivery(ctx: Context, station: str, topic: str, status: str = "accepted") -> DeliveryView | None:
    """The newest delivery on ``topic`` with ``status`` (e.g. the CertificateSigned a station last accepted)."""
    with ctx.database.read() as session:
        row = session.execute(
            select(_DELIVERIES)
            .where(
                _DELIVERIES.c.station_identity == station,
                _DELIVERIES.c.topic == topic,
                _DELIVERIES.c.status == status,
            )
            .order_by(_DELIVERIES.c.id.desc())
            .limit(1)
        ).first()
        return DeliveryView.from_row(row) if row is not None else None


def pending_deliveries(ctx: Context, station: str) -> list[DeliveryView]:
    """What the station must still accept, oldest first (the order to re-send on reconnect)."""
    with ctx.database.read() as session:
        rows = session.execute(
            select(_DELIVERIES)
            .where(_DELIVERIES.c.station_identity == station, _DELIVERIES.c.status == "pending")
            .order_by(_DELIVERIES.c.id)
        ).all()
        return [DeliveryView.from_row(row) for row in rows]


def delivery(ctx: Context, delivery_id: int) -> DeliveryView:
    with ctx.database.read() as session:
        return _view(session.connection(), delivery_id)


def _owned(view: DeliveryView, station: str | None) -> DeliveryView:
    """The delivery, when it is ``station``'s (or no station is named): a caller reporting for one
    station must not close or count another's call; which deliveries exist is not disclosed."""
    if station is not None and view.station_identity != station:
        raise NotFound(f"no delivery {view.id} for station {station!r}")
    return view


def mark_sent(ctx: Context, delivery_id: int, *, station: str | None = None) -> None:
    """Count one more send of the delivery (a CALLERROR or timeout: it stays pending)."""
    now = ctx.clock.now()
    with ctx.database.transaction() as connection:
        _owned(_view(connection, delivery_id), station)
        connection.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.id == delivery_id)
            .values(attempts=_DELIVERIES.c.attempts + 1, last_sent_at=now)
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
    station's OCPP version.
    """
    with ctx.database.read() as session:
        row = station_row(session, station)
        if row.status != "active":
            raise Conflict(f"station {station!r} is disabled")
        serial = row.serial
    identity = identity or RequestIdentity(station_id=station, station_serial=serial)
    leaf: list[x509.Certificate] = []
    created: list[DeliveryView] = []
    replaced_ca: list[str] = []

    def store_delivery(connection: Connection, row_id: int) -> None:
        issuer_id = connection.execute(_ISSUER_OF_ROW, {"row_id": row_id}).scalar_one()
        # Read again under the station's lock: the station may have answered the pending one meanwhile,
        # or the same CSR may have been signed at the same time.
        connection.execute(_LOCK_STATION, {"station": station})
        still_pending = connection.execute(_PENDING_ON_TOPIC, {"station": station, "topic": topic}).first()
        if still_pending is not None:
            other = DeliveryView.from_row(still_pending)
            if _same_key(connection, other, leaf[0].public_key()):
                raise _StillPending(other)  # the same CSR twice at once: one certificate, not two
            revoked = _revoke_undelivered(ctx, connection, other, actor)
            if revoked is not None:
                replaced_ca.append(revoked)
        # Issuance has just checked the cached directory against this transaction's reading.
        directory = ctx.cached_ca_directory() or ctx.ca_directory(connection)
        chain = [leaf[0], *(entry.certificate for entry in directory.chain(issuer_id)[:-1])]
        payload = payload_for("".join(c.public_bytes(Encoding.PEM).decode() for c in chain))
        now = ctx.clock.now()
        certificate = (issuer_id, serial_hex(leaf[0].serial_number))
        delivery_id = _insert(
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
        profile=profile, csr=csr, identity=identity, before_store=leaf.append, in_transaction=store_delivery
    )
    approval = approve(ctx, request)
    with ctx.database.read() as session:
        connection = session.connection()
        pending = connection.execute(_PENDING_ON_TOPIC, {"station": station, "topic": topic}).first()
        if pending is not None:
            view = DeliveryView.from_row(pending)
            if _same_key(connection, view, approval.approved.public_key):
                return view, False, None
    try:
        issue(ctx, request, actor, approval=approval)
    except _StillPending as raced:
        return raced.delivery, False, None
    return created[0], True, (replaced_ca[0] if replaced_ca else None)


class _StillPending(Exception):
    """A delivery for the same key became pending while this one was being signed."""

    def __init__(self, delivery: DeliveryView) -> None:
        self.delivery = delivery


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _same_key(connection: Connection, pending: DeliveryView, public_key: CertificatePublicKeyTypes) -> bool:
    """Whether the pending delivery's certificate is for ``public_key``."""
    if pending.certificate_issuer is None or pending.certificate_serial is None:
        return False
    der = connection.execute(
        _DER_OF_CERTIFICATE, {"issuer": pending.certificate_issuer, "serial": pending.certificate_serial}
    ).scalar_one()
    return _spki(x509.load_der_x509_certificate(der).public_key()) == _spki(public_key)


def _revoke_undelivered(ctx: Context, connection: Connection, pending: DeliveryView, actor: str) -> str | None:
    """Revoke the certificate of a pending CertificateSigned that a new CSR replaces; returns its CA.

    The delivery itself is closed as superseded by the new delivery's insert.
    """
    if pending.certificate_issuer is None or pending.certificate_serial is None:
        return None
    session = Session(bind=connection)
    try:
        row = repository.find_certificate(session, pending.certificate_serial, pending.certificate_issuer)
        if row.status == "revoked":
            return None
        changed_at = status_change_time(session, row.issuer_id, ctx.clock)
        apply_revocation(row, RevocationReason.SUPERSEDED, changed_at)
        audit.append(
            session,
            at=changed_at,
            actor=actor,
            action="revoke",
            ca_id=row.issuer_id,
            serial=row.serial,
            details={
                "reason": RevocationReason.SUPERSEDED.value,
                "sha256": row.sha256,
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


def record_result(
    ctx: Context,
    delivery_id: int,
    response: dict[str, Any],
    *,
    station: str | None = None,
    actor: str = "ocpp",
    sent: bool = False,
) -> tuple[DeliveryView, str | None]:
    """Close a delivery with the station's answer; returns it and the CA whose CRLs changed, if any.

    ``sent`` counts the send that this answer answers (as :func:`mark_sent` would) in the same
    transaction. A delivery that is no longer pending is left as it is (a late or repeated answer).
    With ``station``, a delivery of another station is :class:`NotFound`.
    """
    if not isinstance(response, dict):
        raise InvalidInput("the station's answer must be a JSON object")
    now = ctx.clock.now()
    changed_ca: str | None = None
    with ctx.database.write() as session:
        connection = session.connection()
        current = _owned(_view(connection, delivery_id), station)
        if current.status != "pending":
            return current, None
        answer = str(response.get("status", ""))
        status = _CLOSED_BY.get(answer, "failed")
        if (current.action, answer) in _DONE_ANYWAY:
            status = "accepted"
        result = json.dumps(response, separators=(",", ":"))
        attempts = current.attempts + (1 if sent else 0)
        last_sent_at = now if sent else current.last_sent_at
        connection.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.id == delivery_id)
            .values(status=status, completed_at=now, result=result, attempts=attempts, last_sent_at=last_sent_at)
        )
        details: dict[str, Any] = {"station": current.station_identity, "topic": current.topic, "status": status}
        if current.action == "CertificateSigned" and current.certificate_issuer and current.certificate_serial:
            certificate = repository.find_certificate(session, current.certificate_serial, current.certificate_issuer)
            if status == "accepted":
                replaced = [
                    old
                    for old in repository.current_for_identity(session, certificate.profile, certificate.identity or "")
                    if old.id != certificate.id and old.id is not None and old.id < (certificate.id or 0)
                ]
                repository.supersede(session, [old.id for old in replaced if old.id is not None], certificate.id)  # type: ignore[arg-type]
                details["supersedes"] = [f"{old.issuer_id}/{old.serial}" for old in replaced]
            elif status == "rejected" and certificate.status != "revoked":
                # Never installed, so never usable: revoke rather than leave a valid orphan behind.
                changed_at = status_change_time(session, certificate.issuer_id, ctx.clock)
                apply_revocation(certificate, RevocationReason.SUPERSEDED, changed_at)
                details["revoked"] = f"{certificate.issuer_id}/{certificate.serial}"
                changed_ca = certificate.issuer_id
        audit.append(
            session,
            at=now,
            actor=actor,
            action="ocpp-delivery-result",
            ca_id=current.certificate_issuer,
            serial=current.certificate_serial,
            details=details,
        )
        session.flush()
        closed = dataclasses.replace(
            current, status=status, attempts=attempts, last_sent_at=last_sent_at, completed_at=now, result=response
        )
        return closed, changed_ca
