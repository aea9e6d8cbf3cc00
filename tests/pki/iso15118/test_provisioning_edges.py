"""Provisioning at its edges: hostile input never raises, an external OEM trusted through a PEM file,
and the 800-byte limit on ISO 15118-2 certificates."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pki import PKI, PolicyViolation, RequestIdentity
from pki.iso15118 import ev
from pki.iso15118.exi import decode_message, encode_message
from pki.iso15118.messages import ResponseCode
from tests.pki.iso15118.vehicles import foreign_certificate, make_car, new_emaid, new_pcid, v2g_roots

ISO2 = "urn:iso:15118:2:2013:MsgDef"


def _ask(pki: PKI, exi: bytes, action: str = "Install"):  # type: ignore[no-untyped-def]
    return pki.contracts.provision(
        iso15118_schema_version=ISO2, action=action, exi_request=base64.b64encode(exi).decode()
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), action=st.sampled_from(["Install", "Update"]))
def test_random_bytes_after_the_iso2_header_never_raise(pki: PKI, data: bytes, action: str) -> None:
    result = _ask(pki, b"\x80\x98" + data, action)
    assert result.status in ("Accepted", "Failed")
    if result.status == "Failed":
        assert result.exi_response == "" and result.reason
    else:
        assert result.response_code is not None and not result.response_code.ok


@pytest.fixture(scope="module")
def signed_request(pki: PKI) -> bytes:
    car = make_car(pki)
    return ev.installation_request(car.certificate, car.key, v2g_roots(pki), b"\x01")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=16, max_value=10_000), bit=st.integers(min_value=0, max_value=7))
def test_a_flipped_bit_is_refused_and_never_raises(pki: PKI, signed_request: bytes, position: int, bit: int) -> None:
    """No contract exists for this car, so nothing may be issued whatever the flip does."""
    damaged = bytearray(signed_request)
    damaged[position % len(damaged)] ^= 1 << bit
    result = _ask(pki, bytes(damaged))
    assert result.response_code is not ResponseCode.OK


def test_an_external_oem_trusted_through_a_pem_file(fresh_pki: PKI, tmp_path: Path) -> None:
    """Another OEM's root and sub-CA in a PEM bundle; the request carries only the vehicle's certificate."""
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    root_key, sub_key, car_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = foreign_certificate("Other OEM Root", root_key, None, 1)
    sub = foreign_certificate("Other OEM Sub", sub_key, (root.subject, root_key), 0)
    pcid = new_pcid()
    car = foreign_certificate(pcid, car_key, (sub.subject, sub_key), None)
    bundle = tmp_path / "other-oem.pem"
    bundle.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (root, sub)))
    fresh_pki.contracts.add(emaid=new_emaid(), pcid=pcid)
    request = ev.installation_request(car, car_key, v2g_roots(fresh_pki), b"\x01")

    assert _ask(fresh_pki, request).response_code is ResponseCode.FAILED_CERT_CHAIN_ERROR
    fresh_pki.settings.iso15118_oem_roots = f"oem-root, {bundle}"
    assert _ask(fresh_pki, request).response_code is ResponseCode.OK


def test_an_iso15118_2_certificate_over_800_bytes_is_refused(fresh_pki: PKI) -> None:
    pki = fresh_pki
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [
        x509.NameAttribute(NameOID.COMMON_NAME, "S" * 64),
        x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "CPO"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "O" * 64),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
    ]

    def csr(attributes: list[x509.NameAttribute]) -> bytes:
        request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes)).sign(key, hashes.SHA256())
        return request.public_bytes(serialization.Encoding.PEM)

    issued = pki.certificates.issue(profile="secc", csr=csr(subject), identity=RequestIdentity(secc_id="S" * 64))
    der = x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )
    assert len(der) <= 800
    # The policy rebuilds the subject from CN, O, C and DC; the public URL in AIA is what else grows.
    pki.settings.public_url = "https://" + "p" * 400 + ".example"
    with pytest.raises(PolicyViolation, match=r"iso15118\.certificate-size"):
        pki.certificates.issue(profile="secc", csr=csr(subject), identity=RequestIdentity(secc_id="S" * 64))


def test_a_certificate_with_an_invalid_version_is_refused_not_raised(pki: PKI) -> None:
    """cryptography raises InvalidVersion (not a ValueError) for version 7; found by the bit-flip fuzz."""
    car = make_car(pki)
    der = car.certificate.public_bytes(serialization.Encoding.DER)
    assert der[8:13] == b"\xa0\x03\x02\x01\x02"  # tbsCertificate starts with [0] EXPLICIT Version v3
    broken = der[:12] + b"\x06" + der[13:]
    message = decode_message(ev.installation_request(car.certificate, car.key, v2g_roots(pki), b"\x01"))
    damaged = replace(message, body=replace(message.body, oem_provisioning_cert=broken))
    result = _ask(pki, encode_message(damaged))
    assert result.response_code is ResponseCode.FAILED_CERT_CHAIN_ERROR
