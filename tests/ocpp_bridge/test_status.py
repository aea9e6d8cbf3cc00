"""GetCertificateStatus (M06) and GetCertificateChainStatus (2.1 M07): our CAs answered in-process,
foreign ones forwarded to a local OCSP/CRL stub (retry, cache until nextUpdate, http(s) only)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from ocpp_bridge.core import CertificateService
from ocpp_bridge.status import cert_id_of
from pki import PKI
from pki.ca.policy import RequestIdentity
from pki.runtime.views import pem
from tests.conftest import FRESH_EPOCH, requires_openssl, run_openssl
from tests.ocpp_bridge.conftest import station_csr
from tests.ocpp_bridge.stubs import http_stub


def _issue_station(pki: PKI, name: str) -> x509.Certificate:
    issued = pki.certificates.issue(
        profile="station", csr=station_csr(name), identity=RequestIdentity(station_id=name, station_serial=name)
    )
    return x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode())


def _request(certificate: x509.Certificate, issuer: x509.Certificate, url: str, algorithm: str = "SHA256") -> dict:  # type: ignore[type-arg]
    return {"ocspRequestData": {**cert_id_of(certificate, issuer, algorithm), "responderURL": url}}


@requires_openssl
def test_our_certificate_is_answered_in_process_and_openssl_verifies_it(pki: PKI, tmp_path: Path) -> None:
    service = CertificateService(pki)
    leaf = _issue_station(pki, "SN-OCSP-1")
    sub, root = pki.cas.chain("cso-sub")
    # The responder URL is not contacted for our own CA (an unroutable address proves it).
    handled = service.handle("2.0.1", "CS-X", "GetCertificateStatus", _request(leaf, sub, "http://192.0.2.1/ocsp"))
    assert handled.response["status"] == "Accepted"
    der = base64.b64decode(handled.response["ocspResult"])
    (tmp_path / "resp.der").write_bytes(der)
    (tmp_path / "issuer.pem").write_text(pem(sub))
    (tmp_path / "ca.pem").write_text(pem(sub) + pem(root))
    result = run_openssl(
        "ocsp",
        "-respin", str(tmp_path / "resp.der"),
        "-issuer", str(tmp_path / "issuer.pem"),
        "-CAfile", str(tmp_path / "ca.pem"),
        "-sha256",  # the CertID hash the station asked with
        "-serial", f"0x{leaf.serial_number:X}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Response verify OK" in result.stderr + result.stdout
    assert ": good" in result.stdout
    pki.revocation.revoke(format(leaf.serial_number, "X"), "keyCompromise", ca_id="cso-sub")
    handled = service.handle("2.1", "CS-X", "GetCertificateStatus", _request(leaf, sub, "http://192.0.2.1/", "SHA384"))
    response = ocsp.load_der_ocsp_response(base64.b64decode(handled.response["ocspResult"]))
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED


def _foreign_ca(serial: int = 0x0ABC) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Foreign Root")])
    start = FRESH_EPOCH - dt.timedelta(days=1)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Foreign Leaf")]))
        .issuer_name(name)
        .public_key(leaf_key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return ca, key, leaf


def _ocsp_der(
    ca: x509.Certificate, key: ec.EllipticCurvePrivateKey, leaf: x509.Certificate, *, revoked: bool = False
) -> bytes:
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf,
        issuer=ca,
        algorithm=hashes.SHA256(),
        cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
        this_update=FRESH_EPOCH,
        next_update=FRESH_EPOCH + dt.timedelta(days=1),
        revocation_time=FRESH_EPOCH if revoked else None,
        revocation_reason=None,
    )
    response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, ca).sign(key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def test_a_foreign_certificate_is_forwarded_retried_and_cached_until_next_update(
    fresh_pki: PKI, service: CertificateService
) -> None:
    ca, key, leaf = _foreign_ca()
    der = _ocsp_der(ca, key, leaf)
    calls = {"n": 0}

    def respond(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        calls["n"] += 1
        if calls["n"] == 1:
            return 503, "text/plain", b"busy"  # one transient failure: retried
        request = ocsp.load_der_ocsp_request(body)
        assert request.serial_number == leaf.serial_number
        return 200, "application/ocsp-response", der

    with http_stub(respond) as (url, seen):
        payload = _request(leaf, ca, url + "/ocsp")
        handled = service.handle("2.0.1", "CS-X", "GetCertificateStatus", payload)
        assert handled.response == {"status": "Accepted", "ocspResult": base64.b64encode(der).decode()}
        assert [(m, p) for m, p, _ in seen] == [("POST", "/ocsp"), ("POST", "/ocsp")]
        service.handle("2.0.1", "CS-X", "GetCertificateStatus", payload)
        assert len(seen) == 2  # cached: nextUpdate is a day away
        fresh_pki.clock.advance(dt.timedelta(days=2))  # type: ignore[attr-defined]
        service.handle("2.0.1", "CS-X", "GetCertificateStatus", payload)
        assert len(seen) == 3


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "InvalidURL"),
        ("gopher://127.0.0.1/", "InvalidURL"),
        ("http://user:pw@127.0.0.1/", "InvalidURL"),
        ("http://127.0.0.1:9/ocsp", "Unreachable"),
    ],
)
def test_bad_or_unreachable_responders_are_failed(service: CertificateService, url: str, reason: str) -> None:
    ca, _, leaf = _foreign_ca()
    handled = service.handle("2.0.1", "CS-X", "GetCertificateStatus", _request(leaf, ca, url))
    assert handled.response["status"] == "Failed"
    assert handled.response["statusInfo"]["reasonCode"] == reason


def test_a_responder_that_answers_something_else_is_failed(service: CertificateService) -> None:
    ca, key, leaf = _foreign_ca()
    other = _foreign_ca(serial=0x0DEF)[2]
    answers = {
        "/html": (200, "text/html", b"<html>internal page</html>"),
        "/other": (200, "x", _ocsp_der(ca, key, other)),
    }
    with http_stub(lambda m, p, b: answers[p]) as (url, _):
        for path, reason in (("/html", "InvalidOcspResponse"), ("/other", "OcspMismatch")):
            handled = service.handle("2.0.1", "CS-X", "GetCertificateStatus", _request(leaf, ca, url + path))
            assert handled.response["status"] == "Failed"
            assert handled.response["statusInfo"]["reasonCode"] == reason
            assert "ocspResult" not in handled.response  # nothing of the response leaks back


def test_malformed_hash_data_is_failed(service: CertificateService) -> None:
    payload = {
        "ocspRequestData": {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": "zz",
            "issuerKeyHash": "00",
            "serialNumber": "1",
            "responderURL": "http://127.0.0.1/",
        }
    }
    handled = service.handle("2.0.1", "CS-X", "GetCertificateStatus", payload)
    assert handled.response["statusInfo"]["reasonCode"] == "InvalidHashData"


def test_chain_status_by_ocsp_and_crl_for_ours_and_foreign(fresh_pki: PKI, service: CertificateService) -> None:
    leaf = _issue_station(fresh_pki, "SN-CHAIN-1")
    sub = fresh_pki.cas.chain("cso-sub")[0]
    ours = cert_id_of(leaf, sub)
    foreign_ca, foreign_key, foreign_leaf = _foreign_ca()
    foreign = cert_id_of(foreign_leaf, foreign_ca)
    revoked_entry = (
        x509.RevokedCertificateBuilder().serial_number(foreign_leaf.serial_number).revocation_date(FRESH_EPOCH).build()
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(foreign_ca.subject)
        .last_update(FRESH_EPOCH)
        .next_update(FRESH_EPOCH + dt.timedelta(days=7))
        .add_revoked_certificate(revoked_entry)
        .sign(foreign_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    with http_stub(lambda m, p, b: (200, "application/pkix-crl", crl)) as (url, seen):
        requests = [
            {"certificateHashData": ours, "source": "OCSP", "urls": ["http://192.0.2.1/"]},
            {"certificateHashData": ours, "source": "CRL", "urls": ["http://192.0.2.1/crl"]},
            {"certificateHashData": foreign, "source": "CRL", "urls": ["ftp://x/", url + "/foreign.crl"]},
            {"certificateHashData": foreign, "source": "OCSP", "urls": ["http://127.0.0.1:9/"]},
        ]
        handled = service.handle("2.1", "CS-X", "GetCertificateChainStatus", {"certificateStatusRequests": requests})
        assert [s["status"] for s in handled.response["certificateStatus"]] == ["Good", "Good", "Revoked", "Failed"]
        assert [s["source"] for s in handled.response["certificateStatus"]] == ["OCSP", "CRL", "CRL", "OCSP"]
        assert handled.response["certificateStatus"][2]["nextUpdate"] == (FRESH_EPOCH + dt.timedelta(days=7)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        assert [p for _, p, _ in seen] == ["/foreign.crl"]
    fresh_pki.revocation.revoke(format(leaf.serial_number, "X"), "keyCompromise", ca_id="cso-sub")
    handled = service.handle("2.1", "CS-X", "GetCertificateChainStatus", {"certificateStatusRequests": requests[:2]})
    assert [s["status"] for s in handled.response["certificateStatus"]] == ["Revoked", "Revoked"]
