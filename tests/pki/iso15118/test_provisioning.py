"""Contract provisioning through the service: every outcome's OCPP status and ISO ResponseCode,
and that a refusal stores nothing.

The car here is :mod:`pki.iso15118.ev`; the independent car (EXIficient + cryptography only)
checks the same service in ``tests/interop/test_provisioning_exificient.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pki import PKI
from pki.core.clock import FixedClock
from pki.core.errors import VerificationFailed
from pki.iso15118 import ev
from pki.iso15118.exi import decode_message, encode_message
from pki.iso15118.messages import CertificateInstallationRes, CertificateUpdateRes, ResponseCode
from pki.store.repository import CertificateFilter
from tests.pki.iso15118.vehicles import Car, foreign_certificate, make_car, mo_roots, new_emaid, new_pcid, v2g_roots

ISO2 = "urn:iso:15118:2:2013:MsgDef"


def install(pki: PKI, car: Car, *, session_id: bytes = b"\x01\x02\x03\x04\x05\x06\x07\x08", **kwargs: object):  # type: ignore[no-untyped-def]
    exi = ev.installation_request(car.certificate, car.key, v2g_roots(pki), session_id)
    return pki.contracts.provision(
        iso15118_schema_version=ISO2,
        action="Install",
        exi_request=base64.b64encode(exi).decode(),
        **kwargs,  # type: ignore[arg-type]
    )


def opened(pki: PKI, result, own_key: ec.EllipticCurvePrivateKey, session_id: bytes) -> ev.InstalledContract:  # type: ignore[no-untyped-def]
    return ev.open_response(
        base64.b64decode(result.exi_response),
        own_key,
        v2g_roots=v2g_roots(pki),
        mo_roots=mo_roots(pki),
        session_id=session_id,
        now=pki.clock.now(),
    )


def response_code(result) -> ResponseCode:  # type: ignore[no-untyped-def]
    body = decode_message(base64.b64decode(result.exi_response)).body
    assert isinstance(body, CertificateInstallationRes | CertificateUpdateRes)
    return body.response_code


def contract_count(pki: PKI) -> int:
    return len(pki.certificates.list(CertificateFilter(profile="contract", limit=100000)))


# -- success ---------------------------------------------------------------------------------------


def test_install_issues_a_contract_certificate_the_car_can_use(pki: PKI) -> None:
    car = make_car(pki)
    emaid = new_emaid()
    pki.contracts.add(emaid=emaid, pcid=car.pcid)
    session_id = b"\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11"
    result = install(pki, car, session_id=session_id)
    assert result.status == "Accepted" and result.response_code is ResponseCode.OK
    assert result.to_ocpp() == {"status": "Accepted", "exiResponse": result.exi_response}
    assert len(result.exi_response) <= 5600  # OCPP 2.0.1 with the default hierarchy
    contract = opened(pki, result, car.key, session_id)
    assert contract.emaid == emaid
    assert contract.certificate.subject.rfc4514_string() == f"DC=MO,CN={emaid}"
    assert [c.subject for c in contract.sub_certificates] == [c.subject for c in pki.cas.chain("mo-sub2")[:-1]]
    view = pki.certificates.get(format(contract.certificate.serial_number, "X"), "mo-sub2")
    assert view.profile == "contract" and view.identity == emaid and view.status == "valid"
    current = pki.contracts.get(emaid).current_certificate
    assert current is not None and current.serial == view.serial and current.issuer_id == "mo-sub2"


def test_update_replaces_the_contract_certificate_and_encrypts_for_the_old_key(pki: PKI) -> None:
    car = make_car(pki)
    emaid = new_emaid()
    pki.contracts.add(emaid=emaid, pcid=car.pcid)
    first = opened(pki, install(pki, car), car.key, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    session_id = b"\x42"
    exi = ev.update_request(first, v2g_roots(pki), session_id)
    result = pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Update", exi_request=base64.b64encode(exi).decode()
    )
    assert result.status == "Accepted" and result.response_code is ResponseCode.OK
    assert isinstance(decode_message(base64.b64decode(result.exi_response)).body, CertificateUpdateRes)
    second = opened(pki, result, first.private_key, session_id)  # decrypts with the OLD contract key
    assert second.emaid == emaid and second.certificate.serial_number != first.certificate.serial_number
    old = pki.certificates.get(format(first.certificate.serial_number, "X"), "mo-sub2")
    assert old.superseded_by == format(second.certificate.serial_number, "X")
    with pytest.raises(VerificationFailed):  # the OEM key cannot open an update response
        opened(pki, result, car.key, session_id)


def test_ocpp_21_allows_a_larger_response(pki: PKI) -> None:
    car = make_car(pki)
    pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
    assert install(pki, car, ocpp_version="2.1").status == "Accepted"


# -- refusals answered in EXI (Accepted + FAILED_*) ----------------------------------------------


def test_a_vehicle_without_contract_gets_no_certificate_available(pki: PKI) -> None:
    car = make_car(pki)
    before = contract_count(pki)
    result = install(pki, car)
    assert result.status == "Accepted"
    assert result.response_code is ResponseCode.FAILED_NO_CERTIFICATE_AVAILABLE
    assert response_code(result) is ResponseCode.FAILED_NO_CERTIFICATE_AVAILABLE
    assert decode_message(base64.b64decode(result.exi_response)).header.session_id == bytes(range(1, 9))
    assert result.to_ocpp()["statusInfo"]["reasonCode"] == "NoContract"
    assert contract_count(pki) == before


def test_a_tampered_request_gets_signature_error(pki: PKI) -> None:
    car = make_car(pki)
    pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
    message = decode_message(ev.installation_request(car.certificate, car.key, v2g_roots(pki), b"\x01"))
    other = make_car(pki)  # swap in another car's certificate: the signature no longer fits
    forged = replace(
        message,
        body=replace(message.body, oem_provisioning_cert=other.certificate.public_bytes(serialization.Encoding.DER)),
    )
    before = contract_count(pki)
    result = pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Install", exi_request=base64.b64encode(encode_message(forged)).decode()
    )
    assert result.response_code is ResponseCode.FAILED_SIGNATURE_ERROR
    assert contract_count(pki) == before


def test_an_unsigned_request_gets_signature_error(pki: PKI) -> None:
    car = make_car(pki)
    message = decode_message(ev.installation_request(car.certificate, car.key, v2g_roots(pki), b"\x01"))
    unsigned = replace(message, header=replace(message.header, signature=None))
    result = pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Install", exi_request=base64.b64encode(encode_message(unsigned)).decode()
    )
    assert result.response_code is ResponseCode.FAILED_SIGNATURE_ERROR


def test_a_foreign_oem_gets_cert_chain_error(pki: PKI) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    result = install(pki, Car("x", foreign_certificate(new_pcid(), key), key))
    assert result.response_code is ResponseCode.FAILED_CERT_CHAIN_ERROR


def test_a_revoked_oem_certificate_gets_certificate_revoked(fresh_pki: PKI) -> None:
    car = make_car(fresh_pki)
    fresh_pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
    fresh_pki.revocation.revoke(format(car.certificate.serial_number, "X"), "keyCompromise", ca_id="oem-sub2")
    assert install(fresh_pki, car).response_code is ResponseCode.FAILED_CERTIFICATE_REVOKED


def test_an_expired_oem_certificate_gets_certificate_expired(fresh_pki: PKI) -> None:
    car = make_car(fresh_pki)
    fresh_pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
    clock = fresh_pki.clock
    assert isinstance(clock, FixedClock)
    clock.advance(car.certificate.not_valid_after_utc - clock.now() + dt.timedelta(seconds=1))
    assert install(fresh_pki, car).response_code is ResponseCode.FAILED_CERTIFICATE_EXPIRED


def test_a_revoked_contract_gets_contract_canceled_on_update(pki: PKI) -> None:
    car = make_car(pki)
    emaid = new_emaid()
    pki.contracts.add(emaid=emaid, pcid=car.pcid)
    first = opened(pki, install(pki, car), car.key, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    exi = ev.update_request(first, v2g_roots(pki), b"\x01")
    pki.contracts.revoke(emaid)
    result = pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Update", exi_request=base64.b64encode(exi).decode()
    )
    # The contract's certificate was revoked with it, which the chain check meets first.
    assert result.response_code in (ResponseCode.FAILED_CONTRACT_CANCELED, ResponseCode.FAILED_CERTIFICATE_REVOKED)


def test_no_cps_chain_under_the_cars_roots_gets_no_certificate_available(pki: PKI) -> None:
    car = make_car(pki)
    pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
    exi = ev.installation_request(car.certificate, car.key, pki.cas.roots("CSMSRootCertificate"), b"\x01")
    result = pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Install", exi_request=base64.b64encode(exi).decode()
    )
    assert result.response_code is ResponseCode.FAILED_NO_CERTIFICATE_AVAILABLE
    assert result.reason_code == "NoCpsChain"


# -- requests that cannot be answered in EXI (Failed, exiResponse "") ----------------------------


@pytest.mark.parametrize(
    ("schema", "action", "exi", "reason_code"),
    [
        (ISO2, "Install", "not base64!", "InvalidExi"),
        (ISO2, "Install", base64.b64encode(b"\x80\x98\x02\xff").decode(), "InvalidExi"),
        (
            ISO2,
            "Install",
            base64.b64encode(bytes.fromhex("809802000000000000000011d0184b88f8434d2000")).decode(),
            "InvalidExi",
        ),
        (ISO2, "Reinstall", "gJg=", "InvalidAction"),
        # An ISO 15118-2 stream under the -20 name: the -20 path cannot read it.
        ("urn:iso:std:iso:15118:-20:CommonMessages", "Install", "gJg=", "InvalidExi"),
        ("urn:din:70121:2012:MsgDef", "Install", base64.b64encode(b"\x80\x9a").decode(), "UnsupportedSchema"),
        (ISO2, "Install", "A" * 5604, "TooLarge"),
    ],
)
def test_unanswerable_requests_fail_with_an_empty_exi_response(
    pki: PKI, schema: str, action: str, exi: str, reason_code: str
) -> None:
    result = pki.contracts.provision(iso15118_schema_version=schema, action=action, exi_request=exi)
    assert (result.status, result.exi_response, result.response_code) == ("Failed", "", None)
    assert result.reason_code == reason_code and result.reason
    assert result.to_ocpp()["statusInfo"]["reasonCode"] == reason_code


def test_the_body_must_match_the_action(pki: PKI) -> None:
    car = make_car(pki)
    exi = ev.installation_request(car.certificate, car.key, v2g_roots(pki), b"\x01")
    result = pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Update", exi_request=base64.b64encode(exi).decode()
    )
    assert (result.status, result.reason_code) == ("Failed", "ActionMismatch")


def test_a_response_over_the_limit_fails_and_stores_nothing(pki: PKI) -> None:
    car = make_car(pki)
    emaid = new_emaid()
    pki.contracts.add(emaid=emaid, pcid=car.pcid)
    before = contract_count(pki)
    result = install(pki, car, max_response_chars=3000)
    assert (result.status, result.exi_response, result.reason_code) == ("Failed", "", "TooLarge")
    assert "over the limit of 3000" in (result.reason or "")
    assert contract_count(pki) == before
    assert pki.contracts.get(emaid).current_certificate is None
