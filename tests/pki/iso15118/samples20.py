"""ISO 15118-20 certificate installation messages for the -20 codec tests: fixed samples and hypothesis strategies.

The strategies draw valid messages only (every schema facet respected), from the smallest to the
largest the schema allows; the unit tests round-trip them, the differential tests give them to
EXIficient as well.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from pki.iso15118.messages20 import (
    C14N_EXI,
    ECDSA_SHA512,
    EDDSA_ED448,
    SHA512,
    SHAKE256,
    CertificateChain,
    CertificateInstallationReq,
    CertificateInstallationRes,
    ContractCertificateChain,
    ECDHCurve,
    EncryptedKeyType,
    EncryptedPrivateKey,
    MessageHeader,
    Processing,
    Reference,
    ResponseCode,
    RootCertificateId,
    Signature,
    SignedCertificateChain,
    SignedInfo,
    SignedInstallationData,
)

KEY_SIZES = {EncryptedKeyType.SECP521: 94, EncryptedKeyType.X448: 84, EncryptedKeyType.TPM: 206}


def signed_info(uri: str = "#id1", *, ed448: bool = False) -> SignedInfo:
    digest = SHAKE256 if ed448 else SHA512
    return SignedInfo(
        C14N_EXI, EDDSA_ED448 if ed448 else ECDSA_SHA512, (Reference(uri, digest, bytes(range(64)), (C14N_EXI,)),)
    )


def header(*, signed: bool = False, session_id: bytes = b"\x0a" * 8, timestamp: int = 1_767_225_600) -> MessageHeader:
    signature = Signature(signed_info(), bytes(range(132))) if signed else None
    return MessageHeader(session_id, timestamp, signature)


def install_req(**changes: Any) -> CertificateInstallationReq:
    fields: dict[str, Any] = {
        "header": header(signed=True),
        "oem_provisioning_certificate_chain": SignedCertificateChain("id1", b"\x30\x82oem", (b"\x30\x82sub",)),
        "root_certificate_ids": (RootCertificateId("CN=V2G Root,O=Test,C=DE", 0x1234567890ABCDEF),),
        "maximum_contract_certificate_chains": 3,
        "prioritized_emaids": ("DEABCC123ABC56",),
    }
    return CertificateInstallationReq(**(fields | changes))


def installation_data(key_type: EncryptedKeyType = EncryptedKeyType.SECP521, **changes: Any) -> SignedInstallationData:
    fields: dict[str, Any] = {
        "id": "id2",
        "contract_certificate_chain": ContractCertificateChain(b"\x30\x82contract", (b"\x30\x82mo-sub",)),
        "ecdh_curve": ECDHCurve.X448 if key_type is EncryptedKeyType.X448 else ECDHCurve.SECP521,
        "dh_public_key": b"\x04" + bytes(range(132)),
        "encrypted_private_key": EncryptedPrivateKey(key_type, bytes(KEY_SIZES[key_type])),
    }
    return SignedInstallationData(**(fields | changes))


def install_res(**changes: Any) -> CertificateInstallationRes:
    fields: dict[str, Any] = {
        "header": MessageHeader(b"\x0a" * 8, 1_767_225_601, Signature(signed_info("#id2"), bytes(132))),
        "response_code": ResponseCode.OK,
        "evse_processing": Processing.FINISHED,
        "cps_certificate_chain": CertificateChain(b"\x30\x82cps", (b"\x30\x82cps-sub",)),
        "signed_installation_data": installation_data(),
        "remaining_contract_certificate_chains": 0,
    }
    return CertificateInstallationRes(**(fields | changes))


# -- strategies ---------------------------------------------------------------------------------------

NAME_START = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
ncnames = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(NAME_START),
    st.text(alphabet=NAME_START + "0123456789.-", max_size=12),
)
# XML characters only: no controls except tab/newline, no surrogates, no unassigned code points.
xml_text_chars = st.characters(blacklist_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n")
certificates = st.binary(min_size=1, max_size=64) | st.binary(min_size=1590, max_size=1600)
sub_certificates = st.lists(certificates, min_size=1, max_size=3).map(tuple)
uris = st.sampled_from([C14N_EXI, SHA512, ECDSA_SHA512, EDDSA_ED448, SHAKE256, "urn:x"])
serials = st.integers(min_value=-(2**160), max_value=2**160) | st.sampled_from([0, 1, -1, 2**159])
root_ids = st.lists(
    st.builds(RootCertificateId, issuer_name=st.text(xml_text_chars, max_size=40), serial_number=serials),
    min_size=1,
    max_size=20,
).map(tuple)
emaids = st.lists(
    st.text(xml_text_chars, min_size=1, max_size=20) | st.text("A", min_size=255, max_size=255), min_size=0, max_size=8
).map(tuple)
references = st.builds(
    Reference,
    uri=st.none() | ncnames.map(lambda n: f"#{n}"),
    digest_method=uris,
    digest_value=st.binary(min_size=1, max_size=64),
    transforms=st.lists(uris, max_size=2).map(tuple),
    id=st.none() | ncnames,
    type=st.none() | uris,
)
signed_infos = st.builds(
    SignedInfo,
    canonicalization_method=uris,
    signature_method=uris,
    references=st.lists(references, min_size=1, max_size=3).map(tuple),
    id=st.none() | ncnames,
)
signatures = st.builds(
    Signature,
    signed_info=signed_infos,
    # raw r‖s of ECDSA P-521 (132 bytes) or an Ed448 signature (114 bytes)
    signature_value=st.sampled_from([bytes(132), bytes(range(114))]) | st.binary(min_size=1, max_size=140),
    id=st.none() | ncnames,
    signature_value_id=st.none() | ncnames,
)
headers = st.builds(
    MessageHeader,
    session_id=st.binary(min_size=8, max_size=8),
    timestamp=st.integers(min_value=0, max_value=2**64 - 1) | st.sampled_from([0, 2**64 - 1]),
    signature=st.none() | signatures,
)
unsigned_bytes = st.integers(min_value=0, max_value=255)
oem_chains = st.builds(
    SignedCertificateChain, id=ncnames, certificate=certificates, sub_certificates=st.just(()) | sub_certificates
)
installation_reqs = st.builds(
    CertificateInstallationReq,
    header=headers,
    oem_provisioning_certificate_chain=oem_chains,
    root_certificate_ids=root_ids,
    maximum_contract_certificate_chains=unsigned_bytes,
    prioritized_emaids=emaids,
)
encrypted_keys = st.sampled_from(list(EncryptedKeyType)).flatmap(
    lambda key_type: st.builds(
        EncryptedPrivateKey,
        key_type=st.just(key_type),
        value=st.binary(min_size=KEY_SIZES[key_type], max_size=KEY_SIZES[key_type]),
    )
)
installation_datas = st.builds(
    SignedInstallationData,
    id=ncnames,
    contract_certificate_chain=st.builds(
        ContractCertificateChain, certificate=certificates, sub_certificates=sub_certificates
    ),
    ecdh_curve=st.sampled_from(ECDHCurve),
    dh_public_key=st.binary(min_size=133, max_size=133),
    encrypted_private_key=encrypted_keys,
)
installation_ress = st.builds(
    CertificateInstallationRes,
    header=headers,
    response_code=st.sampled_from(ResponseCode),
    evse_processing=st.sampled_from(Processing),
    cps_certificate_chain=st.builds(
        CertificateChain, certificate=certificates, sub_certificates=st.just(()) | sub_certificates
    ),
    signed_installation_data=installation_datas,
    remaining_contract_certificate_chains=unsigned_bytes,
)
messages = installation_reqs | installation_ress
