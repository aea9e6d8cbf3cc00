"""OCSP responses as the responder builds and signs them (RFC 6960 §4.2, RFC 5019 §2.2).

This module owns the status a SingleResponse states (:class:`CertStatus`), the thisUpdate/nextUpdate
window of a response, and the two ways a BasicOCSPResponse is built and signed with the CA's
delegated responder: ``cryptography`` for one CertID, asn1crypto for several (``cryptography``
builds single responses only).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from asn1crypto import core as asn1_core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509 import ocsp

from pki.core.algorithms import signature_hash
from pki.revocation.ocsp_requests import CERT_ID_HASHES, CertId
from pki.revocation.ocsp_signers import Responder
from pki.revocation.reasons import RevocationReason, reason_flag
from pki.runtime.context import Context

__all__ = ["CertStatus", "response_window", "sign_multi_response", "sign_single_response", "signature_algorithm"]


@dataclass(frozen=True, slots=True)
class CertStatus:
    """What one SingleResponse states, and the certificate's ``status_version`` it was read at."""

    name: str  # good | revoked | unknown
    revoked_at: dt.datetime | None = None
    reason: str | None = None
    version: int = 0


_CERT_STATUS = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}


def response_window(ctx: Context, responder: Responder, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    this_update = now.replace(microsecond=0)
    # A response must not outlive the certificate that vouches for it.
    next_update = min(this_update + ctx.settings.duration("ocsp_validity"), responder.not_after)
    return this_update, next_update


def sign_single_response(
    responder: Responder,
    cert_id: CertId,
    status: CertStatus,
    nonce: bytes | None,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> bytes:
    """The DER OCSPResponse for one CertID, built and signed by ``cryptography``."""
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=cert_id.issuer_name_hash,
            issuer_key_hash=cert_id.issuer_key_hash,
            serial_number=cert_id.serial,
            algorithm=CERT_ID_HASHES[cert_id.hash_algorithm],
            cert_status=_CERT_STATUS[status.name],
            this_update=this_update,
            next_update=next_update,
            revocation_time=status.revoked_at,
            revocation_reason=reason_flag(status.reason),
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.certificate)  # RFC 5019 §2.2.3
        .certificates([responder.certificate])
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return responder.signer.sign_ocsp_response(builder).public_bytes(serialization.Encoding.DER)


def signature_algorithm(responder: Responder) -> str:
    """asn1crypto's name of the algorithm the responder's signer signs with (``sign_bytes``)."""
    key = responder.certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"{signature_hash(key).name}_ecdsa"  # type: ignore[union-attr]  # the hash the signer uses
    if isinstance(key, rsa.RSAPublicKey):
        return "sha256_rsa"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448"
    raise TypeError(f"no OCSP signature algorithm for {type(key).__name__}")


# asn1crypto's names for the reasons OCSP states (``unspecified`` is left out, as in CRLs).
_ASN1_REASONS = {r.value: r.flag.name for r in RevocationReason if r is not RevocationReason.UNSPECIFIED}


def _asn1_status(status: CertStatus) -> asn1_ocsp.CertStatus:
    if status.name == "good":
        return asn1_ocsp.CertStatus(name="good", value=asn1_core.Null())
    if status.name == "unknown":
        return asn1_ocsp.CertStatus(name="unknown", value=asn1_core.Null())
    info: dict[str, object] = {"revocation_time": status.revoked_at}
    if status.reason in _ASN1_REASONS:
        info["revocation_reason"] = _ASN1_REASONS[status.reason]
    return asn1_ocsp.CertStatus(name="revoked", value=asn1_ocsp.RevokedInfo(info))


def sign_multi_response(
    responder: Responder,
    cert_ids: list[CertId],
    statuses: list[CertStatus],
    nonce: bytes | None,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> bytes:
    """The DER OCSPResponse for several CertIDs (one SingleResponse each), built with asn1crypto."""
    certificate_der = responder.certificate.public_bytes(serialization.Encoding.DER)
    asn1_certificate = asn1_x509.Certificate.load(certificate_der)
    data: dict[str, object] = {
        "responder_id": asn1_ocsp.ResponderId(name="by_key", value=asn1_certificate.public_key.sha1),
        "produced_at": this_update,
        "responses": [
            {
                "cert_id": cert_id.asn1,
                "cert_status": _asn1_status(status),
                "this_update": this_update,
                "next_update": next_update,
            }
            for cert_id, status in zip(cert_ids, statuses, strict=True)
        ],
    }
    if nonce is not None:
        data["response_extensions"] = [{"extn_id": "nonce", "extn_value": nonce}]
    response_data = asn1_ocsp.ResponseData(data)
    signature = responder.signer.sign_bytes(response_data.dump(), rsa_pss=False)
    basic = asn1_ocsp.BasicOCSPResponse(
        {
            "tbs_response_data": response_data,
            "signature_algorithm": {"algorithm": signature_algorithm(responder)},
            "signature": signature,
            "certs": [asn1_certificate],
        }
    )
    return asn1_ocsp.OCSPResponse(
        {
            "response_status": "successful",
            "response_bytes": {"response_type": "basic_ocsp_response", "response": basic},
        }
    ).dump()
