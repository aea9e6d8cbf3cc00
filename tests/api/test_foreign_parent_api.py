"""REST for CAs under an external parent: list the awaiting ones, fetch a request, install a certificate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from cryptography import x509

from api.app import create_app
from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.conftest import drop_database
from tests.foreign_operator import V2G, open_awaiting, pem

pytestmark = pytest.mark.asyncio


@pytest.fixture
def awaiting(tmp_path: Path) -> Iterator[PKI]:
    pki, name = open_awaiting(tmp_path)
    yield pki
    pki.close()
    drop_database(name)


@pytest_asyncio.fixture
async def http(awaiting: PKI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(awaiting)), base_url="http://evpki.test"
    ) as client:
        yield client


async def test_an_operator_fetches_the_request_and_installs_the_certificate(
    awaiting: PKI, http: httpx.AsyncClient
) -> None:
    operator = bearer(awaiting.tokens.create(name="op", role=Role.OPERATOR)[1])
    csms = bearer(awaiting.tokens.create(name="csms", role=Role.CSMS)[1])

    listed = await http.get("/api/v1/ca-requests", headers=operator)
    assert listed.status_code == 200 and {item["id"] for item in listed.json()} == {"cpo-sub1", "cps-sub1", "cso-sub"}
    assert (await http.get("/api/v1/cas/cpo-sub1/request", headers=csms)).status_code == 403
    request = await http.get("/api/v1/cas/cpo-sub1/request", headers=operator)
    assert request.status_code == 200 and request.headers["content-type"].startswith("application/pkcs10")
    assert x509.load_pem_x509_csr(request.content).is_signature_valid

    refused = await http.post(
        "/api/v1/cas/cpo-sub1/certificate",
        json={"certificate": pem(V2G.sign(request.text, path_length=0)), "chain": V2G.chain_pem()},
        headers=operator,
    )
    assert refused.status_code == 422 and refused.json()["rule"] == "install.path-length"
    assert (await http.get("/api/v1/cas/cpo-sub1", headers=operator)).status_code == 404

    body = {"certificate": pem(V2G.sign(request.text)), "chain": V2G.chain_pem()}
    assert (await http.post("/api/v1/cas/cpo-sub1/certificate", json=body, headers=csms)).status_code == 403
    installed = await http.post("/api/v1/cas/cpo-sub1/certificate", json=body, headers=operator)
    assert installed.status_code == 201, installed.text
    assert installed.json()["ca"]["externalParent"] is True
    assert installed.json()["created"] == ["cpo-sub2"] and installed.json()["anchor"]["added"] is True
    again = await http.post("/api/v1/cas/cpo-sub1/certificate", json=body, headers=operator)
    assert again.status_code == 409
    chain = await http.get("/api/v1/cas/cpo-sub2/chain", headers=csms)
    assert chain.text.count("BEGIN CERTIFICATE") == 2  # cpo-sub2, cpo-sub1: the external root left out
