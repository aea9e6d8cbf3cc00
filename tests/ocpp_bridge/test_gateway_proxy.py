"""Pass-through to an upstream CSMS written with the ``ocpp`` library: what the certificate core does
not own travels verbatim both ways; certificate messages and the bridge's own calls never reach it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import websockets
from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.routing import on
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from ocpp_bridge.gateway import Bridge, BridgeConfig
from ocpp_bridge.tls import server_context
from pki import PKI
from tests.ocpp_bridge.gateway_support import (
    WAIT,
    Station201,
    client_context,
    csr_pem,
    issue_station_credential,
    pem,
    wait_until,
)


class Recording:
    """A connection wrapper that keeps every frame as sent and received (to compare them verbatim)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.sent: list[str] = []
        self.received: list[str] = []

    async def send(self, message: str) -> None:
        self.sent.append(message)
        await self.connection.send(message)

    async def recv(self) -> str:
        message = await self.connection.recv()
        self.received.append(message)
        return message


class UpstreamCsms(ChargePoint201):
    @on("BootNotification")
    def on_boot(self, **kwargs: Any) -> Any:
        return result201.BootNotification(current_time="2026-01-01T00:00:00Z", interval=123, status="Accepted")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> Any:
        return result201.DataTransfer(status="Accepted", data={"echo": kwargs.get("data"), "from": "upstream"})

    @on("Authorize")
    def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> Any:
        return result201.Authorize(id_token_info={"status": "Blocked"})


class ProxiedStation(Station201):
    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> Any:
        return result201.DataTransfer(status="Rejected", data="station says no")


@pytest_asyncio.fixture(params=["ws", "wss"])
async def upstream(
    request: pytest.FixtureRequest, live_pki: PKI, tmp_path: Path
) -> AsyncIterator[tuple[str, list[Recording], list[UpstreamCsms]]]:
    recordings: list[Recording] = []
    csms: list[UpstreamCsms] = []

    async def on_connect(connection: Any) -> None:
        recording = Recording(connection)
        recordings.append(recording)
        cp = UpstreamCsms(connection.request.path.rsplit("/", 1)[-1], recording, response_timeout=WAIT)
        csms.append(cp)
        await cp.start()

    context = None
    if request.param == "wss":  # a TLS upstream with a certificate of our CSO hierarchy, checked by --upstream-ca
        certificates = live_pki.stations.server_certificates(server_name="localhost", directory=tmp_path / "upstream")
        certificates.refresh()
        context = server_context(certificates, client_cas=None)
    async with websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"], ssl=context) as server:
        port = server.sockets[0].getsockname()[1]
        host = "localhost" if context else "127.0.0.1"
        yield f"{request.param}://{host}:{port}/csms", recordings, csms


@pytest.fixture
def live_pki(fresh_pki: PKI) -> PKI:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    return fresh_pki


@pytest.mark.asyncio
async def test_unowned_messages_pass_verbatim_and_certificate_messages_stay_here(
    live_pki: PKI, upstream: tuple[str, list[Recording], list[UpstreamCsms]], tmp_path: Path
) -> None:
    url, recordings, csms = upstream
    live_pki.stations.add(identity="CS-PX", serial="SN-PX-1", security_profile=3)
    credential = issue_station_credential(live_pki, tmp_path, "CS-PX", "SN-PX-1", validity=dt.timedelta(days=365))
    root = tmp_path / "csms-root.pem"
    root.write_text(pem(live_pki.cas.roots("CSMSRootCertificate")))
    config = BridgeConfig(port=0, basic_port=None, upstream=url, upstream_ca=root, call_timeout=WAIT)
    async with (
        Bridge(live_pki, config) as bridge,
        websockets.connect(
            f"wss://127.0.0.1:{bridge.ports['mtls']}/CS-PX",
            subprotocols=["ocpp2.0.1"],
            ssl=client_context(live_pki, credential),
            server_hostname="localhost",
        ) as connection,
    ):
        wire = Recording(connection)
        station = ProxiedStation("CS-PX", wire, serial="SN-PX-1", root=live_pki.cas.roots("CSMSRootCertificate")[0])
        task = asyncio.create_task(station.start())
        try:
            # BootNotification is the upstream's to answer (interval 123 is its, not the bridge's 300).
            assert (await station.boot()).interval == 123
            # Its Accepted starts the bridge's reconciliation (M03), answered by the station, not relayed.
            await wait_until(lambda: "GetInstalledCertificateIds" in station.received)

            sent_before = len(wire.sent)
            answer = await station.call(
                call201.DataTransfer(vendor_id="com.example.other", message_id="ping", data="hello"), suppress=False
            )
            assert answer.data == {"echo": "hello", "from": "upstream"}
            # The station may still be answering the bridge's reconciliation calls (InstallCertificate) meanwhile.
            request_frame = next(f for f in wire.sent[sent_before:] if json.loads(f)[:3:2] == [2, "DataTransfer"])
            assert request_frame in recordings[0].received  # the station's frame, byte for byte
            reply_frame = next(f for f in recordings[0].sent if json.loads(f)[1] == json.loads(request_frame)[1])
            assert reply_frame in wire.received  # and the upstream's answer, byte for byte

            authorized = await station.call(call201.Authorize(id_token={"id_token": "X1", "type": "Central"}))
            assert authorized.id_token_info["status"] == "Blocked"

            # Certificate messages are the bridge's: answered here, never relayed.
            station.new_key = ec.generate_private_key(ec.SECP256R1())  # so it can accept the certificate
            csr = csr_pem(station.new_key, "SN-PX-1")
            signed = await station.call(
                call201.SignCertificate(csr=csr, certificate_type="ChargingStationCertificate"), suppress=False
            )
            assert signed.status == "Accepted"
            event = call201.SecurityEventNotification(type="TamperDetectionActivated", timestamp="2026-01-01T00:00:00Z")
            await station.call(event, suppress=False)

            # A CALL of the upstream reaches the station and the answer goes back.
            reply = await csms[0].call(
                call201.DataTransfer(vendor_id="com.example.other", message_id="from-csms"), suppress=False
            )
            assert reply.status == "Rejected" and reply.data == "station says no"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    assert station.chain_pem  # the bridge delivered the certificate itself
    upstream_actions = [json.loads(frame)[2] for frame in recordings[0].received if json.loads(frame)[0] == 2]
    assert upstream_actions == ["BootNotification", "DataTransfer", "Authorize"]
    relayed_ids = {json.loads(frame)[1] for frame in recordings[0].received}
    assert not any(unique_id.startswith("evpki-") for unique_id in relayed_ids)  # our calls' answers stay here


@pytest.mark.asyncio
async def test_an_unreachable_upstream_closes_the_station_with_1011(live_pki: PKI, tmp_path: Path) -> None:
    live_pki.stations.add(identity="CS-PY", serial="SN-PY-1", security_profile=3)
    credential = issue_station_credential(live_pki, tmp_path, "CS-PY", "SN-PY-1", validity=dt.timedelta(days=365))
    with contextlib.closing(__import__("socket").socket()) as unused:
        unused.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{unused.getsockname()[1]}/csms"
    config = BridgeConfig(port=0, basic_port=None, upstream=dead, call_timeout=WAIT, open_timeout=5)
    async with (
        Bridge(live_pki, config) as bridge,
        websockets.connect(
            f"wss://127.0.0.1:{bridge.ports['mtls']}/CS-PY",
            subprotocols=["ocpp2.0.1"],
            ssl=client_context(live_pki, credential),
            server_hostname="localhost",
        ) as connection,
    ):
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(connection.recv(), WAIT)
        assert connection.close_code == 1011
