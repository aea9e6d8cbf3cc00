"""The bridge's side of operator-initiated calls (``pki.station_calls``): send them, record what comes back.

An operator call is stored by any process (REST, CLI) in the shared database. Every bridge process
looks for pending calls (:meth:`OperatorCalls.due`) when :mod:`pki.stations.call_feed` says so --
at once on PostgreSQL (NOTIFY), within ``BridgeConfig.call_poll_interval`` on SQLite -- and sends
those of the stations connected to it; a station that connects gets its pending calls with its
deliveries. Before a call goes out it is checked once more: built for the OCPP version the station
speaks now, schema-valid for it, and -- for a firmware update -- its signer still valid and not
revoked (L01; otherwise the call is closed with the reason and never sent).

The station's CALLRESULT closes the call (:meth:`OperatorCalls.record_result`; a PnC DataTransfer
answer is unwrapped first) and may bring a call that follows (the Reset of an A05 upgrade). A
CALLERROR closes it as ``error``; a timeout leaves it pending for the next connection.

The station's own reports on those calls -- FirmwareStatusNotification, 1.6
SignedFirmwareStatusNotification, LogStatusNotification -- are recorded by
:meth:`OperatorCalls.record_notification` (the session answers them standalone and relays them
with an upstream).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ocpp_bridge.errors import OcppCallError
from ocpp_bridge.schemas import validate_request, validate_response
from pki import PKI
from pki.stations import OPERATOR, DeliveryView

if TYPE_CHECKING:
    from ocpp_bridge.core import FollowUp

__all__ = ["NOTIFICATIONS", "OperatorCalls"]

log = logging.getLogger("evpki.ocpp.operator")

PNC_VENDOR_ID = "org.openchargealliance.iso15118pnc"
# What stations report about the calls they accepted, per version.
NOTIFICATIONS: dict[str, frozenset[str]] = {
    "1.6": frozenset({"SignedFirmwareStatusNotification", "LogStatusNotification", "FirmwareStatusNotification"}),
    "2.0.1": frozenset({"FirmwareStatusNotification", "LogStatusNotification"}),
    "2.1": frozenset({"FirmwareStatusNotification", "LogStatusNotification"}),
}
# The 1.6 core FirmwareStatusNotification (of the unsigned UpdateFirmware) carries no requestId: recorded
# as any other, under the newest firmware call.


class OperatorCalls:
    """Operator calls as the gateway's follow-ups; thread-safe, blocking (run it in a worker thread)."""

    def __init__(self, pki: PKI) -> None:
        self._pki = pki

    def follow_up(self, call: DeliveryView, version: str) -> FollowUp | None:
        """The call as a follow-up for a station speaking ``version``; None (and the call closed) if it
        must not be sent."""
        from ocpp_bridge.core import FollowUp

        station = call.station_identity
        reason: str | None = None
        if call.ocpp_version is not None and call.ocpp_version != version:
            reason = f"the call was built for OCPP {call.ocpp_version}; the station now speaks {version}"
        else:
            reason = self._pki.station_calls.sendable(call)
        if reason is None:
            try:
                validate_request(version, call.action, call.payload)
                if call.action == "DataTransfer" and call.payload.get("vendorId") == PNC_VENDOR_ID:
                    validate_request("2.0.1", call.payload["messageId"], json.loads(call.payload["data"]))
            except OcppCallError as error:
                reason = f"not a valid OCPP {version} {call.action}: {error.description}"
        if reason is not None:
            log.warning("operator call %s to %s not sent: %s", call.id, station, reason)
            self._pki.station_calls.record_error(call.id, "NotSent", reason, station=station, actor="bridge")
            return None
        return FollowUp(call.action, call.payload, call.id, operator=True)

    def due(self, connected: dict[str, str], already: dict[str, set[int]]) -> list[tuple[str, FollowUp]]:
        """Pending operator calls of the stations ``connected`` here ({identity: version}) not yet sent
        on their current connection (``already``: {identity: call ids})."""

        def wanted(call_id: int, station: str) -> bool:
            return station in connected and call_id not in already.get(station, ())

        due: list[tuple[str, FollowUp]] = []
        for call in self._pki.station_calls.pending(wanted):
            follow_up = self.follow_up(call, connected[call.station_identity])
            if follow_up is not None:
                due.append((call.station_identity, follow_up))
        return due

    def record_result(
        self, version: str, station_id: str, follow_up: FollowUp, response: dict[str, Any]
    ) -> tuple[FollowUp, ...]:
        """The station's CALLRESULT: close the call; the call that follows, if any, to send next."""
        assert follow_up.delivery_id is not None
        action, answer = follow_up.action, response
        validate_response(version, action, response)
        if action == "DataTransfer" and follow_up.payload.get("vendorId") == PNC_VENDOR_ID:
            inner = follow_up.payload["messageId"]
            if response.get("status") == "Accepted" and response.get("data"):
                try:
                    answer = json.loads(response["data"])
                except ValueError:
                    raise OcppCallError("FormationViolation", "DataTransfer.conf data is not JSON") from None
                validate_response("2.0.1", inner, answer)
            else:
                answer = {"status": response["status"]}  # no PnC handler (UnknownVendorId, ...)
        _, follow = self._pki.station_calls.record_answer(
            follow_up.delivery_id, answer, station=station_id, actor=f"ocpp:{station_id}"
        )
        if follow is None or follow.origin != OPERATOR:
            return ()
        nxt = self.follow_up(follow, version)
        return (nxt,) if nxt is not None else ()

    def record_error(self, version: str, station_id: str, follow_up: FollowUp, code: str, description: str) -> None:
        """A CALLERROR closes the call; a timeout (code ``Timeout``) leaves it pending for the next connection."""
        assert follow_up.delivery_id is not None
        log.warning("%s to %s failed: %s %s", follow_up.action, station_id, code, description[:200])
        if code == "Timeout":
            self._pki.deliveries.mark_sent(follow_up.delivery_id, station=station_id)
            return
        self._pki.station_calls.record_error(
            follow_up.delivery_id, code, description, station=station_id, actor=f"ocpp:{station_id}"
        )

    def owns_notification(self, version: str, action: str) -> bool:
        return action in NOTIFICATIONS.get(version, frozenset())

    def record_notification(self, version: str, station_id: str, action: str, payload: dict[str, Any]) -> None:
        """File a firmware / log status notification under its call (schema-checked first)."""
        validate_request(version, action, payload)
        self._pki.station_calls.record_notification(
            station=station_id, action=action, payload=payload, actor=f"ocpp:{station_id}"
        )
