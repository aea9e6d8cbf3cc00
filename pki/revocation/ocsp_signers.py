"""Delegated OCSP responder certificates (RFC 6960 §4.2.2.2): one per CA, issued and rotated here.

Each CA gets its own responder key and an ``ocsp-responder`` certificate (id-kp-OCSPSigning,
id-pkix-ocsp-nocheck) so that the CA key itself never signs OCSP traffic. The responder key
uses the CA's algorithm, so an ISO 15118-2 chain stays P-256 end to end. A responder is
replaced when it enters its last ``ocsp_responder_renew_before`` or when its certificate is
revoked; the new one is found by every process through the database.

Processes keep the current responder in memory for a few seconds only (a certificate never
changes, but its status may), so a responder revoked after a key compromise stops being used
within :data:`RECHECK_INTERVAL` -- at once where the status feed reports the revocation
(:meth:`ResponderDirectory.forget`).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from pki.ca.authority import build_certificate, new_serial, serial_hex, validity_window
from pki.ca.bootstrap import record_managed_leaf
from pki.ca.profiles import ProfileName, get_profile
from pki.core.algorithms import describe_key
from pki.core.clock import utc
from pki.keys.base import Signer
from pki.runtime.context import Context
from pki.store import repository
from pki.store.models import CertificateRow

__all__ = ["RECHECK_INTERVAL", "Responder", "ResponderDirectory"]

RECHECK_INTERVAL = dt.timedelta(seconds=10)
_PROFILE = ProfileName.OCSP_RESPONDER.value


@dataclass(frozen=True, slots=True)
class Responder:
    ca_id: str
    serial: str
    certificate: x509.Certificate
    signer: Signer
    not_after: dt.datetime
    checked_at: dt.datetime  # when the database last confirmed it current


def _label(ca_id: str) -> str:
    return f"ocsp-{ca_id}"


class ResponderDirectory:
    """The current responder of every CA, issuing or rotating one when needed."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._current: dict[str, Responder] = {}
        self._lock = threading.Lock()

    def get(self, ca_id: str) -> Responder:
        now = self._ctx.clock.now()
        cached = self._current.get(ca_id)
        if cached is not None and now - cached.checked_at < RECHECK_INTERVAL and self._fresh(cached, now):
            return cached
        with self._lock:  # one thread per process looks up or issues; the others wait for it
            cached = self._current.get(ca_id)
            if cached is not None and now - cached.checked_at < RECHECK_INTERVAL and self._fresh(cached, now):
                return cached
            responder = self._find(ca_id, now) or self._issue(ca_id, now)
            self._current[ca_id] = responder
            return responder

    def forget(self, changes: dict[str, set[str] | None]) -> None:
        """Look a CA's responder up again at next use if its certificate changed status (``None``: any)."""
        for ca_id, serials in changes.items():
            cached = self._current.get(ca_id)
            if cached is not None and (serials is None or cached.serial in serials):
                # No lock: the caller may be inside get() of this thread (a commit's checkin).
                self._current.pop(ca_id, None)

    def rotate(self, ca_id: str, *, actor: str = "system") -> Responder:
        """Issue a new responder for ``ca_id`` now, whatever the state of the current one."""
        with self._lock:
            responder = self._issue(ca_id, self._ctx.clock.now(), force=True, actor=actor)
            self._current[ca_id] = responder
            return responder

    def _fresh(self, responder: Responder, now: dt.datetime) -> bool:
        return now < responder.not_after - self._ctx.settings.duration("ocsp_responder_renew_before")

    def _find(self, ca_id: str, now: dt.datetime) -> Responder | None:
        with self._ctx.database.read() as session:
            row = self._newest_usable(session, ca_id, now)
        return self._responder(row, now) if row is not None else None

    def _newest_usable(self, session: Session, ca_id: str, now: dt.datetime) -> CertificateRow | None:
        renew_before = self._ctx.settings.duration("ocsp_responder_renew_before")
        statement = (
            select(CertificateRow)
            .where(
                CertificateRow.issuer_id == ca_id,
                CertificateRow.label == _label(ca_id),
                CertificateRow.status == "valid",
                CertificateRow.not_after > now + renew_before,  # type: ignore[operator]
            )
            .order_by(CertificateRow.not_after.desc())  # type: ignore[union-attr]
            .limit(1)
        )
        return session.execute(statement).scalar_one_or_none()

    def _responder(self, row: CertificateRow, now: dt.datetime) -> Responder:
        assert row.key_id is not None
        return Responder(
            ca_id=row.issuer_id,
            serial=row.serial,
            certificate=x509.load_der_x509_certificate(row.der),
            signer=self._ctx.keys.load(row.key_id),
            not_after=utc(row.not_after),
            checked_at=now,
        )

    def _issue(self, ca_id: str, now: dt.datetime, *, force: bool = False, actor: str = "ocsp-responder") -> Responder:
        ctx = self._ctx
        with ctx.database.write() as session:
            ca_row, issuer = ctx.issuer(session, ca_id)
            repository.get_ca(session, ca_id, lock=True)  # one issuer of responders per CA at a time
            if not force:
                # Another process may have rotated while this one waited for the write lock.
                existing = self._newest_usable(session, ca_id, now)
                if existing is not None:
                    return self._responder(existing, now)
            ctx.check_chain_usable(ctx.ca_directory(session.connection()), ca_id)
            ca_certificate = ctx.ca_certificate(ca_row)
            serial = new_serial()
            # Key ids are never reused: the serial makes each rotation's key its own file.
            key_id = f"ocsp-{ca_id}-{serial_hex(serial)[:16].lower()}"
            signer = ctx.keys.generate(key_id, describe_key(ca_certificate.public_key()).name)
            profile = get_profile(_PROFILE)
            not_before, not_after = validity_window(now, profile.default_validity, ca_certificate)
            certificate = build_certificate(
                issuer=issuer,
                subject=_subject(ca_certificate),
                public_key=signer.public_key(),
                profile=profile,
                serial=serial,
                not_before=not_before,
                not_after=not_after,
                public_url=ctx.settings.public_base_url,
            )
            row = record_managed_leaf(
                session,
                certificate,
                issuer_id=ca_id,
                profile=_PROFILE,
                identity=ca_id,
                key_id=key_id,
                label=_label(ca_id),
                now=now,
                actor=actor,
            )
        return Responder(ca_id, row.serial, certificate, signer, certificate.not_valid_after_utc, now)


def _subject(ca_certificate: x509.Certificate) -> x509.Name:
    """``<CA common name> OCSP Responder`` with the CA's organisation and country."""
    attributes = [
        attribute
        for attribute in ca_certificate.subject
        if attribute.oid in (NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME, NameOID.DOMAIN_COMPONENT)
    ]
    names = ca_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = f"{names[0].value} OCSP Responder" if names else "OCSP Responder"
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
