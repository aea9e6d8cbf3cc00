"""``/api/v1/contracts`` through ``httpx.ASGITransport``: create, read, list, revoke, errors, roles."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from cryptography import x509

from pki import PKI, RequestIdentity
from pki.iso15118.contract_registry import record_contract_certificate
from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.conftest import FRESH_EPOCH, make_csr

pytestmark = pytest.mark.asyncio

EMAID = "DEABCC123ABC56"
PCID = "WMIV2G0000000001A"


async def test_create_read_list_revoke(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    operator, csms, auditor = (bearer(tokens[r]) for r in (Role.OPERATOR, Role.CSMS, Role.AUDITOR))
    created = await client.post(
        "/api/v1/contracts",
        json={"emaid": "de-abc-c123abc56", "pcid": PCID, "validity": "1y", "note": "customer 4711"},
        headers=operator,
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/api/v1/contracts/{EMAID}"
    body = created.json()
    assert (body["emaid"], body["pcid"], body["status"], body["note"]) == (EMAID, PCID, "active", "customer 4711")
    assert body["currentCertificate"] is None and body["validUntil"].startswith(
        (FRESH_EPOCH + dt.timedelta(days=365)).date().isoformat()
    )

    for headers in (csms, auditor):
        one = await client.get("/api/v1/contracts/DE-ABC-C123ABC56", headers=headers)
        assert one.status_code == 200 and one.json() == body
    listed = await client.get("/api/v1/contracts", params={"pcid": PCID, "status": "active"}, headers=auditor)
    assert listed.json() == {"items": [body], "offset": 0, "limit": 100, "nextOffset": None}

    revoked = await client.post(f"/api/v1/contracts/{EMAID}/revoke", json={"note": "terminated"}, headers=operator)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["contract"]["status"] == "revoked"
    assert revoked.json()["contract"]["revocationNote"] == "terminated"
    assert revoked.json()["revokedCertificates"] == []
    again = await client.post(f"/api/v1/contracts/{EMAID}/revoke", headers=operator)  # the body is optional
    assert again.status_code == 409 and again.json()["type"] == "urn:evpki:problem:conflict"


async def test_errors_are_problems(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    operator = bearer(tokens[Role.OPERATOR])
    bad = await client.post("/api/v1/contracts", json={"emaid": "DE-1", "pcid": PCID}, headers=operator)
    assert bad.status_code == 400 and bad.json()["type"] == "urn:evpki:problem:invalid-input"
    assert bad.headers["content-type"] == "application/problem+json"
    naive = await client.post(
        "/api/v1/contracts", json={"emaid": EMAID, "pcid": PCID, "validUntil": "2030-01-01T00:00:00"}, headers=operator
    )
    assert naive.status_code == 400 and "validUntil" in naive.json()["detail"]
    unknown_field = await client.post(
        "/api/v1/contracts", json={"emaid": EMAID, "pcid": PCID, "x": 1}, headers=operator
    )
    assert unknown_field.status_code == 400
    missing = await client.get(f"/api/v1/contracts/{EMAID}", headers=operator)
    assert missing.status_code == 404 and missing.json()["type"] == "urn:evpki:problem:not-found"
    bad_status = await client.get("/api/v1/contracts", params={"status": "valid"}, headers=operator)
    assert bad_status.status_code == 400

    assert (
        await client.post("/api/v1/contracts", json={"emaid": EMAID, "pcid": PCID}, headers=operator)
    ).status_code == 201
    second = await client.post("/api/v1/contracts", json={"emaid": "DEABCC123ABC57", "pcid": PCID}, headers=operator)
    assert second.status_code == 409 and EMAID in second.json()["detail"]


async def test_csms_and_auditor_read_but_do_not_write(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    for role in (Role.CSMS, Role.AUDITOR):
        created = await client.post(
            "/api/v1/contracts", json={"emaid": EMAID, "pcid": PCID}, headers=bearer(tokens[role])
        )
        assert created.status_code == 403
    admin = bearer(tokens[Role.ADMIN])
    assert (
        await client.post("/api/v1/contracts", json={"emaid": EMAID, "pcid": PCID}, headers=admin)
    ).status_code == 201
    for role in (Role.CSMS, Role.AUDITOR):
        revoke = await client.post(f"/api/v1/contracts/{EMAID}/revoke", headers=bearer(tokens[role]))
        assert revoke.status_code == 403


async def test_pagination(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    operator = bearer(tokens[Role.OPERATOR])
    for index in range(3):
        body = {"emaid": f"DEABCC00000000{index}", "pcid": f"WMIV2G000000000{index}A"}
        assert (await client.post("/api/v1/contracts", json=body, headers=operator)).status_code == 201
    first = (await client.get("/api/v1/contracts", params={"limit": 2}, headers=operator)).json()
    assert [c["emaid"] for c in first["items"]] == ["DEABCC000000000", "DEABCC000000001"]
    assert first["nextOffset"] == 2
    rest = (await client.get("/api/v1/contracts", params={"offset": 2}, headers=operator)).json()
    assert [c["emaid"] for c in rest["items"]] == ["DEABCC000000002"] and rest["nextOffset"] is None


async def test_revoke_revokes_the_current_certificate_and_refreshes_the_crl(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]
) -> None:
    operator = bearer(tokens[Role.OPERATOR])
    assert (
        await client.post("/api/v1/contracts", json={"emaid": EMAID, "pcid": PCID}, headers=operator)
    ).status_code == 201
    csr, _ = make_csr(EMAID, dc="MO")
    issued = fresh_pki.certificates.issue(
        profile="contract", csr=csr, identity=RequestIdentity(emaid=EMAID)
    ).certificate
    with fresh_pki._ctx.database.write() as session:
        record_contract_certificate(session, EMAID, issued.issuer_id, issued.serial)
    shown = (await client.get(f"/api/v1/contracts/{EMAID}", headers=operator)).json()
    assert shown["currentCertificate"] == {"issuerId": issued.issuer_id, "serial": issued.serial}

    revoked = await client.post(f"/api/v1/contracts/{EMAID}/revoke", headers=operator)
    assert revoked.json()["revokedCertificates"] == [{"issuerId": issued.issuer_id, "serial": issued.serial}]
    certificate = (await client.get(f"/api/v1/certificates/{issued.serial}", headers=operator)).json()
    assert (certificate["status"], certificate["revocationReason"]) == ("revoked", "cessationOfOperation")
    crl = x509.load_der_x509_crl((await client.get(f"/crl/{issued.issuer_id}.crl")).content)
    assert crl.get_revoked_certificate_by_serial_number(int(issued.serial, 16)) is not None


async def test_openapi_documents_the_contract_routes(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    create = document["paths"]["/api/v1/contracts"]["post"]
    assert create["x-evpki-roles"] == ["admin", "operator"]
    assert create["summary"] and "examples" in document["components"]["schemas"]["ContractIn"]
    read = document["paths"]["/api/v1/contracts/{key}"]["get"]
    assert read["x-evpki-roles"] == ["admin", "auditor", "csms", "operator"]
