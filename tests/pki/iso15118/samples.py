"""Deterministic ISO 15118-2 sample messages shared by the EXI tests (and used to make vectors.json)."""

from __future__ import annotations

import hashlib

from pki.iso15118.messages import (
    EMAID,
    CertificateChain,
    CertificateInstallationReq,
    CertificateInstallationRes,
    CertificateUpdateReq,
    CertificateUpdateRes,
    ContractSignatureEncryptedPrivateKey,
    DHPublicKey,
    FaultCode,
    Header,
    Notification,
    Reference,
    ResponseCode,
    RootCertificateId,
    Signature,
    SignedInfo,
    V2GMessage,
)

C14N = "http://www.w3.org/TR/canonical-exi/"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def blob(seed: str, n: int) -> bytes:
    """``n`` pseudo-random bytes derived from ``seed`` (stand-ins for DER certificates)."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


def signature(*ids: str) -> Signature:
    refs = tuple(Reference(f"#{i}", SHA256, blob(f"digest-{i}", 32), (C14N,)) for i in ids)
    return Signature(SignedInfo(C14N, ECDSA_SHA256, refs), blob("sig-" + "".join(ids), 64))


ROOTS = (
    RootCertificateId("CN=V2G Root CA QA G1,O=Hubject GmbH,C=DE,DC=V2G", 0x5A3B1C7D9E0F11223344556677889900),
    RootCertificateId("CN=V2GRootCA,O=Switch,C=UK,DC=V2G", 12345),
)


def install_req() -> V2GMessage:
    body = CertificateInstallationReq(id="ID1", oem_provisioning_cert=blob("oem", 520), root_certificate_ids=ROOTS)
    return V2GMessage(Header(bytes.fromhex("69FC09895168C8B2"), signature=signature("ID1")), body)


def sa_chain() -> CertificateChain:
    return CertificateChain(blob("cps-leaf", 560), (blob("cps-sub2", 610), blob("cps-sub1", 600)))


def contract_chain() -> CertificateChain:
    return CertificateChain(blob("contract", 590), (blob("mo-sub2", 620), blob("mo-sub1", 615)), id="ID1")


def install_res() -> V2GMessage:
    body = CertificateInstallationRes(
        response_code=ResponseCode.OK,
        sa_provisioning_certificate_chain=sa_chain(),
        contract_signature_cert_chain=contract_chain(),
        contract_signature_encrypted_private_key=ContractSignatureEncryptedPrivateKey("ID2", blob("key", 48)),
        dh_public_key=DHPublicKey("ID3", b"\x04" + blob("dh", 64)),
        emaid=EMAID("ID4", "EMP99CQAPAB004"),
    )
    return V2GMessage(Header(bytes.fromhex("69FC09895168C8B2"), signature=signature("ID2", "ID1", "ID4", "ID3")), body)


def update_req() -> V2GMessage:
    body = CertificateUpdateReq(
        id="req1",
        contract_signature_cert_chain=CertificateChain(blob("old-contract", 480), (blob("mo-sub2", 620),)),
        emaid="DEABCC123ABC567",
        root_certificate_ids=ROOTS[:1],
    )
    return V2GMessage(Header(b"\x01\x02\x03", signature=signature("req1")), body)


def update_res() -> V2GMessage:
    body = CertificateUpdateRes(
        response_code=ResponseCode.FAILED_CERT_CHAIN_ERROR,
        sa_provisioning_certificate_chain=CertificateChain(blob("cps-leaf", 40)),
        contract_signature_cert_chain=CertificateChain(blob("contract", 30), id="id1"),
        contract_signature_encrypted_private_key=ContractSignatureEncryptedPrivateKey("id2", b"\x00"),
        dh_public_key=DHPublicKey("id3", b"\x04"),
        emaid=EMAID("id4", "DEABCC123ABC56"),
        retry_counter=-5,
    )
    header = Header(b"", notification=Notification(FaultCode.UNKNOWN_ERROR, "Grüße ✓ 𝄞 msg"))
    return V2GMessage(header, body)


def edge_res() -> V2GMessage:
    """Optional attributes everywhere, empty binary values, a 4-certificate SubCertificates, no Transforms."""
    refs = (
        Reference(None, SHA256, b"", id="r0", type="urn:x"),
        Reference("#a", SHA256, blob("d", 32), (C14N, C14N)),
    )
    sig = Signature(SignedInfo(C14N, ECDSA_SHA256, refs, id="si"), b"", id="sig", signature_value_id="sv")
    body = CertificateInstallationRes(
        response_code=ResponseCode.FAILED_CERTIFICATE_REVOKED,
        sa_provisioning_certificate_chain=CertificateChain(b"", (b"", blob("s", 3), b"x" * 800, b"")),
        contract_signature_cert_chain=CertificateChain(blob("c", 800), id="a"),
        contract_signature_encrypted_private_key=ContractSignatureEncryptedPrivateKey("b", b""),
        dh_public_key=DHPublicKey("c", b""),
        emaid=EMAID("d", "ABCDEFGHIJKLMNO"),
    )
    return V2GMessage(Header(bytes(8), notification=Notification(FaultCode.PARSING_ERROR, ""), signature=sig), body)


def edge_req() -> V2GMessage:
    """Negative and 200-bit serial numbers, an empty issuer name, an empty SignatureValue without Id."""
    req = install_req()
    assert req.header.signature is not None
    sig = Signature(req.header.signature.signed_info, b"")
    body = CertificateInstallationReq(
        id="ID1",
        oem_provisioning_cert=blob("oem", 520),
        root_certificate_ids=(RootCertificateId("", -1), RootCertificateId("x", -(2**200))),
    )
    return V2GMessage(Header(req.header.session_id, signature=sig), body)


# -- hypothesis strategies for whole messages and fragments ------------------------------------------

from hypothesis import strategies as st  # noqa: E402

ids = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
certs = st.binary(max_size=40) | st.binary(min_size=790, max_size=800)
chains = st.builds(CertificateChain, certs, st.lists(certs, max_size=4).map(tuple), st.none() | ids)
id_chains = st.builds(CertificateChain, certs, st.lists(certs, max_size=4).map(tuple), ids)
root_ids = st.lists(
    st.builds(RootCertificateId, texts, st.integers(min_value=-(2**300), max_value=2**300)), min_size=1, max_size=20
).map(tuple)
emaid_values = st.from_regex(r"[A-Z0-9]{14,15}", fullmatch=True)
emaids = st.builds(EMAID, ids, emaid_values)
enc_keys = st.builds(ContractSignatureEncryptedPrivateKey, ids, st.binary(max_size=48))
dh_keys = st.builds(DHPublicKey, ids, st.binary(max_size=65))
references = st.builds(
    Reference,
    st.none() | texts,
    texts,
    st.binary(max_size=40),
    st.lists(texts, max_size=3).map(tuple),
    st.none() | ids,
    st.none() | texts,
)
signed_infos = st.builds(
    SignedInfo, texts, texts, st.lists(references, min_size=1, max_size=4).map(tuple), st.none() | ids
)
signatures = st.builds(Signature, signed_infos, st.binary(max_size=70), st.none() | ids, st.none() | ids)
notifications = st.builds(
    Notification,
    st.sampled_from(FaultCode),
    st.none() | st.text(st.characters(exclude_categories=("Cs",)), max_size=64),
)
headers = st.builds(Header, st.binary(max_size=8), st.none() | notifications, st.none() | signatures)
install_reqs = st.builds(CertificateInstallationReq, ids, certs, root_ids)
update_reqs = st.builds(CertificateUpdateReq, ids, chains, emaid_values, root_ids)
_res_args = (st.sampled_from(ResponseCode), chains, chains, enc_keys, dh_keys, emaids)
install_ress = st.builds(CertificateInstallationRes, *_res_args)
update_ress = st.builds(CertificateUpdateRes, *_res_args, st.none() | st.integers(min_value=-32768, max_value=32767))
bodies = install_reqs | install_ress | update_reqs | update_ress
messages = st.builds(V2GMessage, headers, bodies)
fragments = install_reqs | update_reqs | id_chains | enc_keys | dh_keys | emaids
