"""OCSP over HTTP for Plug & Charge authorization: the revocation status of foreign contract chains.

:class:`ContractOcsp` is the :data:`pki.iso15118.ForeignStatus` the domain asks about certificates
of CAs that are not ours (OCPP C07.FR.05, the case OCTT TC_C_52 checks). It fetches through
:class:`~ocpp_bridge.status.StatusForwarder` -- http(s) URLs only, no redirects, a timeout, a
size limit, one retry, responses cached until their nextUpdate -- and then verifies every
response, cached or not, before it believes it:

- RFC 6960 §4.2.2.2: the response is signed by the certificate's issuer itself, or by a delegated
  responder whose certificate the issuer signed directly and which carries id-kp-OCSPSigning
  (and is valid now); nothing else is an authorized responder.
- the signature over ``tbsResponseData`` verifies with that key;
- §3.2: the single response is about the certificate asked for, its thisUpdate is not in the
  future (beyond a small clock skew) and its nextUpdate, when present, is not in the past.

The issuer is the certificate the domain found in the chain; with hash data only and a CA we do
not know, it must come with the response, identified by the CertID's own name and key hashes.
A responder that does not answer, or answers something that does not verify, is
``unavailable``: never an exception (the domain answers ``CertChainError``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ocpp_bridge.status import CertId, StatusError, StatusForwarder, matching_single
from pki.iso15118 import ForeignQuery, ForeignResult, OcspAnswer
from pki.revocation import issuer_hashes

__all__ = ["ContractOcsp", "verify_ocsp_response"]

log = logging.getLogger("evpki.ocpp.ocsp")

_SKEW = dt.timedelta(minutes=5)
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


def _verify_signature(key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _names_responder(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> bool:
    """RFC 6960 §4.2.2.3 ResponderID: byName, or byKey (SHA-1 of the subjectPublicKey bits)."""
    if response.responder_name is not None:
        return response.responder_name == certificate.subject
    if response.responder_key_hash is not None:
        _, key_hash = issuer_hashes(certificate, hashes.SHA1())  # noqa: S303 -- RFC 6960 fixes SHA-1 here
        return key_hash == response.responder_key_hash
    return False


def _is_ocsp_signer(delegate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime) -> bool:
    try:
        delegate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    if not delegate.not_valid_before_utc <= now < delegate.not_valid_after_utc:
        return False
    try:
        usages = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in usages


def _issuer_from_response(response: ocsp.OCSPResponse, cert_id: CertId) -> x509.Certificate | None:
    for candidate in response.certificates:
        if issuer_hashes(candidate, _HASHES[cert_id.hash_algorithm]()) == (
            cert_id.issuer_name_hash,
            cert_id.issuer_key_hash,
        ):
            return candidate
    return None


def verify_ocsp_response(
    response: ocsp.OCSPResponse, cert_id: CertId, issuer: x509.Certificate | None, now: dt.datetime
) -> ocsp.OCSPSingleResponse:
    """The single response for ``cert_id`` once signature, responder and times check; else :class:`StatusError`."""
    single = matching_single(response, cert_id)
    issuer = issuer or _issuer_from_response(response, cert_id)
    if issuer is None:
        raise StatusError("UnknownIssuer", "the issuing CA is unknown, so the response cannot be verified")
    if issuer_hashes(issuer, _HASHES[cert_id.hash_algorithm]()) != (cert_id.issuer_name_hash, cert_id.issuer_key_hash):
        raise StatusError("IssuerMismatch", "the issuing CA does not match the CertID")
    if _names_responder(response, issuer):
        signer = issuer
    else:
        delegates = [c for c in response.certificates if _names_responder(response, c)]
        signer = next((c for c in delegates if _is_ocsp_signer(c, issuer, now)), None)  # type: ignore[assignment]
        if signer is None:
            raise StatusError(
                "UnauthorizedSigner", "the response is signed by no authorized responder (RFC 6960 §4.2.2.2)"
            )
    if not _verify_signature(
        signer.public_key(), response.signature, response.tbs_response_bytes, response.signature_hash_algorithm
    ):
        raise StatusError("BadSignature", "the OCSP response's signature does not verify")
    if single.this_update_utc > now + _SKEW:
        raise StatusError("NotYetValid", "the OCSP response's thisUpdate is in the future")
    if single.next_update_utc is not None and single.next_update_utc <= now:
        raise StatusError("Stale", "the OCSP response is past its nextUpdate")
    return single


class ContractOcsp:
    """Callable :data:`pki.iso15118.ForeignStatus`: ask each URL in turn until one verifiable answer comes."""

    def __init__(self, forwarder: StatusForwarder, now: Callable[[], dt.datetime]) -> None:
        self._forwarder = forwarder
        self._now = now

    def __call__(self, query: ForeignQuery) -> ForeignResult:
        if query.hash_algorithm not in _HASHES:
            return ForeignResult(OcspAnswer.UNAVAILABLE, f"hash algorithm {query.hash_algorithm}")
        cert_id = CertId(query.hash_algorithm, query.issuer_name_hash, query.issuer_key_hash, query.serial_number)
        failure = "no OCSP responder URL"
        for url in query.urls:
            try:
                response = self._forwarder.ocsp(url, cert_id)  # cached until nextUpdate
                single = verify_ocsp_response(response, cert_id, query.issuer, self._now())
            except StatusError as error:
                log.info("OCSP for serial %X at %s: %s", query.serial_number, url[:200], error.message)
                failure = f"{error.reason_code}: {error.message}"
                continue
            except (ValueError, TypeError, UnsupportedAlgorithm) as error:  # a key or extension we cannot read
                log.info("OCSP for serial %X at %s: unreadable response (%s)", query.serial_number, url[:200], error)
                failure = f"UnreadableResponse: {type(error).__name__}"
                continue
            answer = {
                ocsp.OCSPCertStatus.GOOD: OcspAnswer.GOOD,
                ocsp.OCSPCertStatus.REVOKED: OcspAnswer.REVOKED,
                ocsp.OCSPCertStatus.UNKNOWN: OcspAnswer.UNKNOWN,
            }[single.certificate_status]
            return ForeignResult(answer, url[:200], single.next_update_utc)
        return ForeignResult(OcspAnswer.UNAVAILABLE, failure)
