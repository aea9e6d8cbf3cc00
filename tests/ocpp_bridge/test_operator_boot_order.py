"""Boot order (OCPP 1.6 §4.2, 2.0.1 B01-B03): the bridge's own calls wait while a BootNotification is
unanswered and after it was Rejected; with an upstream CSMS the upstream's answer decides. A real ``ocpp``
station over mutual TLS; the upstream is a bare WebSocket CSMS that answers BootNotification when told.
Standalone, the bridge answers NotifyEvent and the status notifications instead of a CALLERROR.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.server import ServerConnection, serve

from ocpp_bridge.gateway import Bridge, BridgeConfig
from pki import PKI
from tests.ocpp_bridge.gateway_support import WAIT, wait_until
from tests.ocpp_bridge.operator_stations import Operator201, connected, register

pytestmark = pytest.mark.asyncio


class FrameLog(Operator201):
    """Keeps the type and id of every frame it receives, in order (what the bridge sent when)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[tuple[int, str]] = []

    async def route_message(self, raw_msg: str) -> None:
        message = json.loads(raw_msg)
        self.frames.append((message[0], message[2] if message[0] == 2 else ""))
        await super().route_message(raw_msg)


class Upstream:
    """A CSMS that holds each BootNotification answer until :meth:`answer` names the status."""

    def __init__(self) -> None:
        self.statuses: asyncio.Queue[str] = asyncio.Queue()

    def answer(self, status: str) -> None:
        self.statuses.put_nowait(status)

    async def handler(self, connection: ServerConnection) -> None:
        async for raw in connection:
            message = json.loads(raw)
            if message[0] != 2:
                continue
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if message[2] == "BootNotification":
                status = await self.statuses.get()
                await connection.send(
                    json.dumps([3, message[1], {"currentTime": now, "interval": 300, "status": status}])
                )
            elif message[2] == "Heartbeat":
                await connection.send(json.dumps([3, message[1], {"currentTime": now}]))
            else:
                await connection.send(json.dumps([4, message[1], "NotImplemented", "", {}]))


@pytest.fixture
def live_pki(fresh_pki: PKI) -> PKI:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    return fresh_pki


@pytest_asyncio.fixture
async def proxied(live_pki: PKI, tmp_path: Path) -> AsyncIterator[tuple[Bridge, Upstream]]:
    upstream = Upstream()
    async with serve(upstream.handler, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        config = BridgeConfig(
            port=0,
            basic_port=None,
            upstream=f"ws://127.0.0.1:{port}",
            call_timeout=WAIT,
            call_poll_interval=3600,  # the test delivers calls itself (Bridge.deliver_calls)
            certificate_dir=tmp_path / "bridge",
        )
        async with Bridge(live_pki, config) as bridge:
            yield bridge, upstream


async def test_no_call_of_ours_before_the_boot_answer_nor_after_rejected(
    proxied: tuple[Bridge, Upstream], tmp_path: Path
) -> None:
    bridge, upstream = proxied
    pki = bridge.pki
    identity, serial = "CS-BOOT", "SN-BOOT"
    credential = register(pki, tmp_path, identity, serial, "2.0.1")
    pki.station_calls.set_root_sync(identity, mode="off")
    async with connected(bridge, "2.0.1", identity, serial, credential, boot=False, station_class=FrameLog) as station:
        booting = asyncio.create_task(station.boot())
        await wait_until(lambda: identity in bridge.sessions and not bridge.sessions[identity]._booted.is_set())
        call = pki.station_calls.install_certificate(identity, use="CSMSRootCertificate")
        assert await bridge.deliver_calls() == 1  # queued in the session, held back by the boot
        upstream.answer("Rejected")
        rejected = await booting
        assert rejected.status == "Rejected"
        await station.call(station._call.Heartbeat(), suppress=False)  # a round trip: the call stayed held
        assert station.got("InstallCertificate") == [] and pki.station_calls.get(identity, call.id).attempts == 0

        booting = asyncio.create_task(station.boot())
        upstream.answer("Accepted")
        assert (await booting).status == "Accepted"
        await wait_until(lambda: pki.station_calls.get(identity, call.id).status == "accepted")
    boot_answers = [i for i, (kind, _) in enumerate(station.frames) if kind == 3]
    first_call = next(
        i for i, (kind, action) in enumerate(station.frames) if (kind, action) == (2, "InstallCertificate")
    )
    assert boot_answers[0] < boot_answers[-1] < first_call  # after the second (Accepted) boot answer only
    assert [action for kind, action in station.frames if kind == 2] == ["InstallCertificate"]


async def test_standalone_the_bridge_confirms_what_every_station_reports(live_pki: PKI, tmp_path: Path) -> None:
    config = BridgeConfig(port=0, basic_port=None, call_timeout=WAIT, certificate_dir=tmp_path / "bridge")
    identity, serial = "CS-NOTIFY", "SN-NOTIFY"
    credential = register(live_pki, tmp_path, identity, serial, "2.0.1")
    live_pki.station_calls.set_root_sync(identity, mode="off")
    async with Bridge(live_pki, config) as bridge, connected(bridge, "2.0.1", identity, serial, credential) as station:
        event = {
            "event_id": 1,
            "timestamp": "2026-01-01T00:00:00Z",
            "trigger": "Alerting",
            "actual_value": "1",
            "event_notification_type": "HardWiredNotification",
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "SecurityProfile"},
        }
        notify = station._call.NotifyEvent(generated_at="2026-01-01T00:00:00Z", seq_no=0, event_data=[event])
        assert await station.call(notify, suppress=False) is not None
        firmware = station._call.FirmwareStatusNotification(status="Idle")
        assert await station.call(firmware, suppress=False) is not None  # a CALLERROR would raise
