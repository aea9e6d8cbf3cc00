"""OCSP requests as the responder reads them (RFC 6960 §4.1): DER in, CertIDs and a nonce out.

This module owns the request limits (size, number of CertIDs, nonce length), the CertID hash
algorithms the responder accepts, the parsing of one request -- ``cryptography`` for the usual single
CertID, asn1crypto for several -- and the issuerNameHash/issuerKeyHash a CertID names its issuer by
(:func:`issuer_hashes`), which the responder matches against the CAs it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

__all__ = [
    "CERT_ID_HASHES",
    "MAX_CERT_IDS",
    "MAX_NONCE",
    "MAX_REQUEST_BYTES",
    "CertId",
    "MalformedRequest",
    "issuer_hashes",
    "parse_request",
]

MAX_REQUEST_BYTES = 64 * 1024
MAX_CERT_IDS = 64
MAX_NONCE = 32  # RFC 8954 §2.1
CERT_ID_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),  # noqa: S303 -- RFC 5019 §2.1.1: CertIDs use SHA-1; it only names the issuer
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


@dataclass(frozen=True, slots=True)
class CertId:
    """One CertID of a request (RFC 6960 §4.1.1): the issuer's hashes and the serial it asks about."""

    hash_algorithm: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    asn1: asn1_ocsp.CertId | None = None  # kept for the asn1crypto (several CertIDs) path


class MalformedRequest(Exception):
    """Undecodable or unsupported input; the responder answers ``malformedRequest`` (RFC 6960 §2.3)."""


def parse_request(request_der: bytes) -> tuple[list[CertId], bytes | None]:
    try:
        request = ocsp.load_der_ocsp_request(request_der)
    except (ValueError, NotImplementedError):
        # cryptography reads one CertID per request; several take the asn1crypto path.
        return _parse_several(request_der)
    try:
        hash_name = request.hash_algorithm.name
    except UnsupportedAlgorithm as exc:
        raise MalformedRequest(f"unsupported CertID hash: {exc}") from None
    if hash_name not in CERT_ID_HASHES:
        raise MalformedRequest(f"unsupported CertID hash {hash_name}")
    try:
        extensions = request.extensions
    except ValueError as exc:
        raise MalformedRequest(f"bad request extensions: {exc}") from None
    nonce = None
    for extension in extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            nonce = _check_nonce(extension.value.nonce)
        elif extension.critical:
            raise MalformedRequest(f"unsupported critical extension {extension.oid.dotted_string}")
    return [CertId(hash_name, request.issuer_name_hash, request.issuer_key_hash, request.serial_number)], nonce


def _parse_several(request_der: bytes) -> tuple[list[CertId], bytes | None]:
    try:
        request = asn1_ocsp.OCSPRequest.load(request_der, strict=True)
        tbs = request["tbs_request"]
        entries = list(tbs["request_list"])
        if not entries:
            raise MalformedRequest("the request names no certificate")
        if len(entries) > MAX_CERT_IDS:
            raise MalformedRequest(f"more than {MAX_CERT_IDS} CertIDs in one request")
        cert_ids = []
        for entry in entries:
            cert_id = entry["req_cert"]
            hash_name = cert_id["hash_algorithm"]["algorithm"].native
            if hash_name not in CERT_ID_HASHES:
                raise MalformedRequest(f"unsupported CertID hash {hash_name}")
            cert_ids.append(
                CertId(
                    hash_name,
                    cert_id["issuer_name_hash"].native,
                    cert_id["issuer_key_hash"].native,
                    cert_id["serial_number"].native,
                    cert_id,
                )
            )
        nonce = None
        for extension in tbs["request_extensions"] or []:
            name = extension["extn_id"].native
            if name == "nonce":
                nonce = _check_nonce(extension["extn_value"].parsed.native)
            elif extension["critical"].native:
                raise MalformedRequest(f"unsupported critical extension {name}")
        return cert_ids, nonce
    except MalformedRequest:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MalformedRequest(f"not a DER OCSPRequest ({type(exc).__name__})") from None


def _check_nonce(nonce: object) -> bytes:
    if not isinstance(nonce, bytes) or not 1 <= len(nonce) <= MAX_NONCE:
        raise MalformedRequest(f"the nonce must be 1 to {MAX_NONCE} octets (RFC 8954 §2.1)")
    return nonce


def issuer_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """RFC 6960 §4.1.1 CertID issuerNameHash and issuerKeyHash of the certificates ``issuer`` signs.

    The name hash is over the issuer's DER subject; the key hash over its subjectPublicKey bits
    (not the whole SubjectPublicKeyInfo). OCPP CertificateHashDataType carries the same values in hex.
    """
    return _digest(algorithm, issuer.subject.public_bytes()), _digest(algorithm, _key_bits(issuer))


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's value, which RFC 6960 §4.1.1 issuerKeyHash covers."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return bytes(asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:])
