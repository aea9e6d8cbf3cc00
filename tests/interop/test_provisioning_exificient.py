"""The provisioning service against an independent car: EXIficient for every EXI byte, ``cryptography``
for every signature, key agreement and chain (tests/interop/car.py shares no code with pki/).

Every response the service produces must decode with EXIficient, its CPS signature must verify
over digests EXIficient computes, the chains must validate, and the decrypted key must match.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from pki import PKI
from pki.iso15118.exi import encode_fragment
from tests.interop import car
from tests.interop.exificient import Exificient, element_from_json
from tests.pki.iso15118.vehicles import Car, make_car, new_emaid

pytestmark = pytest.mark.interop

ISO2 = "urn:iso:15118:2:2013:MsgDef"


def _root_ids(pki: PKI) -> list[tuple[str, int]]:
    return [(root.issuer.rfc4514_string(), root.serial_number) for root in pki.cas.roots("V2GRootCertificate")]


def _der(certificate) -> bytes:  # type: ignore[no-untyped-def]
    return certificate.public_bytes(serialization.Encoding.DER)


def _install_request(exificient: Exificient, pki: PKI, vehicle: Car, session: bytes) -> bytes:
    return car.build_installation_request(exificient, _der(vehicle.certificate), vehicle.key, _root_ids(pki), session)


def _ask(pki: PKI, action: str, exi: bytes, ocpp_version: str = "2.0.1") -> bytes:
    result = pki.contracts.provision(
        iso15118_schema_version=ISO2,
        action=action,
        exi_request=base64.b64encode(exi).decode(),
        ocpp_version=ocpp_version,
    )
    assert result.status == "Accepted", result.reason
    return base64.b64decode(result.exi_response)


@pytest.mark.parametrize("ocpp_version", ["2.0.1", "2.1"])
def test_an_independent_car_installs_and_then_updates_its_contract(
    pki: PKI, exificient: Exificient, ocpp_version: str
) -> None:
    vehicle = make_car(pki)
    emaid = new_emaid()
    pki.contracts.add(emaid=emaid, pcid=vehicle.pcid)
    v2g_root = pki.cas.roots("V2GRootCertificate")
    mo_root = [pki.cas.chain("mo-sub2")[-1]]

    session = bytes.fromhex("DEADBEEF00112233")
    request = car.build_installation_request(
        exificient, _der(vehicle.certificate), vehicle.key, _root_ids(pki), session
    )
    response = _ask(pki, "Install", request, ocpp_version)
    installed = car.open_response(
        exificient,
        response,
        vehicle.key,
        session,
        sa_roots=v2g_root,
        contract_roots=mo_root,
        expected_body="CertificateInstallationRes",
    )
    assert installed.emaid == emaid
    assert exificient.encode(exificient.decode(response)) == response  # the jar re-encodes it byte for byte

    chain = [installed.contract_certificate, *installed.contract_sub_certificates]
    update = car.build_update_request(
        exificient,
        [_der(c) for c in chain],
        installed.contract_private_key,
        emaid,
        _root_ids(pki),
        b"\x07",
        fragment_encoder=lambda fragment: encode_fragment(element_from_json(dict(fragment))),
    )
    renewed = car.open_response(
        exificient,
        _ask(pki, "Update", update, ocpp_version),
        installed.contract_private_key,
        b"\x07",
        sa_roots=v2g_root,
        contract_roots=mo_root,
        expected_body="CertificateUpdateRes",
    )
    assert renewed.emaid == emaid
    assert renewed.contract_certificate.serial_number != installed.contract_certificate.serial_number


def test_a_refusal_decodes_with_exificient_and_names_the_iso_code(pki: PKI, exificient: Exificient) -> None:
    vehicle = make_car(pki)  # no contract for this PCID
    request = car.build_installation_request(
        exificient, _der(vehicle.certificate), vehicle.key, _root_ids(pki), b"\x01"
    )
    response = _ask(pki, "Install", request)
    with pytest.raises(car.CarRejects) as rejected:
        car.open_response(exificient, response, vehicle.key, b"\x01", sa_roots=pki.cas.roots("V2GRootCertificate"))
    assert rejected.value.response_code == "FAILED_NoCertificateAvailable"
    body = exificient.decode(response)["V2G_Message"]["Body"]["CertificateInstallationRes"]
    assert body["ResponseCode"] == "FAILED_NoCertificateAvailable"
