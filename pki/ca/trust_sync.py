"""Reconciling the trust store with a list of roots someone else keeps: an OPCP Root Certificate
Pool (``pki.trust.sync``) or the OEM roots a setting names (the seed of ``EVPKI_ISO15118_OEM_ROOTS``).

A sync reads the pool's ``GET /v1/root/rootCerts`` answer (``RootCertificateCollection.
rootCertificates``, RCP root certificate objects: ``rootType`` and Base64 DER ``caCertificate``;
the edge fetched it) and, in one transaction:

* adds every listed root that passes :func:`~pki.ca.trust_store.check_root` (a CA, self-signed,
  valid now, a key our policy accepts) and is not trusted yet for its use (``rootType`` V2G, MO,
  OEM; ``PE`` and unknown types are *ignored*: they have no OCPP root use);
* retires the roots this pool added earlier (``source = rcp``, ``origin`` = the pool) that it no
  longer lists -- the RCP deletes revoked and expired roots from the pool
  (OPCP ``01_root-certificate-pool.md``, webhook ``root.cert.revoked``: "removed from the RCP") --
  or that it lists but that no longer pass the checks: expired by their own ``notAfter`` or by the
  pool's ``validTo``;
* leaves every other root alone: one added by hand, imported, seeded or pulled from another pool
  is never retired by a sync.

Each change is one audit record (``trust-add``, ``trust-remove`` with the reason); a sync that
changes nothing writes nothing. ``dry_run`` computes the same report and writes nothing.

What the pool sends is untrusted input. An entry that cannot be *read* (not an object, no
``rootType``, ``caCertificate`` not Base64 DER, a ``fingerprint`` that is not its certificate's)
fails the whole sync with :class:`~pki.core.errors.InvalidInput` and nothing changes: a corrupt
answer does not say what the pool holds, and acting on the rest could retire a root whose entry
was merely unreadable. An entry that is read but *refused* by a check (not a CA, not self-signed,
expired, weak key) is skipped and reported in ``refused``, and the rest applies: the pool is the
operator's chosen authority, and one bad entry must not block the retirement of a revoked root
elsewhere in the list. ``strict`` turns any refusal into a failed sync
(:class:`~pki.core.errors.PolicyViolation`, rule ``trust.sync-refused``) that changes nothing.

A root removed by hand (``evpki trust remove``) is *held back*: a sync or seed never trusts it
again on its own, even if the pool lists it; ``evpki trust add`` does.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pki.ca.root_uses import RootUse
from pki.ca.trust_files import LABEL, MAX_CERTIFICATE_BYTES, RCP_ROOT_TYPES, rcp_entries
from pki.ca.trust_store import ImportRefusal, check_root, insert_root, retire_root
from pki.core.clock import utc
from pki.core.errors import Conflict, EvpkiError, InvalidInput, PolicyViolation
from pki.runtime.context import Context
from pki.store.models import TrustedRootRow

__all__ = ["MAX_POOL_ENTRIES", "Listed", "SyncChange", "SyncReport", "read_pool_listing", "seed_roots", "sync_pool"]

log = logging.getLogger(__name__)

MAX_POOL_ENTRIES = 10_000  # the whole V2G ecosystem lists tens of roots
# Base64 of the largest certificate the store takes, with slack for padding.
_MAX_ENCODED_CERTIFICATE = (MAX_CERTIFICATE_BYTES * 4) // 3 + 4
_NOT_LISTED = "no longer listed by the pool"


@dataclass(frozen=True, slots=True)
class Listed:
    """One root a pool or seed lists, read (its certificate decodes) but not yet judged."""

    entry: str  # "#3 (b1b86334-...)": where it stands in the list
    certificate: x509.Certificate
    sha256: str
    use: RootUse
    label: str | None = None
    expires_at: dt.datetime | None = None  # when the pool says it expires (RCP ``validTo``)


@dataclass(frozen=True, slots=True)
class SyncChange:
    """One root a sync added, retired, left unchanged or held back, and why."""

    use: RootUse
    sha256: str
    subject: str
    label: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "use": self.use.value,
            "sha256": self.sha256,
            "subject": self.subject,
            "label": self.label,
            "reason": self.reason,
        }


@dataclass(slots=True)
class SyncReport:
    pool: str
    source: str  # rcp | seed
    dry_run: bool
    added: list[SyncChange] = field(default_factory=list)
    retired: list[SyncChange] = field(default_factory=list)
    unchanged: list[SyncChange] = field(default_factory=list)
    held_back: list[SyncChange] = field(default_factory=list)  # removed by hand; not trusted again
    refused: list[ImportRefusal] = field(default_factory=list)  # read but failed a check
    ignored: list[ImportRefusal] = field(default_factory=list)  # no OCPP root use (rootType PE)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.retired)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "source": self.source,
            "dryRun": self.dry_run,
            "changed": self.changed,
            "added": [change.as_dict() for change in self.added],
            "retired": [change.as_dict() for change in self.retired],
            "unchanged": [change.as_dict() for change in self.unchanged],
            "heldBack": [change.as_dict() for change in self.held_back],
            "refused": [refusal.as_dict() for refusal in self.refused],
            "ignored": [refusal.as_dict() for refusal in self.ignored],
        }


def _unreadable(entry: str, why: str) -> InvalidInput:
    return InvalidInput(f"the pool's entry {entry} {why}; nothing was changed")


def _pool_time(value: object) -> dt.datetime | None:
    """An RCP date-time (``validTo``), or None when absent or unreadable: it is informative only."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _read_entry(index: int, entry: object) -> Listed | ImportRefusal:
    if not isinstance(entry, dict):
        raise _unreadable(f"#{index}", "is not a root certificate object")
    identifier = entry.get("rootCertificateId")
    name = f"#{index}" + (f" ({identifier[:64]})" if isinstance(identifier, str) and identifier else "")
    root_type, encoded = entry.get("rootType"), entry.get("caCertificate")
    if not isinstance(root_type, str):
        raise _unreadable(name, "has no rootType")
    use = RCP_ROOT_TYPES.get(root_type)
    if use is None:
        return ImportRefusal(name, f"rootType {root_type[:16]!r} has no OCPP root use (V2G, MO and OEM have)")
    if not isinstance(encoded, str) or not encoded:
        raise _unreadable(name, "has no caCertificate")
    if len(encoded) > _MAX_ENCODED_CERTIFICATE:
        raise _unreadable(name, f"has a caCertificate over {MAX_CERTIFICATE_BYTES} bytes")
    try:
        der = base64.b64decode(encoded, validate=True)
        certificate = x509.load_der_x509_certificate(der)
        certificate.subject.rfc4514_string()
    except (binascii.Error, ValueError, x509.InvalidVersion):
        raise _unreadable(name, "has a caCertificate that is not a Base64 DER X.509 certificate") from None
    # Re-encoding normalises nothing cryptography would not; the fingerprint is of the bytes listed.
    sha256 = hashlib.sha256(der).hexdigest()
    claimed = entry.get("fingerprint")
    if isinstance(claimed, str) and claimed and claimed.lower().replace(":", "") != sha256:
        raise _unreadable(name, f"claims fingerprint {claimed[:100]!r}, but its certificate's SHA-256 is {sha256}")
    label = f"rcp:{identifier}" if isinstance(identifier, str) and LABEL.match(f"rcp:{identifier}") else None
    return Listed(name, certificate, sha256, use, label, _pool_time(entry.get("validTo")))


def read_pool_listing(document: Any) -> tuple[list[Listed], list[ImportRefusal]]:
    """The roots of a ``GET /v1/root/rootCerts`` answer, and the entries ignored for having no root use.

    Raises :class:`InvalidInput` for an answer of the wrong shape or any unreadable entry.
    """
    entries = rcp_entries(document)
    if len(entries) > MAX_POOL_ENTRIES:
        raise InvalidInput(f"the pool lists {len(entries)} roots; at most {MAX_POOL_ENTRIES} are read")
    listed: list[Listed] = []
    ignored: list[ImportRefusal] = []
    for index, entry in enumerate(entries, start=1):
        read = _read_entry(index, entry)
        (ignored if isinstance(read, ImportRefusal) else listed).append(read)  # type: ignore[arg-type]
    return listed, ignored


def _judge(
    listed: Sequence[Listed], now: dt.datetime
) -> tuple[list[Listed], dict[tuple[str, str], str], list[ImportRefusal]]:
    """Split into the roots that pass every check and the refused ones (by (sha256, use): why)."""
    accepted: list[Listed] = []
    refused_by_key: dict[tuple[str, str], str] = {}
    refusals: list[ImportRefusal] = []
    seen: set[tuple[str, str]] = set()
    for item in listed:
        key = (item.sha256, item.use.value)
        if key in seen:
            continue  # listed twice: once is what counts
        seen.add(key)
        try:
            if item.expires_at is not None and item.expires_at <= now:
                raise PolicyViolation("trust.expired", f"the pool lists it as expired at {item.expires_at.isoformat()}")
            check_root(item.certificate, now)
        except EvpkiError as error:
            refused_by_key[key] = error.message
            refusals.append(ImportRefusal(f"{item.entry} {item.certificate.subject.rfc4514_string()}", error.message))
            continue
        accepted.append(item)
    return accepted, refused_by_key, refusals


def _change(row: TrustedRootRow, reason: str | None = None) -> SyncChange:
    return SyncChange(RootUse(row.use), row.sha256, row.subject, row.label, reason)


def _reconcile(
    session: Session,
    report: SyncReport,
    accepted: Sequence[Listed],
    refused: dict[tuple[str, str], str],
    *,
    origin: str,
    now: dt.datetime,
    actor: str,
    not_listed: str,
) -> None:
    """Plan the changes into ``report``; unless it is a dry run, make them in ``session``."""
    owned_query = select(TrustedRootRow).where(
        TrustedRootRow.source == report.source,  # type: ignore[arg-type]
        TrustedRootRow.origin == origin,  # type: ignore[arg-type]
        TrustedRootRow.removed_at.is_(None),  # type: ignore[union-attr]
    )
    if not report.dry_run:
        # PostgreSQL: a concurrent sync of the same pool waits here, then sees what this one retired.
        owned_query = owned_query.with_for_update()
    owned = list(session.execute(owned_query).scalars())
    rows = list(session.execute(select(TrustedRootRow).order_by(TrustedRootRow.id)).scalars())  # type: ignore[arg-type]
    active = {(row.sha256, row.use): row for row in rows if row.removed_at is None}
    latest_retired: dict[tuple[str, str], TrustedRootRow] = {}
    for row in rows:
        if row.removed_at is not None:
            key = (row.sha256, row.use)
            known = latest_retired.get(key)
            if known is None or utc(row.removed_at) >= utc(known.removed_at):  # type: ignore[arg-type]
                latest_retired[key] = row
    labels = {row.label for row in active.values() if row.label is not None}
    wanted: set[tuple[str, str]] = set()
    for item in accepted:
        key = (item.sha256, item.use.value)
        wanted.add(key)
        subject = item.certificate.subject.rfc4514_string()
        if key in active:
            report.unchanged.append(_change(active[key]))
            continue
        retired = latest_retired.get(key)
        if retired is not None and retired.removed_reason is None:
            when = utc(retired.removed_at).isoformat()  # type: ignore[arg-type]
            reason = f"removed by hand at {when} by {retired.removed_by}; 'evpki trust add' trusts it again"
            report.held_back.append(SyncChange(item.use, item.sha256, subject, retired.label, reason))
            continue
        label = item.label if item.label is not None and item.label not in labels else None
        if label is not None:
            labels.add(label)
        report.added.append(SyncChange(item.use, item.sha256, subject, label, f"listed as {item.entry}"))
        if not report.dry_run:
            insert_root(session, item.certificate, item.use, label, report.source, now, actor, origin=origin)
    for row in owned:
        key = (row.sha256, row.use)
        if key in wanted:
            continue
        reason = f"refused: {refused[key]}" if key in refused else not_listed
        report.retired.append(_change(row, reason))
        if not report.dry_run:
            retire_root(session, row, now, actor, reason)


def _run(
    ctx: Context,
    listed: Sequence[Listed],
    report: SyncReport,
    *,
    strict: bool,
    actor: str,
    not_listed: str,
) -> SyncReport:
    now = ctx.clock.now()
    accepted, refused, refusals = _judge(listed, now)
    report.refused.extend(refusals)
    if strict and refusals:
        first = refusals[0]
        raise PolicyViolation(
            "trust.sync-refused",
            f"{len(refusals)} root(s) of the pool refused (first: {first.entry}: {first.reason}); nothing was changed",
        )
    if report.dry_run:
        with ctx.database.read() as session:
            _reconcile(
                session, report, accepted, refused, origin=report.pool, now=now, actor=actor, not_listed=not_listed
            )
        return report
    try:
        with ctx.database.write() as session:
            _reconcile(
                session, report, accepted, refused, origin=report.pool, now=now, actor=actor, not_listed=not_listed
            )
    except IntegrityError:
        # Two syncs added the same root at once (PostgreSQL); this one rolled back whole.
        raise Conflict("the trust store changed while this sync ran; nothing was changed, run it again") from None
    return report


def sync_pool(
    ctx: Context, listing: Any, *, pool: str, dry_run: bool = False, strict: bool = False, actor: str = "system"
) -> SyncReport:
    """Bring the roots pulled from ``pool`` in line with its listing (see the module docstring)."""
    if not pool or len(pool) > 2000:
        raise InvalidInput("name the pool (its base URL, at most 2000 characters)")
    listed, ignored = read_pool_listing(listing)
    report = SyncReport(pool, "rcp", dry_run, ignored=ignored)
    return _run(ctx, listed, report, strict=strict, actor=actor, not_listed=_NOT_LISTED)


def seed_roots(
    ctx: Context,
    certificates: Iterable[x509.Certificate],
    *,
    use: RootUse,
    origin: str,
    actor: str,
    dry_run: bool = False,
) -> SyncReport:
    """Make the ``source = seed`` roots of ``origin`` exactly the acceptable ones of ``certificates``.

    The same rules as a sync: refused roots are skipped (and logged), roots removed by hand are held
    back, roots that ``origin`` no longer names are retired, anything else in the store is untouched.
    """
    listed = []
    for index, certificate in enumerate(certificates, start=1):
        der = certificate.public_bytes(serialization.Encoding.DER)
        listed.append(Listed(f"#{index}", certificate, hashlib.sha256(der).hexdigest(), use))
    report = _run(
        ctx,
        listed,
        SyncReport(origin, "seed", dry_run),
        strict=False,
        actor=actor,
        not_listed=f"no longer named by {origin}",
    )
    for refusal in report.refused:
        log.warning("%s: root %s not trusted: %s", origin, refusal.entry, refusal.reason)
    for held in report.held_back:
        log.warning("%s: root %s held back: %s", origin, held.subject, held.reason)
    return report
