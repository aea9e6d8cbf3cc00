"""The station registry: which OCPP identities may connect, how, and which serial their certificate names.

OCPP A00.FR.405/511: a station certificate's CN is the station's *serial number*, while the
station connects under its OCPP *identity* (the last URL path segment); the CSMS must map one to
the other. Each station also has a security profile: 3 (mutual TLS with a certificate from our
CSO CA) or 2 (TLS with HTTP Basic auth, its password stored as an scrypt hash, OCPP 2.0.1
A00.FR.201-206). Disabled stations are refused at connect.

Every change is one transaction with an audit record; passwords never reach the audit log.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from pki.core.clock import utc
from pki.core.errors import Conflict, InvalidInput, NotFound
from pki.operations import audit
from pki.runtime.context import Context
from pki.store.models import StationRow

__all__ = [
    "SECURITY_PROFILES",
    "StationView",
    "add_station",
    "apply_security_profile",
    "check_password",
    "get_station",
    "list_stations",
    "password_hash",
    "record_connection",
    "remove_station",
    "set_password",
    "set_station_status",
    "station_record",
    "station_row",
]

SECURITY_PROFILES = (2, 3)
# OCPP identity: identifierString (≤ 48), and it travels in a URL path, so no '/' or ':' (OCPP-J §3.1.1).
_IDENTITY = re.compile(r"^[A-Za-z0-9*\-_=+|@.]{1,48}$")
_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._\-]{0,63}$")
# OCPP 2.0.1 BasicAuthPassword: 16-40 characters (A00.FR.205 recommends ≥ 16); 1.6 AuthorizationKey 16-20 bytes.
_PASSWORD_MIN, _PASSWORD_MAX = 16, 40
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True, slots=True)
class StationView:
    identity: str
    serial: str
    security_profile: int
    has_password: bool
    status: str
    ocpp_version: str | None
    last_seen_at: dt.datetime | None
    created_at: dt.datetime
    root_sync: str | None = None  # "on" / "off"; None: the bridge's default (pki.station_calls.root_sync)
    root_sync_delay: int | None = None  # seconds; None: the default
    pending_security_profile: int | None = None  # A05: accepted, applies once it reconnects on it

    @classmethod
    def from_row(cls, row: StationRow | Any) -> StationView:
        """From an ORM row or a Core row of the station table (same attribute names)."""
        return cls(
            identity=row.identity,
            serial=row.serial,
            security_profile=row.security_profile,
            has_password=row.password_hash is not None,
            status=row.status,
            ocpp_version=row.ocpp_version,
            last_seen_at=utc(row.last_seen_at) if row.last_seen_at is not None else None,
            created_at=utc(row.created_at),
            root_sync=row.root_sync,
            root_sync_delay=row.root_sync_delay,
            pending_security_profile=row.pending_security_profile,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "identity": self.identity,
            "serial": self.serial,
            "securityProfile": self.security_profile,
            "hasPassword": self.has_password,
            "status": self.status,
            "ocppVersion": self.ocpp_version,
            "lastSeenAt": self.last_seen_at.isoformat() if self.last_seen_at else None,
            "createdAt": self.created_at.isoformat(),
            "rootSync": self.root_sync,
            "rootSyncDelay": self.root_sync_delay,
            "pendingSecurityProfile": self.pending_security_profile,
        }


def parse_identity(identity: str) -> str:
    if not isinstance(identity, str) or not _IDENTITY.fullmatch(identity):
        raise InvalidInput(
            f"station identity {str(identity)[:60]!r} must be 1-48 characters of letters, digits and *-_=+|@. "
            "(OCPP identifierString; it is the last segment of the connection URL)"
        )
    return identity


def _serial(serial: str) -> str:
    if not isinstance(serial, str) or not _SERIAL.fullmatch(serial):
        raise InvalidInput(
            f"station serial {str(serial)[:70]!r} must be 1-64 letters, digits, spaces, '.', '_' or '-' "
            "(it becomes the certificate CN, OCPP A00.FR.511)"
        )
    return serial


def _profile(profile: int) -> int:
    if profile not in SECURITY_PROFILES:
        raise InvalidInput(f"security profile must be 2 or 3, not {profile!r}")
    return profile


def _hash_password(password: str) -> str:
    if not isinstance(password, str) or not _PASSWORD_MIN <= len(password) <= _PASSWORD_MAX:
        raise InvalidInput(
            f"a station password has {_PASSWORD_MIN}-{_PASSWORD_MAX} characters (OCPP BasicAuthPassword)"
        )
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    encoded = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${encoded(salt).decode()}${encoded(digest).decode()}"


def password_hash(password: str) -> str:
    """The stored form of a Basic-auth password (scrypt); :class:`InvalidInput` for a bad length."""
    return _hash_password(password)


def _password_matches(stored: str, password: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), dklen=len(expected), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def station_row(session: Session, identity: str) -> StationRow:
    """The registry row of ``identity`` inside the caller's transaction; :class:`NotFound` if unregistered."""
    row = session.execute(select(StationRow).where(StationRow.identity == identity)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no station {identity!r}; `evpki station add` registers one")
    return row


_STATIONS = StationRow.__table__  # type: ignore[attr-defined]
# Built once: every enrollment and connection reads the station.
_STATION_BY_IDENTITY = select(_STATIONS).where(_STATIONS.c.identity == bindparam("identity"))


def station_record(connection: Connection, identity: str) -> Any:
    """:func:`station_row` as a Core row (read-only, no ORM object); :class:`NotFound` if unregistered."""
    row = connection.execute(_STATION_BY_IDENTITY, {"identity": identity}).first()
    if row is None:
        raise NotFound(f"no station {identity!r}; `evpki station add` registers one")
    return row


def add_station(
    ctx: Context,
    *,
    identity: str,
    serial: str,
    security_profile: int = 3,
    password: str | None = None,
    actor: str = "system",
) -> StationView:
    """Register a station. Profile 2 needs a password (Basic auth); profile 3 needs none."""
    identity = parse_identity(identity)
    serial = _serial(serial)
    profile = _profile(security_profile)
    if profile == 2 and password is None:
        raise InvalidInput("security profile 2 authenticates with HTTP Basic auth: give the station a password")
    password_hash = _hash_password(password) if password is not None else None
    now = ctx.clock.now()
    try:
        with ctx.database.write() as session:
            row = StationRow(
                identity=identity,
                serial=serial,
                security_profile=profile,
                password_hash=password_hash,
                status="active",
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            audit.append(
                session,
                at=now,
                actor=actor,
                action="station-add",
                details={"identity": identity, "serial": serial, "security_profile": profile},
            )
            return StationView.from_row(row)
    except SqlIntegrityError:
        raise Conflict(f"station {identity!r} is already registered") from None


def get_station(ctx: Context, identity: str) -> StationView:
    with ctx.database.read() as session:
        return StationView.from_row(station_record(session.connection(), identity))


def list_stations(ctx: Context, *, limit: int = 1000, offset: int = 0) -> list[StationView]:
    query = select(StationRow).order_by(StationRow.identity).limit(limit).offset(offset)
    with ctx.database.read() as session:
        return [StationView.from_row(row) for row in session.execute(query).scalars()]


def _change(
    ctx: Context, identity: str, action: str, actor: str, details: dict[str, object], **values: object
) -> StationView:
    now = ctx.clock.now()
    with ctx.database.write() as session:
        row = station_row(session, identity)
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = now
        audit.append(session, at=now, actor=actor, action=action, details={"identity": identity, **details})
        session.flush()
        return StationView.from_row(row)


def set_password(ctx: Context, identity: str, password: str, *, actor: str = "system") -> StationView:
    return _change(ctx, identity, "station-password", actor, {}, password_hash=_hash_password(password))


def apply_security_profile(ctx: Context, identity: str, profile: int, *, actor: str = "bridge") -> StationView:
    """A05: the station connected on the profile it accepted; it is registered for it from now on."""
    return _change(
        ctx,
        identity,
        "station-security-profile",
        actor,
        {"security_profile": profile},
        security_profile=_profile(profile),
        pending_security_profile=None,
    )


def set_station_status(ctx: Context, identity: str, status: str, *, actor: str = "system") -> StationView:
    if status not in ("active", "disabled"):
        raise InvalidInput("a station is active or disabled")
    return _change(ctx, identity, "station-status", actor, {"status": status}, status=status)


def remove_station(ctx: Context, identity: str, *, actor: str = "system") -> None:
    now = ctx.clock.now()
    with ctx.database.write() as session:
        row = station_row(session, identity)
        session.delete(row)
        audit.append(session, at=now, actor=actor, action="station-remove", details={"identity": identity})


def check_password(ctx: Context, identity: str, password: str) -> StationView | None:
    """The station if ``password`` is its Basic-auth password and it is active on profile 2, else None.

    Unknown stations cost one scrypt too, so timing does not tell which identities exist.
    """
    with ctx.database.read() as session:
        row = session.execute(select(StationRow).where(StationRow.identity == identity)).scalar_one_or_none()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    matches = _password_matches(stored, password)
    if row is None or not matches or row.status != "active" or row.security_profile != 2:
        return None
    return StationView.from_row(row)


def record_connection(ctx: Context, identity: str, ocpp_version: str) -> None:
    """Remember when and with which OCPP version the station last connected (no audit record: frequent)."""
    now = ctx.clock.now()
    # One statement built once: every connection of every station runs it.
    with ctx.database.transaction() as connection:
        result = connection.execute(
            _RECORD_CONNECTION, {"for_identity": identity, "seen_at": now, "version": ocpp_version}
        )
        if result.rowcount == 0:
            raise NotFound(f"no station {identity!r}; `evpki station add` registers one")


_RECORD_CONNECTION = (
    update(_STATIONS)
    .where(_STATIONS.c.identity == bindparam("for_identity"))
    .values(last_seen_at=bindparam("seen_at"), ocpp_version=bindparam("version"))
)
_DUMMY_HASH = _hash_password("x" * _PASSWORD_MIN)
