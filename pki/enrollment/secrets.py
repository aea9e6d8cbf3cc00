"""One-time EST enrollment secrets: registered by the operator, used once over HTTP Basic (RFC 7030 §3.2.3).

``evpki est secret add --identity CP-0001 --profile station`` makes a secret of 24 random bytes
(``est_`` + URL-safe base64), prints it once and stores only its SHA-256 (as API tokens do: a
secret of that entropy needs no slow hash). The client sends ``identity:secret`` as HTTP Basic
credentials on its first ``/simpleenroll``. A secret is for one identity and one profile
(optionally one CA), expires (``--ttl``, default ``EVPKI_EST_SECRET_TTL``), and is consumed by
:func:`consume_on` inside the transaction that stores the certificate: a refused CSR leaves it
unused, and two requests racing with the same secret get one certificate between them.

Which identity a profile's secret names (and so which CSR CN the issuance policy then demands):
``station`` the OCPP identity of a registered station (the CN must be its registered serial),
``secc`` the SECC id (the CN itself), ``oem-provisioning`` the PCID (the CN itself).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, update

from pki.ca.profiles import ProfileName
from pki.core.clock import utc
from pki.core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from pki.operations import audit
from pki.runtime.context import Context
from pki.stations import registry
from pki.store import repository
from pki.store.models import EstSecretRow

__all__ = [
    "SECRET_PROFILES",
    "SecretView",
    "add_secret",
    "authenticate_secret",
    "consume_on",
    "list_secrets",
    "revoke_secret",
]

SECRET_PROFILES = (ProfileName.STATION.value, ProfileName.SECC.value, ProfileName.OEM_PROVISIONING.value)
_PREFIX = "est_"
_SECRET = re.compile(r"^est_[A-Za-z0-9_-]{32}$")
_IDENTITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9*\-_=+|@.]{0,63}$")  # no ':' (Basic auth), no spaces
_MAX_TTL = dt.timedelta(days=366)
_SECRETS = EstSecretRow.__table__  # type: ignore[attr-defined]
_BY_HASH = select(_SECRETS).where(_SECRETS.c.secret_hash == bindparam("secret_hash"))


@dataclass(frozen=True, slots=True)
class SecretView:
    id: int
    identity: str
    profile: str
    ca_id: str | None
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime
    used_at: dt.datetime | None
    certificate_issuer: str | None
    certificate_serial: str | None
    revoked_at: dt.datetime | None
    status: str  # active | used | revoked | expired

    @classmethod
    def from_row(cls, row: object, now: dt.datetime) -> SecretView:
        used_at = _maybe_utc(row.used_at)  # type: ignore[attr-defined]
        revoked_at = _maybe_utc(row.revoked_at)  # type: ignore[attr-defined]
        expires_at = utc(row.expires_at)  # type: ignore[attr-defined]
        status = "used" if used_at else "revoked" if revoked_at else "expired" if expires_at <= now else "active"
        return cls(
            id=int(row.id),  # type: ignore[attr-defined]
            identity=row.identity,  # type: ignore[attr-defined]
            profile=row.profile,  # type: ignore[attr-defined]
            ca_id=row.ca_id,  # type: ignore[attr-defined]
            created_at=utc(row.created_at),  # type: ignore[attr-defined]
            created_by=row.created_by,  # type: ignore[attr-defined]
            expires_at=expires_at,
            used_at=used_at,
            certificate_issuer=row.certificate_issuer,  # type: ignore[attr-defined]
            certificate_serial=row.certificate_serial,  # type: ignore[attr-defined]
            revoked_at=revoked_at,
            status=status,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "identity": self.identity,
            "profile": self.profile,
            "ca": self.ca_id,
            "status": self.status,
            "createdAt": self.created_at.isoformat(),
            "createdBy": self.created_by,
            "expiresAt": self.expires_at.isoformat(),
            "usedAt": self.used_at.isoformat() if self.used_at else None,
            "certificate": (
                {"issuer": self.certificate_issuer, "serial": self.certificate_serial}
                if self.certificate_serial
                else None
            ),
            "revokedAt": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _maybe_utc(value: dt.datetime | None) -> dt.datetime | None:
    return utc(value) if value is not None else None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_profile(profile: str) -> str:
    if profile not in SECRET_PROFILES:
        raise InvalidInput(f"enrollment secrets are for {', '.join(SECRET_PROFILES)} certificates, not {profile!r}")
    return profile


def add_secret(
    ctx: Context,
    *,
    identity: str,
    profile: str,
    ttl: dt.timedelta | None,
    ca_id: str | None,
    actor: str,
) -> tuple[SecretView, str]:
    """A new secret: its view and the secret itself, which is not stored and cannot be shown again.

    Everything that can be checked now is: the identity's form, a station's registration, that the
    CA exists and issues the profile. The CSR itself is judged at enrollment, by the issuance policy.
    """
    _check_profile(profile)
    if not _IDENTITY.match(identity):
        raise InvalidInput(
            f"{identity!r} is not an enrollment identity (1-64 letters, digits and *-_=+|@., no ':' or spaces)"
        )
    lifetime = ttl if ttl is not None else ctx.settings.duration("est_secret_ttl")
    if lifetime <= dt.timedelta(0) or lifetime > _MAX_TTL:
        raise InvalidInput(f"an enrollment secret lives more than 0 and at most {_MAX_TTL.days} days")
    secret = _PREFIX + secrets.token_urlsafe(24)
    now = ctx.clock.now()
    with ctx.database.write() as session:
        if profile == ProfileName.STATION.value:
            registry.station_row(session, identity)  # NotFound for a station the registry does not know
        if ca_id is not None:
            ca = repository.get_ca(session, ca_id)
            if profile not in ca.issues.split(","):
                raise InvalidInput(f"CA {ca_id} does not issue {profile} certificates")
        row = EstSecretRow(
            identity=identity,
            profile=profile,
            ca_id=ca_id,
            secret_hash=_hash(secret),
            created_at=now,
            created_by=actor,
            expires_at=now + lifetime,
        )
        session.add(row)
        session.flush()
        audit.append(
            session,
            at=now,
            actor=actor,
            action="est-secret-add",
            ca_id=ca_id,
            details={"id": row.id, "identity": identity, "profile": profile, "expires_at": row.expires_at.isoformat()},
        )
        view = SecretView.from_row(row, now)
    return view, secret


def list_secrets(ctx: Context, *, identity: str | None = None, include_inactive: bool = False) -> list[SecretView]:
    now = ctx.clock.now()
    query = select(EstSecretRow).order_by(EstSecretRow.id)  # type: ignore[arg-type]
    if identity is not None:
        query = query.where(EstSecretRow.identity == identity)
    with ctx.database.read() as session:
        views = [SecretView.from_row(row, now) for row in session.execute(query).scalars()]
    return views if include_inactive else [view for view in views if view.status == "active"]


def revoke_secret(ctx: Context, secret_id: int, *, actor: str) -> SecretView:
    now = ctx.clock.now()
    with ctx.database.write() as session:
        row = session.get(EstSecretRow, secret_id) if 0 < secret_id < 2**31 else None
        if row is None:
            raise NotFound(f"no enrollment secret {secret_id}")
        view = SecretView.from_row(row, now)
        if view.status != "active":
            raise Conflict(f"enrollment secret {secret_id} is {view.status} already")
        row.revoked_at, row.revoked_by = now, actor
        audit.append(
            session,
            at=now,
            actor=actor,
            action="est-secret-revoke",
            details={"id": secret_id, "identity": row.identity, "profile": row.profile},
        )
        session.flush()
        return SecretView.from_row(row, now)


def authenticate_secret(ctx: Context, user: str, password: str) -> SecretView:
    """The active secret that ``user:password`` presents; :class:`Unauthenticated` otherwise.

    One answer for a malformed, unknown or mismatched secret (no oracle for identities); a secret
    proven right but no longer usable says why, which helps only whoever holds it.
    """
    if not _SECRET.match(password):
        raise Unauthenticated("wrong EST identity or enrollment secret")
    digest = _hash(password)
    with ctx.database.engine.connect() as connection:
        row = connection.execute(_BY_HASH, {"secret_hash": digest}).first()
    # The lookup is by hash, so timing says nothing about the secret; the comparisons are guards.
    if (
        row is None
        or not hmac.compare_digest(row.secret_hash, digest)
        or not hmac.compare_digest(row.identity.encode(), user.encode())
    ):
        raise Unauthenticated("wrong EST identity or enrollment secret")
    view = SecretView.from_row(row, ctx.clock.now())
    if view.status != "active":
        raise Unauthenticated(f"enrollment secret {view.id} for {view.identity!r} is {view.status}")
    return view


def consume_on(connection: Connection, secret_id: int, now: dt.datetime, issuer: str, serial: str) -> None:
    """Mark the secret used by the certificate ``issuer``/``serial``, inside the issuance's transaction.

    Only an unused, unrevoked, unexpired secret is marked; anything else (another request used it
    a moment ago) raises :class:`Conflict`, which rolls the certificate back with it.
    """
    marked = connection.execute(
        update(_SECRETS)
        .where(
            _SECRETS.c.id == secret_id,
            _SECRETS.c.used_at.is_(None),
            _SECRETS.c.revoked_at.is_(None),
            _SECRETS.c.expires_at > now,
        )
        .values(used_at=now, certificate_issuer=issuer, certificate_serial=serial)
    )
    if marked.rowcount != 1:
        raise Conflict(f"enrollment secret {secret_id} was used or revoked meanwhile; nothing was issued")
