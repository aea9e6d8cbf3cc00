"""An independent electric vehicle for ISO 15118-2 contract provisioning tests.

This module owns the car side of ``CertificateInstallation`` / ``CertificateUpdate``. It shares no
code with the provisioning service's response builder nor with our EXI codec: every EXI byte it
writes or reads goes through EXIficient (:mod:`tests.interop.exificient`, the jar's JSON, never the
``pki.iso15118`` dataclasses), and all cryptography is done here with ``cryptography`` directly
(ECDSA P-256/SHA-256 with raw ``r‖s`` ↔ DER, ECDH + ConcatKDF(SHA-256) + AES-128-CBC for the
contract key, X.509 path validation).

API (all functions take the session's :class:`~tests.interop.exificient.Exificient` first)::

    exi = build_installation_request(jar, oem_cert_der, oem_key, [(issuer_name, serial), ...], session_id)
    exi = build_update_request(jar, [contract_der, mo_sub2_der, mo_sub1_der], contract_key, emaid,
                               root_ids, session_id, fragment_encoder=...)
    result = open_response(jar, exi_response, car_key, session_id, sa_roots=[v2g_root],
                           contract_roots=[mo_root])   # -> CarResult, or raises CarRejects
    result.contract_certificate, result.contract_private_key, result.emaid, result.response_code

``car_key`` is the OEM provisioning private key for an installation, the *current* contract private
key for an update (the ECDH peer of the response). ``open_response`` checks, in order: the body
type, the header SessionID, ResponseCode (``OK…``; otherwise ``CarRejects.response_code`` is set),
the four signed elements (Ids distinct, each referenced exactly once, digests recomputed with
EXIficient fragments), the SignedInfo shape and the ECDSA signature with the
SAProvisioningCertificateChain leaf, both chains to the given roots (``cryptography``'s
``PolicyBuilder`` with web-PKI CA rules and no end-entity extension rules, as ISO leaves carry no
EKU/SAN), the contract key decryption, that it matches the contract certificate, and CN == eMAID.

One gap, by necessity: EXIficient cannot encode the ``CertificateUpdateReq`` fragment the car signs
(reference §3.5 item 6), so :func:`build_update_request` takes ``fragment_encoder`` — a callable
from the jar's fragment JSON ``{"CertificateUpdateReq": {...}}`` to EXI bytes (tests pass our
codec's ``encode_fragment`` behind :func:`tests.interop.exificient.element_from_json`). The car
guards it: the fragment's element content bits must occur verbatim in the document EXIficient encodes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from tests.interop.exificient import ISO2, Exificient, fragment_content_bits, to_bits

__all__ = [
    "C14N_EXI",
    "ECDSA_SHA256",
    "SHA256",
    "SIGNED_ELEMENTS",
    "CarRejects",
    "CarResult",
    "FragmentEncoder",
    "build_installation_request",
    "build_update_request",
    "decrypt_contract_key",
    "open_response",
    "sign_raw",
    "verify_raw",
]

C14N_EXI = "http://www.w3.org/TR/canonical-exi/"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SIGNED_ELEMENTS = ("ContractSignatureCertChain", "ContractSignatureEncryptedPrivateKey", "DHpublickey", "eMAID")
KDF_OTHER_INFO = b"\x01\x55\x56"  # AlgorithmID 0x01, PartyUInfo 'U', PartyVInfo 'V'

FragmentEncoder = Callable[[Mapping[str, Any]], bytes]
Json = dict[str, Any]


class CarRejects(Exception):
    """The car refuses a response (or cannot build a request); the message says why."""

    def __init__(self, message: str, *, response_code: str | None = None) -> None:
        super().__init__(message)
        self.response_code = response_code


@dataclass(frozen=True)
class CarResult:
    """What the car keeps from an accepted response."""

    body_name: str  # CertificateInstallationRes or CertificateUpdateRes
    response_code: str
    emaid: str
    contract_certificate: x509.Certificate
    contract_sub_certificates: tuple[x509.Certificate, ...]
    contract_private_key: ec.EllipticCurvePrivateKey
    sa_certificate_chain: tuple[x509.Certificate, ...]  # CPS leaf first
    retry_counter: int | None
    document: Json = field(repr=False)  # the jar's JSON of the whole response


# -- primitives --------------------------------------------------------------------------------------


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _unb64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def sign_raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256/SHA-256 over ``data`` as the 64-byte ``r‖s`` ISO 15118-2 carries."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_raw(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """Check a 64-byte ``r‖s`` ECDSA P-256/SHA-256 signature."""
    if len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _reference(element_id: str, fragment: bytes) -> Json:
    return {
        "URI": f"#{element_id}",
        "Transforms": {"Transform": [{"Algorithm": C14N_EXI}]},
        "DigestMethod": {"Algorithm": SHA256},
        "DigestValue": _b64(hashlib.sha256(fragment).digest()),
    }


def _signed_info(references: Sequence[Json]) -> Json:
    return {
        "CanonicalizationMethod": {"Algorithm": C14N_EXI},
        "SignatureMethod": {"Algorithm": ECDSA_SHA256},
        "Reference": list(references),
    }


def _root_ids_json(root_ids: Sequence[tuple[str, int]]) -> Json:
    return {"RootCertificateID": [{"X509IssuerName": name, "X509SerialNumber": serial} for name, serial in root_ids]}


def _signed_document(
    jar: Exificient, key: ec.EllipticCurvePrivateKey, session_id: bytes, body_name: str, body: Json, fragment: bytes
) -> bytes:
    signed_info = _signed_info([_reference(body["Id"], fragment)])
    signature = sign_raw(key, jar.encode_signed_info(signed_info))
    doc = {
        "V2G_Message": {
            "Header": {
                "SessionID": session_id.hex().upper(),
                "Signature": {"SignedInfo": signed_info, "SignatureValue": {"value": _b64(signature)}},
            },
            "Body": {body_name: body},
        }
    }
    return jar.encode(doc)


# -- requests ----------------------------------------------------------------------------------------


def build_installation_request(
    jar: Exificient,
    oem_cert_der: bytes,
    oem_key: ec.EllipticCurvePrivateKey,
    root_ids: Sequence[tuple[str, int]],
    session_id: bytes,
    *,
    request_id: str = "ID1",
) -> bytes:
    """A signed ``CertificateInstallationReq`` V2G_Message, every byte from EXIficient."""
    body = {
        "Id": request_id,
        "OEMProvisioningCert": _b64(oem_cert_der),
        "ListOfRootCertificateIDs": _root_ids_json(root_ids),
    }
    fragment = jar.encode_fragment("CertificateInstallationReq", body)
    return _signed_document(jar, oem_key, session_id, "CertificateInstallationReq", body, fragment)


def build_update_request(
    jar: Exificient,
    contract_chain_der: Sequence[bytes],
    contract_key: ec.EllipticCurvePrivateKey,
    emaid: str,
    root_ids: Sequence[tuple[str, int]],
    session_id: bytes,
    *,
    fragment_encoder: FragmentEncoder,
    request_id: str = "ID1",
    chain_id: str | None = None,
) -> bytes:
    """A signed ``CertificateUpdateReq`` (``contract_chain_der`` = current contract cert, then MO sub-CAs).

    The one fragment EXIficient cannot produce comes from ``fragment_encoder`` (see the module
    docstring); its content bits are checked against the document EXIficient encodes.
    """
    chain: Json = {}
    if chain_id is not None:
        chain["Id"] = chain_id
    chain["Certificate"] = _b64(contract_chain_der[0])
    if len(contract_chain_der) > 1:
        chain["SubCertificates"] = {"Certificate": [_b64(c) for c in contract_chain_der[1:]]}
    body = {
        "Id": request_id,
        "ContractSignatureCertChain": chain,
        "eMAID": emaid,
        "ListOfRootCertificateIDs": _root_ids_json(root_ids),
    }
    fragment = bytes(fragment_encoder({"CertificateUpdateReq": body}))
    document = _signed_document(jar, contract_key, session_id, "CertificateUpdateReq", body, fragment)
    if fragment_content_bits(fragment) not in to_bits(document):
        raise CarRejects("the CertificateUpdateReq fragment's content bits do not occur in EXIficient's document")
    return document


# -- response ----------------------------------------------------------------------------------------


def _certificate(der_b64: str, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(_unb64(der_b64))
    except ValueError as exc:
        raise CarRejects(f"{what} is not a DER certificate: {exc}") from exc


def _chain(data: Json, what: str) -> tuple[x509.Certificate, ...]:
    subs = data.get("SubCertificates")
    certs = [_certificate(data["Certificate"], f"{what} leaf")]
    if subs is not None:
        certs += [_certificate(c, f"{what} sub-certificate") for c in _items(subs["Certificate"])]
    return tuple(certs)


def _verify_chain(
    chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], now: dt.datetime, what: str
) -> None:
    if not roots:
        raise CarRejects(f"no trusted roots given for the {what}")
    for child, issuer in itertools.pairwise(chain):
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CarRejects(f"{what}: {child.subject.rfc4514_string()} is not signed by the next certificate") from exc
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(list(roots)))
        .time(now)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
    )
    try:
        builder.build_client_verifier().verify(chain[0], list(chain[1:]))
    except verification.VerificationError as exc:
        raise CarRejects(f"{what} does not validate to a trusted root: {exc}") from exc


def _check_signed_info(signed_info: Json) -> dict[str, bytes]:
    """URI → digest, after checking the SignedInfo is the ISO 15118-2 shape EXIficient re-encodes faithfully."""
    if "Id" in signed_info:
        raise CarRejects("SignedInfo carries an Id (EXIficient's SignedInfo fragment would drop it)")
    if signed_info["CanonicalizationMethod"]["Algorithm"] != C14N_EXI:
        raise CarRejects(f"CanonicalizationMethod {signed_info['CanonicalizationMethod']['Algorithm']!r}")
    if signed_info["SignatureMethod"]["Algorithm"] != ECDSA_SHA256:
        raise CarRejects(f"SignatureMethod {signed_info['SignatureMethod']['Algorithm']!r}")
    digests: dict[str, bytes] = {}
    for ref in _items(signed_info["Reference"]):
        uri = ref.get("URI")
        if uri is None or not uri.startswith("#"):
            raise CarRejects(f"Reference URI {uri!r} is not a same-document '#Id'")
        if "Id" in ref or "Type" in ref:
            raise CarRejects(f"Reference {uri} carries Id/Type attributes")
        transforms = [t["Algorithm"] for t in _items(ref.get("Transforms", {}).get("Transform", []))]
        if transforms != [C14N_EXI]:
            raise CarRejects(f"Reference {uri} transforms {transforms}, expected exactly [{C14N_EXI}]")
        if ref["DigestMethod"]["Algorithm"] != SHA256:
            raise CarRejects(f"Reference {uri} DigestMethod {ref['DigestMethod']['Algorithm']!r}")
        if uri in digests:
            raise CarRejects(f"Reference {uri} appears more than once")
        digests[uri] = _unb64(ref["DigestValue"])
    return digests


def decrypt_contract_key(
    car_key: ec.EllipticCurvePrivateKey, dh_public: bytes, encrypted: bytes
) -> ec.EllipticCurvePrivateKey:
    if len(dh_public) != 65 or dh_public[0] != 4:
        raise CarRejects(f"DHpublickey is not an uncompressed P-256 point ({len(dh_public)} bytes)")
    if len(encrypted) != 48:
        raise CarRejects(f"ContractSignatureEncryptedPrivateKey is {len(encrypted)} bytes, expected IV(16)‖CT(32)")
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), dh_public)
    except ValueError as exc:
        raise CarRejects(f"DHpublickey is not a point on P-256: {exc}") from exc
    z = car_key.exchange(ec.ECDH(), peer)
    session_key = ConcatKDFHash(algorithm=hashes.SHA256(), length=16, otherinfo=KDF_OTHER_INFO).derive(z)
    decryptor = Cipher(algorithms.AES(session_key), modes.CBC(encrypted[:16])).decryptor()
    scalar = int.from_bytes(decryptor.update(encrypted[16:]) + decryptor.finalize(), "big")
    try:
        return ec.derive_private_key(scalar, ec.SECP256R1())
    except ValueError as exc:
        raise CarRejects("the decrypted contract key is not a valid P-256 scalar (wrong ECDH peer or KDF?)") from exc


def open_response(
    jar: Exificient,
    exi_response: bytes,
    car_key: ec.EllipticCurvePrivateKey,
    expected_session_id: bytes,
    *,
    sa_roots: Sequence[x509.Certificate],
    contract_roots: Sequence[x509.Certificate] | None = None,
    expected_body: str | None = None,
    now: dt.datetime | None = None,
) -> CarResult:
    """Decode and check a ``CertificateInstallationRes``/``CertificateUpdateRes`` like an EV would.

    ``sa_roots`` anchor the SAProvisioningCertificateChain (V2G roots), ``contract_roots`` the
    contract chain (MO or V2G roots; defaults to ``sa_roots``). ``now`` is the validation time
    (default: the current time). Raises :class:`CarRejects` on the first problem.
    """
    now = now or dt.datetime.now(dt.UTC)
    try:
        document = jar.decode(exi_response, ISO2)
    except Exception as exc:
        raise CarRejects(f"EXIficient cannot decode the response: {exc}") from exc
    message = document["V2G_Message"]
    ((body_name, body),) = message["Body"].items()
    if body_name not in ("CertificateInstallationRes", "CertificateUpdateRes"):
        raise CarRejects(f"unexpected body {body_name}")
    if expected_body is not None and body_name != expected_body:
        raise CarRejects(f"expected {expected_body}, got {body_name}")
    header = message["Header"]
    session_id = bytes.fromhex(header["SessionID"])
    if session_id != expected_session_id:
        raise CarRejects(f"SessionID {session_id.hex()} != request's {expected_session_id.hex()}")
    code = body["ResponseCode"]
    if not code.startswith("OK"):
        raise CarRejects(f"ResponseCode {code}", response_code=code)

    # Signature: the four Ids, each referenced once, digests over EXIficient fragments.
    ids = {name: body[name].get("Id") for name in SIGNED_ELEMENTS}
    if None in ids.values() or len(set(ids.values())) != len(ids):
        raise CarRejects(f"signed elements need four distinct Ids, got {ids}")
    signature = header.get("Signature")
    if signature is None:
        raise CarRejects("the response header carries no Signature")
    digests = _check_signed_info(signature["SignedInfo"])
    expected_uris = {f"#{ident}" for ident in ids.values()}
    if set(digests) != expected_uris:
        raise CarRejects(f"References {sorted(digests)} != signed elements {sorted(expected_uris)}")
    for name, ident in ids.items():
        fragment = jar.encode_fragment(name, body[name])
        if hashlib.sha256(fragment).digest() != digests[f"#{ident}"]:
            raise CarRejects(f"digest of {name} (#{ident}) does not match its EXIficient fragment {fragment.hex()}")
    sa_chain = _chain(body["SAProvisioningCertificateChain"], "SAProvisioningCertificateChain")
    signed_info_exi = jar.encode_signed_info(signature["SignedInfo"])
    sa_public = sa_chain[0].public_key()
    if not isinstance(sa_public, ec.EllipticCurvePublicKey):
        raise CarRejects("the SAProvisioningCertificateChain leaf has no EC key")
    if not verify_raw(sa_public, _unb64(signature["SignatureValue"]["value"]), signed_info_exi):
        raise CarRejects("the CPS signature over SignedInfo does not verify with the SA provisioning leaf")

    # Chains.
    _verify_chain(sa_chain, sa_roots, now, "SAProvisioningCertificateChain")
    contract_chain = _chain(body["ContractSignatureCertChain"], "ContractSignatureCertChain")
    _verify_chain(contract_chain, contract_roots if contract_roots is not None else sa_roots, now, "contract chain")

    # Contract key.
    contract_key = decrypt_contract_key(
        car_key, _unb64(body["DHpublickey"]["value"]), _unb64(body["ContractSignatureEncryptedPrivateKey"]["value"])
    )
    if contract_key.public_key() != contract_chain[0].public_key():
        raise CarRejects("the decrypted contract key does not belong to the contract certificate")
    emaid = body["eMAID"]["value"]
    cns = [a.value for a in contract_chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if cns != [emaid]:
        raise CarRejects(f"contract certificate CN {cns} != eMAID {emaid!r}")
    retry = body.get("RetryCounter")
    return CarResult(
        body_name=body_name,
        response_code=code,
        emaid=emaid,
        contract_certificate=contract_chain[0],
        contract_sub_certificates=tuple(contract_chain[1:]),
        contract_private_key=contract_key,
        sa_certificate_chain=sa_chain,
        retry_counter=int(retry) if retry is not None else None,
        document=document,
    )
