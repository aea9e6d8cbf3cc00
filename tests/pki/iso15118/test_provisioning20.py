"""ISO 15118-20 contract provisioning without a JVM: outcomes, ResponseCodes, several contracts, the key wrap's KAT.

The requests here are built with our own -20 codec and signing (fast); the independent car plays in
``tests/interop/test_provisioning20_exificient.py``.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pki import PKI
from pki.ca import CertificateFilter
from pki.iso15118 import exi20
from pki.iso15118.keywrap20 import WrappedContractKey, decrypt_contract_key, encrypt_contract_key
from pki.iso15118.messages import RootCertificateId
from pki.iso15118.messages20 import (
    CertificateInstallationReq,
    CertificateInstallationRes,
    ECDHCurve,
    MessageHeader,
    ResponseCode,
    SignedCertificateChain,
)
from pki.iso15118.signing20 import sign_fragment, verify_fragment
from tests.pki.iso15118.vehicles import foreign_certificate
from tests.pki.iso15118.vehicles20 import Car20, make_car20, new_emaid20

ISO20 = "urn:iso:std:iso:15118:-20:CommonMessages"
SESSION = bytes(range(8))


def _sign(key: ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed448.Ed448PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(hashes.SHA512()))


def request20(
    pki: PKI, car: Car20, *, maximum: int = 1, emaids: tuple[str, ...] = (), roots: str = "v2g20-root"
) -> str:
    der = car.certificate.public_bytes(Encoding.DER)
    chain = SignedCertificateChain("c1", der, tuple(c.public_bytes(Encoding.DER) for c in car.sub_certificates))
    signature = sign_fragment(chain, lambda data: _sign(car.key, data), car.key.public_key())
    root = pki.cas.chain(roots)[-1]
    message = CertificateInstallationReq(
        header=MessageHeader(SESSION, 1_767_225_600, signature),
        oem_provisioning_certificate_chain=chain,
        root_certificate_ids=(RootCertificateId(root.issuer.rfc4514_string(), root.serial_number),),
        maximum_contract_certificate_chains=maximum,
        prioritized_emaids=emaids,
    )
    return base64.b64encode(exi20.encode_message(message)).decode()


def provision20(pki: PKI, exi: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return pki.contracts.provision(
        iso15118_schema_version=ISO20, action="Install", exi_request=exi, ocpp_version="2.1", **kwargs
    )  # type: ignore[arg-type]


def response(result) -> CertificateInstallationRes:  # type: ignore[no-untyped-def]
    decoded = exi20.decode_message(base64.b64decode(result.exi_response))
    assert isinstance(decoded, CertificateInstallationRes)
    return decoded


def _contracts(pki: PKI) -> int:
    return len(pki.certificates.list(CertificateFilter(profile="contract", limit=100000)))


@pytest.mark.parametrize("curve", ["p521", "ed448"])
def test_installs_a_contract_the_car_can_open(pki20: PKI, curve: str) -> None:
    car = make_car20(pki20, curve)
    emaid = new_emaid20()
    pki20.contracts.add(emaid=emaid, pcid=car.pcid)
    result = provision20(pki20, request20(pki20, car))
    assert (result.status, result.response_code, result.remaining_contracts) == ("Accepted", ResponseCode.OK, 0)
    assert result.to_ocpp()["remainingContracts"] == 0 and result.emaid == emaid
    res = response(result)
    assert res.header.session_id == SESSION and res.remaining_contract_certificate_chains == 0
    cps = pki20.cas.chain("cps20-sub2")
    cps_leaf = x509.load_der_x509_certificate(res.cps_certificate_chain.certificate)
    assert cps_leaf.issuer == cps[0].subject
    data = res.signed_installation_data
    verify_fragment(res.header.signature, data, cps_leaf.public_key(), what="CPS")
    contract = x509.load_der_x509_certificate(data.contract_certificate_chain.certificate)
    assert contract.issuer == pki20.cas.chain("mo20-sub2")[0].subject
    ski = contract.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    wrapped = WrappedContractKey(data.ecdh_curve, data.dh_public_key, data.encrypted_private_key.value)
    assert data.ecdh_curve is (ECDHCurve.SECP521 if curve == "p521" else ECDHCurve.X448)
    key = decrypt_contract_key(wrapped, car.agreement_key, pcid=car.pcid, ski=ski)
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert key.public_key().public_bytes(*spki) == contract.public_key().public_bytes(*spki)
    current = pki20.contracts.get(emaid).current_certificate
    assert current is not None and current.serial == result.contract_certificate_serial


def test_several_contracts_are_handed_out_one_per_request(pki20: PKI) -> None:
    car = make_car20(pki20)
    low, high, preferred = new_emaid20(), new_emaid20(), new_emaid20()
    pki20.contracts.add(emaid=low, pcid=car.pcid, priority=5)
    pki20.contracts.add(emaid=high, pcid=car.pcid, priority=1, concurrent=True)
    pki20.contracts.add(emaid=preferred, pcid=car.pcid, priority=9, concurrent=True)
    handed, remaining = [], []
    for maximum in (3, 2, 1):  # the car asks while some remain, with room for one fewer each time
        result = provision20(pki20, request20(pki20, car, maximum=maximum, emaids=(preferred,)))
        assert result.response_code is ResponseCode.OK, result.reason
        handed.append(result.emaid)
        remaining.append(result.remaining_contracts)
    assert handed == [preferred, high, low] and remaining == [2, 1, 0]
    # Asked again with every contract served: a fresh certificate for the first, none remaining.
    again = provision20(pki20, request20(pki20, car, maximum=3, emaids=(preferred,)))
    assert (again.emaid, again.remaining_contracts) == (preferred, 0)


def test_maximum_caps_the_remaining_count(pki20: PKI) -> None:
    car = make_car20(pki20)
    for n in range(3):
        pki20.contracts.add(emaid=new_emaid20(), pcid=car.pcid, concurrent=n > 0)
    assert provision20(pki20, request20(pki20, car, maximum=2)).remaining_contracts == 1
    refused = provision20(pki20, request20(pki20, car, maximum=0))
    assert refused.response_code is ResponseCode.WARNING_NO_CERTIFICATE_AVAILABLE


def test_refusals_answer_the_right_response_code(pki20: PKI) -> None:
    before = _contracts(pki20)
    unknown = make_car20(pki20)
    result = provision20(pki20, request20(pki20, unknown))
    assert (result.status, result.response_code) == ("Accepted", ResponseCode.WARNING_NO_CONTRACT_MATCHING_PCID_FOUND)
    res = response(result)
    assert (
        res.header.signature is None
        and res.remaining_contract_certificate_chains == 0
        and result.to_ocpp()["remainingContracts"] == 0
    )

    car = make_car20(pki20)
    pki20.contracts.add(emaid=new_emaid20(), pcid=car.pcid)
    forged = Car20(
        car.pcid, car.certificate, ec.generate_private_key(ec.SECP521R1()), car.agreement_key, car.sub_certificates
    )
    assert provision20(pki20, request20(pki20, forged)).response_code is ResponseCode.FAILED_SIGNATURE_ERROR
    assert (
        provision20(pki20, request20(pki20, car, roots="v2g-root")).response_code
        is ResponseCode.WARNING_NO_CERTIFICATE_AVAILABLE
    )

    key = ec.generate_private_key(ec.SECP521R1())
    stranger = Car20(car.pcid, foreign_certificate(car.pcid, key), key, key, ())
    result = provision20(pki20, request20(pki20, stranger))
    assert result.response_code is ResponseCode.WARNING_CERTIFICATE_VALIDATION_ERROR
    assert _contracts(pki20) == before


def test_unanswerable_requests_fail(pki20: PKI) -> None:
    car = make_car20(pki20)
    pki20.contracts.add(emaid=new_emaid20(), pcid=car.pcid)
    exi = request20(pki20, car)
    update = pki20.contracts.provision(
        iso15118_schema_version=ISO20, action="Update", exi_request=exi, ocpp_version="2.1"
    )
    assert (update.status, update.reason_code) == ("Failed", "InvalidAction")
    assert provision20(pki20, "not base64!").reason_code == "InvalidExi"
    assert provision20(pki20, base64.b64encode(b"\x80\x00").decode()).reason_code == "InvalidExi"
    before = _contracts(pki20)
    small = provision20(pki20, exi, max_response_chars=500)
    assert (small.status, small.reason_code) == ("Failed", "TooLarge") and _contracts(pki20) == before


@pytest.mark.parametrize("curve", ["p521", "x448"])
def test_key_wrap_known_answer(curve: str) -> None:
    """Fixed keys, IV, PCID and SKI: the ciphertext recomputed here from cryptography's primitives alone."""
    pcid, ski, iv = "WTW000000000000042", bytes.fromhex("4A1B2C3D4E5F6071"), bytes(range(12))
    if curve == "p521":
        contract: ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey = ec.derive_private_key(3**300, ec.SECP521R1())
        car_key = ec.derive_private_key(5**200, ec.SECP521R1())
        ephemeral: ec.EllipticCurvePrivateKey | x448.X448PrivateKey = ec.derive_private_key(7**150, ec.SECP521R1())
        peer = car_key.public_key()
        shared = ephemeral.exchange(ec.ECDH(), peer)  # type: ignore[arg-type, call-arg]
        plain = (3**300).to_bytes(66, "big")
        point = ephemeral.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    else:
        contract = ed448.Ed448PrivateKey.from_private_bytes(bytes([0x33] * 56) + b"\x00")
        car_key = x448.X448PrivateKey.from_private_bytes(bytes([0x11] * 56))  # type: ignore[assignment]
        ephemeral = x448.X448PrivateKey.from_private_bytes(bytes([0x22] * 56))
        peer = car_key.public_key()  # type: ignore[assignment]
        shared = ephemeral.exchange(peer)  # type: ignore[arg-type, call-arg]
        plain = bytes([0x33] * 56)
        point = ephemeral.public_key().public_bytes_raw()
    kdf_key = ConcatKDFHash(hashes.SHA512(), 32, otherinfo=b"\x01\x55\x56").derive(shared)
    assert kdf_key == hashlib.sha512(b"\x00\x00\x00\x01" + shared + b"\x01\x55\x56").digest()[:32]
    expected = iv + AESGCM(kdf_key).encrypt(iv, plain, b"WTW000000000000042" + b"4A1B2C3D4E5F6071")
    wrapped = encrypt_contract_key(contract, peer, pcid=pcid, ski=ski, ephemeral_key=ephemeral, iv=iv)
    assert (wrapped.dh_public_key, wrapped.encrypted_private_key) == (point, expected)
    assert len(expected) == (94 if curve == "p521" else 84)
    back = decrypt_contract_key(wrapped, car_key, pcid=pcid, ski=ski)  # type: ignore[arg-type]
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert back.public_key().public_bytes(*spki) == contract.public_key().public_bytes(*spki)
    with pytest.raises(Exception, match="does not authenticate"):
        decrypt_contract_key(wrapped, car_key, pcid="WTW000000000000043", ski=ski)  # type: ignore[arg-type]
