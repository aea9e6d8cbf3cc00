"""Operator-initiated calls on a station, stored until the station answers: the operator's side of deliveries.

An operator (REST ``/api/v1/stations/{id}/…``, CLI ``evpki station …``) asks a station to install
or delete a certificate, list what it holds, renew, upload its security log, take a new Basic-auth
password, move to security profile 3 or update its firmware. Each request is a row of
``ocpp_delivery`` with ``origin = "operator"``: stored with its payload built for the station's
OCPP version (:mod:`pki.stations.call_payloads`), sent by whichever bridge process holds the
station's connection (at once when connected -- the bridges hear of new calls through
:mod:`pki.stations.call_feed` -- otherwise when it next connects), and closed by the station's
answer or CALLERROR. An unsent call may carry an expiry (``ttl``); past it, it is ``expired`` and
never sent.

Statuses: ``pending`` → ``accepted`` | ``rejected`` | ``failed`` | ``answered`` (any other status
the station gave, e.g. NotFound) | ``error`` (CALLERROR) | ``expired`` | ``superseded`` (a newer
call of the same kind, e.g. a second password, replaced it before it was sent). A call without
an answer in time stays pending and is sent again on the next connection.

Side effects of an answer, in the transaction that records it: an accepted password (A01) becomes
the registry's (its clear text is then scrubbed from the stored payload); an accepted security
profile (A05) marks the station for the upgrade and, in 2.x, queues the Reset that applies it.
GetLog and UpdateFirmware carry the call's id as their ``requestId``, so the station's
LogStatusNotification / FirmwareStatusNotification are filed under the call
(:mod:`pki.stations.notifications`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from pki.core.errors import InvalidInput, NotFound
from pki.operations import audit
from pki.runtime.context import Context
from pki.stations import call_payloads, registry
from pki.stations.call_feed import CHANNEL
from pki.stations.deliveries import DeliveryView
from pki.store.models import OcppDeliveryRow, StationRow

__all__ = [
    "OPERATOR",
    "REDACTED",
    "create_call",
    "expire_due",
    "list_calls",
    "operator_call",
    "pending_operator_calls",
    "record_answer",
    "record_call_error",
]

OPERATOR = "operator"
REDACTED = "********"
_DELIVERIES = OcppDeliveryRow.__table__  # type: ignore[attr-defined]
_STATIONS = StationRow.__table__  # type: ignore[attr-defined]
# Where a call's payload carries its requestId (the call's own id).
_REQUEST_ID_CALLS = frozenset({"GetLog", "UpdateFirmware", "SignedUpdateFirmware"})
_ACCEPTED = frozenset({"Accepted", "AcceptedCanceled", "RebootRequired"})
_REJECTED = frozenset({"Rejected", "InvalidCertificate", "RevokedCertificate"})


def _view(connection: Connection, call_id: int) -> DeliveryView:
    row = connection.execute(select(_DELIVERIES).where(_DELIVERIES.c.id == call_id)).first()
    if row is None:
        raise NotFound(f"no call {call_id}")
    return DeliveryView.from_row(row)


def create_call(
    ctx: Context,
    *,
    station: str,
    action: str,
    payload: dict[str, Any],
    ocpp_version: str,
    topic: str | None = None,
    ttl: dt.timedelta | None = None,
    actor: str = "system",
) -> DeliveryView:
    """Store an operator call; a pending one on the same ``topic`` is superseded (default: a topic of its own)."""
    now = ctx.clock.now()
    topic = topic or f"operator:{action}:{secrets.token_hex(8)}"
    with ctx.database.transaction() as connection:
        if connection.execute(select(_STATIONS.c.id).where(_STATIONS.c.identity == station)).first() is None:
            raise NotFound(f"no station {station!r}; `evpki station add` registers one")
        call_id = _insert(connection, station, action, topic, payload, ocpp_version, ttl, actor, now)
        audit.append_on(
            connection,
            at=now,
            actor=actor,
            action="station-call",
            details={"station": station, "call": call_id, "action": action, "topic": topic},
        )
        return _view(connection, call_id)


def _insert(
    connection: Connection,
    station: str,
    action: str,
    topic: str,
    payload: dict[str, Any],
    ocpp_version: str,
    ttl: dt.timedelta | None,
    actor: str,
    now: dt.datetime,
) -> int:
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
            attempts=0,
            created_at=now,
            origin=OPERATOR,
            ocpp_version=ocpp_version,
            requested_by=actor[:200],
            expires_at=now + ttl if ttl is not None else None,
        )
    )
    call_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    if action in _REQUEST_ID_CALLS:
        # L01.FR.10 / N01: the station reports progress under this requestId, which is the call's id.
        payload = {**payload, "requestId": call_id}
        connection.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.id == call_id)
            .values(payload=json.dumps(payload, separators=(",", ":")))
        )
    if connection.dialect.name == "postgresql":
        # Delivered at commit to the bridges listening (pki.stations.call_feed): the call goes out at once.
        connection.execute(select(func.pg_notify(CHANNEL, station)))
    return call_id


def operator_call(ctx: Context, call_id: int, *, station: str | None = None) -> DeliveryView:
    with ctx.database.read() as session:
        view = _view(session.connection(), call_id)
    if view.origin != OPERATOR or (station is not None and view.station_identity != station):
        raise NotFound(f"no call {call_id}" + (f" for station {station!r}" if station else ""))
    return view


def list_calls(ctx: Context, station: str, *, limit: int = 100, operator_only: bool = False) -> list[DeliveryView]:
    """The calls to ``station`` (operator calls and the bridge's own deliveries), newest first."""
    query = select(_DELIVERIES).where(_DELIVERIES.c.station_identity == station)
    if operator_only:
        query = query.where(_DELIVERIES.c.origin == OPERATOR)
    with ctx.database.read() as session:
        registry.station_row(session, station)
        rows = session.execute(query.order_by(_DELIVERIES.c.id.desc()).limit(limit)).all()
        return [DeliveryView.from_row(row) for row in rows]


def pending_operator_calls(
    ctx: Context, *, limit: int = 100_000, only: Callable[[int, str], bool] | None = None
) -> list[DeliveryView]:
    """Pending, unexpired operator calls of every station, oldest first (what the bridges poll for).

    ``only(call_id, station)`` picks the calls wanted before their payloads are read: a bridge asks only
    for those of the stations connected to it that it has not sent yet, so a poll stays one narrow query
    however many calls wait for stations that are offline.
    """
    now = ctx.clock.now()
    where = (
        _DELIVERIES.c.status == "pending",
        _DELIVERIES.c.origin == OPERATOR,
        or_(_DELIVERIES.c.expires_at.is_(None), _DELIVERIES.c.expires_at > now),
    )
    with ctx.database.read() as session:
        keys = session.execute(
            select(_DELIVERIES.c.id, _DELIVERIES.c.station_identity)
            .where(*where)
            .order_by(_DELIVERIES.c.id)
            .limit(limit)
        ).all()
        wanted = [row.id for row in keys if only is None or only(row.id, row.station_identity)]
        views: list[DeliveryView] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = session.execute(select(_DELIVERIES).where(_DELIVERIES.c.id.in_(chunk)).order_by(_DELIVERIES.c.id))
            views.extend(DeliveryView.from_row(row) for row in rows.all())
        return views


def expire_due(ctx: Context, *, station: str | None = None) -> int:
    """Close the pending calls whose expiry has passed (``expired``); how many there were."""
    now = ctx.clock.now()
    where = [
        _DELIVERIES.c.status == "pending",
        _DELIVERIES.c.expires_at.is_not(None),
        _DELIVERIES.c.expires_at <= now,
    ]
    if station is not None:
        where.append(_DELIVERIES.c.station_identity == station)
    with ctx.database.read() as session:
        due = session.execute(select(_DELIVERIES.c.id, _DELIVERIES.c.station_identity).where(*where)).all()
    if not due:
        return 0
    with ctx.database.transaction() as connection:
        ids = [row.id for row in due]
        expired = connection.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.id.in_(ids), _DELIVERIES.c.status == "pending")
            .values(status="expired", completed_at=now)
        ).rowcount
        if expired:
            audit.append_on(connection, at=now, actor="system", action="station-call-expired", details={"calls": ids})
        return int(expired or 0)


def _outcome(action: str, response: dict[str, Any]) -> str:
    if action == "SetVariables":
        statuses = [str(item.get("attributeStatus")) for item in response.get("setVariableResult", [])]
        return "accepted" if statuses and all(s in _ACCEPTED for s in statuses) else "rejected"
    status = str(response.get("status", ""))
    if status in _ACCEPTED:
        return "accepted"
    if status in _REJECTED:
        return "rejected"
    return "failed" if status == "Failed" else "answered"


# A05 on 2.x: the SetNetworkProfile call's topic carries the NetworkConfigurationPriority that follows it.
NETWORK_PROFILE_TOPIC = "operator:security-profile:"
_PRIORITY_TOPIC = "operator:security-profile-priority"


def _variable(action: str, payload: dict[str, Any]) -> tuple[str, str] | None:
    """(name, value) of a password / security-profile change, in either version's form."""
    if action == "ChangeConfiguration":
        return {"AuthorizationKey": "password", "SecurityProfile": "profile"}.get(payload.get("key", "")), str(
            payload.get("value", "")
        )  # type: ignore[return-value]
    if action == "SetVariables":
        data = (payload.get("setVariableData") or [{}])[0]
        name = {"BasicAuthPassword": "password"}.get(data.get("variable", {}).get("name", ""))
        return (name, str(data.get("attributeValue", ""))) if name else None  # type: ignore[return-value]
    return None


def _scrubbed(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    scrubbed = json.loads(json.dumps(payload))
    if action == "ChangeConfiguration":
        scrubbed["value"] = REDACTED
    else:
        scrubbed["setVariableData"][0]["attributeValue"] = REDACTED
    return scrubbed


def record_answer(
    ctx: Context, call_id: int, response: dict[str, Any], *, station: str, actor: str = "ocpp"
) -> tuple[DeliveryView, DeliveryView | None]:
    """Close an operator call with the station's CALLRESULT; returns it and a call that follows (A05 Reset)."""
    if not isinstance(response, dict):
        raise InvalidInput("the station's answer must be a JSON object")
    now = ctx.clock.now()
    with ctx.database.transaction() as connection:
        current = _view(connection, call_id)
        if current.station_identity != station or current.origin != OPERATOR:
            raise NotFound(f"no call {call_id} for station {station!r}")
        if current.status != "pending":
            return current, None  # a late or repeated answer
        status = _outcome(current.action, response)
        payload = current.payload
        details: dict[str, Any] = {"station": station, "call": call_id, "action": current.action, "status": status}
        follow: int | None = None
        change = _variable(current.action, payload)
        if change is not None and change[0] == "password":
            payload = _scrubbed(current.action, payload)  # the clear text is not kept once answered
            if status == "accepted":
                # A01: the registry takes the new password only once the station has it.
                connection.execute(
                    update(_STATIONS)
                    .where(_STATIONS.c.identity == station)
                    .values(password_hash=registry.password_hash(change[1]), updated_at=now)
                )
                details["password_changed"] = True
        elif current.action == "SetNetworkProfile" and current.topic.startswith(NETWORK_PROFILE_TOPIC):
            if status == "accepted":
                # A05 (2.x): the new slot goes first in NetworkConfigurationPriority, the fallback after it.
                priority = current.topic[len(NETWORK_PROFILE_TOPIC) :]
                action, body = call_payloads.set_network_priority(current.ocpp_version or "2.0.1", priority)
                follow = _insert(
                    connection,
                    station,
                    action,
                    _PRIORITY_TOPIC,
                    body,
                    current.ocpp_version or "2.0.1",
                    None,
                    current.requested_by or actor,
                    now,
                )
                details["network_priority"] = follow
        elif status == "accepted" and (current.topic == _PRIORITY_TOPIC or (change and change[0] == "profile")):
            profile = int(change[1]) if change is not None else 3
            connection.execute(
                update(_STATIONS)
                .where(_STATIONS.c.identity == station)
                .values(pending_security_profile=profile, updated_at=now)
            )
            details["pending_security_profile"] = profile
            if current.ocpp_version != "1.6":
                # A05.FR.04 (2.x): the new profile applies after a reset; a 1.6 station reconnects by itself.
                follow = _insert(
                    connection,
                    station,
                    "Reset",
                    "operator:Reset:security-profile",
                    {"type": "OnIdle"},
                    current.ocpp_version or "2.0.1",
                    None,
                    current.requested_by or actor,
                    now,
                )
                details["reset"] = follow
        connection.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.id == call_id)
            .values(
                status=status,
                completed_at=now,
                result=json.dumps(response, separators=(",", ":")),
                attempts=current.attempts + 1,
                last_sent_at=now,
                payload=json.dumps(payload, separators=(",", ":")),
            )
        )
        audit.append_on(connection, at=now, actor=actor, action="station-call-result", details=details)
        closed = dataclasses.replace(
            current,
            status=status,
            result=response,
            payload=payload,
            attempts=current.attempts + 1,
            last_sent_at=now,
            completed_at=now,
        )
        return closed, (_view(connection, follow) if follow is not None else None)


def record_call_error(
    ctx: Context, call_id: int, code: str, description: str, *, station: str, actor: str = "ocpp"
) -> DeliveryView:
    """Close an operator call with the station's CALLERROR (status ``error``); the call is not sent again."""
    now = ctx.clock.now()
    with ctx.database.transaction() as connection:
        current = _view(connection, call_id)
        if current.station_identity != station or current.origin != OPERATOR:
            raise NotFound(f"no call {call_id} for station {station!r}")
        if current.status != "pending":
            return current
        result = {"errorCode": code[:64], "errorDescription": description[:255]}
        payload = current.payload
        change = _variable(current.action, payload)
        if change is not None and change[0] == "password":
            payload = _scrubbed(current.action, payload)
        connection.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.id == call_id)
            .values(
                status="error",
                completed_at=now,
                result=json.dumps(result, separators=(",", ":")),
                attempts=current.attempts + 1,
                last_sent_at=now,
                payload=json.dumps(payload, separators=(",", ":")),
            )
        )
        audit.append_on(
            connection,
            at=now,
            actor=actor,
            action="station-call-result",
            details={"station": station, "call": call_id, "action": current.action, "status": "error", **result},
        )
        return dataclasses.replace(current, status="error", result=result, payload=payload, completed_at=now)
