"""Parsed forms of immutable bytes that hot paths would otherwise parse on every request.

A certificate's DER never changes, so its parsed :class:`~cryptography.x509.Certificate` (with the
public key and extensions it caches once read) can be shared by every request that meets the same
bytes: the CPS leaf a provisioning response is signed with, the trusted roots read from the
database. Bounded, and keyed by the bytes themselves, so a changed row is simply another entry.
Only for certificates that are ours or already trusted: a car's certificates are parsed per
request (thousands of cars would only churn the cache).
"""

from __future__ import annotations

import functools

from cryptography import x509

__all__ = ["certificate"]


@functools.lru_cache(maxsize=256)
def certificate(der: bytes) -> x509.Certificate:
    """``x509.load_der_x509_certificate(der)``, parsed once per distinct ``der`` (raises as it does)."""
    return x509.load_der_x509_certificate(der)
