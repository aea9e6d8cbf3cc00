"""Who may open an OCPP connection: the decision the gateway asks for before it accepts the WebSocket upgrade.

Security profile 3 (OCPP 2.0.1 Part 2 §1.3.7, A00.FR.401-430): after the TLS handshake verified
the client certificate's path to a CSO root (the CAs of :func:`client_ca_certificates`),
:func:`admit_certificate` looks the certificate up among those this PKI issued and the identity in
the URL up in the station registry:

- the identity is registered, active and uses profile 3 (A00.FR.001/002: one profile per station);
- the certificate is one this PKI issued (looked up by its SHA-256 fingerprint) with the ``station``
  profile from a CA of the CSO hierarchy (A00.FR.403, A00.FR.705: validity checked with the CA);
- it is inside its validity period by the PKI's clock (expired certificates are refused; the
  optional A00.FR.429 exception for expired certificates is not offered);
- it is not revoked nor on hold (A00.FR.702); a *superseded* certificate is still accepted, because
  a station that cannot connect with its renewed certificate falls back to the old one (A02.FR.28);
- subject O equals the CSO organisation (A00.FR.404; equality, not a substring, since our CA
  issues exactly that O) and CN equals the serial registered for the identity (A00.FR.405/511);
- it was issued for this identity (or only for its serial): two registered stations that share a
  serial cannot use each other's certificates.

Security profile 2 (A00.FR.201-206): :func:`admit_password` checks the HTTP Basic credentials the
transport parsed, user = identity, against the station's scrypt hash; the station must be active
and on profile 2.

Each check returns an :class:`Admission` or a :class:`Refusal` with the HTTP status, the security
event type to record (A00.FR.408 ``InvalidChargingStationCertificate``) and a reason. These are
blocking database calls: the gateway runs them in a worker thread (through ``pki.stations``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from http import HTTPStatus

from cryptography import x509
from cryptography.x509.oid import NameOID

from pki.core.errors import NotFound
from pki.runtime.context import Context
from pki.runtime.views import CaView, CertificateView, certificate_view
from pki.stations import registry
from pki.stations.registry import StationView
from pki.store import repository

__all__ = [
    "EVENT_BASIC_AUTH",
    "EVENT_INVALID_CERTIFICATE",
    "EVENT_REFUSED",
    "Admission",
    "Refusal",
    "admit_certificate",
    "admit_password",
    "client_ca_certificates",
    "station_issuer_ids",
]

EVENT_INVALID_CERTIFICATE = "InvalidChargingStationCertificate"  # A00.FR.408
EVENT_BASIC_AUTH = "FailedToAuthenticateAtCsms"  # the station-side name of the same failure, Appendix 1
EVENT_REFUSED = "ConnectionRefused"  # identity unknown, disabled, or registered for another profile


@dataclass(frozen=True, slots=True)
class Admission:
    station: StationView
    certificate: x509.Certificate | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    status: HTTPStatus
    event_type: str
    reason: str


def _station(ctx: Context, identity: str, profile: int) -> StationView | Refusal:
    try:
        station = registry.get_station(ctx, identity)
    except NotFound:
        return Refusal(HTTPStatus.FORBIDDEN, EVENT_REFUSED, "station identity is not registered")
    if station.status != "active":
        return Refusal(HTTPStatus.FORBIDDEN, EVENT_REFUSED, "station is disabled")
    if station.security_profile != profile and station.pending_security_profile != profile:
        # A00.FR.001/002: the CSMS drops a station that connects with a profile other than its own.
        return Refusal(
            HTTPStatus.FORBIDDEN,
            EVENT_REFUSED,
            f"station is registered for security profile {station.security_profile}, connected with {profile}",
        )
    return station


def _subject(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(oid)]


def admit_certificate(
    ctx: Context,
    identity: str,
    certificate_der: bytes | None,
    *,
    station_issuers: frozenset[str] | None = None,
) -> Admission | Refusal:
    """Profile 3: may the holder of ``certificate_der`` (already path-validated by TLS) speak as ``identity``?

    ``station_issuers`` (the CA ids that issue station certificates) may be passed to save a query.
    """
    if not certificate_der:
        return Refusal(HTTPStatus.UNAUTHORIZED, EVENT_INVALID_CERTIFICATE, "no client certificate")  # A00.FR.407
    station = _station(ctx, identity, 3)
    if isinstance(station, Refusal):
        return station
    certificate = x509.load_der_x509_certificate(certificate_der)
    fingerprint = hashlib.sha256(certificate_der).hexdigest()
    bad = HTTPStatus.FORBIDDEN, EVENT_INVALID_CERTIFICATE
    try:
        view, organization = _issued(ctx, fingerprint)
    except NotFound:
        return Refusal(*bad, f"certificate SHA-256 {fingerprint} was not issued by this PKI")
    if view.profile != "station" or view.issuer_id not in (station_issuers or station_issuer_ids(ctx)):
        return Refusal(*bad, f"certificate {view.serial} is a {view.profile} certificate from {view.issuer_id}")
    now = ctx.clock.now()
    if now < view.not_before:
        return Refusal(*bad, f"certificate {view.serial} is not valid before {view.not_before.isoformat()}")
    if view.status in ("revoked", "on-hold", "expired"):
        return Refusal(*bad, f"certificate {view.serial} is {view.status}")
    if _subject(certificate, NameOID.ORGANIZATION_NAME) != [organization]:
        return Refusal(
            *bad, f"certificate O {_subject(certificate, NameOID.ORGANIZATION_NAME)} is not {organization!r}"
        )
    if _subject(certificate, NameOID.COMMON_NAME) != [station.serial]:
        return Refusal(
            *bad,
            f"certificate CN {_subject(certificate, NameOID.COMMON_NAME)} is not the station serial {station.serial!r}",
        )
    if view.identity not in (identity, station.serial):
        # Serials are not unique in the registry: a certificate issued for another identity with the
        # same serial must not open this one's connection (A00.FR.427: one certificate per station).
        return Refusal(*bad, f"certificate {view.serial} was issued for station {view.identity!r}")
    if station.security_profile != 3:
        # A05: the upgrade the station accepted takes effect now; profile 2 refuses it from here on.
        station = registry.apply_security_profile(ctx, identity, 3)
    return Admission(station, certificate)


def _issued(ctx: Context, fingerprint: str) -> tuple[CertificateView, str | None]:
    """The certificate of this SHA-256 fingerprint as this PKI stored it, and the CSO organisation."""
    with ctx.database.read() as session:
        row = repository.find_certificate(session, fingerprint)
        return certificate_view(session, row, ctx.clock.now()), ctx.organization(session)


def _cas(ctx: Context) -> list[CaView]:
    with ctx.database.read() as session:
        return [CaView.from_row(row) for row in repository.list_cas(session)]


def station_issuer_ids(ctx: Context) -> frozenset[str]:
    """The CAs of the hierarchy that issues ``station`` certificates (``cso-root``/``cso-sub``).

    The whole hierarchy, not only today's issuer: after ``evpki ca rollover`` the old ``cso-sub``
    issues nothing new, but its stations keep connecting with its certificates until renewed.
    """
    cas = _cas(ctx)
    pkis = {ca.pki for ca in cas if "station" in ca.issues}
    return frozenset(ca.id for ca in cas if ca.pki in pkis)


def client_ca_certificates(ctx: Context) -> list[x509.Certificate]:
    """The CSO hierarchy's CA certificates (roots and sub-CAs) that station certificates chain to.

    The sub-CAs are included, so a station that sends only its leaf is still verified; the path
    must end at a self-signed root of the same hierarchy (OpenSSL's default, no partial chains).
    """
    cas = _cas(ctx)
    issuers = [ca for ca in cas if "station" in ca.issues]
    if not issuers:
        raise NotFound("no CA issues station certificates; run `evpki init`")
    return [x509.load_pem_x509_certificate(ca.certificate_pem.encode()) for ca in cas if ca.pki == issuers[0].pki]


def admit_password(ctx: Context, identity: str, credentials: tuple[str, str] | None) -> Admission | Refusal:
    """Profile 2: do the Basic credentials ``(user, password)`` name ``identity`` (A00.FR.202) with its password?"""
    if credentials is None:
        return Refusal(HTTPStatus.UNAUTHORIZED, EVENT_BASIC_AUTH, "no HTTP Basic credentials")
    user, password = credentials
    if user != identity:
        return Refusal(HTTPStatus.UNAUTHORIZED, EVENT_BASIC_AUTH, "Basic auth user is not the station identity")
    station = registry.check_password(ctx, identity, password)
    if station is None:
        # One answer for unknown, disabled, other-profile and wrong password: no oracle for identities.
        return Refusal(HTTPStatus.UNAUTHORIZED, EVENT_BASIC_AUTH, "wrong station identity or password")
    return Admission(station)
