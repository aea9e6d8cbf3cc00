"""OPCP OAuth2 clients: who may ask for an access token, with which role and scope.

A client id is public (``opcp-`` + 16 random URL-safe characters); its secret is 32 random bytes
shown once, at creation. The store keeps only the secret's SHA-256: like the API tokens, a secret
of 256 bits needs no slow hash. Removing a client deletes it; tokens it still holds stop working
at their next use (a request looks the client up, or trusts a look-up made moments ago:
:meth:`pki.opcp.service.Opcp.authenticate`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from pki.core.clock import utc
from pki.core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from pki.opcp.access import OpcpRole, Principal, parse_provider, parse_role, parse_wmi
from pki.operations import audit
from pki.runtime.context import Context
from pki.store.models import OpcpClientRow

__all__ = ["ClientView", "add_client", "authenticate_client", "find_principal", "list_clients", "remove_client"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_CLIENT_ID = re.compile(r"^opcp-[A-Za-z0-9_-]{16}$")
_MAX_SCOPE = 200


@dataclass(frozen=True, slots=True)
class ClientView:
    client_id: str
    name: str
    role: OpcpRole
    wmis: tuple[str, ...]
    providers: tuple[str, ...]
    created_at: dt.datetime
    created_by: str

    @classmethod
    def from_row(cls, row: OpcpClientRow) -> ClientView:
        return cls(
            row.client_id,
            row.name,
            OpcpRole(row.role),
            _split(row.wmis),
            _split(row.providers),
            utc(row.created_at),
            row.created_by,
        )

    @property
    def principal(self) -> Principal:
        return Principal(self.client_id, self.name, self.role, frozenset(self.wmis), frozenset(self.providers))

    def as_dict(self) -> dict[str, object]:
        return {
            "clientId": self.client_id,
            "name": self.name,
            "role": self.role.value,
            "wmis": list(self.wmis),
            "providers": list(self.providers),
            "createdAt": self.created_at.isoformat(),
            "createdBy": self.created_by,
        }


def _split(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split(",") if part)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _scope(role: OpcpRole, wmis: Iterable[str], providers: Iterable[str]) -> tuple[list[str], list[str]]:
    parsed_wmis = sorted({parse_wmi(w) for w in wmis})
    parsed_providers = sorted({parse_provider(p) for p in providers})
    if len(parsed_wmis) > _MAX_SCOPE or len(parsed_providers) > _MAX_SCOPE:
        raise InvalidInput(f"at most {_MAX_SCOPE} WMIs and {_MAX_SCOPE} providers per client")
    if role is OpcpRole.OEM and not parsed_wmis:
        raise InvalidInput("an OEM client needs at least one --wmi (the PCIDs it may manage)")
    if role is not OpcpRole.OEM and parsed_wmis:
        raise InvalidInput("only an OEM client has WMIs")
    is_mo = role in (OpcpRole.MO_OWN_PKI, OpcpRole.MO_V2G_PKI)
    if is_mo and not parsed_providers:
        raise InvalidInput("an MO client needs at least one --provider (the eMAID prefixes it may manage)")
    if not is_mo and parsed_providers:
        raise InvalidInput("only an MO client has providers")
    return parsed_wmis, parsed_providers


def add_client(
    ctx: Context,
    *,
    name: str,
    role: str | OpcpRole,
    wmis: Iterable[str] = (),
    providers: Iterable[str] = (),
    actor: str,
) -> tuple[ClientView, str]:
    """A new client: its view and its secret, which is not stored and cannot be shown again."""
    parsed_role = role if isinstance(role, OpcpRole) else parse_role(role)
    if not _NAME.match(name):
        raise InvalidInput("a client name is 1-64 letters, digits, '.', '_', '@' or '-'")
    parsed_wmis, parsed_providers = _scope(parsed_role, wmis, providers)
    client_id = "opcp-" + secrets.token_urlsafe(12)
    secret = secrets.token_urlsafe(32)
    now = ctx.clock.now()
    try:
        with ctx.database.write() as session:
            if session.execute(select(OpcpClientRow.id).where(OpcpClientRow.name == name)).first() is not None:
                raise Conflict(f"an OPCP client named {name!r} already exists")
            row = OpcpClientRow(
                client_id=client_id,
                name=name,
                role=parsed_role.value,
                wmis=",".join(parsed_wmis),
                providers=",".join(parsed_providers),
                secret_hash=_hash(secret),
                created_at=now,
                created_by=actor,
            )
            session.add(row)
            session.flush()
            audit.append(
                session,
                at=now,
                actor=actor,
                action="opcp-client-add",
                details={
                    "clientId": client_id,
                    "name": name,
                    "role": parsed_role.value,
                    "wmis": parsed_wmis,
                    "providers": parsed_providers,
                },
            )
            view = ClientView.from_row(row)
    except SqlIntegrityError:
        raise Conflict(f"an OPCP client named {name!r} already exists") from None
    return view, secret


def list_clients(ctx: Context) -> list[ClientView]:
    with ctx.database.read() as session:
        rows = session.execute(select(OpcpClientRow).order_by(OpcpClientRow.id)).scalars().all()  # type: ignore[arg-type]
        return [ClientView.from_row(row) for row in rows]


def remove_client(ctx: Context, key: str, *, actor: str) -> ClientView:
    """Delete the client named ``key`` (its name or client id) and its webhook subscriptions."""
    from pki.opcp.webhooks import delete_subscriptions_of  # its own module; no cycle at import time

    now = ctx.clock.now()
    with ctx.database.write() as session:
        row = session.execute(
            select(OpcpClientRow).where((OpcpClientRow.name == key) | (OpcpClientRow.client_id == key))
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no OPCP client {key!r}")
        view = ClientView.from_row(row)
        delete_subscriptions_of(session, view.client_id)
        session.delete(row)
        audit.append(
            session,
            at=now,
            actor=actor,
            action="opcp-client-remove",
            details={"clientId": view.client_id, "name": view.name, "role": view.role.value},
        )
    return view


def authenticate_client(ctx: Context, client_id: str, secret: str) -> ClientView:
    """The client these credentials name; :class:`Unauthenticated` for any mismatch (one message for all)."""
    if not _CLIENT_ID.match(client_id) or not secret or len(secret) > 256:
        raise Unauthenticated("wrong client credentials")
    with ctx.database.read() as session:
        row = session.execute(select(OpcpClientRow).where(OpcpClientRow.client_id == client_id)).scalar_one_or_none()
        # Compare against a hash either way, so an unknown client costs the same as a wrong secret.
        expected = row.secret_hash if row is not None else _hash("no such client")
        if not hmac.compare_digest(expected, _hash(secret)) or row is None:
            raise Unauthenticated("wrong client credentials")
        return ClientView.from_row(row)


def find_principal(ctx: Context, client_id: str) -> Principal | None:
    """The client's current principal, or None once it has been removed."""
    with ctx.database.engine.connect() as connection:
        row = connection.execute(
            select(OpcpClientRow.__table__).where(OpcpClientRow.__table__.c.client_id == client_id)  # type: ignore[attr-defined]
        ).first()
    if row is None:
        return None
    return Principal(
        row.client_id, row.name, OpcpRole(row.role), frozenset(_split(row.wmis)), frozenset(_split(row.providers))
    )
