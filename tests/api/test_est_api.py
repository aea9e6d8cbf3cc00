"""The EST app's HTTP mapping (through ``httpx.ASGITransport``, the TLS client certificate put into the
ASGI TLS extension as :class:`api.est.TlsHttpToolsProtocol` does): statuses, headers, and that every
refusal leaves every table and the audit chain as they were.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import MetaData, create_engine, select

from api.est import PKCS7_CERTS_ONLY, create_est_app
from pki import PKI, RequestIdentity
from tests.conftest import make_csr

STATION, SERIAL = "CP-EST-API", "SN-EST-API"
SECC_ID = "DE*ABC*E0000002*1"
PKCS10 = {"Content-Type": "application/pkcs10"}


def _b64_csr(common_name: str, **kwargs: Any) -> bytes:
    pem = make_csr(common_name, **kwargs)[0]
    return base64.encodebytes(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class _WithClientCertificate:
    """Puts the ``X-Test-Client-Cert`` header's PEM (base64) into the scope's TLS extension, as the protocol would."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            pem = headers.get(b"x-test-client-cert")
            chain = [base64.b64decode(pem).decode()] if pem else []
            scope = {**scope, "extensions": {"tls": {"client_cert_chain": chain, "tls_version": 0x0304}}}
        await self.app(scope, receive, send)


def _snapshot(pki: PKI) -> dict[str, str]:
    engine = create_engine(pki.settings.resolved_database_url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                table.name: hashlib.sha256(
                    "\n".join(sorted(repr(tuple(row)) for row in connection.execute(select(table)))).encode()
                ).hexdigest()
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


@pytest.fixture
def world(fresh_pki: PKI) -> dict[str, Any]:
    fresh_pki.stations.add(identity=STATION, serial=SERIAL)
    _, station_secret = fresh_pki.est.add_secret(identity=STATION, profile="station")
    _, secc_secret = fresh_pki.est.add_secret(identity=SECC_ID, profile="secc")
    csr, _ = make_csr(SERIAL)
    issued = fresh_pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=STATION, station_serial=SERIAL)
    )
    return {
        "pki": fresh_pki,
        "station_secret": station_secret,
        "secc_secret": secc_secret,
        "station_cert": base64.b64encode(issued.certificate.certificate_pem.encode()).decode(),
    }


@pytest_asyncio.fixture
async def est(world: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_WithClientCertificate(create_est_app(world["pki"])))
    async with httpx.AsyncClient(transport=transport, base_url="https://est.test") as http:
        yield http


def _refusals(world: dict[str, Any]) -> list[tuple[str, str, dict[str, str], bytes, int, str]]:
    station, secc = world["station_secret"], world["secc_secret"]
    good = _b64_csr(SERIAL)
    cert = {"X-Test-Client-Cert": world["station_cert"]}
    return [
        ("no credentials", "/.well-known/est/simpleenroll", PKCS10, good, 401, "unauthenticated"),
        ("Bearer, not Basic", "/.well-known/est/simpleenroll", {**PKCS10, "Authorization": "Bearer x"}, good, 401,
         "unauthenticated"),
        ("malformed Basic", "/.well-known/est/simpleenroll", {**PKCS10, "Authorization": "Basic %%%"}, good, 401,
         "unauthenticated"),
        ("wrong identity", "/.well-known/est/simpleenroll", {**PKCS10, **_basic("CP-OTHER", station)}, good, 401,
         "unauthenticated"),
        ("malformed base64", "/.well-known/est/simpleenroll", {**PKCS10, **_basic(STATION, station)}, b"%%%", 400,
         "invalid-input"),
        ("not a PKCS#10", "/.well-known/est/simpleenroll", {**PKCS10, **_basic(STATION, station)},
         base64.b64encode(b"\x30\x03\x02\x01\x00"), 400, "invalid-input"),
        ("CN is not the serial", "/.well-known/est/simpleenroll", {**PKCS10, **_basic(STATION, station)},
         _b64_csr("SN-WRONG"), 403, "policy-violation"),
        ("SECC secret on the station CA", "/.well-known/est/cso-sub/simpleenroll", {**PKCS10, **_basic(SECC_ID, secc)},
         _b64_csr(SECC_ID, country="DE", dc="CPO"), 403, "policy-violation"),
        ("unknown label", "/.well-known/est/nope/simpleenroll", {**PKCS10, **_basic(STATION, station)}, good, 404,
         "not-found"),
        ("OPCP vehicle CA", "/.well-known/est/veh/simpleenroll/ISO15118-20", {**PKCS10, **_basic(STATION, station)},
         good, 404, "not-found"),
        ("not application/pkcs10", "/.well-known/est/simpleenroll", {"Content-Type": "text/plain"}, good, 415,
         "unsupported-media-type"),
        ("oversized", "/.well-known/est/simpleenroll", {**PKCS10, **_basic(STATION, station)}, b"A" * 20_000, 413,
         "payload-too-large"),
        ("reenroll without a certificate", "/.well-known/est/simplereenroll", PKCS10, good, 401, "unauthenticated"),
        ("reenroll, other subject", "/.well-known/est/simplereenroll", {**PKCS10, **cert},
         _b64_csr(SERIAL, country="DE"), 403, "policy-violation"),
        ("our certificate on simpleenroll", "/.well-known/est/simpleenroll", {**PKCS10, **cert}, good, 403,
         "policy-violation"),
    ]  # fmt: skip


@pytest.mark.asyncio
async def test_every_refusal_is_a_4xx_problem_and_changes_nothing(
    world: dict[str, Any], est: httpx.AsyncClient
) -> None:
    before = _snapshot(world["pki"])
    audit_before = world["pki"].audit.count()
    for why, path, headers, body, status, code in _refusals(world):
        response = await est.post(path, headers=headers, content=body)
        assert response.status_code == status, (why, response.text)
        assert response.headers["content-type"] == "application/problem+json", why
        assert response.json()["type"] == f"urn:evpki:problem:{code}", (why, response.text)
        if status == 401:
            assert response.headers["www-authenticate"].startswith('Basic realm="evpki EST"'), why
        if status == 403:
            assert response.json()["rule"], why
    assert _snapshot(world["pki"]) == before
    assert world["pki"].audit.count() == audit_before


@pytest.mark.asyncio
async def test_enrollment_answers_base64_pkcs7_certs_only(world: dict[str, Any], est: httpx.AsyncClient) -> None:
    response = await est.post(
        "/.well-known/est/simpleenroll",
        headers={**PKCS10, **_basic(STATION, world["station_secret"])},
        content=_b64_csr(SERIAL),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PKCS7_CERTS_ONLY
    assert response.headers["content-transfer-encoding"] == "base64"
    assert all(len(line) <= 76 for line in response.content.splitlines())
    [certificate] = pkcs7.load_der_pkcs7_certificates(base64.b64decode(response.content))
    assert certificate.subject.rfc4514_string() == f"CN={SERIAL},O=Test CSO GmbH"

    presented = base64.b64encode(certificate.public_bytes(serialization.Encoding.PEM)).decode()
    renewed = await est.post(
        "/.well-known/est/simplereenroll", headers={**PKCS10, "X-Test-Client-Cert": presented}, content=_b64_csr(SERIAL)
    )
    assert renewed.status_code == 200, renewed.text
    assert (await est.get("/.well-known/est/csrattrs")).status_code == 204
    cacerts = await est.get("/.well-known/est/cpo-sub2/cacerts")
    assert cacerts.status_code == 200 and cacerts.headers["content-type"] == PKCS7_CERTS_ONLY
    assert len(pkcs7.load_der_pkcs7_certificates(base64.b64decode(cacerts.content))) == 3
    assert (await est.get("/cps/cacerts/iso15118-2/secp256r1/")).status_code == 200
    assert (await est.get("/cps/cacerts/iso15118-2/ed448/")).status_code == 404


@pytest.mark.asyncio
async def test_the_openapi_documents_every_est_operation(est: httpx.AsyncClient) -> None:
    document = (await est.get("/.well-known/est/openapi.json")).json()
    operations = {(method, path): op for path, item in document["paths"].items() for method, op in item.items()}
    assert ("post", "/.well-known/est/{ca}/simpleenroll/{iso_version}") in operations
    assert ("get", "/{ca}/cacerts/{iso_version}/{algorithm}/") in operations
    for (method, path), operation in operations.items():
        assert operation.get("summary"), path
        if method == "post":
            assert {"200", "400", "401", "403", "404", "413", "415"} <= set(operation["responses"]), path
            assert "application/pkcs10" in operation["requestBody"]["content"], path


def test_the_tls_extension_carries_the_client_certificate() -> None:
    from api.est.tls import client_certificate_der

    der = b"\x30\x00"  # the helper only converts PEM to DER; TLS hands it a certificate
    scope = {"extensions": {"tls": {"client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)]}}}
    assert client_certificate_der(scope) == der
    assert client_certificate_der({}) is None
    assert client_certificate_der({"extensions": {"tls": {"client_cert_chain": []}}}) is None
