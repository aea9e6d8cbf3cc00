"""API tokens: creation, listing, revocation and authentication.

A token is 32 random bytes (``evpki_`` + URL-safe base64) shown once at creation; the store
keeps only its SHA-256, which is enough for a secret of that entropy (no slow hash needed:
nobody can brute-force 256 bits). Roles, from most to least powerful:

- ``admin``    -- everything, including CA and token management;
- ``operator`` -- issue, renew and revoke any profile, sign firmware, generate CRLs;
- ``csms``     -- what a CSMS integration needs: station and SECC issuance/renewal, the OCPP
                  handlers, reads;
- ``auditor``  -- read-only, including the audit log.

Which role a route needs is declared by the edge (``api/``); this module only proves who
the caller is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from pki.core.clock import utc
from pki.core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from pki.operations import audit
from pki.runtime.context import Context
from pki.store.models import ApiTokenRow

__all__ = [
    "Role",
    "TokenView",
    "authenticate",
    "create_token",
    "list_tokens",
    "parse_role",
    "revoke_token",
    "token_digest",
]

_PREFIX = "evpki_"
_TOKENS = ApiTokenRow.__table__  # type: ignore[attr-defined]
_BY_HASH = select(_TOKENS).where(_TOKENS.c.token_hash == bindparam("token_hash"))
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_TOKEN = re.compile(r"^evpki_[A-Za-z0-9_-]{43}$")


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    CSMS = "csms"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class TokenView:
    id: int
    name: str
    role: Role
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: ApiTokenRow) -> TokenView:
        assert row.id is not None
        return cls(
            row.id,
            row.name,
            Role(row.role),
            utc(row.created_at),
            row.created_by,
            utc(row.revoked_at) if row.revoked_at else None,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "createdAt": self.created_at.isoformat(),
            "createdBy": self.created_by,
            "revokedAt": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_role(text: str) -> Role:
    try:
        return Role(text.lower())
    except ValueError:
        raise InvalidInput(f"unknown role {text!r}; use one of {', '.join(r.value for r in Role)}") from None


def create_token(ctx: Context, *, name: str, role: str | Role, actor: str) -> tuple[TokenView, str]:
    """A new token: the view and the secret, which is not stored and cannot be shown again."""
    parsed = role if isinstance(role, Role) else parse_role(role)
    if not _NAME.match(name):
        raise InvalidInput("a token name is 1-64 letters, digits, '.', '_', '@' or '-'")
    secret = _PREFIX + secrets.token_urlsafe(32)
    now = ctx.clock.now()
    try:
        with ctx.database.write() as session:
            if session.execute(select(ApiTokenRow).where(ApiTokenRow.name == name)).first() is not None:
                raise Conflict(f"a token named {name!r} already exists")
            row = ApiTokenRow(name=name, role=parsed.value, token_hash=_hash(secret), created_at=now, created_by=actor)
            session.add(row)
            session.flush()
            audit.append(
                session, at=now, actor=actor, action="token-create", details={"name": name, "role": parsed.value}
            )
            view = TokenView.from_row(row)
    except SqlIntegrityError:
        raise Conflict(f"a token named {name!r} already exists") from None
    return view, secret


def list_tokens(ctx: Context) -> list[TokenView]:
    with ctx.database.read() as session:
        rows = session.execute(select(ApiTokenRow).order_by(ApiTokenRow.id)).scalars().all()  # type: ignore[arg-type]
        return [TokenView.from_row(row) for row in rows]


def revoke_token(ctx: Context, name: str, *, actor: str) -> TokenView:
    now = ctx.clock.now()
    with ctx.database.write() as session:
        row = session.execute(select(ApiTokenRow).where(ApiTokenRow.name == name)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no token named {name!r}")
        if row.revoked_at is not None:
            raise Conflict(f"token {name!r} is already revoked")
        row.revoked_at = now
        audit.append(session, at=now, actor=actor, action="token-revoke", details={"name": name, "role": row.role})
        session.flush()
        return TokenView.from_row(row)


def token_digest(token: str) -> str:
    """What the store keeps of a token (its SHA-256, hex); also the key of an authentication cache."""
    return _hash(token)


def authenticate(ctx: Context, token: str) -> TokenView:
    """The token's holder; :class:`Unauthenticated` for a malformed, unknown or revoked token."""
    if not _TOKEN.match(token):
        raise Unauthenticated("malformed API token")
    digest = _hash(token)
    # Core, not the ORM: this runs on every API request.
    with ctx.database.engine.connect() as connection:
        row = connection.execute(_BY_HASH, {"token_hash": digest}).first()
    # The lookup is by hash, so timing says nothing about the secret; the comparison is a guard.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthenticated("unknown API token")
    if row.revoked_at is not None:
        raise Unauthenticated("this API token has been revoked")
    return TokenView(row.id, row.name, Role(row.role), utc(row.created_at), row.created_by, None)
