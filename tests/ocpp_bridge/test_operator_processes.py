"""Several bridge processes on one database behave as one: an operator call reaches the station on
whichever process holds its connection, a station reconnecting to another process gets its pending calls
there, and the profile-2 login budget and renewal-trigger cool-downs hold across processes. Each "process"
is a Bridge over its own PKI (own engine and connection pool) on the shared database."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from websockets.exceptions import InvalidStatus

from ocpp_bridge.core import FollowUp
from ocpp_bridge.gateway import Bridge, BridgeConfig
from pki import PKI
from tests.ocpp_bridge.gateway_support import WAIT, security_events, wait_until
from tests.ocpp_bridge.operator_stations import connected, register

pytestmark = pytest.mark.asyncio
PASSWORD = "right-password-0123456"


@pytest_asyncio.fixture
async def two_bridges(fresh_pki: PKI, tmp_path: Path) -> AsyncIterator[tuple[Bridge, Bridge]]:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    other = PKI.open(fresh_pki.settings, clock=fresh_pki.clock, migrate=False)
    config = BridgeConfig(
        port=0,
        basic_port=0,
        call_timeout=WAIT,
        call_poll_interval=0.02,
        certificate_dir=tmp_path / "bridge",
        login_failures_per_minute=2,
        security_events_per_minute=1,
    )
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(Bridge(fresh_pki, config))
        second = await stack.enter_async_context(Bridge(other, config))
        yield first, second
    other.close()


async def test_a_call_follows_the_station_to_the_process_it_reconnects_to(
    two_bridges: tuple[Bridge, Bridge], tmp_path: Path
) -> None:
    first, second = two_bridges
    identity, serial = "CS-MOVE", "SN-MOVE"
    credential = register(first.pki, tmp_path, identity, serial, "2.0.1")
    first.pki.station_calls.set_root_sync(identity, mode="off")
    async with connected(first, "2.0.1", identity, serial, credential) as station:
        call = second.pki.station_calls.trigger(identity, message="v2g")  # filed by "another process"
        await wait_until(lambda: first.pki.station_calls.get(identity, call.id).status == "accepted")
        assert station.got("TriggerMessage") == [{"requestedMessage": "SignV2GCertificate"}]
    later = first.pki.station_calls.install_certificate(identity, use="MORootCertificate")
    async with connected(second, "2.0.1", identity, serial, credential) as station:
        await wait_until(lambda: second.pki.station_calls.get(identity, later.id).status == "accepted")
        assert [p["certificateType"] for p in station.got("InstallCertificate")] == ["MORootCertificate"]


async def test_the_login_budget_and_trigger_cooldowns_hold_across_processes(
    two_bridges: tuple[Bridge, Bridge],
) -> None:
    first, second = two_bridges
    identity = "CS-LIMITS"
    first.pki.stations.add(identity=identity, serial="SN-LIMITS", security_profile=2, password=PASSWORD)
    first.pki.stations.record_connection(identity, "2.0.1")
    for _ in range(2):
        with pytest.raises(InvalidStatus) as refused:
            async with connected(first, "2.0.1", identity, "-", password="wrong-password-000000"):
                pass
        assert refused.value.response.status_code == 401
    # The budget of 2 is spent on the first process; the second refuses even the right password unchecked.
    with pytest.raises(InvalidStatus) as refused:
        async with connected(second, "2.0.1", identity, "-", password=PASSWORD):
            pass
    assert refused.value.response.status_code == 429
    assert len(security_events(first.pki, identity)) == 1  # one event per minute and address, all processes

    trigger = (FollowUp("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}),)
    assert first._claim_triggers(identity, trigger) == trigger
    assert second._claim_triggers(identity, trigger) == ()  # cooling down, whichever process asks
