"""The issuance pipeline: parse the CSR → pick the issuer → apply policy → sign → store → audit.

Signing happens before the write transaction so the transaction stays short; if the final
checks inside it fail (the issuer was revoked meanwhile, a serial collided) nothing is
stored. Renewal is issuance plus marking the identity's previous certificates superseded,
in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pki import audit
from pki.authority import build_certificate, fingerprint, new_serial, serial_hex, validity_window
from pki.context import ORGANIZATION_SETTING, Context
from pki.errors import Conflict, NotFound, PolicyViolation, Unavailable
from pki.policy import RequestIdentity, check_request, load_csr
from pki.profiles import Profile, get_profile
from pki.store import repository
from pki.store.models import CertificateAuthorityRow, CertificateRow
from pki.views import CertificateView, IssuedCertificate

__all__ = ["IssueRequest", "issue"]

_SERIAL_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class IssueRequest:
    profile: str
    csr: bytes | str
    identity: RequestIdentity
    ca_id: str | None = None
    validity: dt.timedelta | None = None
    renew: bool = False


def issue(ctx: Context, request: IssueRequest, actor: str) -> IssuedCertificate:
    csr = load_csr(request.csr)
    profile = get_profile(request.profile)
    with ctx.database.read() as session:
        ca_row = _issuer_for(session, profile, request.ca_id)
        ca_row, issuer = ctx.issuer(session, ca_row.id)
        ctx.check_issuer_usable(session, ca_row)
        organization = repository.get_setting(session, ORGANIZATION_SETTING)
        if organization is None:
            raise Unavailable("the PKI is not initialised; run `evpki init` first")
        identity = request.identity
        if request.renew:
            identity = _renewal_identity(session, profile, identity)
        chain = tuple(ctx.chain(session, ca_row.id)[:-1])
    approved = check_request(csr, profile, standard=ca_row.standard, organization=organization, identity=identity)
    validity = _validity(profile, request.validity)
    for attempt in range(_SERIAL_ATTEMPTS):
        now = ctx.clock.now()
        not_before, not_after = validity_window(now, validity, issuer.certificate)
        serial = new_serial()
        certificate = build_certificate(
            issuer=issuer,
            subject=approved.subject,
            public_key=approved.public_key,
            profile=profile,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
            public_url=ctx.settings.public_base_url,
            dns_names=approved.dns_names,
            ip_addresses=approved.ip_addresses,
        )
        row = CertificateRow(
            issuer_id=ca_row.id,
            serial=serial_hex(serial),
            sha256=fingerprint(certificate),
            profile=profile.name.value,
            subject=certificate.subject.rfc4514_string(),
            identity=approved.identity,
            station_serial=approved.station_serial,
            not_before=not_before,
            not_after=not_after,
            der=certificate.public_bytes(serialization.Encoding.DER),
            created_at=now,
        )
        try:
            with ctx.database.write() as session:
                ctx.check_issuer_usable(session, repository.get_ca(session, ca_row.id))
                _store(session, row, certificate, request.renew, actor, now)
            return IssuedCertificate(CertificateView.from_row(row, now), chain)
        except IntegrityError as exc:
            # Only a serial collision (126 random bits) can land here; any other integrity
            # failure is a bug and must not be retried silently.
            if "serial" not in str(exc.orig).lower() or attempt == _SERIAL_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _store(
    session: Session, row: CertificateRow, certificate: x509.Certificate, renew: bool, actor: str, now: dt.datetime
) -> list[str]:
    replaced: list[CertificateRow] = []
    if renew:
        replaced = repository.current_for_identity(session, row.profile, row.identity or "")
        if not replaced:
            raise NotFound(f"no current {row.profile} certificate for {row.identity!r} to renew")
        new_key = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for old in replaced:
            old_key = x509.load_der_x509_certificate(old.der).public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            if old_key == new_key:
                raise Conflict("renewal must use a new key pair; the CSR reuses the current certificate's key")
    repository.add_certificate(session, row)
    repository.supersede(session, [old.id for old in replaced if old.id is not None], row.id or 0)
    details = {
        "profile": row.profile,
        "identity": row.identity,
        "subject": row.subject,
        "sha256": row.sha256,
        "not_after": row.not_after.isoformat(),
    }
    if renew:
        details["supersedes"] = [f"{old.issuer_id}/{old.serial}" for old in replaced]
    audit.append(
        session,
        at=now,
        actor=actor,
        action="renew" if renew else "issue",
        ca_id=row.issuer_id,
        serial=row.serial,
        details=details,
    )
    return [old.serial for old in replaced]


def _issuer_for(session: Session, profile: Profile, ca_id: str | None) -> CertificateAuthorityRow:
    if ca_id is not None:
        ca = repository.get_ca(session, ca_id)
        if profile.name.value not in ca.issues.split(","):
            raise PolicyViolation(
                "issuer.profile", f"CA {ca_id} does not issue {profile.name.value} certificates"
            )
        return ca
    candidates = [ca for ca in repository.list_cas(session) if profile.name.value in ca.issues.split(",")]
    if not candidates:
        raise NotFound(f"no CA issues {profile.name.value} certificates; run `evpki init` or name one with --ca")
    if len(candidates) > 1:
        names = ", ".join(ca.id for ca in candidates)
        raise Conflict(f"several CAs issue {profile.name.value} certificates ({names}); name one with --ca")
    return candidates[0]


def _renewal_identity(session: Session, profile: Profile, identity: RequestIdentity) -> RequestIdentity:
    """A renewal keeps the identity: the station serial comes from the certificate being replaced."""
    key = identity.station_id or identity.secc_id or identity.fqdn or identity.emaid or identity.pcid
    if not key:
        raise NotFound("a renewal needs the identity whose certificate it replaces")
    current = repository.current_for_identity(session, profile.name.value, key)
    if not current:
        raise NotFound(f"no current {profile.name.value} certificate for {key!r} to renew; issue one first")
    old_serial = current[-1].station_serial
    if identity.station_serial and old_serial and identity.station_serial != old_serial:
        raise PolicyViolation(
            "renewal.serial-changed",
            f"station {key!r} has serial {old_serial!r}; a renewal cannot change it to {identity.station_serial!r}",
        )
    if old_serial and not identity.station_serial:
        return RequestIdentity(
            station_id=identity.station_id, station_serial=old_serial, secc_id=identity.secc_id,
            fqdn=identity.fqdn, emaid=identity.emaid, pcid=identity.pcid,
        )
    return identity


def _validity(profile: Profile, requested: dt.timedelta | None) -> dt.timedelta:
    if requested is None:
        return profile.default_validity
    if requested > profile.max_validity:
        raise PolicyViolation(
            "validity.max",
            f"{profile.name.value} certificates are valid for at most {profile.max_validity.days} days",
        )
    return requested
