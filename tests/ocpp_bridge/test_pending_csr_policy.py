"""A pending CertificateSigned never bypasses policy (issue 11, item 1).

While a station's CertificateSigned is pending, its next SignCertificate is checked like any
other: a CSR for another serial or with a broken signature is Rejected and the pending delivery
stays as it was; the same CSR again gets the pending certificate again (A02.FR.17-19); a CSR for
a new key gets a new certificate and the pending one is revoked (superseded). Checked over a
real ``ocpp.v201`` station through the adapter, and over the REST handler endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.routing import on
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call, call_result

from ocpp_bridge.adapter import with_certificate_handlers
from ocpp_bridge.core import CertificateService
from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.conftest import TEST_CERTS
from tests.ocpp_bridge.conftest import station_csr
from tests.ocpp_bridge.test_adapter import Csms

pytestmark = pytest.mark.asyncio

BAD_SIGNATURE = (TEST_CERTS / "csr" / "bad-signature.csr.pem").read_text()
WAIT = 10


class HesitantStation(ChargePoint201):
    """Answers CertificateSigned with a CALLERROR until told to accept, so the delivery stays pending."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accept = False
        self.offers: asyncio.Queue[list[x509.Certificate]] = asyncio.Queue()

    @on("CertificateSigned")
    def on_certificate_signed(self, certificate_chain: str, **kwargs: Any) -> call_result.CertificateSigned:
        self.offers.put_nowait(x509.load_pem_x509_certificates(certificate_chain.encode()))
        if not self.accept:
            raise RuntimeError("storage busy")  # the ocpp library answers with a CALLERROR
        return call_result.CertificateSigned(status="Accepted")

    @on("GetInstalledCertificateIds")
    def on_get_installed(self, **kwargs: Any) -> call_result.GetInstalledCertificateIds:
        return call_result.GetInstalledCertificateIds(status="NotFound")

    @on("InstallCertificate")
    def on_install(self, **kwargs: Any) -> call_result.InstallCertificate:
        return call_result.InstallCertificate(status="Accepted")


def _serial(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "X")


async def test_a_real_station_cannot_bypass_policy_while_a_certificate_is_pending(
    fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, serial = station
    service = CertificateService(fresh_pki)
    handler_class = with_certificate_handlers(Csms, service)
    connected: list[Any] = []

    async def on_connect(websocket: Any) -> None:
        csms = handler_class(websocket.request.path.strip("/"), websocket, response_timeout=WAIT)
        connected.append(csms)
        with contextlib.suppress(websockets.ConnectionClosed):
            await csms.start()

    server = await websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"])
    port = server.sockets[0].getsockname()[1]
    csr = station_csr(serial)
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/{identity}", subprotocols=["ocpp2.0.1"]) as ws:
            cp = HesitantStation(identity, ws, response_timeout=WAIT)
            receiving = asyncio.create_task(cp.start())

            async def sign(csr_pem: str) -> call_result.SignCertificate:
                answer = await cp.call(call.SignCertificate(csr=csr_pem, certificate_type="ChargingStationCertificate"))
                await asyncio.wait_for(connected[0].wait_certificate_tasks(), WAIT)
                return answer

            assert (await sign(csr)).status == "Accepted"
            (pending,) = fresh_pki.deliveries.pending(identity)
            first = await asyncio.wait_for(cp.offers.get(), WAIT)
            assert _serial(first[0]) == pending.certificate_serial

            for refused, reason, rule in [
                (station_csr("SOMEONE-ELSE"), "PolicyViolation", "station.cn-serial"),
                (BAD_SIGNATURE, "InvalidCSR", "csr.proof-of-possession"),
            ]:
                answer = await sign(refused)
                assert answer.status == "Rejected"
                assert answer.status_info["reason_code"] == reason
                assert rule in answer.status_info["additional_info"]
                assert fresh_pki.deliveries.pending(identity) == [pending]  # as it was
                assert cp.offers.empty()

            # The same CSR re-sent with back-off: the pending certificate again.
            assert (await sign(csr)).status == "Accepted"
            again = await asyncio.wait_for(cp.offers.get(), WAIT)
            assert _serial(again[0]) == pending.certificate_serial

            # A new key: a new certificate, and the undelivered one revoked.
            cp.accept = True
            assert (await sign(station_csr(serial))).status == "Accepted"
            replacement = await asyncio.wait_for(cp.offers.get(), WAIT)
            await asyncio.wait_for(connected[0].wait_certificate_tasks(), WAIT)
            receiving.cancel()
    finally:
        server.close()
        await server.wait_closed()

    assert _serial(replacement[0]) != pending.certificate_serial
    old = fresh_pki.certificates.get(pending.certificate_serial, "cso-sub")  # type: ignore[arg-type]
    assert (old.status, old.revocation_reason) == ("revoked", "superseded")
    assert fresh_pki.deliveries.get(pending.id).status == "superseded"
    assert fresh_pki.certificates.get(_serial(replacement[0]), "cso-sub").status == "valid"
    assert fresh_pki.deliveries.pending(identity) == []  # the replacement was accepted


async def test_the_rest_handler_checks_every_csr_before_a_pending_delivery(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str], station: tuple[str, str]
) -> None:
    identity, serial = station
    headers = bearer(tokens[Role.CSMS])

    async def sign(csr_pem: str) -> dict[str, Any]:
        body = {"stationId": identity, "payload": {"csr": csr_pem}}
        answer = await client.post("/api/v1/ocpp/2.0.1/SignCertificate", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    csr = station_csr(serial)
    first = await sign(csr)
    (offer,) = first["followUps"]
    pending = fresh_pki.deliveries.get(offer["deliveryId"])

    other_key = ec.generate_private_key(ec.SECP256R1())
    for refused, reason in [
        (station_csr("SOMEONE-ELSE", key=other_key), "PolicyViolation"),
        (BAD_SIGNATURE, "InvalidCSR"),
    ]:
        answer = await sign(refused)
        assert answer["response"]["status"] == "Rejected"
        assert answer["response"]["statusInfo"]["reasonCode"] == reason
        assert answer["followUps"] == []
        assert fresh_pki.deliveries.get(pending.id) == pending

    assert (await sign(csr))["followUps"] == [offer]
    renewed = await sign(station_csr(serial, key=other_key))
    (new_offer,) = renewed["followUps"]
    assert new_offer["deliveryId"] != offer["deliveryId"]
    leaf = x509.load_pem_x509_certificates(new_offer["payload"]["certificateChain"].encode())[0]
    assert leaf.public_key() == other_key.public_key()
    old = fresh_pki.certificates.get(pending.certificate_serial, "cso-sub")  # type: ignore[arg-type]
    assert (old.status, old.revocation_reason) == ("revoked", "superseded")
    assert [d.id for d in fresh_pki.deliveries.pending(identity)] == [new_offer["deliveryId"]]
