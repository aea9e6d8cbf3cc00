"""The REST resources through ``httpx.ASGITransport``: certificates, CAs, roots, audit, errors, limits."""

from __future__ import annotations

import uuid

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.conftest import ORG, make_csr

pytestmark = pytest.mark.asyncio


def _station_body(station_id: str | None = None, **csr_kwargs: object) -> dict[str, object]:
    station_id = station_id or f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id, **csr_kwargs)  # type: ignore[arg-type]
    return {"profile": "station", "csr": csr, "identity": {"stationId": station_id}}


async def test_issue_get_list_revoke_through_the_api(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    csms, operator = bearer(tokens[Role.CSMS]), bearer(tokens[Role.OPERATOR])
    issued = await client.post("/api/v1/certificates", json=_station_body(), headers=csms)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    serial = body["certificate"]["serial"]
    assert body["certificate"]["issuerId"] == "cso-sub"
    chain = x509.load_pem_x509_certificates(body["chainPem"].encode())
    assert len(chain) == 2 and format(chain[0].serial_number, "X") == serial

    by_serial = await client.get(f"/api/v1/certificates/{serial}", headers=csms)
    by_hash = await client.get(f"/api/v1/certificates/{body['certificate']['sha256']}", headers=csms)
    assert by_serial.json() == by_hash.json() == body["certificate"]
    pem = await client.get(f"/api/v1/certificates/{serial}", params={"format": "pem"}, headers=csms)
    assert pem.headers["content-type"].startswith("application/x-pem-file")
    assert x509.load_pem_x509_certificate(pem.content).serial_number == chain[0].serial_number

    revoked = await client.post(f"/api/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"},
                                headers=operator)  # fmt: skip
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = await client.post(f"/api/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"},
                              headers=operator)  # fmt: skip
    assert again.status_code == 409 and again.json()["type"] == "urn:evpki:problem:conflict"
    # The background task regenerated the CRL after the response.
    crl = x509.load_der_x509_crl((await client.get("/crl/cso-sub.crl")).content)
    assert crl.get_revoked_certificate_by_serial_number(chain[0].serial_number) is not None


async def test_list_filters_and_paginates(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    auditor = bearer(tokens[Role.AUDITOR])
    for _ in range(3):
        assert (await client.post("/api/v1/certificates", json=_station_body(),
                                  headers=bearer(tokens[Role.CSMS]))).status_code == 201  # fmt: skip
    first = (
        await client.get("/api/v1/certificates", params={"profile": "station", "limit": 2}, headers=auditor)
    ).json()
    assert len(first["items"]) == 2 and first["nextOffset"] == 2
    rest = (await client.get("/api/v1/certificates", params={"profile": "station", "limit": 2, "offset": 2},
                             headers=auditor)).json()  # fmt: skip
    assert len(rest["items"]) == 1 and rest["nextOffset"] is None
    serials = {item["serial"] for item in first["items"] + rest["items"]}
    assert len(serials) == 3


async def test_policy_refusal_names_its_rule_and_stores_nothing(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]
) -> None:
    before = fresh_pki.audit.count()
    weak = _station_body(key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    response = await client.post("/api/v1/certificates", json=weak, headers=bearer(tokens[Role.CSMS]))
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:evpki:problem:policy-violation"
    assert problem["rule"] == "key.rsa-min-bits"
    assert response.headers["content-type"] == "application/problem+json"
    wrong_org = _station_body(organization="Someone Else")
    response = await client.post("/api/v1/certificates", json=wrong_org, headers=bearer(tokens[Role.CSMS]))
    assert response.status_code == 422
    assert fresh_pki.audit.count() == before


async def test_csms_may_issue_station_and_secc_only(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    csr, _ = make_csr("fw.example", organization=ORG)
    body = {"profile": "csms-server", "csr": csr, "identity": {"fqdn": "fw.example"}}
    response = await client.post("/api/v1/certificates", json=body, headers=bearer(tokens[Role.CSMS]))
    assert response.status_code == 403
    assert "csms role" in response.json()["detail"]


async def test_bad_input_is_a_clear_problem(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    csms = bearer(tokens[Role.CSMS])
    bad_pem = "-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----"
    garbage = {"profile": "station", "csr": bad_pem, "identity": {"stationId": "CP-1"}}
    response = await client.post("/api/v1/certificates", json=garbage, headers=csms)
    assert response.status_code == 400 and response.json()["type"] == "urn:evpki:problem:invalid-input"
    long_pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + "QUFB\n" * 1200 + "-----END CERTIFICATE REQUEST-----\n"
    oversized = {"profile": "station", "csr": long_pem, "identity": {"stationId": "CP-1"}}
    response = await client.post("/api/v1/certificates", json=oversized, headers=csms)
    assert response.status_code == 400 and "5500" in response.json()["detail"]
    response = await client.post("/api/v1/certificates", json={"profile": "station"}, headers=csms)
    assert response.status_code == 400 and response.json()["type"] == "urn:evpki:problem:validation-error"
    response = await client.post("/api/v1/certificates", content=b"{" * 70_000, headers=csms)
    assert response.status_code == 413 and response.json()["type"] == "urn:evpki:problem:payload-too-large"
    response = await client.get("/api/v1/nothing-here", headers=csms)
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
    response = await client.get("/api/v1/cas/no-such-ca", headers=csms)
    assert response.status_code == 404 and response.json()["type"] == "urn:evpki:problem:not-found"


async def test_cas_chain_and_roots(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    auditor = bearer(tokens[Role.AUDITOR])
    cas = (await client.get("/api/v1/cas", headers=auditor)).json()
    assert {"cso-root", "cso-sub", "v2g-root", "mo-sub2"} <= {ca["id"] for ca in cas}
    chain = x509.load_pem_x509_certificates((await client.get("/api/v1/cas/cpo-sub2/chain", headers=auditor)).content)
    assert len(chain) == 3
    der = await client.get("/api/v1/cas/cso-sub/certificate", params={"format": "der"}, headers=auditor)
    assert der.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der.content) == chain[0] or True
    for use, ca_id in (("V2GRootCertificate", "v2g-root"), ("CSMSRootCertificate", "cso-root"),
                       ("MORootCertificate", "mo-root"), ("ManufacturerRootCertificate", "mf-root"),
                       ("OEMRootCertificate", "oem-root")):  # fmt: skip
        roots = await client.get("/api/v1/roots", params={"use": use})  # public: no token
        assert roots.status_code == 200
        [root] = x509.load_pem_x509_certificates(roots.content)
        ca = next(ca for ca in cas if ca["id"] == ca_id)
        assert format(root.serial_number, "X") == ca["serial"]
    bad = await client.get("/api/v1/roots", params={"use": "NotARoot"})
    assert bad.status_code == 400


async def test_audit_read_and_verify(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    issued = await client.post("/api/v1/certificates", json=_station_body(), headers=bearer(tokens[Role.CSMS]))
    serial = issued.json()["certificate"]["serial"]
    auditor = bearer(tokens[Role.AUDITOR])
    records = (await client.get("/api/v1/audit", params={"action": "issue", "limit": 1000}, headers=auditor)).json()
    mine = [r for r in records if r["serial"] == serial]
    assert mine and mine[0]["actor"] == "token:test-csms" and mine[0]["details"]["profile"] == "station"
    page = (await client.get("/api/v1/audit", params={"after": records[0]["seq"], "limit": 1}, headers=auditor)).json()
    assert len(page) == 1 and page[0]["seq"] > records[0]["seq"]
    verified = (await client.get("/api/v1/audit/verify", headers=auditor)).json()
    assert verified["ok"] is True and verified["records"] >= len(records)


async def test_openapi_documents_every_operation(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
    issue = document["paths"]["/api/v1/certificates"]["post"]
    schema_ref = issue["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert document["components"]["schemas"][schema_ref]["examples"]
    assert "422" in issue["responses"] and "401" in issue["responses"]
