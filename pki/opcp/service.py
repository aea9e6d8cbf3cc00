"""``pki.opcp``: the OPCP pool services -- clients and tokens, the RCP, the PCP and webhooks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from pki.ca.services import CertificateAuthorities
from pki.ca.trust_store import TrustStore
from pki.core.accepted import AcceptedCache
from pki.opcp import clients, tokens, webhooks
from pki.opcp.access import OpcpRole, Principal
from pki.opcp.ccp import ContractPool
from pki.opcp.clients import ClientView
from pki.opcp.cps import ProvisioningService
from pki.opcp.pcp import ProvisioningPool
from pki.opcp.rcp import RootPool
from pki.opcp.tokens import TokenGrant, VerifiedToken
from pki.opcp.webhooks import DeliveryJob, Webhooks
from pki.runtime.context import Context

__all__ = ["AUTH_CACHE_SECONDS", "Opcp"]

AUTH_CACHE_SECONDS = 1.0  # how long another process's client removal may go unnoticed here


class Opcp:
    """``pki.opcp``: what an OPCP pool answers. ``rcp``, ``pcp``, ``ccp``, ``cps`` and ``webhooks``."""

    rcp: RootPool
    pcp: ProvisioningPool
    ccp: ContractPool
    cps: ProvisioningService
    webhooks: Webhooks

    def __init__(self, ctx: Context, cas: CertificateAuthorities, trust: TrustStore) -> None:
        self._ctx = ctx
        self.rcp = RootPool(ctx, cas, trust)
        self.pcp = ProvisioningPool(ctx)
        self.ccp = ContractPool(ctx)
        self.cps = ProvisioningService(ctx, self.ccp)
        self.webhooks = Webhooks(ctx)
        self._accepted: AcceptedCache[VerifiedToken] = AcceptedCache(AUTH_CACHE_SECONDS)  # by the token's SHA-256

    # -- clients and tokens

    def add_client(
        self,
        *,
        name: str,
        role: str | OpcpRole,
        wmis: Iterable[str] = (),
        providers: Iterable[str] = (),
        actor: str = "system",
    ) -> tuple[ClientView, str]:
        """A new OAuth2 client; the secret is returned once and only its hash is stored."""
        return clients.add_client(self._ctx, name=name, role=role, wmis=wmis, providers=providers, actor=actor)

    def list_clients(self) -> list[ClientView]:
        return clients.list_clients(self._ctx)

    def remove_client(self, key: str, *, actor: str = "system") -> ClientView:
        try:
            return clients.remove_client(self._ctx, key, actor=actor)
        finally:
            self._accepted.forget_all()

    def issue_token(self, *, client_id: str, client_secret: str, audience: str) -> TokenGrant:
        """OAuth2 client credentials: Unauthenticated for wrong credentials, InvalidInput for a foreign audience."""
        client = clients.authenticate_client(self._ctx, client_id, client_secret)
        return tokens.issue_token(self._ctx, client, audience=audience)

    def authenticate(self, access_token: str) -> Principal:
        """The caller an access token names; :class:`~pki.core.Unauthenticated` when it does not verify.

        It runs on every OPCP request, so a token that verified is remembered by its SHA-256 (never
        the token) for :data:`AUTH_CACHE_SECONDS`, its lifetime still judged by our clock on every
        use: a client removed through this process is locked out at once, one removed through
        another process within that bound. Refusals are not remembered.
        """
        known = self.cached_principal(access_token)
        if known is not None:
            return known
        mark = self._accepted.mark()
        verified = tokens.verify_token(self._ctx, access_token)
        self._accepted.remember(_digest(access_token), verified, mark)
        return verified.principal

    def cached_principal(self, access_token: str) -> Principal | None:
        """The caller of a token :meth:`authenticate` accepted within the bound and still current; else None.

        No database, no signature check: what an event loop may call before handing a miss to a thread.
        """
        known = self._accepted.get(_digest(access_token))
        if known is None or not known.current(self._ctx.clock.now().timestamp()):
            return None  # not remembered, or expired (or not yet valid) by our clock: authenticate says why
        return known.principal

    def jwks(self) -> dict[str, Any]:
        return tokens.jwks(self._ctx)

    def rotate_signing_key(self, *, actor: str = "system") -> str:
        return tokens.rotate_signing_key(self._ctx, actor=actor)

    @property
    def audience(self) -> str:
        return tokens.audience_of(self._ctx)

    # -- webhook deliveries (the edge makes the HTTP calls)

    def pump_events(self) -> int:
        return webhooks.pump(self._ctx)

    def claim_deliveries(self, *, limit: int = 200) -> list[DeliveryJob]:
        return webhooks.claim_due(self._ctx, limit=limit)

    def record_delivery(self, delivery_id: int, *, status: int | None, error: str | None = None) -> str:
        return webhooks.record_attempt(self._ctx, delivery_id, status=status, error=error)

    def record_deliveries(self, outcomes: list[tuple[int, int | None, str | None]]) -> list[str]:
        """A round's outcomes, ``(delivery id, HTTP status or None, error)``, in one transaction."""
        return webhooks.record_attempts(self._ctx, outcomes)


def _digest(access_token: str) -> str:
    return hashlib.sha256(access_token.encode()).hexdigest()
