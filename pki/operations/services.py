"""Operations' services on the facade: ``pki.audit`` (the hash-chained log) and ``pki.tokens`` (API tokens)."""

from __future__ import annotations

from sqlalchemy import select

from pki.core.accepted import AcceptedCache
from pki.operations import audit, tokens
from pki.operations.audit import AuditEntry, AuditVerification
from pki.operations.tokens import TokenView
from pki.runtime.context import Context
from pki.store.models import AuditHead

__all__ = ["ApiTokens", "AuditLog"]


class AuditLog:
    """``pki.audit``: read the append-only log and prove it intact."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def verify(self) -> AuditVerification:
        with self._ctx.database.read() as session:
            return audit.verify(session)

    def records(
        self, *, after: int = 0, limit: int = 100, action: str | None = None, ca_id: str | None = None
    ) -> list[AuditEntry]:
        with self._ctx.database.read() as session:
            return audit.read_records(session, after=after, limit=limit, action=action, ca_id=ca_id)

    def count(self) -> int:
        with self._ctx.database.read() as session:
            head = session.execute(select(AuditHead)).scalar_one_or_none()
            return head.seq if head else 0


AUTH_CACHE_SECONDS = 1.0  # how long another process's token revocation may go unnoticed here


class ApiTokens:
    """``pki.tokens``: bearer tokens of the REST API, by role; only their hashes are stored.

    :meth:`authenticate` runs on every API request, so a token it accepted is remembered for
    :data:`AUTH_CACHE_SECONDS` (by the token's hash, never the secret): a revocation through this
    process takes effect at once, one through another process within that bound. Refusals are not
    remembered: an unknown or revoked token always costs its database look-up.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._accepted: AcceptedCache[TokenView] = AcceptedCache(AUTH_CACHE_SECONDS)

    def create(self, *, name: str, role: str, actor: str = "system") -> tuple[TokenView, str]:
        """A new API token; the secret is returned once and only its hash is stored."""
        return tokens.create_token(self._ctx, name=name, role=role, actor=actor)

    def list(self) -> list[TokenView]:
        return tokens.list_tokens(self._ctx)

    def revoke(self, name: str, *, actor: str = "system") -> TokenView:
        try:
            return tokens.revoke_token(self._ctx, name, actor=actor)
        finally:
            self._accepted.forget_all()

    def authenticate(self, token: str) -> TokenView:
        key = tokens.token_digest(token)
        known = self._accepted.get(key)
        if known is not None:
            return known
        mark = self._accepted.mark()
        view = tokens.authenticate(self._ctx, token)
        self._accepted.remember(key, view, mark)
        return view
