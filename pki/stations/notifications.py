"""What stations report about the calls they accepted: firmware and log status, firmware security events.

FirmwareStatusNotification (2.x), SignedFirmwareStatusNotification (1.6) and LogStatusNotification
carry the ``requestId`` of the UpdateFirmware / GetLog call, which is the call's id
(:mod:`pki.stations.calls`). The firmware security events (InvalidFirmwareSigningCertificate,
InvalidFirmwareSignature, FirmwareUpdated) are filed under a firmware call too, besides the audit
log. A report without a requestId goes to the station's newest call of its kind that it *accepted* (a
refused second update leaves the first one running, L01.FR.27), except
InvalidFirmwareSigningCertificate, which is about the update just refused. :func:`firmware_updates`
turns a station's firmware calls, their notifications and events into one operator-visible outcome
each (OCPP L01.FR.02/03/21/22/24/31); an update the station cancelled for a newer one
(AcceptedCanceled, L01.FR.24) is *superseded*.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from pki.core.clock import utc
from pki.operations import audit
from pki.runtime.context import Context
from pki.stations import registry
from pki.stations.deliveries import DeliveryView
from pki.store.models import OcppDeliveryRow, StationNotificationRow

__all__ = [
    "FIRMWARE_CALLS",
    "FIRMWARE_EVENTS",
    "FirmwareUpdateView",
    "NotificationView",
    "firmware_updates",
    "notifications_for",
    "record_notification",
]

FIRMWARE_CALLS = ("UpdateFirmware", "SignedUpdateFirmware")
FIRMWARE_EVENTS = frozenset({"InvalidFirmwareSigningCertificate", "InvalidFirmwareSignature", "FirmwareUpdated"})
_KIND = {
    "FirmwareStatusNotification": FIRMWARE_CALLS,
    "SignedFirmwareStatusNotification": FIRMWARE_CALLS,
    "SecurityEventNotification": FIRMWARE_CALLS,
    "LogStatusNotification": ("GetLog",),
}
_DELIVERIES = OcppDeliveryRow.__table__  # type: ignore[attr-defined]
_NOTIFICATIONS = StationNotificationRow.__table__  # type: ignore[attr-defined]
# A firmware status after which nothing more happens for that requestId (L01).
_FAILED = {
    "DownloadFailed": "the station could not download the firmware",
    "InvalidSignature": "the station found the firmware signature invalid (L01.FR.03)",
    "InstallVerificationFailed": "the station could not verify the installed firmware",
    "InstallationFailed": "the installation failed",
}
_REFUSED = {
    "InvalidCertificate": "the station refused the signing certificate (InvalidCertificate, L01.FR.02/21)",
    "RevokedCertificate": "the station found the signing certificate revoked (RevokedCertificate, L01.FR.22)",
    "Rejected": "the station rejected the update",
}


@dataclass(frozen=True, slots=True)
class NotificationView:
    action: str
    request_id: int | None
    status: str
    payload: dict[str, Any]
    received_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "requestId": self.request_id,
            "status": self.status,
            "payload": self.payload,
            "receivedAt": self.received_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class FirmwareUpdateView:
    """One firmware update: the call, what the station reported under its requestId, and the outcome."""

    call: DeliveryView
    notifications: tuple[NotificationView, ...]
    outcome: str  # queued | sent | accepted | in-progress | installed | refused | failed | error | expired | superseded
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "requestId": self.call.id,
            "outcome": self.outcome,
            "reason": self.reason,
            "call": self.call.to_json(),
            "notifications": [n.to_json() for n in self.notifications],
        }


def _newest_call(connection: Connection, station: str, actions: tuple[str, ...], *, accepted: bool) -> int | None:
    """The station's newest call of ``actions``; with ``accepted``, the newest it accepted if there is one
    (a status or installation report belongs to an update that runs, not to a newer one it refused)."""
    where = [_DELIVERIES.c.station_identity == station, _DELIVERIES.c.action.in_(actions)]
    query = select(_DELIVERIES.c.id).where(*where).order_by(_DELIVERIES.c.id.desc()).limit(1)
    row = connection.execute(query.where(_DELIVERIES.c.status == "accepted")).first() if accepted else None
    row = row or connection.execute(query).first()
    return int(row.id) if row is not None else None


def record_notification(
    ctx: Context, *, station: str, action: str, payload: dict[str, Any], actor: str = "ocpp"
) -> NotificationView:
    """File one status notification (or firmware security event) under its call."""
    now = ctx.clock.now()
    status = str(payload.get("type") if action == "SecurityEventNotification" else payload.get("status", ""))[:50]
    request_id = payload.get("requestId")
    with ctx.database.transaction() as connection:
        if not isinstance(request_id, int) or isinstance(request_id, bool):
            # OCPP L01.FR.24/27: a refused second update leaves the first running; only a refusal of the
            # signing certificate (L01.FR.02/22) concerns the update just refused.
            accepted = status != "InvalidFirmwareSigningCertificate"
            request_id = _newest_call(connection, station, _KIND.get(action, FIRMWARE_CALLS), accepted=accepted)
        connection.execute(
            insert(_NOTIFICATIONS).values(
                station_identity=station,
                action=action,
                request_id=request_id,
                status=status,
                payload=json.dumps(payload, separators=(",", ":")),
                received_at=now,
            )
        )
        if action != "SecurityEventNotification":  # those are in the audit log already, as security-event
            audit.append_on(
                connection,
                at=now,
                actor=actor,
                action="station-notification",
                details={"station": station, "action": action, "request_id": request_id, "status": status},
            )
    return NotificationView(action, request_id, status, payload, now)


def notifications_for(ctx: Context, station: str, request_ids: list[int]) -> dict[int, list[NotificationView]]:
    """The notifications filed under each of ``request_ids``, oldest first."""
    if not request_ids:
        return {}
    with ctx.database.read() as session:
        rows = session.execute(
            select(_NOTIFICATIONS)
            .where(_NOTIFICATIONS.c.station_identity == station, _NOTIFICATIONS.c.request_id.in_(request_ids))
            .order_by(_NOTIFICATIONS.c.id)
        ).all()
    found: dict[int, list[NotificationView]] = {}
    for row in rows:
        found.setdefault(row.request_id, []).append(
            NotificationView(row.action, row.request_id, row.status, json.loads(row.payload), utc(row.received_at))
        )
    return found


def _outcome(call: DeliveryView, notes: list[NotificationView]) -> tuple[str, str]:
    if call.status in ("expired", "superseded"):
        return call.status, f"the call was {call.status} before the station answered"
    if call.status == "error":
        result = call.result or {}
        return "error", f"the station answered CALLERROR {result.get('errorCode')}: {result.get('errorDescription')}"
    if call.status == "pending":
        return ("sent", "sent; no answer yet") if call.attempts else ("queued", "waiting for the station to connect")
    answer = str((call.result or {}).get("status", ""))
    if answer in _REFUSED:
        events = [n.status for n in notes if n.action == "SecurityEventNotification"]
        suffix = f"; security event {', '.join(events)}" if events else ""
        return "refused", _REFUSED[answer] + suffix
    statuses = [n for n in notes if n.action != "SecurityEventNotification"]
    events = {n.status for n in notes if n.action == "SecurityEventNotification"}
    if statuses:
        last = statuses[-1].status
        if last in _FAILED:
            extra = " and reported InvalidFirmwareSignature" if "InvalidFirmwareSignature" in events else ""
            return "failed", f"{_FAILED[last]} ({last}){extra}"
        if last == "Installed":
            confirmed = " and reported FirmwareUpdated (L01.FR.31)" if "FirmwareUpdated" in events else ""
            return "installed", f"the station installed the firmware{confirmed}"
        return "in-progress", f"the station reports {last}"
    if "InvalidFirmwareSignature" in events:
        return "failed", "the station found the firmware signature invalid (InvalidFirmwareSignature, L01.FR.03)"
    if answer == "AcceptedCanceled":
        return "accepted", "accepted; the station cancelled the update it was running (L01.FR.24)"
    return "accepted", "accepted; no status reported yet"


def firmware_updates(ctx: Context, station: str, *, limit: int = 20) -> list[FirmwareUpdateView]:
    """The station's firmware updates, newest first, each with its notifications and outcome."""
    with ctx.database.read() as session:
        registry.station_row(session, station)
        rows = session.execute(
            select(_DELIVERIES)
            .where(_DELIVERIES.c.station_identity == station, _DELIVERIES.c.action.in_(FIRMWARE_CALLS))
            .order_by(_DELIVERIES.c.id.desc())
            .limit(limit)
        ).all()
    calls = [DeliveryView.from_row(row) for row in rows]
    notes = notifications_for(ctx, station, [call.id for call in calls])
    views: list[FirmwareUpdateView] = []
    canceled_by: int | None = None  # the newer update the station cancelled the running one for
    for call in calls:  # newest first
        outcome, reason = _outcome(call, notes.get(call.id, []))
        if canceled_by is not None and outcome in ("accepted", "in-progress"):
            # OCPP L01.FR.24: the station cancelled this update when it accepted the newer one.
            outcome, reason = "superseded", f"the station cancelled it for update {canceled_by} (AcceptedCanceled)"
        if canceled_by is None and (call.result or {}).get("status") == "AcceptedCanceled":
            canceled_by = call.id
        views.append(FirmwareUpdateView(call, tuple(notes.get(call.id, [])), outcome, reason))
    return views
