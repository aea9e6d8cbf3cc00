"""The ``ocpp`` ChargePoint adapter against a real ``ocpp.v201`` station over a real loopback websocket.

The station makes its key and CSR with ``cryptography``, gets CertificateSigned after the
SignCertificate response, checks the chain up to the CSMS root and accepts; meanwhile the boot
reconciliation asks for its roots and installs the missing ones. Plain ``ws`` here: TLS is the gateway's.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from typing import Any

import pytest
import websockets
from cryptography import x509
from ocpp.routing import on
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call, call_result

from ocpp_bridge.adapter import with_certificate_handlers
from ocpp_bridge.core import CertificateService
from pki import PKI
from tests.ocpp_bridge.conftest import station_csr


class Csms(ChargePoint201):
    """The CSMS's own handlers: the adapter adds only the certificate ones."""

    @on("BootNotification")
    def on_boot(self, **kwargs: Any) -> call_result.BootNotification:
        return call_result.BootNotification(current_time="2026-01-15T12:00:00Z", interval=300, status="Accepted")


class Station(ChargePoint201):
    def __init__(self, *args: Any, root: x509.Certificate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.root = root
        self.installed: list[str] = []
        self.chain: list[x509.Certificate] = []
        self.signed = asyncio.Event()

    @on("CertificateSigned")
    def on_certificate_signed(self, certificate_chain: str, **kwargs: Any) -> call_result.CertificateSigned:
        chain = x509.load_pem_x509_certificates(certificate_chain.encode())
        # A02.FR.06: validate before accepting -- leaf → Sub-CA → the installed CSMS root.
        for child, parent in zip(chain, [*chain[1:], self.root], strict=True):
            child.verify_directly_issued_by(parent)
        self.chain = chain
        self.signed.set()
        return call_result.CertificateSigned(status="Accepted")

    @on("GetInstalledCertificateIds")
    def on_get_installed(self, **kwargs: Any) -> call_result.GetInstalledCertificateIds:
        return call_result.GetInstalledCertificateIds(status="NotFound")

    @on("InstallCertificate")
    def on_install(self, certificate_type: str, certificate: str, **kwargs: Any) -> call_result.InstallCertificate:
        self.installed.append(certificate_type)
        return call_result.InstallCertificate(status="Accepted")


@pytest.mark.asyncio
async def test_enrollment_through_the_adapter(fresh_pki: PKI, station: tuple[str, str]) -> None:
    identity, serial = station
    service = CertificateService(fresh_pki)
    # The station already holds a certificate of ours (accepted earlier): the new one must supersede it.
    (old,) = service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)}).follow_ups
    service.record_result("2.0.1", identity, old, {"status": "Accepted"})
    old_serial = fresh_pki.deliveries.get(old.delivery_id).certificate_serial  # type: ignore[arg-type]

    handler_class = with_certificate_handlers(Csms, service)
    assert handler_class.__name__ == "CertificateCsms" and issubclass(handler_class, Csms)
    connected: list[Any] = []

    async def on_connect(websocket: Any) -> None:
        csms = handler_class(websocket.request.path.strip("/"), websocket, response_timeout=10)
        connected.append(csms)
        with contextlib.suppress(websockets.ConnectionClosed):
            await csms.start()

    server = await websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"])
    port = server.sockets[0].getsockname()[1]
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/{identity}", subprotocols=["ocpp2.0.1"]) as ws:
            cp = Station(identity, ws, root=fresh_pki.cas.roots("CSMSRootCertificate")[0], response_timeout=10)
            receiving = asyncio.create_task(cp.start())
            boot = await cp.call(
                call.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
            )
            assert boot.status == "Accepted"
            signed = await cp.call(
                call.SignCertificate(csr=station_csr(serial), certificate_type="ChargingStationCertificate")
            )
            assert signed.status == "Accepted"
            await asyncio.wait_for(cp.signed.wait(), 10)
            await asyncio.wait_for(connected[0].wait_certificate_tasks(), 10)
            receiving.cancel()
    finally:
        server.close()
        await server.wait_closed()

    assert cp.chain[0].subject.rfc4514_string().startswith(f"CN={serial}")
    assert sorted(cp.installed) == sorted(
        ["CSMSRootCertificate", "V2GRootCertificate", "MORootCertificate", "ManufacturerRootCertificate"]
    )
    assert fresh_pki.deliveries.pending(identity) == []  # CertificateSigned and the installs all closed
    new_serial = format(cp.chain[0].serial_number, "X")
    assert fresh_pki.certificates.get(old_serial, "cso-sub").superseded_by == new_serial  # type: ignore[arg-type]
    assert fresh_pki.certificates.get(new_serial, "cso-sub").status == "valid"
    assert fresh_pki.stations.get(identity).ocpp_version == "2.0.1"
    assert cp.chain[0].not_valid_before_utc <= fresh_pki.clock.now() + dt.timedelta(seconds=1)


@pytest.mark.asyncio
async def test_the_adapter_answers_schema_violations_with_a_call_error(fresh_pki: PKI) -> None:
    service = CertificateService(fresh_pki)

    async def on_connect(websocket: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await with_certificate_handlers(Csms, service)("CS-X", websocket).start()

    server = await websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"])
    port = server.sockets[0].getsockname()[1]
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/CS-X", subprotocols=["ocpp2.0.1"]) as ws:
            # Raw frames: the library's client would refuse to send the invalid payload itself.
            await ws.send('[2,"m1","SignCertificate",{"csr":"x","unknown":1}]')
            frame = await asyncio.wait_for(ws.recv(), 10)
    finally:
        server.close()
        await server.wait_closed()
    assert json.loads(frame)[:3] == [4, "m1", "FormatViolation"]


def test_only_ocpp_charge_points_are_adapted(fresh_pki: PKI) -> None:
    with pytest.raises(TypeError):
        with_certificate_handlers(object, CertificateService(fresh_pki))
