"""CRL publishing: which full and delta CRLs a CA has, when they are made again, and their audit.

:mod:`pki.revocation.crl_encoding` builds and signs one CRL; this module owns everything around it. Full and delta
CRLs of a CA draw their numbers from one strictly increasing sequence (RFC 5280 §5.2.3), taken
under the CA row lock. A delta CRL completes the newest full CRL (its base, §5.2.4) and lists
every status change since that base's thisUpdate. Every CRL made is stored and audited in the
same transaction.

A stored CRL stays *current* until one of these makes it stale: its nextUpdate comes within
the refresh margin (``crl_refresh_before``; a quarter of ``delta_crl_validity`` for deltas), a
certificate of the CA changed status after the CRL was made, or (deltas) a newer full CRL
exists. :func:`current` checks that in a read transaction and regenerates in a write
transaction that checks again, so concurrent callers regenerate once: SQLite's
``BEGIN IMMEDIATE`` and PostgreSQL's CA row lock serialise them.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from pki.ca.authority import freshest_crl
from pki.core.clock import utc
from pki.core.errors import InvalidInput, NotFound
from pki.operations import audit
from pki.revocation.crl_encoding import build_crl, build_delta_crl
from pki.revocation.reasons import reason_flag
from pki.runtime.context import Context
from pki.runtime.views import CrlView
from pki.store import repository
from pki.store.models import CrlRow

__all__ = ["PUBLISHER", "CrlKind", "current", "generate", "latest", "publish_after_change"]

CrlKind = Literal["full", "delta"]
PUBLISHER = "crl-publisher"  # the audit actor of CRLs made because the stored ones went stale
_KINDS = ("full", "delta")


def generate(ctx: Context, ca_id: str, *, kind: CrlKind, next_update: dt.timedelta | None, actor: str) -> CrlView:
    """Build, sign, store and audit the next CRL of ``kind`` for ``ca_id``, in one write transaction.

    ``next_update`` is the CRL's validity (default ``crl_validity``, ``delta_crl_validity`` for
    deltas). A delta CRL without any full CRL to complete makes the full one first.
    """
    _check_kind(kind)
    with ctx.database.write() as session:
        return _generate(ctx, session, ca_id, kind, next_update, actor)


def current(ctx: Context, ca_id: str, *, kind: CrlKind, actor: str = PUBLISHER) -> CrlView:
    """The stored CRL of ``kind`` if it is still current, else a newly generated one."""
    _check_kind(kind)
    with ctx.database.read() as session:
        repository.get_ca(session, ca_id)
        view = _current_stored(ctx, session, ca_id, kind)
    if view is not None:
        return view
    with ctx.database.write() as session:
        # Another caller may have regenerated while this one waited for the write lock.
        repository.get_ca(session, ca_id, lock=True)
        view = _current_stored(ctx, session, ca_id, kind)
        if view is not None:
            return view
        return _generate(ctx, session, ca_id, kind, None, actor)


def publish_after_change(ctx: Context, ca_id: str) -> None:
    """Bring the full and delta CRLs of ``ca_id`` up to date after a status change committed."""
    current(ctx, ca_id, kind="full")
    current(ctx, ca_id, kind="delta")


def latest(ctx: Context, ca_id: str, *, kind: CrlKind = "full") -> CrlView:
    """The newest stored CRL of ``kind``, current or not; :class:`NotFound` before the first."""
    _check_kind(kind)
    with ctx.database.read() as session:
        repository.get_ca(session, ca_id)
        row = repository.latest_crl(session, ca_id, kind)
        if row is None:
            what = "CRL" if kind == "full" else "delta CRL"
            raise NotFound(f"no {what} has been generated for {ca_id} yet")
        return _view(row)


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise InvalidInput(f"CRL kind must be 'full' or 'delta', not {kind!r}")


def _generate(
    ctx: Context, session: Session, ca_id: str, kind: str, next_update: dt.timedelta | None, actor: str
) -> CrlView:
    # Locking the CA first means the base read below is still the newest full CRL when the
    # delta's number is taken.
    ca_row = repository.get_ca(session, ca_id, lock=True)
    base: tuple[int, dt.datetime] | None = None
    if kind == "delta":
        base_row = repository.latest_crl(session, ca_id, "full")
        if base_row is None:
            made = _generate(ctx, session, ca_id, "full", None, actor)
            base = (made.number, made.this_update)
        else:
            base = (base_row.number, utc(base_row.this_update))
    # Read before the entries (each statement may see newer commits on PostgreSQL): the CRL then
    # states at least every change up to this number, which is what _current_stored relies on.
    status_seq = repository.status_seq(session, ca_id)
    signer = ctx.keys.load(ca_row.key_id)
    number = repository.next_crl_number(session, ca_id)
    now = ctx.clock.now()
    validity = next_update or (
        ctx.settings.crl_next_update if base is None else ctx.settings.duration("delta_crl_validity")
    )
    # Entries stream straight into the builder: holding them as a list as well would double
    # peak memory for a million-entry CRL.
    if base is None:
        crl = build_crl(
            issuer=ctx.ca_certificate(ca_row),
            signer=signer,
            rsa_pss=ca_row.rsa_pss,
            number=number,
            this_update=now,
            next_update=now + validity,
            entries=repository.revoked_entries(session, ca_id),
            freshest=freshest_crl(ctx.settings.public_base_url, ca_id),
        )
    else:
        crl = build_delta_crl(
            issuer=ctx.ca_certificate(ca_row),
            signer=signer,
            rsa_pss=ca_row.rsa_pss,
            number=number,
            base_number=base[0],
            this_update=now,
            next_update=now + validity,
            # At or after: times have whole seconds, so a change in the base's own second may
            # have missed it; listing it again is harmless (the delta states the newer status).
            entries=repository.changed_entries_since(session, ca_id, base[1]),
        )
    der = crl.public_bytes(serialization.Encoding.DER)
    view = CrlView(
        ca_id=ca_id,
        number=number,
        this_update=now,
        next_update=now + validity,
        revoked_count=len(crl),
        der=der,
        kind=kind,
        base_number=base[0] if base else None,
    )
    repository.add_crl(
        session,
        CrlRow(
            ca_id=ca_id,
            number=number,
            kind=kind,
            base_number=view.base_number,
            this_update=now,
            next_update=view.next_update,
            revoked_count=view.revoked_count,
            der=der,
            status_seq=status_seq,
        ),
    )
    details: dict[str, object] = {
        "number": number,
        "revoked": view.revoked_count,
        "next_update": view.next_update.isoformat(),
    }
    if base is not None:
        details["base_number"] = base[0]
    audit.append(
        session,
        at=now,
        actor=actor,
        action="crl" if base is None else "delta-crl",
        ca_id=ca_id,
        details=details,
    )
    return view


def _current_stored(ctx: Context, session: Session, ca_id: str, kind: str) -> CrlView | None:
    """The newest stored CRL of ``kind`` if nothing makes it stale, else None."""
    row = repository.latest_crl(session, ca_id, kind)
    if row is None:
        return None
    this_update, next_update = utc(row.this_update), utc(row.next_update)
    settings = ctx.settings
    margin = settings.duration("crl_refresh_before") if kind == "full" else settings.duration("delta_crl_validity") / 4
    # A CRL made with a short validity (``crl generate --next-update 1h``) would otherwise be
    # inside its margin from birth and be made again on every request.
    margin = min(margin, (next_update - this_update) / 2)
    if ctx.clock.now() >= next_update - margin:
        return None
    if kind == "delta":
        base = repository.latest_crl(session, ca_id, "full")
        if base is None or base.number != row.base_number:
            return None
    if row.status_seq is not None:
        # The feed counts every committed status change of the CA (migration 0014 says why not time).
        return _view(row) if repository.status_seq(session, ca_id) <= row.status_seq else None
    changed = repository.last_status_change(session, ca_id)
    if changed is None or changed < this_update:
        return _view(row)
    if changed > this_update:
        return None
    # Times have whole seconds: a change stamped with the CRL's own second may have committed
    # before the CRL was built or after, so look at what the CRL says.
    return _view(row) if _states(row.der, kind, session, ca_id, this_update) else None


def _states(der: bytes, kind: str, session: Session, ca_id: str, since: dt.datetime) -> bool:
    """Whether the CRL already states the current status of every certificate changed since ``since``."""
    crl = x509.load_der_x509_crl(der)
    for serial, revoked_at, reason, _changed_at in repository.changed_entries_since(session, ca_id, since):
        entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
        if revoked_at is None and kind == "full":
            if entry is not None:  # released from hold: a full CRL no longer lists it
                return False
            continue
        if entry is None or _entry_reason(entry) != _expected_reason(revoked_at, reason):
            return False
    return True


def _expected_reason(revoked_at: dt.datetime | None, reason: str | None) -> x509.ReasonFlags | None:
    if revoked_at is None:
        return x509.ReasonFlags.remove_from_crl  # RFC 5280 §5.3.1, delta CRLs only
    return reason_flag(reason)


def _entry_reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def _view(row: CrlRow) -> CrlView:
    return CrlView(
        ca_id=row.ca_id,
        number=row.number,
        this_update=utc(row.this_update),
        next_update=utc(row.next_update),
        revoked_count=row.revoked_count,
        der=row.der,
        kind=row.kind,
        base_number=row.base_number,
    )
