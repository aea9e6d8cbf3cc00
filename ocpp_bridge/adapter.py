"""The certificate handlers for a Python CSMS built on the ``ocpp`` library: one call adds them.

    from ocpp.v201 import ChargePoint
    from ocpp_bridge.adapter import with_certificate_handlers
    from ocpp_bridge.core import CertificateService

    class MyChargePoint(ChargePoint):
        ...  # the CSMS's own @on handlers (BootNotification, Heartbeat, ...)

    CertificateChargePoint = with_certificate_handlers(MyChargePoint, CertificateService(pki))
    cp = CertificateChargePoint(station_id, websocket)
    await cp.start()

Works for ``ocpp.v16``, ``ocpp.v201`` and ``ocpp.v21`` ChargePoint subclasses (the version comes
from the class' ``_ocpp_version``). The subclass intercepts the raw CALLs the core owns before the
library's routing, so the camelCase JSON reaches the core unchanged (none of the library's
snake_case naming bugs, ocpp.md §7, apply) and the CSMS's own ``@on`` handlers keep everything
else -- including 1.6 DataTransfer of other vendors. Follow-ups are sent from a task *after* the
response is on the wire (awaiting a call inside a handler deadlocks the receive loop, ocpp.md
§7), one at a time, each answer fed to :meth:`CertificateService.record_result`, whose own
follow-ups (root reconciliation) are sent in turn. After every BootNotification the station's
pending deliveries are re-sent and its roots reconciled (``sync_on_boot=False`` turns that off;
then call :meth:`certificate_boot` yourself); :meth:`certificate_renewal` triggers due renewals.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any, TypeVar

from ocpp.messages import Call, MessageType

from ocpp_bridge.core import OCPP_VERSIONS, CertificateService, FollowUp, OcppCallError

__all__ = ["FollowUpFailed", "with_certificate_handlers"]

log = logging.getLogger("evpki.ocpp.adapter")

T = TypeVar("T", bound=type)


class FollowUpFailed(Exception):
    """The station answered a follow-up with a CALLERROR (or not at all: ``code`` "Timeout")."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


def with_certificate_handlers(cls: T, service: CertificateService, *, sync_on_boot: bool = True) -> T:
    """A subclass of the ``ocpp`` ChargePoint class ``cls`` that answers the certificate messages."""
    version = getattr(cls, "_ocpp_version", None)
    if version not in OCPP_VERSIONS:
        raise TypeError(f"{cls!r} is not an ocpp.v16/v201/v21 ChargePoint subclass (version {version!r})")

    class CertificateHandlers(cls):  # type: ignore[misc,valid-type]
        certificate_service = service

        async def _handle_call(self, msg: Call) -> Any:
            if not service.owns(version, msg.action, msg.payload):
                result = await super()._handle_call(msg)
                if sync_on_boot and msg.action == "BootNotification":
                    self._certificate_task(self.certificate_boot())
                return result
            try:
                handled = await asyncio.to_thread(service.handle, version, self.id, msg.action, msg.payload)
            except OcppCallError as error:
                frame = [MessageType.CallError, msg.unique_id, error.code, error.description[:255], {}]
                await self._send(json.dumps(frame, separators=(",", ":")))
                return None
            await self._send(msg.create_call_result(handled.response).to_json())
            if handled.follow_ups:
                self._certificate_task(self.send_follow_ups(handled.follow_ups))
            return None

        def _certificate_task(self, coroutine: Any) -> None:
            tasks: set[asyncio.Task[Any]] = self.__dict__.setdefault("_certificate_tasks", set())
            task = asyncio.ensure_future(coroutine)
            tasks.add(task)  # keep a reference until done (the loop holds tasks weakly)
            task.add_done_callback(tasks.discard)

        async def call_payload(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
            """Send one CALL as raw camelCase JSON and return the CALLRESULT payload as received."""
            call = Call(unique_id=str(uuid.uuid4()), action=action, payload=payload)
            async with self._call_lock:
                await self._send(call.to_json())
                try:
                    response = await self._get_specific_response(call.unique_id, self._response_timeout)
                except TimeoutError:
                    raise FollowUpFailed("Timeout", f"no answer to {action} within {self._response_timeout}s") from None
            if response.message_type_id == MessageType.CallError:
                raise FollowUpFailed(response.error_code, response.error_description)
            payload_out: dict[str, Any] = response.payload
            return payload_out

        async def send_follow_ups(self, follow_ups: Iterable[FollowUp]) -> None:
            """Send follow-ups in order; results go to the core, whose further follow-ups are sent too."""
            queue = list(follow_ups)
            while queue:
                follow_up = queue.pop(0)
                try:
                    result = await self.call_payload(follow_up.action, follow_up.payload)
                except FollowUpFailed as error:
                    await asyncio.to_thread(
                        service.record_error, version, self.id, follow_up, error.code, error.description
                    )
                    continue
                except Exception:  # the connection went away: pending deliveries wait for the next boot
                    log.warning("%s to %s not delivered", follow_up.action, self.id, exc_info=True)
                    return
                try:
                    more = await asyncio.to_thread(service.record_result, version, self.id, follow_up, result)
                except OcppCallError as error:
                    log.warning("%s answer from %s refused: %s", follow_up.action, self.id, error.description)
                    continue
                queue.extend(more)

        async def certificate_boot(self) -> None:
            """Re-send pending deliveries and reconcile the station's roots (what a BootNotification starts)."""
            await asyncio.to_thread(service.on_connected, version, self.id, None)
            await self.send_follow_ups(await asyncio.to_thread(service.on_boot, version, self.id))

        async def certificate_renewal(self) -> None:
            """Trigger renewal of the station / SECC certificate when it is due (call it periodically)."""
            await self.send_follow_ups(await asyncio.to_thread(service.renewal_due, version, self.id))

        async def wait_certificate_tasks(self) -> None:
            """Wait until the follow-ups scheduled so far are done (tests, graceful shutdown)."""
            while tasks := set(self.__dict__.get("_certificate_tasks", ())):
                await asyncio.gather(*tasks, return_exceptions=True)

    CertificateHandlers.__name__ = CertificateHandlers.__qualname__ = f"Certificate{cls.__name__}"
    return CertificateHandlers  # type: ignore[return-value]
