"""The authority's services on the facade: ``pki.cas`` (the hierarchy) and ``pki.certificates``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from sqlalchemy import func, select

from pki.ca import rollover
from pki.ca.bootstrap import init_hierarchy, stored_organization
from pki.ca.hierarchy import load_hierarchy
from pki.ca.issuance import IssueRequest, issue
from pki.ca.policy import RequestIdentity
from pki.ca.root_uses import ROOT_USE_PKI, RootUse, parse_root_use
from pki.ca.trust_store import trusted_roots
from pki.core.clock import utc
from pki.core.errors import NotFound
from pki.runtime.context import ORGANIZATION_SETTING, Context
from pki.runtime.views import CaView, CertificateView, InitReport, IssuedCertificate, certificate_view
from pki.store import repository
from pki.store.models import CertificateRow
from pki.store.repository import CertificateFilter

__all__ = ["CertificateAuthorities", "Certificates"]


class CertificateAuthorities:
    """``pki.cas``: build the hierarchy, look CAs up, hand out roots and chains, roll roots over."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def init(self, *, config: Path | None = None, organization: str | None = None, actor: str = "system") -> InitReport:
        """Build the hierarchy of ``config`` (the packaged default when None); keeps what exists."""
        spec = load_hierarchy(config, organization or stored_organization(self._ctx))
        return init_hierarchy(self._ctx, spec, actor)

    def organization(self) -> str | None:
        with self._ctx.database.read() as session:
            return repository.get_setting(session, ORGANIZATION_SETTING)

    def list(self) -> list[CaView]:
        with self._ctx.database.read() as session:
            return [CaView.from_row(row) for row in repository.list_cas(session)]

    def get(self, ca_id: str) -> CaView:
        with self._ctx.database.read() as session:
            return CaView.from_row(repository.get_ca(session, ca_id))

    def subtree(self, ca_id: str) -> list[CaView]:
        """``ca_id`` and every CA below it, in creation order (a root's whole generation after a rollover).

        Membership is grown to a fixed point rather than in one pass: CAs made in the same instant
        need not be listed parents first (seen on PostgreSQL).
        """
        cas = self.list()
        members = {self.get(ca_id).id}
        grown = True
        while grown:
            below = {ca.id for ca in cas if ca.parent_id in members} - members
            grown = bool(below)
            members |= below
        return [ca for ca in cas if ca.id in members]

    def roots(self, use: str | RootUse) -> list[x509.Certificate]:
        """The root certificates stations install for an OCPP ``InstallCertificateUse``.

        Our own roots first, newest first; then the foreign roots of the trust store trusted for
        that use (``pki.trust``), newest first. Roots that are expired, revoked or retired are
        left out: a station must not be told to trust them.
        """
        parsed = use if isinstance(use, RootUse) else parse_root_use(use)
        now = self._ctx.clock.now()
        with self._ctx.database.read() as session:
            roots = [
                row
                for row in repository.list_cas(session)
                if row.parent_id is None and row.pki == ROOT_USE_PKI[parsed] and utc(row.not_after) > now
            ]
            usable = []
            for row in sorted(roots, key=lambda r: (utc(r.created_at), r.id), reverse=True):
                status = repository.find_certificate(session, row.serial, row.id).status
                if status == "valid":
                    usable.append(self._ctx.ca_certificate(row))
            usable.extend(root for root in trusted_roots(session, parsed, now) if root not in usable)
        if not usable:
            raise NotFound(f"no usable {parsed.value} in this PKI or its trust store")
        return usable

    def chain(self, ca_id: str) -> list[x509.Certificate]:
        """The CA's certificate followed by its ancestors', root last."""
        with self._ctx.database.read() as session:
            return self._ctx.chain(session, ca_id)

    def rollover(self, ca_id: str, *, validity: dt.timedelta | None = None, actor: str = "system") -> str:
        """A new generation of root ``ca_id`` and its subtree, linked by a certificate the old root signs."""
        return rollover.rollover_root(self._ctx, ca_id, validity=validity, actor=actor)

    def root_link(self, root_id: str) -> x509.Certificate | None:
        """The link certificate of root ``root_id`` (its name and key, signed by the previous root), if any."""
        with self._ctx.database.read() as session:
            row = repository.managed_leaf(session, f"{rollover.LINK_LABEL_PREFIX}{root_id}")
            return x509.load_der_x509_certificate(row.der) if row is not None else None


class Certificates:
    """``pki.certificates``: issue and renew under policy, look certificates up."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def issue(
        self,
        *,
        profile: str,
        csr: bytes | str,
        identity: RequestIdentity,
        ca_id: str | None = None,
        validity: dt.timedelta | None = None,
        actor: str = "system",
    ) -> IssuedCertificate:
        return issue(self._ctx, IssueRequest(profile, csr, identity, ca_id, validity), actor)

    def renew(
        self,
        *,
        csr: bytes | str,
        identity: RequestIdentity,
        profile: str = "station",
        ca_id: str | None = None,
        validity: dt.timedelta | None = None,
        actor: str = "system",
    ) -> IssuedCertificate:
        return issue(self._ctx, IssueRequest(profile, csr, identity, ca_id, validity, renew=True), actor)

    def get(self, key: str, ca_id: str | None = None) -> CertificateView:
        """By serial (hex, as ``openssl x509 -serial`` prints it) or SHA-256 fingerprint."""
        with self._ctx.database.read() as session:
            row = repository.find_certificate(session, key, ca_id)
            return certificate_view(session, row, self._ctx.clock.now())

    def list(self, flt: CertificateFilter) -> list[CertificateView]:
        with self._ctx.database.read() as session:
            now = self._ctx.clock.now()
            return [certificate_view(session, row, now) for row in repository.list_certificates(session, flt, now)]

    def expiring_counts(self, within: dt.timedelta) -> dict[str, int]:
        """Per issuing CA, how many valid certificates expire within ``within`` from now (one grouped query)."""
        now = self._ctx.clock.now()
        statement = (
            select(CertificateRow.issuer_id, func.count())
            .where(CertificateRow.status == "valid")  # type: ignore[arg-type]
            .where(CertificateRow.not_after > now)  # type: ignore[arg-type]
            .where(CertificateRow.not_after <= now + within)  # type: ignore[arg-type]
            .group_by(CertificateRow.issuer_id)
        )
        with self._ctx.database.read() as session:
            return {issuer: int(count) for issuer, count in session.execute(statement)}
