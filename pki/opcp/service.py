"""``pki.opcp``: the OPCP pool services -- clients and tokens, the RCP, the PCP and webhooks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pki.ca.services import CertificateAuthorities
from pki.ca.trust_store import TrustStore
from pki.opcp import clients, tokens, webhooks
from pki.opcp.access import OpcpRole, Principal
from pki.opcp.ccp import ContractPool
from pki.opcp.clients import ClientView
from pki.opcp.cps import ProvisioningService
from pki.opcp.pcp import ProvisioningPool
from pki.opcp.rcp import RootPool
from pki.opcp.tokens import TokenGrant
from pki.opcp.webhooks import DeliveryJob, Webhooks
from pki.runtime.context import Context

__all__ = ["Opcp"]


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
        return clients.remove_client(self._ctx, key, actor=actor)

    def issue_token(self, *, client_id: str, client_secret: str, audience: str) -> TokenGrant:
        """OAuth2 client credentials: Unauthenticated for wrong credentials, InvalidInput for a foreign audience."""
        client = clients.authenticate_client(self._ctx, client_id, client_secret)
        return tokens.issue_token(self._ctx, client, audience=audience)

    def authenticate(self, access_token: str) -> Principal:
        return tokens.verify_token(self._ctx, access_token)

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
