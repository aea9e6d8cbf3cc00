"""``POST /api/v1/certificates:batch``: many issuances in one call, each with its own certificate or problem."""

from __future__ import annotations

import httpx
import pytest
from cryptography import x509

from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.conftest import ORG, make_csr

BATCH = "/api/v1/certificates:batch"


def _item(station: str, csr: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "profile": "station",
        "csr": csr or make_csr(station, organization=ORG)[0],
        "identity": {"stationId": station},
        **extra,
    }


@pytest.mark.asyncio
async def test_each_request_gets_its_own_outcome_in_order(
    client: httpx.AsyncClient, tokens: dict[Role, str], fresh_pki: PKI
) -> None:
    records = fresh_pki.audit.count()
    body = {
        "requests": [
            _item("CP-BATCH-1"),
            _item("CP-BATCH-2", csr="garbage"),
            _item("CP-BATCH-3", validity="5x"),
            _item("CP-BATCH-4", csr=make_csr("SOMEONE-ELSE", organization=ORG)[0]),
            _item("CP-BATCH-5", ca="no-such-ca"),
            _item("CP-BATCH-6"),
        ]
    }
    response = await client.post(BATCH, json=body, headers=bearer(tokens[Role.CSMS]))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [r["status"] for r in answer["results"]] == [201, 400, 400, 422, 404, 201]
    assert (answer["issued"], answer["refused"]) == (2, 4)
    policy = answer["results"][3]["problem"]
    assert policy["type"] == "urn:evpki:problem:policy-violation" and policy["rule"] == "station.cn-serial"
    assert answer["results"][4]["problem"]["type"] == "urn:evpki:problem:not-found"
    for index, station in ((0, "CP-BATCH-1"), (5, "CP-BATCH-6")):
        issued = answer["results"][index]
        assert issued["certificate"]["identity"] == station and issued["problem"] is None
        leaf = x509.load_pem_x509_certificate(issued["chainPem"].encode())
        assert leaf.subject.rfc4514_string().startswith(f"CN={station}")
        assert fresh_pki.certificates.get(issued["certificate"]["serial"], "cso-sub").status == "valid"
    assert fresh_pki.audit.count() == records + 2
    assert fresh_pki.audit.verify().ok


@pytest.mark.asyncio
async def test_a_forbidden_profile_refuses_the_whole_batch(
    client: httpx.AsyncClient, tokens: dict[Role, str], fresh_pki: PKI
) -> None:
    records = fresh_pki.audit.count()
    body = {"requests": [_item("CP-BATCH-7"), {"profile": "csms-server", "csr": "x", "identity": {"fqdn": "a.b"}}]}
    response = await client.post(BATCH, json=body, headers=bearer(tokens[Role.CSMS]))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert fresh_pki.audit.count() == records


@pytest.mark.asyncio
async def test_the_batch_operation_is_documented(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][BATCH]["post"]
    assert operation["summary"]
    assert {"200", "400", "401", "403", "413"} <= set(operation["responses"])
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("IssueBatchIn")
