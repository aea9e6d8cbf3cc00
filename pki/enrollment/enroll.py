"""The EST enrollment decision (RFC 7030 §3.3, §4.2): who is asking, for which certificate, and issuing it.

Three credentials, checked before the CSR is even decoded (RFC 7030 §3.2.3: authenticate first):

- ``/simplereenroll``: the TLS client certificate is the certificate being renewed (§3.3.2,
  §4.2.2). It must be one this PKI issued (its exact DER is in our store), valid by the PKI's
  clock, neither revoked, on hold nor already renewed; the CSR must carry its subject and
  subjectAltName unchanged (the key may change, and our renewal policy says it must). The new
  certificate supersedes it, in the same transaction, which also re-checks that nobody renewed
  it meanwhile: one certificate renews once.
- ``/simpleenroll`` with HTTP Basic: ``identity:secret``, a one-time secret the operator registered
  (:mod:`pki.enrollment.secrets`), consumed in the issuance's transaction.
- ``/simpleenroll`` with a bootstrap client certificate (:mod:`pki.enrollment.bootstrap`): a
  device certificate from a CA ``EVPKI_EST_BOOTSTRAP_CAS`` names, for a station whose registered
  serial is the certificate's CN.

Then the request goes through the same issuance as every other path (:func:`pki.ca.issuance.issue`):
the CSR policy of the profile with the identity the credential vouches for -- a station's CN is its
registered serial, an SECC's CN its SECC id with DC=CPO, a PCID's CN the PCID. Every refusal is a
domain error (Unauthenticated 401, InvalidInput 400, PolicyViolation 403 at the EST edge, NotFound
404, Conflict 409) and stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, bindparam, select

from pki.ca.issuance import IssueRequest, issue
from pki.ca.policy import MAX_CSR_CHARS, RequestIdentity, load_csr
from pki.ca.profiles import ProfileName
from pki.core.clock import utc
from pki.core.errors import Conflict, InvalidInput, PolicyViolation, Unauthenticated
from pki.enrollment import bootstrap, secrets
from pki.enrollment.targets import Target
from pki.runtime.context import Context
from pki.runtime.views import CertificateView
from pki.store.models import CertificateRow, StationRow

__all__ = ["MAX_BODY_BYTES", "REENROLL_PROFILES", "Enrolled", "EnrollmentRequest", "certs_only", "decode_csr", "enroll"]

# Profiles a certificate may be renewed into over EST: those whose identity a renewal keeps.
# Contract certificates belong to contract provisioning (the registry tracks the current one).
REENROLL_PROFILES = (ProfileName.STATION.value, ProfileName.SECC.value, ProfileName.OEM_PROVISIONING.value)
# RFC 7030 §4.2.1: base64 of the DER request; a CSR of OCPP's 5,500 characters and line breaks fit.
MAX_BODY_BYTES = 2 * MAX_CSR_CHARS
_CERTIFICATE = CertificateRow.__table__  # type: ignore[attr-defined]
_STATION = StationRow.__table__  # type: ignore[attr-defined]
# Core, not the ORM: this runs on every renewal.
_PRESENTED = select(
    _CERTIFICATE.c.id,
    _CERTIFICATE.c.issuer_id,
    _CERTIFICATE.c.serial,
    _CERTIFICATE.c.profile,
    _CERTIFICATE.c.identity,
    _CERTIFICATE.c.station_serial,
    _CERTIFICATE.c.status,
    _CERTIFICATE.c.superseded_by_id,
    _CERTIFICATE.c.not_before,
    _CERTIFICATE.c.not_after,
).where(_CERTIFICATE.c.sha256 == bindparam("sha256"))


@dataclass(frozen=True, slots=True)
class EnrollmentRequest:
    target: Target
    body: bytes  # the HTTP body: base64 of the DER PKCS#10 (a PEM request is accepted as well)
    renew: bool  # /simplereenroll
    client_certificate: bytes | None = None  # DER of the TLS client certificate, if one was presented
    basic: tuple[str, str] | None = None  # HTTP Basic (user, password), if sent


@dataclass(frozen=True, slots=True)
class Enrolled:
    certificate: CertificateView
    pkcs7: bytes  # DER certs-only SignedData holding the issued certificate (RFC 7030 §4.2.3)
    authenticated_by: str  # the audit actor: est:secret:<id>, est:reenroll:<ca>/<serial>, est:bootstrap:<sha256>


@dataclass(frozen=True, slots=True)
class _Plan:
    profile: str
    identity: RequestIdentity
    ca_id: str | None
    renew: bool
    actor: str
    in_transaction: Callable[[Connection, int], None] | None = None


def certs_only(certificates: list[x509.Certificate]) -> bytes:
    """A degenerate PKCS#7 SignedData of ``certificates`` (certs-only, RFC 7030 §4.1.3 / §4.2.3), DER."""
    return pkcs7.serialize_certificates(certificates, serialization.Encoding.DER)


def decode_csr(body: bytes) -> bytes:
    """The PKCS#10 of an EST body: base64 of DER (whitespace allowed), or a PEM request."""
    stripped = body.strip()
    if stripped.startswith(b"-----BEGIN"):
        return stripped
    if not stripped:
        raise InvalidInput("the request body is empty; send the base64 of a DER PKCS#10 request")
    try:
        der = base64.b64decode(b"".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the request body is not base64 (RFC 7030 §4.2.1: base64 of a DER PKCS#10)") from None
    return der


def enroll(ctx: Context, request: EnrollmentRequest) -> Enrolled:
    """Authenticate the request, then issue its certificate through the one issuance pipeline."""
    if len(request.body) > MAX_BODY_BYTES:
        raise InvalidInput(f"the request is {len(request.body)} bytes; at most {MAX_BODY_BYTES} are accepted")
    if request.renew:
        plan = _reenrollment(ctx, request)
    elif request.basic is not None:
        plan = _with_secret(ctx, request)
    elif request.client_certificate is not None:
        plan = _with_bootstrap(ctx, request)
    else:
        raise Unauthenticated(
            "EST enrollment needs HTTP Basic credentials (identity and one-time enrollment secret) "
            "or a bootstrap client certificate"
        )
    csr = decode_csr(request.body)
    if plan.renew:
        _check_same_names(request.client_certificate or b"", csr)
    issued: list[x509.Certificate] = []
    result = issue(
        ctx,
        IssueRequest(
            profile=plan.profile,
            csr=csr,
            identity=plan.identity,
            ca_id=plan.ca_id,
            renew=plan.renew,
            before_store=issued.append,
            in_transaction=plan.in_transaction,
        ),
        plan.actor,
    )
    return Enrolled(result.certificate, certs_only([issued[-1]]), plan.actor)


def _check_target(target: Target, profile: str, what: str) -> None:
    if target.profile is not None and target.profile != profile:
        raise PolicyViolation(
            "est.target-profile", f"{what} is for {profile} certificates; {target.name} issues {target.profile}"
        )


def _identity_for(ctx: Context, profile: str, identity: str, station_serial: str | None = None) -> RequestIdentity:
    if profile == ProfileName.STATION.value:
        with ctx.database.engine.connect() as connection:
            station = connection.execute(
                select(_STATION.c.serial, _STATION.c.status).where(_STATION.c.identity == identity)
            ).first()
        if station is None:
            if station_serial is None:
                raise PolicyViolation(
                    "est.station-unregistered", f"station {identity!r} is not registered (`evpki station add`)"
                )
            return RequestIdentity(station_id=identity, station_serial=station_serial)
        if station.status != "active":
            raise PolicyViolation("est.station-disabled", f"station {identity!r} is disabled")
        return RequestIdentity(station_id=identity, station_serial=station.serial)
    if profile == ProfileName.SECC.value:
        return RequestIdentity(secc_id=identity)
    if profile == ProfileName.OEM_PROVISIONING.value:
        return RequestIdentity(pcid=identity)
    raise PolicyViolation("est.profile", f"{profile} certificates are not enrolled over EST")


# -- /simplereenroll -----------------------------------------------------------------------------


def _reenrollment(ctx: Context, request: EnrollmentRequest) -> _Plan:
    der = request.client_certificate
    if der is None:
        raise Unauthenticated(
            "simplereenroll authenticates with the certificate being renewed: present it as the TLS client certificate"
        )
    fingerprint = hashlib.sha256(der).hexdigest()
    with ctx.database.engine.connect() as connection:
        row = connection.execute(_PRESENTED, {"sha256": fingerprint}).first()
    if row is None:
        raise PolicyViolation(
            "est.reenroll-unknown",
            "the client certificate was not issued by this PKI; a first enrollment uses simpleenroll",
        )
    now = ctx.clock.now()
    name = f"certificate {row.serial} of {row.issuer_id}"
    if row.status != "valid":
        raise PolicyViolation("est.reenroll-revoked", f"{name} is {row.status}")
    if row.superseded_by_id is not None:
        raise PolicyViolation("est.reenroll-superseded", f"{name} has been renewed already; renew the newer one")
    if not utc(row.not_before) <= now < utc(row.not_after):
        raise PolicyViolation("est.reenroll-expired", f"{name} is not inside its validity period")
    if row.profile not in REENROLL_PROFILES:
        raise PolicyViolation("est.profile", f"{row.profile} certificates are not renewed over EST")
    _check_target(request.target, row.profile, name)
    ca_id = request.target.ca_id
    if ca_id is None:
        directory = ctx.cached_ca_directory()
        issuer = directory.cas.get(row.issuer_id) if directory is not None else None
        if issuer is not None and row.profile in issuer.issues:
            ca_id = row.issuer_id  # stay with the issuer while it issues; otherwise the profile's current one
    identity = _identity_for(ctx, row.profile, row.identity or "", row.station_serial)
    renewed_id = row.id

    def still_current(connection: Connection, new_id: int) -> None:
        # The renewal superseded every current certificate of the identity; ours must be among them.
        found = connection.execute(
            select(_CERTIFICATE.c.superseded_by_id, _CERTIFICATE.c.status).where(_CERTIFICATE.c.id == renewed_id)
        ).first()
        if found is None or found.superseded_by_id != new_id or found.status != "valid":
            raise Conflict(f"{name} was renewed or revoked meanwhile; nothing was issued")

    return _Plan(
        row.profile, identity, ca_id, True, f"est:reenroll:{row.issuer_id}/{row.serial}", in_transaction=still_current
    )


def _names(subject: x509.Name, extensions: x509.Extensions) -> tuple[x509.Name, list[x509.GeneralName]]:
    try:
        san = list(extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        san = []
    return subject, san


def _check_same_names(certificate_der: bytes, csr_pem_or_der: bytes) -> None:
    """RFC 7030 §4.2.2: a renewal's Subject and SubjectAltName are those of the certificate it renews."""
    csr = load_csr(csr_pem_or_der)
    certificate = x509.load_der_x509_certificate(certificate_der)
    try:
        requested = _names(csr.subject, csr.extensions)
    except ValueError:
        raise InvalidInput("the CSR's extension request cannot be parsed") from None
    current = _names(certificate.subject, certificate.extensions)
    if requested[0] != current[0]:
        raise PolicyViolation(
            "est.reenroll-subject",
            f"the CSR subject {requested[0].rfc4514_string()!r} is not the current certificate's "
            f"{current[0].rfc4514_string()!r} (RFC 7030 §4.2.2)",
        )
    if sorted(map(repr, requested[1])) != sorted(map(repr, current[1])):
        raise PolicyViolation(
            "est.reenroll-san", "the CSR subjectAltName differs from the current certificate's (RFC 7030 §4.2.2)"
        )


# -- /simpleenroll with a one-time secret ----------------------------------------------------------


def _with_secret(ctx: Context, request: EnrollmentRequest) -> _Plan:
    assert request.basic is not None
    user, password = request.basic
    secret = secrets.authenticate_secret(ctx, user, password)
    what = f"enrollment secret {secret.id}"
    _check_target(request.target, secret.profile, what)
    ca_id = request.target.ca_id or secret.ca_id
    if request.target.ca_id and secret.ca_id and request.target.ca_id != secret.ca_id:
        raise PolicyViolation("est.secret-ca", f"{what} is for CA {secret.ca_id}, not {request.target.ca_id}")
    identity = _identity_for(ctx, secret.profile, secret.identity)

    def consume(connection: Connection, new_id: int) -> None:
        stored = connection.execute(
            select(_CERTIFICATE.c.issuer_id, _CERTIFICATE.c.serial).where(_CERTIFICATE.c.id == new_id)
        ).one()
        secrets.consume_on(connection, secret.id, ctx.clock.now(), stored.issuer_id, stored.serial)

    return _Plan(secret.profile, identity, ca_id, False, f"est:secret:{secret.id}", in_transaction=consume)


# -- /simpleenroll with a bootstrap certificate ----------------------------------------------------


def _with_bootstrap(ctx: Context, request: EnrollmentRequest) -> _Plan:
    assert request.client_certificate is not None
    anchors = bootstrap.bootstrap_anchors(ctx)
    if not anchors.certificates:
        raise PolicyViolation(
            "est.bootstrap-ca",
            "no bootstrap CA is configured (EVPKI_EST_BOOTSTRAP_CAS): a first enrollment needs HTTP Basic "
            "with a one-time secret, a renewal uses simplereenroll",
        )
    certificate = bootstrap.check_bootstrap(ctx, request.client_certificate, anchors)
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise PolicyViolation("est.bootstrap-cn", "the bootstrap certificate must name the device serial as its one CN")
    serial = str(names[0].value)
    with ctx.database.engine.connect() as connection:
        stations = connection.execute(
            select(_STATION.c.identity, _STATION.c.status).where(_STATION.c.serial == serial).limit(2)
        ).all()
    if not stations:
        raise PolicyViolation("est.bootstrap-station", f"no registered station has serial {serial!r}")
    if len(stations) > 1:
        raise PolicyViolation("est.bootstrap-ambiguous", f"serial {serial!r} is registered for several stations")
    _check_target(request.target, ProfileName.STATION.value, "a bootstrap certificate")
    if stations[0].status != "active":
        raise PolicyViolation("est.station-disabled", f"station {stations[0].identity!r} is disabled")
    identity = RequestIdentity(station_id=stations[0].identity, station_serial=serial)
    fingerprint = hashlib.sha256(request.client_certificate).hexdigest()
    return _Plan(ProfileName.STATION.value, identity, request.target.ca_id, False, f"est:bootstrap:{fingerprint[:16]}")
