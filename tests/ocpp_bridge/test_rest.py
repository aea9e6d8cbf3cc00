"""The REST face of the OCPP core: ``POST /api/v1/ocpp/{version}/{action}`` and ``.../results``."""

from __future__ import annotations

import httpx
import pytest
from cryptography import x509

from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.ocpp_bridge.conftest import station_csr

pytestmark = pytest.mark.asyncio


async def test_sign_certificate_then_report_the_answer(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str], station: tuple[str, str]
) -> None:
    identity, serial = station
    headers = bearer(tokens[Role.CSMS])
    body = {"stationId": identity, "payload": {"csr": station_csr(serial)}}
    answer = await client.post("/api/v1/ocpp/2.0.1/SignCertificate", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["response"] == {"status": "Accepted"}
    (follow_up,) = data["followUps"]
    assert follow_up["action"] == "CertificateSigned" and isinstance(follow_up["deliveryId"], int)
    leaf = x509.load_pem_x509_certificates(follow_up["payload"]["certificateChain"].encode())[0]
    assert serial in leaf.subject.rfc4514_string()
    result = {"stationId": identity, "followUp": follow_up, "response": {"status": "Accepted"}}
    reported = await client.post("/api/v1/ocpp/2.0.1/results", json=result, headers=headers)
    assert reported.status_code == 200 and reported.json() == {"followUps": []}
    assert fresh_pki.deliveries.get(follow_up["deliveryId"]).status == "accepted"


async def test_boot_and_root_reconciliation_over_rest(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str], station: tuple[str, str]
) -> None:
    identity, _ = station
    headers = bearer(tokens[Role.ADMIN])
    boot = (await client.post("/api/v1/ocpp/1.6/boot", json={"stationId": identity}, headers=headers)).json()
    inventory = boot["followUps"][0]
    assert inventory == {
        "action": "GetInstalledCertificateIds",
        "payload": {"certificateType": "CentralSystemRootCertificate"},
        "deliveryId": None,
    }
    result = {"stationId": identity, "followUp": inventory, "response": {"status": "NotFound"}}
    (install,) = (await client.post("/api/v1/ocpp/1.6/results", json=result, headers=headers)).json()["followUps"]
    assert install["action"] == "InstallCertificate"
    assert install["payload"]["certificateType"] == "CentralSystemRootCertificate"
    error = {"stationId": identity, "followUp": install, "code": "Timeout"}
    assert (await client.post("/api/v1/ocpp/1.6/errors", json=error, headers=headers)).status_code == 200
    assert [d.id for d in fresh_pki.deliveries.pending(identity)] == [install["deliveryId"]]
    renewal = await client.post("/api/v1/ocpp/1.6/renewal", json={"stationId": identity}, headers=headers)
    assert renewal.json() == {"followUps": []}


async def test_schema_violations_unknown_actions_and_roles(
    client: httpx.AsyncClient, tokens: dict[Role, str], station: tuple[str, str]
) -> None:
    identity, _ = station
    headers = bearer(tokens[Role.CSMS])
    bad = await client.post(
        "/api/v1/ocpp/2.0.1/SignCertificate", json={"stationId": identity, "payload": {"csr": 1}}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["ocppErrorCode"] == "TypeConstraintViolation"
    for path in (
        "/api/v1/ocpp/2.0.1/GetCertificateChainStatus",
        "/api/v1/ocpp/2.0.1/Heartbeat",
        "/api/v1/ocpp/3.0/SignCertificate",
    ):
        missing = await client.post(path, json={"stationId": identity, "payload": {}}, headers=headers)
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    forbidden = await client.post(
        "/api/v1/ocpp/2.1/SignCertificate",
        json={"stationId": identity, "payload": {}},
        headers=bearer(tokens[Role.AUDITOR]),
    )
    assert forbidden.status_code == 403


async def test_the_openapi_document_lists_each_version_and_action(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    ocpp = sorted(p for p in paths if p.startswith("/api/v1/ocpp/"))
    assert "/api/v1/ocpp/2.1/GetCertificateChainStatus" in ocpp and "/api/v1/ocpp/1.6/DataTransfer" in ocpp
    assert "/api/v1/ocpp/2.0.1/GetCertificateChainStatus" not in ocpp
    operation = paths["/api/v1/ocpp/2.0.1/SignCertificate"]["post"]
    assert operation["x-evpki-roles"] == ["admin", "csms"]
    assert "csr" in operation["requestBody"]["content"]["application/json"]["example"]["payload"]


async def test_a_result_for_another_stations_delivery_is_not_found_and_changes_nothing(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str], station: tuple[str, str]
) -> None:
    identity, serial = station
    fresh_pki.stations.add(identity="CS-OTHER", serial="SN-OTHER")
    headers = bearer(tokens[Role.CSMS])
    body = {"stationId": identity, "payload": {"csr": station_csr(serial)}}
    answer = await client.post("/api/v1/ocpp/2.0.1/SignCertificate", json=body, headers=headers)
    (follow_up,) = answer.json()["followUps"]
    before = fresh_pki.deliveries.get(follow_up["deliveryId"])
    for path, extra in [("results", {"response": {"status": "Rejected"}}), ("errors", {"code": "Timeout"})]:
        report = {"stationId": "CS-OTHER", "followUp": follow_up, **extra}
        reported = await client.post(f"/api/v1/ocpp/2.0.1/{path}", json=report, headers=headers)
        assert reported.status_code == 404, reported.text
        assert reported.headers["content-type"].startswith("application/problem+json")
    assert fresh_pki.deliveries.get(follow_up["deliveryId"]) == before  # still pending, not counted, not revoked
    assert fresh_pki.certificates.get(before.certificate_serial, "cso-sub").status == "valid"  # type: ignore[arg-type]
