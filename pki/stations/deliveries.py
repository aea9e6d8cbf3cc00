"""Calls a station still has to accept, kept until it does: the CSMS side of guaranteed delivery.

A certificate issued for a station's CSR is useless until the station accepts the
CertificateSigned call that carries it; a root is trusted only once InstallCertificate was
accepted. Each such call is a *delivery*: stored with its payload when it is created, re-sent on
every reconnect until the station answers, and closed by that answer.

- ``topic`` names what a delivery is about (``CertificateSigned:ChargingStationCertificate``,
  ``InstallCertificate:V2GRootCertificate:<sha256>``).
- A station's CSR is answered by a CertificateSigned delivery (:mod:`pki.stations.csr_issuance`),
  stored with :func:`insert_delivery` in the transaction that issues the certificate.
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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from pki.core.clock import utc
from pki.core.errors import InvalidInput, NotFound
from pki.operations import audit
from pki.revocation.reasons import RevocationReason, apply_revocation, status_change_time
from pki.runtime.context import Context
from pki.store import repository
from pki.store.db import joined_session
from pki.store.models import CertificateRow, OcppDeliveryRow

__all__ = [
    "PENDING_ON_TOPIC",
    "SECC_CERTIFICATE_TOPIC",
    "STATION_CERTIFICATE_TOPIC",
    "DeliveryView",
    "RenewalDue",
    "create_delivery",
    "delivery",
    "find_pending",
    "insert_delivery",
    "last_delivery",
    "mark_sent",
    "pending_deliveries",
    "record_result",
]

_DELIVERIES = OcppDeliveryRow.__table__  # type: ignore[attr-defined]
# Built once: a station's enrollment runs it on its hot path.
PENDING_ON_TOPIC = (
    select(_DELIVERIES)
    .where(
        _DELIVERIES.c.station_identity == bindparam("station"),
        _DELIVERIES.c.topic == bindparam("topic"),
        _DELIVERIES.c.status == "pending",
    )
    .order_by(_DELIVERIES.c.id.desc())
    .limit(1)
)
_DELIVERY_BY_ID = select(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("delivery_id"))
_CLOSE_DELIVERY = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("delivery_id"))
    .values(
        status=bindparam("status"),
        completed_at=bindparam("completed_at"),
        result=bindparam("result"),
        attempts=bindparam("attempts"),
        last_sent_at=bindparam("last_sent_at"),
    )
)
_SUPERSEDE_PENDING = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.station_identity == bindparam("on_station"),
        _DELIVERIES.c.topic == bindparam("on_topic"),
        _DELIVERIES.c.status == "pending",
    )
    .values(status="superseded", completed_at=bindparam("superseded_at"))
)
_INSERT_DELIVERY = insert(_DELIVERIES)
_CERTIFICATES = CertificateRow.__table__  # type: ignore[attr-defined]
_CERTIFICATE_OF_DELIVERY = select(
    _CERTIFICATES.c.id,
    _CERTIFICATES.c.issuer_id,
    _CERTIFICATES.c.serial,
    _CERTIFICATES.c.profile,
    _CERTIFICATES.c.identity,
    _CERTIFICATES.c.status,
).where(_CERTIFICATES.c.issuer_id == bindparam("issuer"), _CERTIFICATES.c.serial == bindparam("serial"))
_SUPERSEDE = (
    update(_CERTIFICATES)
    .where(_CERTIFICATES.c.id.in_(bindparam("ids", expanding=True)))
    .values(superseded_by_id=bindparam("new_id"))
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
    origin: str | None = None  # "operator" for operator-initiated calls (pki.stations.calls)
    ocpp_version: str | None = None  # the version an operator call's payload was built for
    requested_by: str | None = None
    expires_at: dt.datetime | None = None

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
            origin=getattr(row, "origin", None),
            ocpp_version=getattr(row, "ocpp_version", None),
            requested_by=getattr(row, "requested_by", None),
            expires_at=utc(row.expires_at) if getattr(row, "expires_at", None) is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stationId": self.station_identity,
            "action": self.action,
            "topic": self.topic,
            "payload": _redacted(self.action, self.payload),
            "status": self.status,
            "certificateIssuer": self.certificate_issuer,
            "certificateSerial": self.certificate_serial,
            "attempts": self.attempts,
            "createdAt": self.created_at.isoformat(),
            "lastSentAt": self.last_sent_at.isoformat() if self.last_sent_at else None,
            "completedAt": self.completed_at.isoformat() if self.completed_at else None,
            "result": self.result,
            "origin": self.origin or "bridge",
            "ocppVersion": self.ocpp_version,
            "requestedBy": self.requested_by,
            "expiresAt": self.expires_at.isoformat() if self.expires_at else None,
        }


def _redacted(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as shown: a Basic-auth password (A01) is never displayed."""
    if action == "ChangeConfiguration" and payload.get("key") == "AuthorizationKey":
        return {**payload, "value": "********"}
    if action == "SetVariables":
        items = [
            {**item, "attributeValue": "********"}
            if item.get("variable", {}).get("name") == "BasicAuthPassword"
            else item
            for item in payload.get("setVariableData", [])
        ]
        return {**payload, "setVariableData": items}
    return payload


def insert_delivery(
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
    connection.execute(_SUPERSEDE_PENDING, {"on_station": station, "on_topic": topic, "superseded_at": now})
    result = connection.execute(
        _INSERT_DELIVERY,
        {
            "station_identity": station,
            "action": action,
            "topic": topic,
            "payload": json.dumps(payload, separators=(",", ":")),
            "status": "pending",
            "certificate_issuer": certificate[0] if certificate else None,
            "certificate_serial": certificate[1] if certificate else None,
            "attempts": 0,
            "created_at": now,
        },
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _view(connection: Connection, delivery_id: int) -> DeliveryView:
    row = connection.execute(_DELIVERY_BY_ID, {"delivery_id": delivery_id}).first()
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
        delivery_id = insert_delivery(
            connection, station=station, action=action, topic=topic, payload=payload, now=now, certificate=None
        )
        audit.append_on(
            connection, at=now, actor=actor, action="ocpp-delivery", details={"station": station, "topic": topic}
        )
        return _view(connection, delivery_id)


def find_pending(ctx: Context, station: str, topic: str) -> DeliveryView | None:
    with ctx.database.read() as session:
        row = session.execute(PENDING_ON_TOPIC, {"station": station, "topic": topic}).first()
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
    """What the station must still accept, oldest first (the order to re-send on reconnect); an operator
    call past its expiry is left out (:func:`pki.stations.calls.expire_due` closes it)."""
    now = ctx.clock.now()
    with ctx.database.read() as session:
        rows = session.execute(
            select(_DELIVERIES)
            .where(
                _DELIVERIES.c.station_identity == station,
                _DELIVERIES.c.status == "pending",
                or_(_DELIVERIES.c.expires_at.is_(None), _DELIVERIES.c.expires_at > now),
            )
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


class _OperatorCall(Exception):
    pass


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
    With ``station``, a delivery of another station is :class:`NotFound`. An operator call reported
    through a transport that does not know it is one (the REST results route) is closed as
    :func:`pki.stations.calls.record_answer` closes it (A01 password, A05 profile).
    """
    try:
        return _record_result(ctx, delivery_id, response, station=station, actor=actor, sent=sent)
    except _OperatorCall:
        from pki.stations.calls import record_answer  # it builds on this module

        view = _view_of(ctx, delivery_id)
        return record_answer(ctx, delivery_id, response, station=view.station_identity, actor=actor)[0], None


def _view_of(ctx: Context, delivery_id: int) -> DeliveryView:
    with ctx.database.read() as session:
        return _view(session.connection(), delivery_id)


def _record_result(
    ctx: Context,
    delivery_id: int,
    response: dict[str, Any],
    *,
    station: str | None = None,
    actor: str = "ocpp",
    sent: bool = False,
) -> tuple[DeliveryView, str | None]:
    """:func:`record_result` in one transaction; :class:`_OperatorCall` (nothing written) for an operator call."""
    if not isinstance(response, dict):
        raise InvalidInput("the station's answer must be a JSON object")
    now = ctx.clock.now()
    changed_ca: str | None = None
    # Core statements built once: a station's every enrollment closes a delivery, inside the write lock.
    with ctx.database.transaction() as connection:
        current = _owned(_view(connection, delivery_id), station)
        if current.status != "pending":
            return current, None
        if current.origin == "operator":
            raise _OperatorCall  # nothing written: closed below with the operator call's own side effects

        answer = str(response.get("status", ""))
        status = _CLOSED_BY.get(answer, "failed")
        if (current.action, answer) in _DONE_ANYWAY:
            status = "accepted"
        result = json.dumps(response, separators=(",", ":"))
        attempts = current.attempts + (1 if sent else 0)
        last_sent_at = now if sent else current.last_sent_at
        connection.execute(
            _CLOSE_DELIVERY,
            {
                "delivery_id": delivery_id,
                "status": status,
                "completed_at": now,
                "result": result,
                "attempts": attempts,
                "last_sent_at": last_sent_at,
            },
        )
        details: dict[str, Any] = {"station": current.station_identity, "topic": current.topic, "status": status}
        if current.action == "CertificateSigned" and current.certificate_issuer and current.certificate_serial:
            certificate = _delivered_certificate(connection, current.certificate_issuer, current.certificate_serial)
            if status == "accepted":
                replaced = [
                    old
                    for old in repository.current_rows_for_identity(
                        connection, certificate.profile, certificate.identity or ""
                    )
                    if old.id != certificate.id and old.id < certificate.id
                ]
                if replaced:
                    connection.execute(_SUPERSEDE, {"ids": [old.id for old in replaced], "new_id": certificate.id})
                details["supersedes"] = [f"{old.issuer_id}/{old.serial}" for old in replaced]
            elif status == "rejected" and certificate.status != "revoked":
                # Never installed, so never usable: revoke rather than leave a valid orphan behind.
                session = joined_session(connection)
                try:
                    row = repository.find_certificate(session, certificate.serial, certificate.issuer_id)
                    changed_at = status_change_time(session, row.issuer_id, ctx.clock)
                    apply_revocation(row, RevocationReason.SUPERSEDED, changed_at)
                    session.flush()
                finally:
                    session.close()
                details["revoked"] = f"{certificate.issuer_id}/{certificate.serial}"
                changed_ca = certificate.issuer_id
        audit.append_on(
            connection,
            at=now,
            actor=actor,
            action="ocpp-delivery-result",
            ca_id=current.certificate_issuer,
            serial=current.certificate_serial,
            details=details,
        )
        closed = dataclasses.replace(
            current, status=status, attempts=attempts, last_sent_at=last_sent_at, completed_at=now, result=response
        )
        return closed, changed_ca


def _delivered_certificate(connection: Connection, issuer: str, serial: str) -> Any:
    """The (id, issuer, serial, profile, identity, status) of a delivery's certificate; NotFound if gone."""
    try:
        normalised = format(int(serial, 16), "X")  # as repository.find_certificate reads a serial
    except ValueError:
        raise InvalidInput(f"{serial!r} is not a hex serial") from None
    row = connection.execute(_CERTIFICATE_OF_DELIVERY, {"issuer": issuer, "serial": normalised}).first()
    if row is None:
        raise NotFound(f"no certificate with serial {normalised} issued by {issuer}")
    return row
