"""A station that goes away while one of our calls is unanswered ends its session without an ERROR.

asyncio logs ``Future exception was never retrieved`` (level ERROR) when a future holding an exception
is collected unread; ``gc.collect()`` makes that happen inside the test instead of at some later point.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import websockets
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ocpp_bridge.core import CertificateService, FollowUp
from ocpp_bridge.gateway import Bridge, BridgeConfig
from ocpp_bridge.session import SessionOptions, StationSession
from pki import PKI
from tests.ocpp_bridge.gateway_support import WAIT, basic_auth, client_context, wait_until

IDENTITY, SERIAL, PASSWORD = "CS-CLOSING", "SN-CLOSING", "correct-horse-battery-7"


def _asyncio_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    gc.collect()  # collect the session's futures now, so that "never retrieved" is logged here
    return [
        record.getMessage() for record in caplog.records if record.name == "asyncio" and record.levelno >= logging.ERROR
    ]


@contextlib.asynccontextmanager
async def _station(bridge: Bridge) -> AsyncIterator[Any]:
    async with websockets.connect(
        f"wss://127.0.0.1:{bridge.ports['basic']}/{IDENTITY}",
        subprotocols=[websockets.Subprotocol("ocpp2.0.1")],
        ssl=client_context(bridge.pki),
        server_hostname="localhost",
        additional_headers=basic_auth(IDENTITY, PASSWORD),
        open_timeout=WAIT,
    ) as connection:
        yield connection


async def _boot(connection: Any) -> None:
    boot = {"chargingStation": {"model": "Test", "vendorName": "evpki"}, "reason": "PowerUp"}
    await connection.send(json.dumps([2, "boot", "BootNotification", boot]))
    answer = json.loads(await asyncio.wait_for(connection.recv(), WAIT))
    assert answer[:2] == [3, "boot"]


@pytest.mark.asyncio
async def test_closing_with_our_call_unanswered_logs_no_asyncio_error(
    fresh_pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    fresh_pki.stations.add(identity=IDENTITY, serial=SERIAL, security_profile=2, password=PASSWORD)
    caplog.set_level(logging.WARNING, logger="asyncio")
    async with Bridge(fresh_pki, BridgeConfig(port=None, basic_port=0, call_timeout=WAIT)) as bridge:
        # The root inventory (M03) follows the boot; the station hangs up instead of answering it.
        async with _station(bridge) as station:
            await _boot(station)
            call = json.loads(await asyncio.wait_for(station.recv(), WAIT))
            assert call[0] == 2 and call[2] == "GetInstalledCertificateIds"
        await wait_until(lambda: IDENTITY not in bridge.sessions)
        # Hanging up right after the boot answer: the inventory call meets a closing connection.
        for _ in range(5):
            async with _station(bridge) as station:
                await _boot(station)
            await wait_until(lambda: IDENTITY not in bridge.sessions)
    assert _asyncio_errors(caplog) == []


class _ClosingConnection:
    """A server connection whose station has sent its close frame: what websockets does then.

    ``send`` waits for the closing handshake to finish and raises ``ConnectionClosed``; the reader
    stops at the same time. The reader registered first, so the session's shutdown runs while our
    call is still inside ``send``.
    """

    def __init__(self) -> None:
        self.sending = asyncio.Event()
        self.closed = asyncio.Event()

    def __aiter__(self) -> _ClosingConnection:
        return self

    async def __anext__(self) -> str:
        await self.closed.wait()
        raise StopAsyncIteration

    async def send(self, message: str) -> None:
        self.sending.set()
        await self.closed.wait()
        raise ConnectionClosed(None, None)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed.set()


class _OneCallService:
    """The parts of the certificate core a session calls on connect: one pending call, nothing recorded."""

    def __init__(self) -> None:
        self.recorded: list[str] = []

    def on_connected(self, version: str, station_id: str, certificate: object) -> None:
        return None

    def pending(self, station_id: str, *, version: str | None = None) -> tuple[FollowUp, ...]:
        return (FollowUp("GetInstalledCertificateIds", {"certificateType": ["CSMSRootCertificate"]}),)

    def record_error(self, version: str, station_id: str, follow_up: FollowUp, code: str, description: str) -> None:
        self.recorded.append(code)


@pytest.mark.asyncio
async def test_a_call_still_being_sent_when_the_station_closes_is_not_left_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    connection, service = _ClosingConnection(), _OneCallService()
    session = StationSession(
        connection=cast(ServerConnection, connection),
        identity=IDENTITY,
        version="2.0.1",
        service=cast(CertificateService, service),
        options=SessionOptions(call_timeout=WAIT),
    )
    running = asyncio.create_task(session.run())
    await asyncio.wait_for(connection.sending.wait(), WAIT)
    await connection.close()
    await asyncio.wait_for(running, WAIT)
    assert session.finished.is_set() and not session.busy
    assert service.recorded == []  # a disconnect is no answer: the call stays due for the next connection
    del running, session
    assert _asyncio_errors(caplog) == []
