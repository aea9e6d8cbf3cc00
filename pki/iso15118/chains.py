"""Path validation for the certificates a car presents: its OEM provisioning certificate
(CertificateInstallationReq) or its current contract chain (CertificateUpdateReq).

The car's certificates are untrusted input. A path is built from the leaf through the
certificates the car sent and the intermediates we know, to one of the configured trust
anchors, checking at each step the issuer's name, its key identifier where both carry one, the
signature, the validity period and that the issuer is a CA allowed to sign at that depth. RFC 5280
§6.1 in the subset ISO 15118-2 chains use (no policies, no name constraints).

Third-party V2G certificates have quirks (reference/iso15118.md §1.2: an explicitly encoded
``cA=FALSE`` makes ``cryptography`` raise on ``extensions``), so extension reads here are
lenient: an unreadable extension counts as absent where that is safe, and as "not a CA" for
an issuer.

Each failure raises :class:`ChainRejected` with the ISO 15118-2 ResponseCode the car should get.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from threading import Lock

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from pki.core.errors import VerificationFailed
from pki.iso15118.messages import ResponseCode

__all__ = ["ChainRejected", "TrustStore", "readable_certificate", "validate_path"]

# ISO 15118-2 [V2G2-656]: at most two sub-CAs between a leaf and its root.
_MAX_PATH = 4


class ChainRejected(VerificationFailed):
    """The car's certificate path is not acceptable; ``response_code`` is what the car is told."""

    def __init__(self, response_code: ResponseCode, message: str) -> None:
        super().__init__(message)
        self.response_code = response_code


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Trust anchors (self-signed roots) and the intermediates known to lead to them."""

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()

    def candidates(self, subject: x509.Name, extra: Iterable[x509.Certificate]) -> list[x509.Certificate]:
        pool = [*extra, *self.intermediates, *self.anchors]
        return [certificate for certificate in pool if certificate.subject == subject]


def readable_certificate(der: bytes) -> x509.Certificate | None:
    """The certificate in ``der`` if both it and its public key parse (a damaged one may name an unknown curve)."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        certificate.public_key()
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm):
        return None
    return certificate


def _extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # an extension block cryptography refuses to parse (e.g. DER-encoded defaults)
        return None


def _may_issue(issuer: x509.Certificate, below: int) -> bool:
    """RFC 5280 §6.1.4 (k), (l), (n): a CA, allowed ``below`` more CA certificates under it, that signs certificates."""
    basic = _extension(issuer, x509.BasicConstraints)
    if not isinstance(basic, x509.BasicConstraints) or not basic.ca:
        return False
    if basic.path_length is not None and below > basic.path_length:
        return False
    usage = _extension(issuer, x509.KeyUsage)
    return not isinstance(usage, x509.KeyUsage) or usage.key_cert_sign


def _key_ids_agree(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    aki = _extension(certificate, x509.AuthorityKeyIdentifier)
    ski = _extension(issuer, x509.SubjectKeyIdentifier)
    if not isinstance(aki, x509.AuthorityKeyIdentifier) or aki.key_identifier is None:
        return True
    if not isinstance(ski, x509.SubjectKeyIdentifier):
        return True
    return aki.key_identifier == ski.digest


# Signature checks of (certificate, issuer) links, keyed by the two certificates' DER: a signature over
# fixed bytes verifies once and for all, so every request after the first skips the P-521 / Ed448 checks
# of the sub-CA links it shares with other cars (and a car asking again, its own). The key holds bytes
# only, never the parsed certificates: those are graphs of Python objects (names, extensions) that
# every full garbage collection would walk, thousands of cars' worth.
_LINKS_MAX = 4096
_links: OrderedDict[tuple[bytes, bytes], bool] = OrderedDict()
_links_lock = Lock()


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = (certificate.public_bytes(Encoding.DER), issuer.public_bytes(Encoding.DER))
    with _links_lock:
        known = _links.get(key)
        if known is not None:
            _links.move_to_end(key)
            return known
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        verified = False
    else:
        verified = True
    with _links_lock:
        _links[key] = verified
        if len(_links) > _LINKS_MAX:
            _links.popitem(last=False)
    return verified


def _check_period(certificate: x509.Certificate, now: dt.datetime, what: str) -> None:
    if certificate.not_valid_after_utc <= now:
        raise ChainRejected(
            ResponseCode.FAILED_CERTIFICATE_EXPIRED,
            f"{what} expired on {certificate.not_valid_after_utc.isoformat()}",
        )
    if certificate.not_valid_before_utc > now:
        raise ChainRejected(
            ResponseCode.FAILED_CERT_CHAIN_ERROR,
            f"{what} is not valid before {certificate.not_valid_before_utc.isoformat()}",
        )


def validate_path(
    leaf: x509.Certificate,
    presented: Sequence[x509.Certificate],
    trust: TrustStore,
    now: dt.datetime,
    *,
    what: str,
) -> list[x509.Certificate]:
    """The path ``leaf`` … anchor (anchor last), or :class:`ChainRejected`.

    ``presented`` are the sub-CA certificates the car sent (possibly none); they are used only
    if they chain up to an anchor like any other intermediate.
    """
    _check_period(leaf, now, what)
    path = [leaf]
    current = leaf
    while len(path) <= _MAX_PATH:
        if current in trust.anchors:  # identity first, then equality (the DER), as `in` compares
            return path
        below = len(path) - 1  # CA certificates already between ``current`` and the leaf
        issuers = [
            candidate
            for candidate in trust.candidates(current.issuer, presented)
            if candidate is not current
            and candidate != current
            and _key_ids_agree(current, candidate)
            and _may_issue(candidate, below)
            and _signed_by(current, candidate)
        ]
        if not issuers:
            raise ChainRejected(
                ResponseCode.FAILED_CERT_CHAIN_ERROR,
                f"{what}: no trusted issuer {current.issuer.rfc4514_string()!r} signed "
                f"{current.subject.rfc4514_string()!r}",
            )
        # Prefer an anchor, then a known intermediate, then one the car sent.
        issuer = next((c for c in issuers if c in trust.anchors), None) or next(
            (c for c in issuers if c in trust.intermediates), issuers[0]
        )
        _check_period(issuer, now, f"{what}: the issuing CA {issuer.subject.rfc4514_string()!r}")
        path.append(issuer)
        current = issuer
    raise ChainRejected(ResponseCode.FAILED_CERT_CHAIN_ERROR, f"{what}: the path to a trusted root is too long")
