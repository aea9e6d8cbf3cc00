"""Status changes and how the world learns of them: revocation reasons and holds, CRL building and
publishing (full and delta), the OCSP responder and its delegated signers. Facade services:
``pki.revocation``, ``pki.crls``, ``pki.ocsp``.
"""

from __future__ import annotations

from pki.revocation.ocsp_requests import MAX_REQUEST_BYTES, issuer_hashes
from pki.revocation.ocsp_responder import OcspAnswer
from pki.revocation.reasons import RevocationReason
from pki.revocation.services import Crls, Ocsp, Revocations

__all__ = [
    "MAX_REQUEST_BYTES",
    "Crls",
    "Ocsp",
    "OcspAnswer",
    "RevocationReason",
    "Revocations",
    "issuer_hashes",
]
