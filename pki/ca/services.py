"""The authority's services on the facade: ``pki.cas`` (the hierarchy) and ``pki.certificates``."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from pki.ca import rollover
from pki.ca.bootstrap import init_hierarchy, stored_hierarchy, stored_organization
from pki.ca.ca_requests import CaRequestView, request_view
from pki.ca.foreign_install import install_ca_certificate
from pki.ca.hierarchy import load_hierarchy
from pki.ca.issuance import IssueRequest, issue, issue_async, issue_many
from pki.ca.policy import RequestIdentity
from pki.ca.root_uses import ROOT_USE_PKI, RootUse, parse_root_use
from pki.ca.trust_store import trusted_roots
from pki.core.clock import utc
from pki.core.errors import EvpkiError, InvalidInput, NotFound
from pki.runtime.context import ORGANIZATION_SETTING, Context
from pki.runtime.views import CaView, CertificateView, InitReport, IssuedCertificate, certificate_view
from pki.store import repository
from pki.store.models import CaRequestRow, CertificateRow
from pki.store.repository import CertificateFilter

__all__ = ["BATCH_LIMIT", "CertificateAuthorities", "CertificateRequest", "Certificates", "InstallReport"]

# Requests per :meth:`Certificates.issue_batch` call: one transaction each, kept short.
BATCH_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """One request of :meth:`Certificates.issue_batch`: what :meth:`Certificates.issue` takes."""

    profile: str
    csr: bytes | str
    identity: RequestIdentity
    ca_id: str | None = None
    validity: dt.timedelta | None = None


@dataclass(frozen=True, slots=True)
class InstallReport:
    """``ca install``: the CA now in service, the external path above it, what was created below it."""

    ca: CaView
    intermediates: tuple[str, ...]  # subjects of the external CAs between it and the root
    anchor_subject: str
    anchor_sha256: str
    anchor_added: bool  # the root was not in the trust store and came with --chain
    created: tuple[str, ...]
    waiting: tuple[str, ...]


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
            try:
                return CaView.from_row(repository.get_ca(session, ca_id))
            except NotFound:
                if session.get(CaRequestRow, ca_id) is None:
                    raise
        raise NotFound(
            f"CA {ca_id!r} awaits its certificate from its external parent: `evpki ca request {ca_id}` writes the "
            f"request, `evpki ca install {ca_id} --certificate FILE` installs what that CA signed"
        )

    def awaiting(self) -> list[CaRequestView]:
        """The CAs whose external parent has yet to sign their request, oldest first."""
        with self._ctx.database.read() as session:
            rows = session.query(CaRequestRow).order_by(CaRequestRow.created_at, CaRequestRow.id).all()
            return [request_view(row) for row in rows]

    def request(self, ca_id: str) -> CaRequestView:
        """The PKCS#10 request of a CA awaiting its certificate (NotFound for any other CA)."""
        with self._ctx.database.read() as session:
            row = session.get(CaRequestRow, ca_id)
            if row is None:
                exists = any(ca.id == ca_id for ca in repository.list_cas(session))
                raise NotFound(
                    f"CA {ca_id!r} has its certificate; only a CA under an external parent awaiting it has a request"
                    if exists
                    else f"no CA {ca_id!r} awaits a certificate; `evpki ca list` shows the CAs"
                )
            return request_view(row)

    def install(
        self, ca_id: str, certificate: bytes | str, *, chain: bytes | str | None = None, actor: str = "system"
    ) -> InstallReport:
        """Install what the external CA signed for ``ca_id`` (every rule checked first), then create the
        CAs and leaves of the stored hierarchy that waited for it."""
        raw = certificate.encode() if isinstance(certificate, str) else certificate
        raw_chain = chain.encode() if isinstance(chain, str) else chain
        plan = install_ca_certificate(self._ctx, ca_id, raw, raw_chain, actor)
        if plan.successor_of is not None:
            rollover.adopt_successor(self._ctx, plan.successor_of, ca_id, actor)
        spec = stored_hierarchy(self._ctx)
        report = init_hierarchy(self._ctx, spec, actor) if spec is not None else None
        anchor_der = plan.anchor.public_bytes(serialization.Encoding.DER)
        return InstallReport(
            ca=self.get(ca_id),
            intermediates=tuple(c.subject.rfc4514_string() for c in plan.intermediates),
            anchor_subject=plan.anchor.subject.rfc4514_string(),
            anchor_sha256=hashlib.sha256(anchor_der).hexdigest(),
            anchor_added=plan.anchor_use is not None,
            created=report.created if report else (),
            waiting=report.waiting + report.awaiting if report else (),
        )

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
                if row.is_root and row.pki == ROOT_USE_PKI[parsed] and utc(row.not_after) > now
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
        """A new generation of root ``ca_id`` and its subtree, linked by a certificate the old root signs.

        For a CA under an external parent: its successor's request (``pki.cas.request``), which takes
        over once installed (``pki.cas.install``); the returned id awaits its certificate until then.
        """
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

    async def issue_async(
        self,
        *,
        profile: str,
        csr: bytes | str,
        identity: RequestIdentity,
        ca_id: str | None = None,
        validity: dt.timedelta | None = None,
        actor: str = "system",
    ) -> IssuedCertificate:
        """:meth:`issue` on an event loop: checked and signed in the caller's thread, stored by the group
        commit without blocking the loop (the REST API's path)."""
        return await issue_async(self._ctx, IssueRequest(profile, csr, identity, ca_id, validity), actor)

    def issue_batch(
        self,
        requests: Sequence[CertificateRequest],
        *,
        actor: str = "system",
        resume_since: dt.datetime | None = None,
    ) -> list[IssuedCertificate | EvpkiError]:
        """Issue up to :data:`BATCH_LIMIT` requests in one transaction; per request, in order, its
        certificate or the error that refused it (the same error :meth:`issue` would raise).

        One audit record per certificate, one audit-head update per call. ``resume_since``: a request
        whose identity already got a valid certificate for the same key from the same CA since then
        gets that certificate back rather than a second one (a bulk run that stopped resumes cleanly).
        """
        if len(requests) > BATCH_LIMIT:
            raise InvalidInput(f"at most {BATCH_LIMIT} requests per batch, got {len(requests)}")
        issue_requests = [IssueRequest(r.profile, r.csr, r.identity, r.ca_id, r.validity) for r in requests]
        return issue_many(self._ctx, issue_requests, actor, resume_since=resume_since)

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
