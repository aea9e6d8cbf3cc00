"""One-CertID OCSP responses assembled as DER directly (RFC 6960 §4.2.1), signed by the responder's signer.

The answer to a request with a nonce is signed per request, and ``cryptography``'s builder costs
about twice the ECDSA signature itself (building, then encoding the response again). What differs
from one such answer to the next is small -- the CertID, status, times and nonce -- so this module
writes the ``ResponseData`` as bytes, has the :class:`~pki.keys.base.Signer` sign it (file or
PKCS#11 alike) and wraps it with what is fixed per responder (its key hash, signature algorithm
and certificate), built once. The structure is exactly the one the builder makes: responder by key
hash (RFC 5019 §2.2.3), the responder certificate included, nextUpdate, the nonce echoed (RFC 8954).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading

from asn1crypto import algos as asn1_algos
from cryptography.hazmat.primitives import hashes, serialization

from pki.revocation.ocsp_requests import CertId, issuer_hashes
from pki.revocation.ocsp_responses import CertStatus, signature_algorithm
from pki.revocation.ocsp_signers import Responder
from pki.revocation.reasons import reason_flag

__all__ = ["sign_single_der"]

# DER of the OIDs (X.690 §8.19), with the NULL parameters that CertID hash algorithms carry.
_HASH_ALGORITHMS = {
    "sha1": bytes.fromhex("300906052b0e03021a0500"),
    "sha256": bytes.fromhex("300d06096086480165030402010500"),
    "sha384": bytes.fromhex("300d06096086480165030402020500"),
    "sha512": bytes.fromhex("300d06096086480165030402030500"),
}
_NONCE_OID = bytes.fromhex("06092b0601050507300102")  # id-pkix-ocsp-nonce
_BASIC_OID = bytes.fromhex("06092b0601050507300101")  # id-pkix-ocsp-basic
_SUCCESSFUL = bytes.fromhex("0a0100")
# RFC 5280 §5.3.1 CRLReason codes by cryptography's ReasonFlags value.
_REASON_CODES = {
    "unspecified": 0,
    "keyCompromise": 1,
    "cACompromise": 2,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
    "certificateHold": 6,
    "removeFromCRL": 8,
    "privilegeWithdrawn": 9,
    "aACompromise": 10,
}


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


@functools.lru_cache(maxsize=1024)  # thisUpdate, nextUpdate and producedAt change once a second
def _time(when: dt.datetime) -> bytes:
    return _tlv(0x18, when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode())  # GeneralizedTime


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=False))


class _Fixed:
    """What every response of one responder shares: responderID, signature algorithm, certs."""

    __slots__ = ("algorithm", "certs", "responder_id")

    def __init__(self, responder: Responder) -> None:
        key_hash = issuer_hashes(responder.certificate, hashes.SHA1())[1]  # noqa: S303 -- RFC 6960 §4.2.1 KeyHash
        self.responder_id = _tlv(0xA2, _tlv(0x04, key_hash))  # byKey [2] EXPLICIT KeyHash
        self.algorithm = asn1_algos.SignedDigestAlgorithm({"algorithm": signature_algorithm(responder)}).dump()
        certificate = responder.certificate.public_bytes(serialization.Encoding.DER)
        self.certs = _tlv(0xA0, _tlv(0x30, certificate))  # [0] EXPLICIT SEQUENCE OF Certificate


_fixed: dict[tuple[str, str], _Fixed] = {}
_fixed_lock = threading.Lock()


def _fixed_for(responder: Responder) -> _Fixed:
    key = (responder.ca_id, responder.serial)
    fixed = _fixed.get(key)
    if fixed is None:
        with _fixed_lock:
            fixed = _fixed.get(key)
            if fixed is None:
                fixed = _fixed[key] = _Fixed(responder)
    return fixed


def _status(status: CertStatus) -> bytes:
    if status.name == "good":
        return b"\x80\x00"  # [0] IMPLICIT NULL
    if status.name == "unknown":
        return b"\x82\x00"  # [2] IMPLICIT NULL
    assert status.revoked_at is not None
    info = _time(status.revoked_at)
    flag = reason_flag(status.reason)
    if flag is not None:  # RFC 5280 §5.3.1: no reason rather than "unspecified"
        info += _tlv(0xA0, bytes((0x0A, 0x01, _REASON_CODES[flag.value])))
    return _tlv(0xA1, info)  # [1] IMPLICIT RevokedInfo


def sign_single_der(
    responder: Responder,
    cert_id: CertId,
    status: CertStatus,
    nonce: bytes | None,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> bytes:
    """The DER OCSPResponse for one CertID, as :func:`~pki.revocation.ocsp_responses.sign_single_response` makes it."""
    fixed = _fixed_for(responder)
    single = _tlv(
        0x30,
        _tlv(
            0x30,
            _HASH_ALGORITHMS[cert_id.hash_algorithm]
            + _tlv(0x04, cert_id.issuer_name_hash)
            + _tlv(0x04, cert_id.issuer_key_hash)
            + _integer(cert_id.serial),
        )
        + _status(status)
        + _time(this_update)
        + _tlv(0xA0, _time(next_update)),
    )
    data = fixed.responder_id + _time(this_update) + _tlv(0x30, single)
    if nonce is not None:
        extension = _tlv(0x30, _NONCE_OID + _tlv(0x04, _tlv(0x04, nonce)))
        data += _tlv(0xA1, _tlv(0x30, extension))  # responseExtensions [1] EXPLICIT
    tbs = _tlv(0x30, data)
    signature = responder.signer.sign_bytes(tbs, rsa_pss=False)
    basic = _tlv(0x30, tbs + fixed.algorithm + _tlv(0x03, b"\x00" + signature) + fixed.certs)
    return _tlv(0x30, _SUCCESSFUL + _tlv(0xA0, _tlv(0x30, _BASIC_OID + _tlv(0x04, basic))))
