"""The OCSP responder core: statuses, CertID hashes, nonces, several CertIDs, pre-signed store, rotation."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from hypothesis import given, settings
from hypothesis import strategies as st

from pki import PKI, RequestIdentity
from pki.core.clock import FixedClock
from pki.runtime.views import CertificateView
from tests.conftest import make_csr, requires_openssl, run_openssl


def _issue_station(pki: PKI) -> CertificateView:
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    return pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id)
    ).certificate


def _cert(view: CertificateView) -> x509.Certificate:
    return x509.load_pem_x509_certificate(view.certificate_pem.encode())


def _issuer(pki: PKI, ca_id: str = "cso-sub") -> x509.Certificate:
    return pki.cas.chain(ca_id)[0]


def _request(
    cert: x509.Certificate, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm, nonce: bytes | None = None
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _check_signed(pki: PKI, der: bytes, ca_id: str = "cso-sub") -> ocsp.OCSPResponse:
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    responder = response.certificates[0]
    responder.verify_directly_issued_by(_issuer(pki, ca_id))
    assert (
        x509.ExtendedKeyUsageOID.OCSP_SIGNING
        in responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    responder.public_key().verify(  # type: ignore[call-arg, union-attr]
        response.signature, response.tbs_response_bytes, *_verify_args(responder, response)
    )
    return response


def _verify_args(responder: x509.Certificate, response: ocsp.OCSPResponse) -> tuple[object, ...]:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = responder.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return (ec.ECDSA(response.signature_hash_algorithm),)  # type: ignore[arg-type]
    return ()


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()])
def test_good_certificate_for_each_certid_hash(fresh_pki: PKI, algorithm: hashes.HashAlgorithm) -> None:
    view = _issue_station(fresh_pki)
    answer = fresh_pki.ocsp.respond(_request(_cert(view), _issuer(fresh_pki), algorithm))
    response = _check_signed(fresh_pki, answer.der)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == int(view.serial, 16)
    assert response.hash_algorithm.name == algorithm.name
    assert response.next_update_utc - response.this_update_utc == dt.timedelta(days=1)


def test_revocation_is_visible_at_once_even_after_presigning(fresh_pki: PKI) -> None:
    view = _issue_station(fresh_pki)
    request = _request(_cert(view), _issuer(fresh_pki), hashes.SHA1())
    first = fresh_pki.ocsp.respond(request)
    assert not first.from_store
    second = fresh_pki.ocsp.respond(request)
    assert second.from_store and second.der == first.der  # served from the pre-signed store
    fresh_pki.revocation.revoke(view.serial, "keyCompromise", ca_id="cso-sub")
    answer = fresh_pki.ocsp.respond(request)
    assert not answer.from_store
    response = _check_signed(fresh_pki, answer.der)
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.key_compromise
    assert response.revocation_time_utc == fresh_pki.clock.now().replace(microsecond=0)


def test_hold_reports_certificate_hold_and_release_reports_good(fresh_pki: PKI) -> None:
    view = _issue_station(fresh_pki)
    request = _request(_cert(view), _issuer(fresh_pki), hashes.SHA256())
    fresh_pki.ocsp.respond(request)
    fresh_pki.revocation.revoke(view.serial, "certificateHold", ca_id="cso-sub")
    held = ocsp.load_der_ocsp_response(fresh_pki.ocsp.respond(request).der)
    assert held.revocation_reason is x509.ReasonFlags.certificate_hold
    # Same clock instant: only the status version tells the stored "revoked" answer is stale.
    fresh_pki.revocation.release_hold(view.serial, ca_id="cso-sub")
    released = ocsp.load_der_ocsp_response(fresh_pki.ocsp.respond(request).der)
    assert released.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_unknown_serial_and_foreign_issuer(fresh_pki: PKI) -> None:
    view = _issue_station(fresh_pki)
    issuer = _issuer(fresh_pki)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            _cert(view).fingerprint(hashes.SHA1())[:20],
            b"\x01" * 20,
            5,
            hashes.SHA1(),
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    assert fresh_pki.ocsp.respond(request).status == "unauthorized"
    name_hash = _request(_cert(view), issuer, hashes.SHA256())
    loaded = ocsp.load_der_ocsp_request(name_hash)
    unknown = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(loaded.issuer_name_hash, loaded.issuer_key_hash, 0x1234567, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    response = _check_signed(fresh_pki, fresh_pki.ocsp.respond(unknown).der)
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def test_nonce_is_echoed_and_signed_now(fresh_pki: PKI) -> None:
    view = _issue_station(fresh_pki)
    nonce = b"\x42" * 16
    answer = fresh_pki.ocsp.respond(_request(_cert(view), _issuer(fresh_pki), hashes.SHA256(), nonce))
    assert not answer.cacheable
    response = _check_signed(fresh_pki, answer.der)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


def test_oversized_nonce_is_malformed(fresh_pki: PKI) -> None:
    view = _issue_station(fresh_pki)
    answer = fresh_pki.ocsp.respond(_request(_cert(view), _issuer(fresh_pki), hashes.SHA256(), b"x" * 33))
    assert answer.status == "malformedRequest"


def test_several_certids_in_one_request(fresh_pki: PKI) -> None:
    good, revoked = _issue_station(fresh_pki), _issue_station(fresh_pki)
    fresh_pki.revocation.revoke(revoked.serial, "superseded", ca_id="cso-sub")
    issuer = _issuer(fresh_pki)
    cert_ids = []
    for view, name in ((good, "sha1"), (revoked, "sha256")):
        single = asn1_ocsp.OCSPRequest.load(
            _request(_cert(view), issuer, hashes.SHA1() if name == "sha1" else hashes.SHA256())
        )
        cert_ids.append(single["tbs_request"]["request_list"][0]["req_cert"])
    cert_ids.append(cert_ids[0].copy())
    cert_ids[2]["serial_number"] = asn1_ocsp.Integer(99)  # type: ignore[attr-defined]
    request = asn1_ocsp.OCSPRequest(
        {
            "tbs_request": {
                "request_list": [{"req_cert": cert_id} for cert_id in cert_ids],
                "request_extensions": [{"extn_id": "nonce", "extn_value": b"0123456789abcdef"}],
            }
        }
    ).dump()
    answer = fresh_pki.ocsp.respond(request)
    assert answer.cert_statuses == ("good", "revoked", "unknown")
    parsed = asn1_ocsp.OCSPResponse.load(answer.der)
    data = parsed["response_bytes"]["response"].parsed["tbs_response_data"]
    statuses = [single["cert_status"].name for single in data["responses"]]
    assert statuses == ["good", "revoked", "unknown"]
    assert data["responses"][1]["cert_status"].chosen["revocation_reason"].native == "superseded"
    assert data["response_extensions"][0]["extn_value"].native == b"0123456789abcdef"


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_is_malformed_not_an_exception(pki: PKI, data: bytes) -> None:
    assert pki.ocsp.respond(data).status in ("malformedRequest", "unauthorized")


def test_oversized_request_is_malformed(pki: PKI) -> None:
    assert pki.ocsp.respond(b"\x30" * (70 * 1024)).status == "malformedRequest"


def test_presign_fills_the_store_and_refreshes_before_next_update(fresh_pki: PKI) -> None:
    views = [_issue_station(fresh_pki) for _ in range(3)]
    signed = fresh_pki.ocsp.presign("cso-sub")
    assert signed["cso-sub"] >= 2 * 3  # SHA-1 and SHA-256 CertIDs of each certificate
    assert fresh_pki.ocsp.presign("cso-sub")["cso-sub"] == 0  # nothing to do while fresh
    request = _request(_cert(views[0]), _issuer(fresh_pki), hashes.SHA256())
    assert fresh_pki.ocsp.respond(request).from_store
    clock = fresh_pki.clock
    assert isinstance(clock, FixedClock)
    clock.advance(dt.timedelta(hours=19))  # within ocsp_refresh_before (6 h) of nextUpdate (1 d)
    answer = fresh_pki.ocsp.respond(request)
    assert not answer.from_store
    assert answer.this_update == clock.now().replace(microsecond=0)


def test_responder_is_rotated_before_it_expires(fresh_pki: PKI) -> None:
    view = _issue_station(fresh_pki)
    first = fresh_pki.ocsp.responder("cso-sub")
    assert first.profile == "ocsp-responder"
    clock = fresh_pki.clock
    assert isinstance(clock, FixedClock)
    clock.advance(dt.timedelta(days=21))  # the 30-day responder enters its last 10 days
    second = fresh_pki.ocsp.responder("cso-sub")
    assert second.serial != first.serial
    response = ocsp.load_der_ocsp_response(
        fresh_pki.ocsp.respond(_request(_cert(view), _issuer(fresh_pki), hashes.SHA256())).der
    )
    assert format(response.certificates[0].serial_number, "X") == second.serial
    assert response.next_update_utc is not None
    assert response.next_update_utc <= _cert(second).not_valid_after_utc


def test_revoked_responder_is_replaced(fresh_pki: PKI) -> None:
    first = fresh_pki.ocsp.responder("cso-sub")
    fresh_pki.revocation.revoke(first.serial, "keyCompromise", ca_id="cso-sub")
    clock = fresh_pki.clock
    assert isinstance(clock, FixedClock)
    clock.advance(dt.timedelta(seconds=11))  # past the in-process recheck interval
    assert fresh_pki.ocsp.responder("cso-sub").serial != first.serial


@requires_openssl
@pytest.mark.interop
def test_openssl_reads_and_verifies_responses(pki: PKI, tmp_path: Path) -> None:
    fresh_pki = pki  # the real clock: openssl checks thisUpdate/nextUpdate against its own
    view = _issue_station(fresh_pki)
    chain = fresh_pki.cas.chain("cso-sub")
    (tmp_path / "ca.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    (tmp_path / "issuer.pem").write_bytes(chain[0].public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_text(view.certificate_pem)
    for nonce in (None, b"n" * 16):
        request = _request(_cert(view), chain[0], hashes.SHA1(), nonce)
        (tmp_path / "req.der").write_bytes(request)
        (tmp_path / "resp.der").write_bytes(fresh_pki.ocsp.respond(request).der)
        # With -reqin alone openssl checks our echo of its request's nonce and the signature.
        checked = run_openssl(
            "ocsp", "-reqin", str(tmp_path / "req.der"), "-respin", str(tmp_path / "resp.der"),
            "-CAfile", str(tmp_path / "ca.pem"),
        )  # fmt: skip
        assert checked.returncode == 0 and "Response verify OK" in checked.stderr, checked.stderr
        status = run_openssl(
            "ocsp", "-respin", str(tmp_path / "resp.der"), "-no_nonce",
            "-issuer", str(tmp_path / "issuer.pem"), "-cert", str(tmp_path / "leaf.pem"),
            "-CAfile", str(tmp_path / "ca.pem"),
        )  # fmt: skip
        assert f"{tmp_path / 'leaf.pem'}: good" in status.stdout, status.stdout + status.stderr
