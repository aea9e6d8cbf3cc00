"""Enrollment through the gateway with real ``ocpp`` stations over mutual TLS (OCPP A02, 1.6/2.0.1/2.1).

A station connects on security profile 3 with a bootstrap certificate near its expiry; the bridge's
renewal monitor triggers renewal; the station sends a CSR made with ``cryptography``, receives
CertificateSigned, checks the chain up to the CSMS root, accepts, reconnects with the new
certificate -- and the bootstrap certificate is superseded by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import websockets
from cryptography import x509

from ocpp_bridge.gateway import Bridge, BridgeConfig
from pki import PKI
from tests.ocpp_bridge.gateway_support import (
    STATION_CLASSES,
    SUBPROTOCOL,
    WAIT,
    Credential,
    client_context,
    issue_station_credential,
    wait_until,
    write_credential,
)

pytestmark = pytest.mark.asyncio


@pytest.fixture
def live_pki(fresh_pki: PKI) -> PKI:
    """A fresh PKI whose clock is the wall clock's now (TLS peers check validity with real time)."""
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    return fresh_pki


@pytest_asyncio.fixture
async def bridge(live_pki: PKI) -> AsyncIterator[Bridge]:
    config = BridgeConfig(port=0, basic_port=0, renewal_interval=0.1, call_timeout=WAIT)
    async with Bridge(live_pki, config) as running:
        yield running


@contextlib.asynccontextmanager
async def station_connection(
    bridge: Bridge, version: str, identity: str, serial: str, credential: Credential
) -> AsyncIterator[Any]:
    url = f"wss://127.0.0.1:{bridge.ports['mtls']}/ocpp/{identity}"
    root = bridge.pki.cas.roots("CSMSRootCertificate")[0]
    async with websockets.connect(
        url,
        subprotocols=[SUBPROTOCOL[version]],
        ssl=client_context(bridge.pki, credential),
        server_hostname="localhost",
    ) as connection:
        assert connection.subprotocol == SUBPROTOCOL[version]
        station = STATION_CLASSES[version](identity, connection, serial=serial, root=root)
        task = asyncio.create_task(station.start())
        try:
            yield station
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@pytest.mark.parametrize("version", ["2.0.1", "1.6", "2.1"])
async def test_renewal_through_the_bridge_supersedes_the_bootstrap_certificate(
    bridge: Bridge, tmp_path: Path, version: str
) -> None:
    pki = bridge.pki
    identity, serial = f"CS-ENROLL-{version.replace('.', '')}", f"SN-{version.replace('.', '')}-0001"
    pki.stations.add(identity=identity, serial=serial, security_profile=3)
    # Ten days left: inside the 30-day renewal window, so the monitor triggers A02.
    bootstrap = issue_station_credential(pki, tmp_path, identity, serial, validity=dt.timedelta(days=10))

    async with station_connection(bridge, version, identity, serial, bootstrap) as station:
        boot = await station.boot()
        assert boot.status == "Accepted"
        await asyncio.wait_for(station.signed.wait(), WAIT)
        # The CALLRESULT to the CSR and the CertificateSigned call cross on the wire: wait for both.
        await asyncio.wait_for(station.csr_answered.wait(), WAIT)
        assert station.sign_status == "Accepted"
    new = write_credential(tmp_path, "renewed", station.new_key, station.chain_pem)
    assert new.certificate.serial_number != bootstrap.certificate.serial_number

    # A02.FR.08: the station switches certificates by reconnecting.
    async with station_connection(bridge, version, identity, serial, new) as station:
        assert (await station.boot()).status == "Accepted"
        await wait_until(lambda: pki.certificates.get(bootstrap.serial, "cso-sub").superseded_by == new.serial)
    assert pki.certificates.get(new.serial, "cso-sub").status == "valid"
    assert isinstance(new.certificate, x509.Certificate)
