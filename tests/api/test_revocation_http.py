"""OCSP and CRL over HTTP: content types, RFC 5019 cache headers, GET encoding, conditional requests."""

from __future__ import annotations

import base64
import urllib.parse
import uuid

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from pki import PKI, RequestIdentity
from tests.conftest import make_csr

pytestmark = pytest.mark.asyncio


def _station(pki: PKI) -> x509.Certificate:
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    view = pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id)
    ).certificate
    return x509.load_pem_x509_certificate(view.certificate_pem.encode())


def _request(pki: PKI, cert: x509.Certificate, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, pki.cas.chain("cso-sub")[0], hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


async def test_ocsp_post_and_get_with_cache_headers(client: httpx.AsyncClient, fresh_pki: PKI) -> None:
    cert = _station(fresh_pki)
    der = _request(fresh_pki, cert)
    posted = await client.post("/ocsp", content=der, headers={"Content-Type": "application/ocsp-request"})
    assert posted.status_code == 200
    assert posted.headers["content-type"] == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(posted.content).certificate_status is ocsp.OCSPCertStatus.GOOD
    # RFC 6960 A.1 GET: base64, then URL-encoded.
    encoded = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    got = await client.get(f"/ocsp/{encoded}")
    assert got.status_code == 200 and got.content == posted.content  # the same pre-signed response
    cache = got.headers["cache-control"]
    assert "public" in cache and "no-transform" in cache and "must-revalidate" in cache
    assert int(cache.split("max-age=")[1].split(",")[0]) == 300  # capped by ocsp_max_age (5 min)
    assert got.headers["etag"] and got.headers["last-modified"] and got.headers["expires"]
    not_modified = await client.get(f"/ocsp/{encoded}", headers={"If-None-Match": got.headers["etag"]})
    assert not_modified.status_code == 304


async def test_ocsp_nonce_is_not_cacheable_and_garbage_is_malformed(client: httpx.AsyncClient, fresh_pki: PKI) -> None:
    cert = _station(fresh_pki)
    response = await client.post("/ocsp", content=_request(fresh_pki, cert, b"n" * 16))
    assert response.headers["cache-control"] == "no-store"
    garbage = await client.post("/ocsp", content=b"\x30\x03\x02\x01\x01")
    parsed = ocsp.load_der_ocsp_response(garbage.content)
    assert parsed.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    bad_get = await client.get("/ocsp/%%%not-base64")
    assert ocsp.load_der_ocsp_response(bad_get.content).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    huge = await client.post("/ocsp", content=b"\x30" * 100_000)
    assert huge.status_code == 413


async def test_revocation_through_the_api_is_visible_in_ocsp_at_once(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[object, str]
) -> None:
    from pki.operations.tokens import Role

    cert = _station(fresh_pki)
    der = _request(fresh_pki, cert)
    before = await client.post("/ocsp", content=der)
    assert ocsp.load_der_ocsp_response(before.content).certificate_status is ocsp.OCSPCertStatus.GOOD
    serial = format(cert.serial_number, "X")
    revoked = await client.post(
        f"/api/v1/certificates/{serial}/revoke",
        json={"reason": "cessationOfOperation"},
        headers={"Authorization": f"Bearer {tokens[Role.OPERATOR]}"},
    )
    assert revoked.status_code == 200
    after = ocsp.load_der_ocsp_response((await client.post("/ocsp", content=der)).content)
    assert after.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert after.revocation_reason is x509.ReasonFlags.cessation_of_operation


async def test_crl_and_delta_crl_with_headers(client: httpx.AsyncClient, fresh_pki: PKI) -> None:
    cert = _station(fresh_pki)
    fresh_pki.revocation.revoke(format(cert.serial_number, "X"), "superseded", ca_id="cso-sub")
    full = await client.get("/crl/cso-sub.crl")
    assert full.status_code == 200 and full.headers["content-type"] == "application/pkix-crl"
    assert full.headers["etag"] and full.headers["last-modified"]
    crl = x509.load_der_x509_crl(full.content)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert crl.is_signature_valid(fresh_pki.cas.chain("cso-sub")[0].public_key())  # type: ignore[arg-type]
    delta = await client.get("/crl/cso-sub-delta.crl")
    assert delta.status_code == 200
    delta_crl = x509.load_der_x509_crl(delta.content)
    indicator = delta_crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
    assert indicator.crl_number == crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert (await client.get("/crl/cso-sub.crl", headers={"If-None-Match": full.headers["etag"]})).status_code == 304
    assert (await client.get("/crl/no-such-ca.crl")).status_code == 404
    assert (await client.get("/crl/cso-sub.pem")).status_code == 404
