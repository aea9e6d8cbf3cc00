"""One station's OCPP-J connection inside the gateway: frame checks, routing, and the calls we make.

Routing of what the station sends (OCPP-J, [P4-201] §4):

- a CALL the certificate core owns (:meth:`CertificateService.owns`) is answered by the core in a
  worker thread; the CALLRESULT (or CALLERROR) goes out first, then the core's follow-ups;
- any other CALL goes verbatim to the upstream CSMS when there is one; without one, the gateway
  answers BootNotification, Heartbeat, StatusNotification and NotifyEvent itself (and records the
  firmware and log status notifications, :mod:`ocpp_bridge.operator_calls`), and everything else
  with CALLERROR ``NotSupported`` (an action of the version) or ``NotImplemented`` (one it lacks);
- a CALLRESULT / CALLERROR answers either one of our follow-ups (matched by our message id, never
  relayed) or a CALL the upstream CSMS made (relayed verbatim).

Calls *to* the station -- our follow-ups and the upstream's CALLs -- share one queue and go out one
at a time: OCPP-J allows one outstanding CALL per direction ([P4-201] §4.1.1), and the upstream
cannot know about ours. Our message ids carry the prefix ``evpki-`` and 96 random bits, so they
cannot be mistaken for the upstream's in practice. Each follow-up's answer (or CALLERROR, or
timeout) is reported back to the core, which may return more follow-ups (root reconciliation).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ocpp_bridge.core import CertificateService, FollowUp, OcppCallError
from ocpp_bridge.schemas import has_schema, validate_request

__all__ = [
    "CALL",
    "CALLERROR",
    "CALLRESULT",
    "Frame",
    "FrameError",
    "SessionOptions",
    "StationSession",
    "parse_frame",
]

log = logging.getLogger("evpki.bridge")

CALL, CALLRESULT, CALLERROR, CALLRESULTERROR, SEND = 2, 3, 4, 5, 6  # 5 and 6 exist in OCPP 2.1 only
_MAX_ID = 36  # OCPP-J: messageId is at most 36 characters
_MAX_DESCRIPTION = 255  # errorDescription
_LOCAL_ACTIONS = frozenset({"BootNotification", "Heartbeat", "StatusNotification", "NotifyEvent"})
_MAX_RELAYED = 256  # upstream CALL ids kept for late answers


class _Disconnected(Exception):
    """The station went away before answering one of our calls."""


class FrameError(Exception):
    """A frame that is not OCPP-J: answered with a CALLERROR under ``unique_id`` ("-1" if unreadable)."""

    def __init__(self, unique_id: str, code: str, description: str) -> None:
        super().__init__(description)
        self.unique_id = unique_id
        self.code = code
        self.description = description


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    unique_id: str
    action: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    error_code: str = ""
    error_description: str = ""


def _rpc_error(version: str) -> str:
    # 2.x has RpcFrameworkError for malformed frames; 1.6-J only its (misspelt) FormationViolation.
    return "FormationViolation" if version == "1.6" else "RpcFrameworkError"


def parse_frame(raw: str, version: str) -> Frame:
    """Check the OCPP-J envelope of one text frame ([P4-201] §4.1-4.2, 2.1 adds types 5 and 6)."""
    try:
        message = json.loads(raw)
    except ValueError:
        raise FrameError("-1", _rpc_error(version), "message is not JSON") from None
    if not isinstance(message, list) or len(message) < 3:
        raise FrameError("-1", _rpc_error(version), "message is not an OCPP-J array")
    kind, unique_id = message[0], message[1]
    if not isinstance(unique_id, str) or not 0 < len(unique_id) <= _MAX_ID:
        raise FrameError("-1", _rpc_error(version), f"messageId must be a string of 1-{_MAX_ID} characters")
    known = (CALL, CALLRESULT, CALLERROR, CALLRESULTERROR, SEND) if version == "2.1" else (CALL, CALLRESULT, CALLERROR)
    if type(kind) is not int or kind not in known:
        code = "ProtocolError" if version == "1.6" else "MessageTypeNotSupported"
        raise FrameError(unique_id, code, f"message type {kind!r} is not supported")
    if kind in (CALL, SEND):
        if len(message) != 4 or not isinstance(message[2], str) or not message[2] or not isinstance(message[3], dict):
            raise FrameError(unique_id, _rpc_error(version), "a CALL is [2, messageId, action, {payload}]")
        return Frame(kind, unique_id, action=message[2], payload=message[3])
    if kind == CALLRESULT:
        if len(message) != 3 or not isinstance(message[2], dict):
            raise FrameError(unique_id, _rpc_error(version), "a CALLRESULT is [3, messageId, {payload}]")
        return Frame(kind, unique_id, payload=message[2])
    if len(message) != 5 or not isinstance(message[2], str) or not isinstance(message[3], str):
        raise FrameError(unique_id, _rpc_error(version), "a CALLERROR is [4, messageId, code, description, {}]")
    return Frame(kind, unique_id, error_code=message[2], error_description=message[3])


def _is_trigger(follow_up: FollowUp) -> bool:
    """Renewal triggers (A02): repeated only after a cool-down, whatever the station answered."""
    if follow_up.action == "DataTransfer":  # 1.6 PnC wraps TriggerMessage (SignV2GCertificate)
        return follow_up.payload.get("messageId") == "TriggerMessage"
    return follow_up.action in ("TriggerMessage", "ExtendedTriggerMessage")


def _dump(message: list[Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _now_text() -> str:
    # Stations set their clocks from these answers: wall-clock time, not the PKI's (test) clock.
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class SessionOptions:
    call_timeout: float = 30.0  # seconds to wait for the station's answer to a CALL we send
    heartbeat_interval: int = 300  # BootNotification interval when the gateway answers itself
    trigger_cooldown: float = 600.0  # an untracked follow-up (TriggerMessage, ...) is not repeated sooner


@dataclass(slots=True)
class _Outbound:
    key: object
    follow_up: FollowUp | None = None
    raw: str | None = None  # an upstream CALL, relayed verbatim
    unique_id: str = ""


class StationSession:
    """The gateway side of one connected station (one per WebSocket)."""

    def __init__(
        self,
        *,
        connection: ServerConnection,
        identity: str,
        version: str,
        service: CertificateService,
        options: SessionOptions,
        certificate: x509.Certificate | None = None,
        upstream: ClientConnection | None = None,
        cooldowns: dict[object, float] | None = None,
    ) -> None:
        self.connection = connection
        self.identity = identity
        self.version = version
        self.certificate = certificate
        self._service = service
        self._options = options
        self._upstream = upstream
        self._loop = asyncio.get_running_loop()
        self._queue: collections.deque[_Outbound] = collections.deque()
        self._queued: set[object] = set()
        self._waiting: dict[str, asyncio.Future[Frame]] = {}
        self._relayed: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._boot_ids: set[str] = set()
        # Our calls wait while a BootNotification is unanswered or was not Accepted/Pending (1.6 §4.2,
        # 2.0.1 B01-B03); a station that connects without booting (a reconnect) is accepted already.
        self._booted = asyncio.Event()
        self._booted.set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._station_call_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        # Clear while an answer to one of our calls is received but not yet recorded: the station's
        # next CALL must see its effect (a CSR right after accepting a certificate is a new request).
        self._recorded = asyncio.Event()
        self._recorded.set()
        self.finished = asyncio.Event()  # set once the session has recorded everything it received
        # Shared by the connections of one identity, so a reconnect does not re-trigger at once.
        self._cooldowns = cooldowns if cooldowns is not None else {}
        self.sent_calls: set[int] = set()  # operator calls queued on this connection: each goes out once

    # -- lifecycle -------------------------------------------------------------------------------

    async def run(self, *, after: StationSession | None = None) -> None:
        """Serve the connection until either side closes it.

        ``after`` is the identity's previous session: its last answers (a CertificateSigned the
        station accepted just before reconnecting, A02.FR.08) are recorded before this session
        looks for pending deliveries, so an accepted certificate is not sent again.
        """
        try:
            if self._upstream is not None:
                self._spawn(self._read_upstream())
            if after is not None:
                # asyncio.timeout, not wait_for, throughout: 3.11's wait_for can drop a cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._options.call_timeout):
                        await after.finished.wait()
            await asyncio.to_thread(self._service.on_connected, self.version, self.identity, self.certificate)
            # Deliveries still pending from earlier connections go out again (guaranteed delivery).
            self.enqueue(await asyncio.to_thread(self._service.pending, self.identity, version=self.version))
            async for raw in self.connection:
                if isinstance(raw, bytes):
                    # OCPP-J uses text frames only; 1003 = unsupported data (RFC 6455 §7.4.1).
                    await self.connection.close(1003, "OCPP-J messages are text frames")
                    break
                await self._from_station(raw)
        except ConnectionClosed:
            pass
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._closed = True
        self._queue.clear()
        self._booted.set()  # a dispatcher waiting for the boot answer ends
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Calls still unanswered fail; an answer already received is still recorded (not cancelled).
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(_Disconnected())
        self._recorded.set()
        if self._dispatcher is not None:
            tasks.append(self._dispatcher)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._upstream is not None:
            await self._upstream.close()
        self.finished.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.connection.close(code, reason)

    def _spawn(self, coroutine: Any) -> None:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- from the station ------------------------------------------------------------------------

    async def _send(self, message: list[Any]) -> None:
        await self.connection.send(_dump(message))

    async def _send_error(self, unique_id: str, code: str, description: str) -> None:
        await self._send([CALLERROR, unique_id, code, description[:_MAX_DESCRIPTION], {}])

    async def _from_station(self, raw: str) -> None:
        try:
            frame = parse_frame(raw, self.version)
        except FrameError as error:
            log.info("%s sent a malformed frame: %s", self.identity, error.description)
            await self._send_error(error.unique_id, error.code, error.description)
            return
        if frame.kind == CALL and frame.action == "BootNotification":
            self._booted.clear()  # until it is answered Accepted or Pending
        if frame.kind == CALL and self._owns(frame):
            # The core may take a while (issuance, OCSP forwarding): it runs beside the reader, which
            # stays free for the answers to our own calls. A station has one CALL outstanding at a
            # time (OCPP-J §4.1.1), so one runs at a time here too.
            if self._station_call_task is not None and not self._station_call_task.done():
                await asyncio.wait([self._station_call_task])  # a station that does not wait is slowed down
            self._station_call_task = self._loop.create_task(self._station_call(frame, raw))
            self._tasks.add(self._station_call_task)
            self._station_call_task.add_done_callback(self._tasks.discard)
        elif frame.kind == CALL:
            await self._station_call(frame, raw)  # relayed or answered at once, in arrival order
        elif frame.kind == SEND:
            if self._upstream is not None:
                await self._to_upstream(raw)
        else:
            await self._station_answer(frame, raw)

    def _owns(self, frame: Frame) -> bool:
        if frame.action == "Authorize" and self._upstream is not None:
            return False  # proxy mode: the upstream CSMS keeps authorization, Plug & Charge included
        try:
            return self._service.owns(self.version, frame.action, frame.payload)
        except Exception:
            log.exception("%s: ownership check of %s failed", self.identity, frame.action)
            return False

    async def _station_call(self, frame: Frame, raw: str) -> None:
        try:
            if self._owns(frame):
                await self._answer_owned(frame)
            elif self._service.operator_calls.owns_notification(self.version, frame.action) and not (
                await self._record_notification(frame)
            ):
                return  # answered here (standalone) or refused; with an upstream it is relayed below
            elif self._upstream is not None:
                if frame.action == "BootNotification":
                    self._boot_ids.add(frame.unique_id)
                await self._to_upstream(raw)
            else:
                await self._answer_locally(frame)
        except ConnectionClosed:
            return  # the reader sees the close too and ends the session
        except Exception:
            # A handler bug must cost one CALLERROR, never the connection or the server.
            log.exception("%s: %s failed", self.identity, frame.action)
            with contextlib.suppress(ConnectionClosed):
                await self._send_error(frame.unique_id, "InternalError", f"{frame.action} could not be processed")

    async def _answer_owned(self, frame: Frame) -> None:
        await self._recorded.wait()  # frames take effect in the order the station sent them
        try:
            handled = await asyncio.to_thread(
                self._service.handle, self.version, self.identity, frame.action, frame.payload
            )
        except OcppCallError as error:
            await self._send_error(frame.unique_id, error.code, error.description)
            return
        await self._send([CALLRESULT, frame.unique_id, handled.response])
        # Follow-ups only once the response is on the wire (the station may wait for it first).
        self.enqueue(handled.follow_ups)

    async def _record_notification(self, frame: Frame) -> bool:
        """File a firmware / log status report under its operator call; False when it was refused."""
        try:
            await asyncio.to_thread(
                self._service.operator_calls.record_notification,
                self.version,
                self.identity,
                frame.action,
                frame.payload,
            )
        except OcppCallError as error:
            await self._send_error(frame.unique_id, error.code, error.description)
            return False
        if self._upstream is None:
            await self._send([CALLRESULT, frame.unique_id, {}])  # standalone: the bridge confirms it
            return False
        return True  # relayed: the upstream confirms it

    async def _answer_locally(self, frame: Frame) -> None:
        if frame.action not in _LOCAL_ACTIONS or not has_schema(self.version, frame.action):
            # OCPP-J §4.2.3: NotSupported for an action of the version we do not serve, NotImplemented otherwise.
            code = "NotSupported" if has_schema(self.version, frame.action) else "NotImplemented"
            await self._send_error(frame.unique_id, code, f"{frame.action} is not handled here")
            return
        try:
            validate_request(self.version, frame.action, frame.payload)
        except OcppCallError as error:
            await self._send_error(frame.unique_id, error.code, error.description)
            return
        response: dict[str, Any] = {}
        if frame.action == "BootNotification":
            response = {"currentTime": _now_text(), "interval": self._options.heartbeat_interval, "status": "Accepted"}
        elif frame.action == "Heartbeat":
            response = {"currentTime": _now_text()}
        await self._send([CALLRESULT, frame.unique_id, response])
        if frame.action == "BootNotification":
            self._booted.set()
            self._spawn(self._after_boot())

    async def _after_boot(self) -> None:
        try:
            self.enqueue(await asyncio.to_thread(self._service.on_boot, self.version, self.identity))
            enabled, delay = await asyncio.to_thread(self._service.root_sync, self.identity)
            if enabled and delay > 0:
                await asyncio.sleep(delay)  # root sync delayed for operators who install roots first
                self.enqueue(await asyncio.to_thread(self._service.root_inventory, self.version, self.identity))
        except Exception:
            log.exception("%s: boot follow-ups failed", self.identity)

    async def _station_answer(self, frame: Frame, raw: str) -> None:
        if frame.unique_id in self._relayed:
            del self._relayed[frame.unique_id]
            future = self._waiting.pop(frame.unique_id, None)
            if future is not None and not future.done():
                future.set_result(frame)
            await self._to_upstream(raw)
            return
        future = self._waiting.get(frame.unique_id)
        if future is not None:
            if not future.done():
                self._recorded.clear()  # set again by _call once the core has recorded the answer
                future.set_result(frame)
        elif self._upstream is not None and not frame.unique_id.startswith("evpki-"):
            await self._to_upstream(raw)
        else:
            log.info("%s answered unknown or late message %s", self.identity, frame.unique_id)

    async def _to_upstream(self, raw: str) -> None:
        assert self._upstream is not None
        try:
            await self._upstream.send(raw)
        except ConnectionClosed:
            await self.connection.close(1011, "upstream CSMS connection lost")

    # -- from the upstream CSMS --------------------------------------------------------------------

    async def _read_upstream(self) -> None:
        assert self._upstream is not None
        try:
            async for raw in self._upstream:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                await self._from_upstream(text)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("%s: relaying from the upstream CSMS failed", self.identity)
        # The station reconnects and gets a fresh upstream connection (1001 = going away).
        await self.connection.close(1001, "upstream CSMS closed the connection")

    async def _from_upstream(self, raw: str) -> None:
        try:
            frame = parse_frame(raw, self.version)
        except FrameError:
            await self.connection.send(raw)  # not ours to judge: the station answers it
            return
        if frame.kind == CALL:
            self._queue.append(_Outbound(key=("upstream", frame.unique_id), raw=raw, unique_id=frame.unique_id))
            self._kick()
            return
        if frame.kind == CALLRESULT and frame.unique_id in self._boot_ids:
            self._boot_ids.discard(frame.unique_id)
            await self.connection.send(raw)  # the station has its answer before any call of ours
            if frame.payload.get("status") in ("Accepted", "Pending"):
                self._booted.set()
            if frame.payload.get("status") == "Accepted":
                self._spawn(self._after_boot())
            return
        await self.connection.send(raw)

    # -- calls to the station ------------------------------------------------------------------------

    def enqueue(self, follow_ups: tuple[FollowUp, ...] | list[FollowUp]) -> None:
        """Queue follow-ups for the station; one already queued or in flight is not queued twice."""
        now = self._loop.time()
        for follow_up in follow_ups:
            if follow_up.operator and follow_up.delivery_id is not None:
                if follow_up.delivery_id in self.sent_calls:
                    continue  # sent on this connection already; a timeout waits for the next one
                self.sent_calls.add(follow_up.delivery_id)
            if follow_up.delivery_id is not None:
                key: object = ("delivery", follow_up.delivery_id)
            else:
                key = (follow_up.action, json.dumps(follow_up.payload, sort_keys=True))
                if _is_trigger(follow_up) and self._cooldowns.get(key, 0.0) > now:
                    continue
            if key in self._queued:
                continue
            self._queued.add(key)
            self._queue.append(_Outbound(key=key, follow_up=follow_up))
        self._kick()

    @property
    def busy(self) -> bool:
        return bool(self._queue) or bool(self._waiting)

    def _kick(self) -> None:
        if self._queue and not self._closed and (self._dispatcher is None or self._dispatcher.done()):
            self._dispatcher = self._loop.create_task(self._dispatch())

    async def _dispatch(self) -> None:
        while self._queue and not self._closed:
            item = self._queue.popleft()
            try:
                if item.follow_up is not None:
                    await self._booted.wait()
                    if self._closed:
                        return
                    await self._call(item.follow_up, item.key)
                else:
                    await self._relay_call(item)
            except (ConnectionClosed, _Disconnected):
                return
            except Exception:
                log.exception("%s: sending a call failed", self.identity)
            finally:
                self._queued.discard(item.key)

    async def _await_answer(self, unique_id: str, message: str) -> Frame | None:
        future: asyncio.Future[Frame] = self._loop.create_future()
        self._waiting[unique_id] = future
        try:
            await self.connection.send(message)
            async with asyncio.timeout(self._options.call_timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            if self._waiting.get(unique_id) is future:
                del self._waiting[unique_id]
            # When the station's close frame arrived first, send() waits for the closing handshake and
            # then raises ConnectionClosed; meanwhile _shutdown has failed this future with _Disconnected.
            # Nobody awaits it any more: retrieve the exception here, or asyncio logs it as an ERROR
            # ("Future exception was never retrieved") when the future is collected.
            if future.done() and not future.cancelled():
                future.exception()

    async def _call(self, follow_up: FollowUp, key: object) -> None:
        unique_id = f"evpki-{secrets.token_hex(12)}"
        answer = await self._await_answer(unique_id, _dump([CALL, unique_id, follow_up.action, follow_up.payload]))
        try:
            await self._record(follow_up, key, answer)
        finally:
            self._recorded.set()

    async def _record(self, follow_up: FollowUp, key: object, answer: Frame | None) -> None:
        if _is_trigger(follow_up):
            self._cooldowns[key] = self._loop.time() + self._options.trigger_cooldown
        if answer is None:
            timeout = f"no answer within {self._options.call_timeout:g} s"
            await asyncio.to_thread(
                self._service.record_error, self.version, self.identity, follow_up, "Timeout", timeout
            )
        elif answer.kind == CALLRESULT:
            try:
                more = await asyncio.to_thread(
                    self._service.record_result, self.version, self.identity, follow_up, answer.payload
                )
            except OcppCallError as error:
                log.warning("%s: answer to %s not accepted: %s", self.identity, follow_up.action, error)
                return
            self.enqueue(more)
        else:
            await asyncio.to_thread(
                self._service.record_error,
                self.version,
                self.identity,
                follow_up,
                answer.error_code,
                answer.error_description,
            )

    async def _relay_call(self, item: _Outbound) -> None:
        self._relayed[item.unique_id] = None
        while len(self._relayed) > _MAX_RELAYED:
            self._relayed.popitem(last=False)
        assert item.raw is not None
        # An unanswered upstream CALL frees the queue after the timeout; a late answer is still relayed.
        await self._await_answer(item.unique_id, item.raw)
