"""``/api/v1/trust`` through ``httpx.ASGITransport``: add (201 + Location), list, show, remove, import,
the refusals as problem+json with their rule, and the foreign root offered by ``GET /api/v1/roots``."""

from __future__ import annotations

import httpx
import pytest
from cryptography import x509

from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.foreign_roots import foreign_root, pem_of, rcp_entry, sha256_of

pytestmark = pytest.mark.asyncio
V2G = "V2GRootCertificate"


async def test_a_foreign_root_is_added_shown_offered_and_removed(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    operator, csms, auditor = (bearer(tokens[role]) for role in (Role.OPERATOR, Role.CSMS, Role.AUDITOR))
    root = foreign_root("REST V2G Root").certificate
    body = {"certificate": pem_of(root), "use": V2G, "label": "rest-root"}

    added = await client.post("/api/v1/trust", json=body, headers=operator)
    assert added.status_code == 201, added.text
    assert added.headers["location"] == f"/api/v1/trust/{sha256_of(root)}?use={V2G}"
    assert added.json()["sha256"] == sha256_of(root) and added.json()["source"] == "manual"
    shown = await client.get(added.headers["location"], headers=auditor)
    assert shown.status_code == 200 and shown.json() == added.json()
    listed = await client.get("/api/v1/trust", params={"use": V2G}, headers=csms)
    assert [item["label"] for item in listed.json()["items"]] == ["rest-root"]

    offered = await client.get("/api/v1/roots", params={"use": V2G})
    certificates = x509.load_pem_x509_certificates(offered.content)
    assert len(certificates) == 2 and certificates[-1] == root  # ours first, then the foreign root

    removed = await client.delete("/api/v1/trust/rest-root", headers=operator)
    assert removed.status_code == 200 and removed.json()["removedAt"] is not None
    offered = await client.get("/api/v1/roots", params={"use": V2G})
    assert root not in x509.load_pem_x509_certificates(offered.content)
    assert (await client.get("/api/v1/trust", headers=auditor)).json()["items"] == []
    everything = await client.get("/api/v1/trust", params={"includeRemoved": "true"}, headers=auditor)
    assert len(everything.json()["items"]) == 1


@pytest.mark.parametrize(
    ("variant", "rule"),
    [
        ({"ca": False}, "trust.ca"),
        ({"issuer": x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Other")])}, "trust.self-signed"),
    ],
    ids=["not-a-ca", "not-self-signed"],
)
async def test_a_refused_root_is_a_422_problem_naming_the_rule(
    client: httpx.AsyncClient, tokens: dict[Role, str], variant: dict, rule: str
) -> None:
    body = {"certificate": pem_of(foreign_root(**variant).certificate), "use": V2G}
    response = await client.post("/api/v1/trust", json=body, headers=bearer(tokens[Role.OPERATOR]))
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["rule"] == rule


async def test_a_duplicate_is_409_and_malformed_is_400(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    operator = bearer(tokens[Role.OPERATOR])
    body = {"certificate": pem_of(foreign_root().certificate), "use": V2G}
    assert (await client.post("/api/v1/trust", json=body, headers=operator)).status_code == 201
    assert (await client.post("/api/v1/trust", json=body, headers=operator)).status_code == 409
    garbage = {"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "use": V2G}
    assert (await client.post("/api/v1/trust", json=garbage, headers=operator)).status_code == 400
    assert (await client.get("/api/v1/trust/no-such-root", headers=operator)).status_code == 404


async def test_only_the_operator_writes(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    body = {"certificate": pem_of(foreign_root().certificate), "use": V2G}
    for role in (Role.CSMS, Role.AUDITOR):
        response = await client.post("/api/v1/trust", json=body, headers=bearer(tokens[role]))
        assert response.status_code == 403


async def test_import_is_idempotent(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    operator = bearer(tokens[Role.OPERATOR])
    v2g, mo = foreign_root("CTL V2G").certificate, foreign_root("CTL MO").certificate
    entries = [rcp_entry(v2g, "V2G", "1"), rcp_entry(mo, "MO", "2"), {"rootType": "PE", "caCertificate": "AA=="}]
    ctl = {"signerCertificate": "", "timeStamp": "", "CTL": {"rootCertificates": entries}}
    first = await client.post("/api/v1/trust/import", json={"ctl": ctl}, headers=operator)
    assert first.status_code == 200, first.text
    assert [item["use"] for item in first.json()["added"]] == [V2G, "MORootCertificate"]
    assert len(first.json()["refused"]) == 1
    second = await client.post("/api/v1/trust/import", json={"ctl": ctl}, headers=operator)
    assert second.json()["added"] == [] and len(second.json()["unchanged"]) == 2

    bundle = {"pem": pem_of(foreign_root("Bundle").certificate), "use": "CSMSRootCertificate"}
    assert len((await client.post("/api/v1/trust/import", json=bundle, headers=operator)).json()["added"]) == 1
    both = await client.post("/api/v1/trust/import", json={**bundle, "ctl": ctl}, headers=operator)
    assert both.status_code == 400
