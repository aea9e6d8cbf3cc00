"""Our ISO 15118-20 EXI codec (``pki.iso15118.exi20``) against EXIficient's -20 grammar, a codec we did not write.

EXIficient runs on the session's one JVM (the ``exificient`` fixture the -2 tests use), driven
with XML through :mod:`tests.interop.exificient20`: for random valid messages, fragments and
SignedInfos our encoder must produce EXIficient's bytes exactly and each side must decode the
other's output to the same value. EXIficient decodes -20 fragments too (its fragment mode), so
unlike for -2 no "fragment bits = document bits" detour is needed.

Also checked here: that the options of that oracle are the ones Josev's JSON front end uses (what
a real -20 peer sends), the edge cases of the schema (largest sizes, every choice, optional
elements absent and present), and — with ``cryptography`` only — that signatures made over
EXIficient's fragment and SignedInfo bytes verify over the bytes our codec computes.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from hypothesis import HealthCheck, given, settings

from pki.iso15118 import exi20
from pki.iso15118.messages20 import (
    C14N_EXI,
    ECDSA_SHA512,
    EDDSA_ED448,
    SHA512,
    CertificateChain,
    CertificateInstallationReq,
    CertificateInstallationRes,
    ContractCertificateChain,
    EncryptedKeyType,
    MessageHeader,
    Reference,
    RootCertificateId,
    Signature,
    SignedCertificateChain,
    SignedInfo,
    SignedInstallationData,
)
from tests.interop.exificient import Exificient
from tests.interop.exificient20 import CM, CT, Exificient20, message_to_xml
from tests.pki.iso15118 import samples20

pytestmark = pytest.mark.interop

NS20 = CM
SLOW_ORACLE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
FEW = settings(SLOW_ORACLE, max_examples=15)
Message = CertificateInstallationReq | CertificateInstallationRes


@pytest.fixture(scope="module")
def oracle(exificient: Exificient) -> Exificient20:
    return Exificient20(exificient)


def _differ(what: str, ours: bytes, theirs: bytes) -> str:
    return f"{what}: our codec and EXIficient disagree\n ours   {ours.hex()}\n theirs {theirs.hex()}"


def _check_message(oracle: Exificient20, message: Message) -> bytes:
    ours = exi20.encode_message(message)
    theirs = oracle.encode_message(message)
    assert ours == theirs, _differ(repr(message)[:300], ours, theirs)
    assert exi20.decode_message(theirs) == message
    assert oracle.decode_message(ours) == message
    return ours


# -- the oracle's options are a real peer's ---------------------------------------------------------


def test_the_oracle_encodes_like_the_jars_json_codec(exificient: Exificient, oracle: Exificient20) -> None:
    """Josev's -20 path (JSON → EXICodec) gives our bytes; a strict grammar would not (so: non-strict)."""
    for message in (samples20.install_req(), samples20.install_res()):
        ours = _check_message(oracle, message)
        assert ours[0] == 0x80  # no options in the header, no cookie
        json_text = exificient.codec.decode(ours, NS20)
        assert json_text is not None, exificient.codec.get_last_decoding_error()
        assert type(message).__name__ in json.loads(str(json_text))  # the message element is the JSON root
        assert bytes(exificient.codec.encode(json_text, NS20)) == ours
        assert oracle.encode_xml(message_to_xml(message), "strict") != ours


# -- random valid values ------------------------------------------------------------------------------


@SLOW_ORACLE
@given(samples20.messages)
def test_documents_are_byte_identical_and_cross_decode(oracle: Exificient20, message: Message) -> None:
    _check_message(oracle, message)


@FEW
@given(samples20.oem_chains | samples20.installation_datas)
def test_signed_fragments_are_byte_identical_and_cross_decode(
    oracle: Exificient20, element: SignedCertificateChain | SignedInstallationData
) -> None:
    ours = exi20.encode_fragment(element)
    theirs = oracle.encode_fragment(element)
    assert ours == theirs, _differ(repr(element)[:300], ours, theirs)
    assert exi20.decode_fragment(theirs) == element
    assert oracle.decode_fragment(ours) == element


@FEW
@given(samples20.signed_infos)
def test_signed_info_is_byte_identical_and_cross_decodes(oracle: Exificient20, signed_info: SignedInfo) -> None:
    ours = exi20.encode_signed_info(signed_info)
    theirs = oracle.encode_signed_info(signed_info)
    assert ours == theirs, _differ(repr(signed_info)[:300], ours, theirs)
    assert exi20.decode_signed_info(theirs) == signed_info
    assert oracle.decode_signed_info(ours) == signed_info


# -- edge cases -----------------------------------------------------------------------------------------

_MAX_CERT = bytes(range(256)) * 6 + bytes(64)  # 1600 bytes


def _edge_cases() -> dict[str, Message]:
    full_chain = (_MAX_CERT, (_MAX_CERT,) * 3)
    return {
        "largest request": CertificateInstallationReq(
            header=samples20.header(signed=True, timestamp=2**64 - 1),
            oem_provisioning_certificate_chain=SignedCertificateChain("id1", *full_chain),
            root_certificate_ids=tuple(RootCertificateId("CN=Root ☃ " + "x" * 100, -(2**159) + i) for i in range(20)),
            maximum_contract_certificate_chains=255,
            prioritized_emaids=tuple(chr(0x41 + i) * 255 for i in range(8)),
        ),
        "largest response": samples20.install_res(
            cps_certificate_chain=CertificateChain(*full_chain),
            signed_installation_data=samples20.installation_data(
                EncryptedKeyType.TPM, contract_certificate_chain=ContractCertificateChain(*full_chain)
            ),
            remaining_contract_certificate_chains=255,
        ),
        "smallest request": CertificateInstallationReq(
            header=MessageHeader(bytes(8), 0),
            oem_provisioning_certificate_chain=SignedCertificateChain("A", b"\x30"),
            root_certificate_ids=(RootCertificateId("", 0),),
            maximum_contract_certificate_chains=0,
        ),
        "empty certificate and EMAID": samples20.install_req(
            oem_provisioning_certificate_chain=SignedCertificateChain("A", b""), prioritized_emaids=("",)
        ),
        "one of each repetition": samples20.install_req(
            root_certificate_ids=(RootCertificateId("CN=R", 1),), prioritized_emaids=("DE*ABC*C123456*7",)
        ),
        "CPS chain without SubCertificates": samples20.install_res(cps_certificate_chain=CertificateChain(b"\x30")),
        "unsigned response": samples20.install_res(header=MessageHeader(b"\xff" * 8, 2**63)),
        "Ed448-signed response": samples20.install_res(
            header=MessageHeader(bytes(8), 1, Signature(samples20.signed_info("#id2", ed448=True), bytes(114)))
        ),
        **{
            f"{key_type.value}": samples20.install_res(signed_installation_data=samples20.installation_data(key_type))
            for key_type in EncryptedKeyType
        },
    }


@pytest.mark.parametrize("name", list(_edge_cases()))
def test_edge_cases(oracle: Exificient20, name: str) -> None:
    _check_message(oracle, _edge_cases()[name])


def test_other_messages_are_unsupported_and_keep_the_session_id(oracle: Exificient20) -> None:
    header = (
        f'<ct:Header xmlns:ct="{CT}"><ct:SessionID>0102030405060708</ct:SessionID>'
        "<ct:TimeStamp>9</ct:TimeStamp></ct:Header>"
    )
    for name, body in (("SessionSetupReq", "<m:EVCCID>WMIV1234567890ABCDEX</m:EVCCID>"), ("AuthorizationSetupReq", "")):
        stream = oracle.encode_xml(f'<m:{name} xmlns:m="{CM}">{header}{body}</m:{name}>')
        with pytest.raises(exi20.UnsupportedMessage, match=f"unsupported ISO 15118-20 message {name}") as info:
            exi20.decode_message(stream)
        assert info.value.session_id == bytes.fromhex("0102030405060708")


# -- signatures over EXIficient's bytes verify over ours (cryptography only) -------------------------


def _p521_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA512())))
    return r.to_bytes(66, "big") + s.to_bytes(66, "big")


def _p521_verify(key: ec.EllipticCurvePublicKey, raw: bytes, data: bytes) -> None:
    signature = encode_dss_signature(int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big"))
    key.verify(signature, data, ec.ECDSA(hashes.SHA512()))


def test_cps_signature_over_exificient_bytes_verifies_over_ours(oracle: Exificient20) -> None:
    """The CPS side ([V2G20] SignedInstallationData, P-521/ecdsa-sha512): EXIficient signs, our codec checks."""
    key = ec.generate_private_key(ec.SECP521R1())
    data = samples20.installation_data()
    digest = hashlib.sha512(oracle.encode_fragment(data)).digest()
    signed_info = SignedInfo(C14N_EXI, ECDSA_SHA512, (Reference(f"#{data.id}", SHA512, digest, (C14N_EXI,)),))
    signature = Signature(signed_info, _p521_sign(key, oracle.encode_signed_info(signed_info)))
    response = samples20.install_res(
        header=MessageHeader(b"\x42" * 8, 1_767_225_600, signature), signed_installation_data=data
    )
    decoded = exi20.decode_message(oracle.encode_message(response))
    assert isinstance(decoded, CertificateInstallationRes) and decoded.header.signature is not None
    (reference,) = decoded.header.signature.signed_info.references
    assert hashlib.sha512(exi20.encode_fragment(decoded.signed_installation_data)).digest() == reference.digest_value
    _p521_verify(
        key.public_key(),
        decoded.header.signature.signature_value,
        exi20.encode_signed_info(decoded.header.signature.signed_info),
    )


def test_ev_signature_over_exificient_bytes_verifies_over_ours(oracle: Exificient20) -> None:
    """The EV side (OEMProvisioningCertificateChain, Ed448): EXIficient signs, our codec checks."""
    key = ed448.Ed448PrivateKey.generate()
    chain = SignedCertificateChain("id1", b"\x30\x82oem", (b"\x30\x82sub", b"\x30\x82sub2"))
    digest = hashlib.sha512(oracle.encode_fragment(chain)).digest()
    signed_info = SignedInfo(C14N_EXI, EDDSA_ED448, (Reference("#id1", SHA512, digest, (C14N_EXI,)),))
    signature = Signature(signed_info, key.sign(oracle.encode_signed_info(signed_info)))
    request = samples20.install_req(
        header=MessageHeader(bytes(8), 5, signature), oem_provisioning_certificate_chain=chain
    )
    decoded = exi20.decode_message(oracle.encode_message(request))
    assert isinstance(decoded, CertificateInstallationReq) and decoded.header.signature is not None
    (reference,) = decoded.header.signature.signed_info.references
    assert (
        hashlib.sha512(exi20.encode_fragment(decoded.oem_provisioning_certificate_chain)).digest()
        == reference.digest_value
    )
    key.public_key().verify(
        decoded.header.signature.signature_value, exi20.encode_signed_info(decoded.header.signature.signed_info)
    )
