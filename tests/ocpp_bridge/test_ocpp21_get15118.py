"""OCPP 2.1 Get15118EVCertificate with ISO 15118-20: the ``ocpp`` library's own 2.1 ChargePoint against
the adapter, the independent -20 car (EXIficient, plain ``cryptography``) opening every answer.

The car asks again while ``remainingContracts`` > 0 (M01.FR.07), each time with one chain fewer.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.routing import on
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v21 import call_result

from api.app import create_app
from ocpp_bridge.adapter import with_certificate_handlers
from ocpp_bridge.core import CertificateService
from ocpp_bridge.v2g20 import schema_view
from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.conftest import ORG, make_csr
from tests.interop.conftest import exificient  # noqa: F401 -- the session's EXIficient oracle
from tests.interop.exificient import Exificient
from tests.interop.exificient20 import Exificient20
from tests.ocpp_bridge.conftest import SECC_ID
from tests.ocpp_bridge.minus20 import ISO20, exi_request, install_every_contract, open_answer
from tests.pki.iso15118.vehicles20 import make_car20, new_emaid20


@pytest.fixture(scope="module")
def oracle(exificient: Exificient) -> Exificient20:  # noqa: F811
    return Exificient20(exificient)


class Csms(ChargePoint21):
    @on("BootNotification")
    def on_boot(self, **kwargs: Any) -> call_result.BootNotification:
        return call_result.BootNotification(current_time="2026-01-15T12:00:00Z", interval=300, status="Accepted")


@pytest.mark.asyncio
async def test_a_2_1_station_installs_every_contract_of_a_minus_20_car(pki20: PKI, oracle: Exificient20) -> None:
    car = make_car20(pki20, "ed448")
    emaids = [new_emaid20(), new_emaid20(), new_emaid20()]
    for priority, emaid in enumerate(emaids):
        pki20.contracts.add(emaid=emaid, pcid=car.pcid, priority=priority, concurrent=True)
    handler_class = with_certificate_handlers(Csms, CertificateService(pki20), sync_on_boot=False)

    async def on_connect(websocket: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await handler_class(websocket.request.path.strip("/"), websocket, response_timeout=20).start()

    server = await websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=["ocpp2.1"])
    port = server.sockets[0].getsockname()[1]
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/CS-21-PNC", subprotocols=["ocpp2.1"]) as ws:
            station = ChargePoint21("CS-21-PNC", ws, response_timeout=20)
            receiving = asyncio.create_task(station.start())
            answers = await install_every_contract(station, pki20, oracle, car)
            receiving.cancel()
    finally:
        server.close()
        await server.wait_closed()

    assert [a.status for a in answers] == ["Accepted"] * 3
    assert [a.remaining_contracts for a in answers] == [2, 1, 0]
    installed = [open_answer(pki20, oracle, car, a.exi_response) for a in answers]
    assert [i.emaid for i in installed] == emaids
    assert [i.remaining for i in installed] == [2, 1, 0]
    assert {i.ecdh_curve for i in installed} == {"X448"}


def test_the_ocpp_copies_of_maximum_and_priorities_reach_the_minus_20_provisioning(
    pki20: PKI, oracle: Exificient20
) -> None:
    car = make_car20(pki20)
    first, wanted = new_emaid20(), new_emaid20()
    pki20.contracts.add(emaid=first, pcid=car.pcid)
    pki20.contracts.add(emaid=wanted, pcid=car.pcid, priority=5, concurrent=True)
    service = CertificateService(pki20)
    payload = {
        "iso15118SchemaVersion": ISO20,
        "action": "Install",
        "exiRequest": exi_request(pki20, oracle, car, 1),  # the EXI names no PrioritizedEMAIDs
        "maximumContractCertificateChains": 1,
        "prioritizedEMAIDs": [wanted],
    }
    response = service.handle("2.1", "CS-21-A", "Get15118EVCertificate", payload).response
    assert (response["status"], response["remainingContracts"]) == ("Accepted", 0)
    assert open_answer(pki20, oracle, car, response["exiResponse"]).emaid == wanted


def test_a_refused_minus_20_request_answers_remaining_zero(pki20: PKI, oracle: Exificient20) -> None:
    car = make_car20(pki20)  # no contract
    payload = {
        "iso15118SchemaVersion": ISO20,
        "action": "Install",
        "exiRequest": exi_request(pki20, oracle, car, 2),
        "maximumContractCertificateChains": 2,
    }
    response = CertificateService(pki20).handle("2.1", "CS-21-B", "Get15118EVCertificate", payload).response
    assert response["status"] == "Accepted" and response["remainingContracts"] == 0
    assert response["statusInfo"]["reasonCode"] == "NoContract"


@pytest.mark.asyncio
async def test_the_rest_handler_answers_a_minus_20_car_and_a_v2g20_csr(pki20: PKI, oracle: Exificient20) -> None:
    car = make_car20(pki20)
    emaid = new_emaid20()
    pki20.contracts.add(emaid=emaid, pcid=car.pcid)
    pki20.stations.add(identity="CS-21-REST", serial="SN21REST01")
    headers = bearer(pki20.tokens.create(name="test-ocpp21-rest", role=Role.CSMS)[1])
    transport = httpx.ASGITransport(app=create_app(pki20))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        payload = {
            "iso15118SchemaVersion": ISO20,
            "action": "Install",
            "exiRequest": exi_request(pki20, oracle, car, 4),
            "maximumContractCertificateChains": 4,
        }
        body = {"stationId": "CS-21-REST", "payload": payload}
        answer = await client.post("/api/v1/ocpp/2.1/Get15118EVCertificate", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        response = answer.json()["response"]
        assert (response["status"], response["remainingContracts"]) == ("Accepted", 0)
        assert open_answer(pki20, oracle, car, response["exiResponse"]).emaid == emaid

        csr = make_csr(SECC_ID, organization=ORG, country="DE", dc="CPO", key=ec.generate_private_key(ec.SECP521R1()))
        body = {"stationId": "CS-21-REST", "payload": {"csr": csr[0], "certificateType": "V2G20Certificate"}}
        signed = await client.post("/api/v1/ocpp/2.1/SignCertificate", json=body, headers=headers)
        assert signed.status_code == 200, signed.text
        (follow_up,) = signed.json()["followUps"]
        assert follow_up["payload"]["certificateType"] == "V2G20Certificate"
        assert pki20.deliveries.get(follow_up["deliveryId"]).certificate_issuer == "cpo20-sub2"


def test_the_stations_field_length_bounds_the_exi_response(pki20: PKI, oracle: Exificient20) -> None:
    car = make_car20(pki20)
    pki20.contracts.add(emaid=new_emaid20(), pcid=car.pcid)
    asked: list[tuple[str, str]] = []

    def field_lengths(station: str, field: str) -> int | None:
        asked.append((station, field))
        return 1000  # this station takes less than 2.1's 17,000 characters

    service = CertificateService(pki20, field_lengths=field_lengths)
    payload = {
        "iso15118SchemaVersion": ISO20,
        "action": "Install",
        "exiRequest": exi_request(pki20, oracle, car, 1),
        "maximumContractCertificateChains": 1,
    }
    response = service.handle("2.1", "CS-21-FL", "Get15118EVCertificate", payload).response
    assert (response["status"], response["statusInfo"]["reasonCode"]) == ("Failed", "TooLarge")
    assert asked == [("CS-21-FL", "Get15118EVCertificateResponse.exiResponse")]
    # A larger advertised length lifts the schema's maxLength for exiResponse, nothing else.
    big = {"status": "Accepted", "exiResponse": "A" * 20000, "remainingContracts": 0}
    assert len(schema_view("2.1", "Get15118EVCertificate", big)["exiResponse"]) == 17000
    assert schema_view("2.0.1", "Get15118EVCertificate", big) is big
