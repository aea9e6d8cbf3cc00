"""Installing the certificate an external CA signed for one of our CAs (``evpki ca install``).

Everything is checked before anything is written, and each refusal names its rule
(:class:`~pki.core.errors.PolicyViolation`):

* ``install.key`` -- the certificate is for the key of the CA's request;
* ``install.subject`` -- the subject is the requested one, or (as the profile allows) another
  one that still carries a CN and, for ISO 15118, a DC;
* ``install.basic-constraints``, ``install.path-length`` -- a CA certificate (critical), with the
  path length that was requested (ISO 15118 Annex F fixes pathLen 1 / 0 for Sub-CA 1 / 2);
* ``install.key-usage`` -- keyCertSign and cRLSign (critical for ISO 15118); ``install.eku`` --
  no extended key usage on an ISO 15118 CA; ``install.ski`` -- a subject key identifier (the
  authority key identifier of what the CA issues is made from it);
* ``install.validity`` -- valid now, and inside the validity of every CA above it;
* ``install.chain`` -- each link's name and signature, each CA above a CA with keyCertSign and a
  path length that leaves room for the CAs below it, every certificate of ``--chain`` used;
  ``install.anchor`` -- the path ends at a self-signed root that passes the trust store's rules
  and is in the trust store or in ``--chain`` (it is then trusted for the PKI's root use, in the
  same transaction);
* ``iso15118.certificate-size``, ``iso15118.algorithm``, ``iso15118.chain-depth`` -- the ISO
  15118-2 (-20) limits: 800 (1600) bytes, P-256 with ECDSA-SHA256 (P-521/Ed448), and at most 2
  (3) sub-CA certificates between the root and a leaf.

Installing is one audited transaction: the CA row with its external chain, the request deleted,
the anchor trusted when it was new.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from sqlalchemy import select
from sqlalchemy.orm import Session

from pki.ca.authority import ISO15118_2_MAX_CERTIFICATE_BYTES, fingerprint, serial_hex
from pki.ca.ca_requests import awaiting
from pki.ca.root_uses import ROOT_USE_PKI, RootUse
from pki.ca.trust_files import MAX_TRUST_FILE_BYTES, load_one
from pki.ca.trust_store import check_root, insert_root
from pki.core.clock import utc
from pki.core.errors import Conflict, InvalidInput, PolicyViolation
from pki.operations import audit
from pki.runtime.context import ISO15118_2, Context
from pki.store import repository
from pki.store.models import CaRequestRow, CertificateAuthorityRow, TrustedRootRow

__all__ = ["InstallPlan", "install_ca_certificate", "plan_installation"]

ISO15118_20 = "iso15118-20"
ISO15118_20_MAX_CERTIFICATE_BYTES = 1600
_MAX_CHAIN_CERTIFICATES = 8
_MAX_SUB_CAS = {ISO15118_2: 2, ISO15118_20: 3}  # [V2G2-656]; the -20 SubCertificates maxOccurs
_PKI_ROOT_USE = {pki: use for use, pki in ROOT_USE_PKI.items()}
_PEM = serialization.Encoding.PEM
_E = TypeVar("_E", bound=x509.ExtensionType)


@dataclass(frozen=True, slots=True)
class InstallPlan:
    """A certificate that passed every check, with the path above it."""

    ca_id: str
    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]  # external CAs between it and the anchor, nearest first
    anchor: x509.Certificate
    anchor_use: RootUse | None  # the use it is trusted for when it must be added to the trust store
    successor_of: str | None = None  # a rollover: the CA whose profiles and subtree it takes over


def _violation(rule: str, message: str) -> PolicyViolation:
    return PolicyViolation(rule, message)


def _extension(certificate: x509.Certificate, kind: type[_E]) -> x509.Extension[_E] | None:
    try:
        return certificate.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        raise InvalidInput(f"the extensions of {certificate.subject.rfc4514_string()!r} cannot be parsed") from None


def _read_chain(data: bytes | None) -> list[x509.Certificate]:
    if not data or not data.strip():
        return []
    if len(data) > MAX_TRUST_FILE_BYTES:
        raise InvalidInput(f"the chain is {len(data)} bytes; at most {MAX_TRUST_FILE_BYTES}")
    stripped = data.strip()
    try:
        found = (
            x509.load_pem_x509_certificates(stripped)
            if stripped.startswith(b"-----BEGIN")
            else [x509.load_der_x509_certificate(stripped)]
        )
    except (ValueError, x509.InvalidVersion):
        raise InvalidInput("the chain is not PEM certificates (or one DER certificate)") from None
    if len(found) > _MAX_CHAIN_CERTIFICATES:
        raise InvalidInput(f"the chain holds {len(found)} certificates; at most {_MAX_CHAIN_CERTIFICATES}")
    return found


def _spki(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


def plan_installation(
    ctx: Context, session: Session, ca_id: str, certificate_data: bytes, chain_data: bytes | None
) -> InstallPlan:
    """Check everything (see the module docstring); raises on the first broken rule, writes nothing."""
    if any(row.id == ca_id for row in repository.list_cas(session)):
        raise Conflict(f"CA {ca_id} already has its certificate")
    request = awaiting(session, ca_id)
    certificate = load_one(certificate_data)
    chain = _read_chain(chain_data)
    now = ctx.clock.now()
    csr = x509.load_der_x509_csr(request.csr)
    if _spki(certificate.public_key()) != _spki(csr.public_key()):
        raise _violation("install.key", f"the certificate is not for the key of CA {ca_id}'s request")
    _check_ca_profile(certificate, request, csr.subject)
    if utc(certificate.not_valid_before_utc) > now or utc(certificate.not_valid_after_utc) <= now:
        raise _violation(
            "install.validity",
            f"the certificate is valid {certificate.not_valid_before_utc.isoformat()} to "
            f"{certificate.not_valid_after_utc.isoformat()}, not now",
        )
    _check_standard(certificate, request.standard)
    intermediates, anchor = _path(session, certificate, chain, request)
    check_root(anchor, now)
    limit = _MAX_SUB_CAS.get(request.standard)
    depth = len(intermediates) + 1 + (request.path_length or 0)
    if limit is not None and depth > limit:
        raise _violation(
            "iso15118.chain-depth",
            f"a leaf would have {depth} sub-CA certificates between it and the root; {request.standard} allows {limit}",
        )
    anchor_use = None
    if not _trusted(session, anchor):
        anchor_use = _PKI_ROOT_USE.get(request.pki)
        if anchor not in chain or anchor_use is None:
            raise _violation(
                "install.anchor",
                f"the path ends at {anchor.subject.rfc4514_string()!r}, which the trust store does not hold; "
                "give it with --chain or `evpki trust add` it first",
            )
    return InstallPlan(ca_id, certificate, tuple(intermediates), anchor, anchor_use, request.successor_of)


def _check_ca_profile(certificate: x509.Certificate, request: CaRequestRow, requested: x509.Name) -> None:
    iso = request.standard.startswith("iso15118")
    if certificate.subject != requested:
        names = {attribute.oid for attribute in certificate.subject}
        if x509.NameOID.COMMON_NAME not in names or (iso and x509.NameOID.DOMAIN_COMPONENT not in names):
            raise _violation(
                "install.subject",
                f"the subject {certificate.subject.rfc4514_string()!r} is not the requested "
                f"{requested.rfc4514_string()!r} and lacks a CN{' or DC' if iso else ''}",
            )
    constraints = _extension(certificate, x509.BasicConstraints)
    if constraints is None or not constraints.value.ca or not constraints.critical:
        raise _violation("install.basic-constraints", "not a CA certificate (critical basicConstraints cA=TRUE)")
    if request.path_length is not None and constraints.value.path_length != request.path_length:
        raise _violation(
            "install.path-length",
            f"pathLenConstraint is {constraints.value.path_length}, the request asked for {request.path_length}",
        )
    usage = _extension(certificate, x509.KeyUsage)
    if usage is None or not usage.value.key_cert_sign or not usage.value.crl_sign or (iso and not usage.critical):
        raise _violation(
            "install.key-usage", f"keyUsage must have keyCertSign and cRLSign{' and be critical' if iso else ''}"
        )
    if iso and _extension(certificate, x509.ExtendedKeyUsage) is not None:
        raise _violation("install.eku", "an ISO 15118 CA certificate carries no extended key usage")
    if _extension(certificate, x509.SubjectKeyIdentifier) is None:
        raise _violation("install.ski", "the certificate has no subject key identifier")


def _check_standard(certificate: x509.Certificate, standard: str) -> None:
    size = len(certificate.public_bytes(serialization.Encoding.DER))
    key = certificate.public_key()
    if standard == ISO15118_2:
        if size > ISO15118_2_MAX_CERTIFICATE_BYTES:
            raise _violation(
                "iso15118.certificate-size",
                f"{size} bytes; ISO 15118-2 carries at most {ISO15118_2_MAX_CERTIFICATE_BYTES}",
            )
        if not (
            isinstance(key, ec.EllipticCurvePublicKey)
            and isinstance(key.curve, ec.SECP256R1)
            and isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
        ):
            raise _violation("iso15118.algorithm", "ISO 15118-2 certificates are P-256 signed with ECDSA-SHA256")
    elif standard == ISO15118_20:
        if size > ISO15118_20_MAX_CERTIFICATE_BYTES:
            raise _violation(
                "iso15118.certificate-size",
                f"{size} bytes; ISO 15118-20 carries at most {ISO15118_20_MAX_CERTIFICATE_BYTES}",
            )
        if not (
            (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP521R1))
            or isinstance(key, ed448.Ed448PublicKey)
        ):
            raise _violation("iso15118.algorithm", "ISO 15118-20 certificates are P-521 or Ed448")


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _path(
    session: Session, certificate: x509.Certificate, chain: list[x509.Certificate], request: CaRequestRow
) -> tuple[list[x509.Certificate], x509.Certificate]:
    """Walk up from ``certificate`` through ``chain`` (then the trust store) to a self-signed root."""
    stored = [x509.load_der_x509_certificate(row.der) for row in _active_roots(session)]
    below = request.path_length or 0  # the sub-CAs our hierarchy may put under this CA
    path = [certificate]
    unused = [c for c in chain if c != certificate]
    while path[-1].issuer != path[-1].subject:
        child = path[-1]
        parent = next((c for c in unused if _issued_by(child, c)), None)
        if parent is None:
            parent = next((c for c in stored if _issued_by(child, c)), None)
        else:
            unused.remove(parent)
        if parent is None:
            raise _violation(
                "install.chain",
                f"nothing in --chain or the trust store issued {child.subject.rfc4514_string()!r} "
                f"(its issuer is {child.issuer.rfc4514_string()!r})",
            )
        _check_link(child, parent, cas_below=len(path) - 1 + below)
        path.append(parent)
        if len(path) > _MAX_CHAIN_CERTIFICATES + 1:
            raise _violation("install.chain", "the path to a root is too long")
    if not _issued_by(path[-1], path[-1]):
        raise _violation("install.anchor", f"the root {path[-1].subject.rfc4514_string()!r} is not self-signed")
    if unused:
        names = ", ".join(repr(c.subject.rfc4514_string()) for c in unused)
        raise _violation("install.chain", f"--chain holds certificates that are not on the path: {names}")
    return path[1:-1], path[-1]


def _check_link(child: x509.Certificate, parent: x509.Certificate, *, cas_below: int) -> None:
    name = parent.subject.rfc4514_string()
    constraints = _extension(parent, x509.BasicConstraints)
    if constraints is None or not constraints.value.ca:
        raise _violation("install.chain", f"{name!r} is not a CA")
    usage = _extension(parent, x509.KeyUsage)
    if usage is not None and not usage.value.key_cert_sign:
        raise _violation("install.chain", f"{name!r} may not sign certificates (no keyCertSign)")
    limit = constraints.value.path_length
    # RFC 5280 §4.2.1.9: pathLen counts the CA certificates that may follow it -- the ones between it
    # and ours, ours, and the sub-CAs our hierarchy puts below ours.
    if limit is not None and limit < cas_below + 1:
        raise _violation(
            "install.chain",
            f"{name!r} has pathLenConstraint {limit}; {cas_below + 1} CA certificate(s) would follow it",
        )
    if utc(child.not_valid_before_utc) < utc(parent.not_valid_before_utc) or utc(child.not_valid_after_utc) > utc(
        parent.not_valid_after_utc
    ):
        raise _violation(
            "install.validity",
            f"{child.subject.rfc4514_string()!r} is valid beyond its issuer {name!r} "
            f"({parent.not_valid_before_utc.isoformat()} to {parent.not_valid_after_utc.isoformat()})",
        )


def _active_roots(session: Session) -> list[TrustedRootRow]:
    return list(
        session.execute(select(TrustedRootRow).where(TrustedRootRow.removed_at.is_(None))).scalars()  # type: ignore[union-attr]
    )


def _trusted(session: Session, anchor: x509.Certificate) -> bool:
    sha256 = fingerprint(anchor)
    return any(row.sha256 == sha256 for row in _active_roots(session))


def install_ca_certificate(
    ctx: Context, ca_id: str, certificate: bytes, chain: bytes | None, actor: str
) -> InstallPlan:
    """Check and install, in one transaction (the request row is locked against a second install)."""
    with ctx.database.write() as session:
        session.execute(select(CaRequestRow).where(CaRequestRow.id == ca_id).with_for_update())
        plan = plan_installation(ctx, session, ca_id, certificate, chain)
        request = awaiting(session, ca_id)
        now = ctx.clock.now()
        installed = plan.certificate
        foreign = "".join(c.public_bytes(_PEM).decode() for c in (*plan.intermediates, plan.anchor))
        session.add(
            CertificateAuthorityRow(
                id=ca_id,
                pki=request.pki,
                standard=request.standard,
                parent_id=None,
                key_id=request.key_id,
                key_backend=request.key_backend,
                issues=request.issues,
                rsa_pss=request.rsa_pss,
                serial=serial_hex(installed.serial_number),
                sha256=fingerprint(installed),
                subject=installed.subject.rfc4514_string(),
                not_before=installed.not_valid_before_utc,
                not_after=installed.not_valid_after_utc,
                der=installed.public_bytes(serialization.Encoding.DER),
                created_at=now,
                foreign_chain=foreign,
            )
        )
        session.delete(request)
        session.flush()
        if plan.anchor_use is not None:
            insert_root(session, plan.anchor, plan.anchor_use, None, "ca-install", now, actor)
        audit.append(
            session,
            at=now,
            actor=actor,
            action="ca-install",
            ca_id=ca_id,
            serial=serial_hex(installed.serial_number),
            details={
                "ca": ca_id,
                "subject": installed.subject.rfc4514_string(),
                "issuer": installed.issuer.rfc4514_string(),
                "sha256": fingerprint(installed),
                "intermediates": [fingerprint(c) for c in plan.intermediates],
                "anchor": hashlib.sha256(plan.anchor.public_bytes(serialization.Encoding.DER)).hexdigest(),
                "anchor_added": plan.anchor_use is not None,
            },
        )
    return plan
