"""Revocation's services on the facade: ``pki.revocation`` (status changes), ``pki.crls``, ``pki.ocsp``."""

from __future__ import annotations

import datetime as dt
import logging
import time

from pki.ca.services import Certificates
from pki.core import events
from pki.core.errors import EvpkiError
from pki.operations import audit
from pki.revocation import crl_publishing
from pki.revocation.ocsp_responder import OcspAnswer, OcspResponder
from pki.revocation.reasons import RevocationReason, parse_reason, release_hold, revoke_row, status_change_time
from pki.runtime.context import Context
from pki.runtime.views import CertificateView, CrlView, certificate_view
from pki.store import repository

__all__ = ["Crls", "Ocsp", "Revocations"]

log = logging.getLogger("evpki.crl")


class Crls:
    """``pki.crls``: generate, read and republish a CA's full and delta CRLs."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def generate(
        self,
        ca_id: str,
        *,
        next_update: dt.timedelta | None = None,
        actor: str = "system",
        delta: bool = False,
    ) -> CrlView:
        """Build, sign and store the next full CRL of ``ca_id`` (a delta CRL with ``delta``)."""
        return crl_publishing.generate(
            self._ctx, ca_id, kind="delta" if delta else "full", next_update=next_update, actor=actor
        )

    def latest(self, ca_id: str) -> CrlView:
        """The newest stored full CRL, current or not; :class:`NotFound` before the first."""
        return crl_publishing.latest(self._ctx, ca_id)

    def current(self, ca_id: str, *, delta: bool = False) -> CrlView:
        """The CA's current full (or delta) CRL, regenerated first when the stored one is stale."""
        return crl_publishing.current(self._ctx, ca_id, kind="delta" if delta else "full")

    def publish(self, ca_id: str) -> None:
        """Republish the CA's CRLs after a committed status change; failing here fails nothing.

        The change is already committed, and :meth:`current` regenerates stale CRLs later.
        """
        try:
            crl_publishing.publish_after_change(self._ctx, ca_id)
        except EvpkiError as error:
            log.warning("CRLs of %s not republished: %s", ca_id, error.message)


class Revocations:
    """``pki.revocation``: revoke a certificate, put it on hold and release the hold (RFC 5280 §5.3.1)."""

    def __init__(self, ctx: Context, crls: Crls) -> None:
        self._ctx = ctx
        self._crls = crls

    def revoke(
        self,
        key: str,
        reason: str | RevocationReason,
        *,
        ca_id: str | None = None,
        actor: str = "system",
        publish_crls: bool = True,
    ) -> CertificateView:
        parsed = reason if isinstance(reason, RevocationReason) else parse_reason(reason)
        with self._ctx.database.write() as session:
            row = repository.find_certificate(session, key, ca_id)
            revoke_row(session, row, parsed, clock=self._ctx.clock, actor=actor)
            session.flush()
            view = certificate_view(session, row, self._ctx.clock.now())
        events.emit("revocation", {"reason": parsed.value})
        if publish_crls:
            self._crls.publish(view.issuer_id)
        return view

    def release_hold(
        self, key: str, *, ca_id: str | None = None, actor: str = "system", publish_crls: bool = True
    ) -> CertificateView:
        with self._ctx.database.write() as session:
            row = repository.find_certificate(session, key, ca_id)
            now = status_change_time(session, row.issuer_id, self._ctx.clock)
            release_hold(row, now)
            audit.append(
                session,
                at=now,
                actor=actor,
                action="release-hold",
                ca_id=row.issuer_id,
                serial=row.serial,
                details={"sha256": row.sha256},
            )
            session.flush()
            view = certificate_view(session, row, self._ctx.clock.now())
        if publish_crls:
            self._crls.publish(view.issuer_id)
        return view


class Ocsp:
    """``pki.ocsp``: answer OCSP requests, pre-sign responses, manage the delegated responders."""

    def __init__(self, ctx: Context, certificates: Certificates) -> None:
        self._ctx = ctx
        self._certificates = certificates
        self._responder: OcspResponder | None = None

    @property
    def _engine(self) -> OcspResponder:
        if self._responder is None:
            self._responder = OcspResponder(self._ctx)
        return self._responder

    def close(self) -> None:
        """Stop the answer cache's status feed (a PostgreSQL listener thread); :meth:`PKI.close` calls it."""
        if self._responder is not None:
            self._responder.close()

    def respond(self, request_der: bytes) -> OcspAnswer:
        """Answer one DER OCSPRequest (RFC 6960); bad input gives an error *response*, never an exception."""
        started = time.perf_counter()
        answer = self._engine.respond(request_der)
        events.emit(
            "ocsp",
            {"status": _status_label(answer), "cache": "hit" if answer.from_store else "miss"},
            time.perf_counter() - started,
        )
        return answer

    def presign(self, ca_id: str | None = None) -> dict[str, int]:
        """Pre-sign responses for every unexpired certificate lacking a current one; per CA, how many."""
        if ca_id is not None:
            ca_ids = [ca_id]
        else:
            with self._ctx.database.read() as session:
                ca_ids = [row.id for row in repository.list_cas(session)]
        return {ca: self._engine.presign(ca) for ca in ca_ids}

    def responder(self, ca_id: str) -> CertificateView:
        """The CA's current delegated responder certificate, issued or rotated when needed."""
        responder = self._engine.responders.get(ca_id)
        return self._certificates.get(responder.serial, ca_id)

    def rotate_responder(self, ca_id: str, *, actor: str = "system") -> CertificateView:
        responder = self._engine.responders.rotate(ca_id, actor=actor)
        return self._certificates.get(responder.serial, ca_id)


def _status_label(answer: OcspAnswer) -> str:
    """good | revoked | unknown (the first CertID's status) or the OCSP error status, for metrics."""
    if answer.status == "successful":
        return answer.cert_statuses[0] if answer.cert_statuses else "unknown"
    return {"malformedRequest": "malformed"}.get(answer.status, answer.status)
