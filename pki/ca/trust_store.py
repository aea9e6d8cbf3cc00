"""The trust store: root certificates we did not make, trusted for one OCPP root use each.

A foreign root (an ecosystem V2G root, another mobility operator's MO root, a vehicle OEM's
root, a corporate CSMS root) is admitted only if it is a CA (RFC 5280 §4.2.1.9 basicConstraints
cA=TRUE), self-signed (issuer = subject and its signature verifies with its own key), valid now,
and has a key our policy accepts (OCPP A00.FR.502-503: RSA ≥ 2048 bits, EC ≥ 224 bits on a known
curve; Ed448/Ed25519 as ISO 15118-20 roots use). Each refusal is a
:class:`~pki.core.errors.PolicyViolation` naming its rule (``trust.ca``, ``trust.self-signed``,
``trust.expired``, ``trust.not-yet-valid``, ``key.*``); a duplicate (same SHA-256 and use) or a
label in use is a :class:`~pki.core.errors.Conflict`; an unreadable file :class:`InvalidInput`.

Removing a root retires it: the row stays with ``removed_at`` set, so the bridge still knows the
certificate and can delete it from stations once a replacement is installed.

``sync`` pulls the roots of an OPCP Root Certificate Pool (the listing the edge fetched) and
``pki.ca.trust_sync`` reconciles the store with it: roots a sync or the OEM seed added carry
``source`` ``rcp`` or ``seed`` and their ``origin``; only those are ever retired by a sync or seed.

:func:`trusted_roots` is what the rest of the domain reads: the usable roots of one use, newest
first (``pki.cas.roots`` offers them after our own; ISO 15118 provisioning takes the OEM ones as
anchors).

``import_file`` reads a PEM bundle or a Certificate Trust List as an OPCP Root Certificate Pool
serves it (``GET /v1/root/ctl``: an object with ``signerCertificate``, ``timeStamp`` and ``CTL``;
the roots are RCP root certificate objects, ``rootType`` and Base64 DER ``caCertificate``). The
OPCP specification leaves the CTL's body and its signer open, so the list's signature is not
checked: each root is checked on its own, as ``add`` checks it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pki.ca.policy import check_key
from pki.ca.profiles import ProfileName, get_profile
from pki.ca.root_uses import RootUse, parse_root_use
from pki.ca.trust_files import (
    LABEL,
    MAX_CERTIFICATE_BYTES,
    MAX_TRUST_FILE_BYTES,
    Candidate,
    ctl_candidates,
    load_one,
    pem_candidates,
)
from pki.core import parsed
from pki.core.algorithms import describe_key
from pki.core.clock import utc
from pki.core.errors import Conflict, EvpkiError, InvalidInput, NotFound, PolicyViolation
from pki.operations import audit
from pki.runtime.context import Context
from pki.store import repository
from pki.store.models import TrustedRootRow

if TYPE_CHECKING:
    from pki.ca.trust_sync import SyncReport

__all__ = [
    "SOURCES",
    "ImportRefusal",
    "ImportReport",
    "TrustStore",
    "TrustedRootView",
    "check_root",
    "insert_root",
    "retire_root",
    "trusted_roots",
]

# ca-install: the external root a CA was installed under (``evpki ca install``)
SOURCES = ("manual", "import", "rcp", "seed", "ca-install")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class TrustedRootView:
    id: int
    use: RootUse
    sha256: str
    subject: str
    label: str | None
    source: str
    origin: str | None
    not_before: dt.datetime
    not_after: dt.datetime
    added_at: dt.datetime
    added_by: str
    removed_at: dt.datetime | None
    removed_by: str | None
    removed_reason: str | None
    certificate_pem: str

    @classmethod
    def from_row(cls, row: TrustedRootRow) -> TrustedRootView:
        certificate = x509.load_der_x509_certificate(row.der)
        return cls(
            id=int(row.id or 0),
            use=RootUse(row.use),
            sha256=row.sha256,
            subject=row.subject,
            label=row.label,
            source=row.source,
            origin=row.origin,
            not_before=utc(row.not_before),
            not_after=utc(row.not_after),
            added_at=utc(row.added_at),
            added_by=row.added_by,
            removed_at=utc(row.removed_at) if row.removed_at is not None else None,
            removed_by=row.removed_by,
            removed_reason=row.removed_reason,
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        )

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())

    @property
    def retired(self) -> bool:
        return self.removed_at is not None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["use"] = self.use.value
        for key in ("not_before", "not_after", "added_at", "removed_at"):
            data[key] = data[key].isoformat() if data[key] is not None else None
        return data


@dataclass(frozen=True, slots=True)
class ImportRefusal:
    """One root of an imported file that was not added, and why."""

    entry: str  # "#3" (position in the file) and, when readable, the subject
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"entry": self.entry, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ImportReport:
    format: str  # pem | ctl
    added: list[TrustedRootView] = field(default_factory=list)
    unchanged: list[TrustedRootView] = field(default_factory=list)
    refused: list[ImportRefusal] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "added": [view.as_dict() for view in self.added],
            "unchanged": [view.as_dict() for view in self.unchanged],
            "refused": [refusal.as_dict() for refusal in self.refused],
        }


def _check_label(label: str | None) -> None:
    if label is None:
        return
    if not LABEL.match(label):
        raise InvalidInput(f"label {label!r}: 1-64 letters, digits and ._:- (starting with a letter or digit)")
    if _SHA256.match(label.lower()):
        raise InvalidInput(f"label {label!r} looks like a SHA-256 fingerprint; choose another")


def _check_key(certificate: x509.Certificate) -> None:
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise PolicyViolation("key.algorithm", "the root's public key cannot be read") from None
    if describe_key(key).family == "eddsa":
        return  # Ed448 roots are ISO 15118-20's; EdDSA has no weak sizes
    # The rules our own roots follow (A00.FR.502-503), as the CSR policy applies them.
    check_key(get_profile(ProfileName.ROOT.value), key, "ocpp")


def check_root(certificate: x509.Certificate, now: dt.datetime) -> None:
    """Every rule a foreign root must pass; the first broken one raises :class:`PolicyViolation`."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    except ValueError:
        raise InvalidInput("the certificate's extensions cannot be parsed") from None
    if constraints is None or not constraints.ca:
        raise PolicyViolation("trust.ca", "not a CA certificate (basicConstraints cA is not TRUE; RFC 5280 §4.2.1.9)")
    if certificate.issuer != certificate.subject:
        raise PolicyViolation(
            "trust.self-signed",
            f"not a root: issued by {certificate.issuer.rfc4514_string()!r}, "
            f"not by its subject {certificate.subject.rfc4514_string()!r}",
        )
    try:
        certificate.verify_directly_issued_by(certificate)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        raise PolicyViolation(
            "trust.self-signed", "not self-signed: its signature does not verify with its own key"
        ) from None
    if utc(certificate.not_valid_before_utc) > now:
        raise PolicyViolation("trust.not-yet-valid", f"not valid before {certificate.not_valid_before_utc.isoformat()}")
    if utc(certificate.not_valid_after_utc) <= now:
        raise PolicyViolation("trust.expired", f"expired at {certificate.not_valid_after_utc.isoformat()}")
    _check_key(certificate)


def _active(session: Session, *, sha256: str | None = None, use: RootUse | None = None) -> list[TrustedRootRow]:
    statement = select(TrustedRootRow).where(TrustedRootRow.removed_at.is_(None))  # type: ignore[union-attr]
    if sha256 is not None:
        statement = statement.where(TrustedRootRow.sha256 == sha256)  # type: ignore[arg-type]
    if use is not None:
        statement = statement.where(TrustedRootRow.use == use.value)  # type: ignore[arg-type]
    return list(session.execute(statement).scalars())


def _label_taken(session: Session, label: str) -> bool:
    statement = select(TrustedRootRow.id).where(
        TrustedRootRow.label == label,  # type: ignore[arg-type]
        TrustedRootRow.removed_at.is_(None),  # type: ignore[union-attr]
    )
    return session.execute(statement).first() is not None


def insert_root(
    session: Session,
    certificate: x509.Certificate,
    use: RootUse,
    label: str | None,
    source: str,
    now: dt.datetime,
    actor: str,
    *,
    origin: str | None = None,
) -> TrustedRootRow:
    """Trust a checked root in the caller's transaction, with its ``trust-add`` audit record."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    sha256 = hashlib.sha256(der).hexdigest()
    if _active(session, sha256=sha256, use=use):
        raise Conflict(f"root {sha256} is already trusted as {use.value}")
    if label is not None and _label_taken(session, label):
        raise Conflict(f"label {label!r} already names a trusted root")
    row = TrustedRootRow(
        use=use.value,
        sha256=sha256,
        subject=certificate.subject.rfc4514_string(),
        label=label,
        source=source,
        origin=origin,
        der=der,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        added_at=now,
        added_by=actor,
    )
    session.add(row)
    session.flush()
    details = {"use": use.value, "sha256": sha256, "subject": row.subject, "label": label, "source": source}
    if origin is not None:
        details["origin"] = origin
    audit.append(session, at=now, actor=actor, action="trust-add", details=details)
    return row


def retire_root(session: Session, row: TrustedRootRow, now: dt.datetime, actor: str, reason: str | None = None) -> None:
    """Retire a trusted root in the caller's transaction, with its ``trust-remove`` audit record.

    ``reason`` is a sync's or seed's; None means removed by hand.
    """
    row.removed_at = now
    row.removed_by = actor
    row.removed_reason = reason
    session.add(row)
    session.flush()
    details = {"use": row.use, "sha256": row.sha256, "subject": row.subject, "label": row.label}
    if reason is not None:
        details |= {"source": row.source, "origin": row.origin, "reason": reason}
    audit.append(session, at=now, actor=actor, action="trust-remove", details=details)


def trusted_roots(session: Session, use: RootUse, now: dt.datetime) -> list[x509.Certificate]:
    """The foreign roots trusted for ``use`` and valid at ``now``, newest first."""
    found = repository.core_connection(session).execute(_TRUSTED_FOR_USE, {"use": use.value})
    rows = [row for row in found if utc(row.not_before) <= now < utc(row.not_after)]
    rows.sort(key=lambda row: (utc(row.added_at), row.id or 0), reverse=True)
    return [parsed.certificate(row.der) for row in rows]


# Built once, Core on the table: every CertificateInstallationReq reads the OEM roots; the
# certificates themselves are parsed once per DER (pki.core.parsed).
_TRUSTED_ROOT = TrustedRootRow.__table__  # type: ignore[attr-defined]
_TRUSTED_FOR_USE = select(
    *(_TRUSTED_ROOT.c[name] for name in ("id", "der", "not_before", "not_after", "added_at"))
).where(_TRUSTED_ROOT.c.removed_at.is_(None), _TRUSTED_ROOT.c.use == bindparam("use"))


class TrustStore:
    """``pki.trust``: add, list, show, retire and import the foreign roots we trust."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def add(
        self,
        certificate: bytes | str,
        *,
        use: str | RootUse,
        label: str | None = None,
        actor: str = "system",
    ) -> TrustedRootView:
        """Trust one root (PEM or DER) for ``use``; every rule is checked before anything is written."""
        raw = certificate.encode() if isinstance(certificate, str) else certificate
        if len(raw) > MAX_CERTIFICATE_BYTES:
            raise InvalidInput(f"certificate is {len(raw)} bytes; at most {MAX_CERTIFICATE_BYTES}")
        parsed_use = use if isinstance(use, RootUse) else parse_root_use(use)
        _check_label(label)
        parsed = load_one(raw)
        now = self._ctx.clock.now()
        check_root(parsed, now)
        try:
            parsed.subject.rfc4514_string()
        except ValueError:
            raise InvalidInput("the certificate's subject cannot be read") from None
        with self._ctx.database.write() as session:
            row = insert_root(session, parsed, parsed_use, label, "manual", now, actor)
            return TrustedRootView.from_row(row)

    def list(self, *, use: str | RootUse | None = None, include_retired: bool = False) -> list[TrustedRootView]:
        """Trusted roots (of ``use``), newest first; retired ones too with ``include_retired``."""
        parsed = None if use is None else use if isinstance(use, RootUse) else parse_root_use(use)
        statement = select(TrustedRootRow)
        if parsed is not None:
            statement = statement.where(TrustedRootRow.use == parsed.value)  # type: ignore[arg-type]
        if not include_retired:
            statement = statement.where(TrustedRootRow.removed_at.is_(None))  # type: ignore[union-attr]
        statement = statement.order_by(TrustedRootRow.added_at.desc(), TrustedRootRow.id.desc())  # type: ignore[attr-defined,union-attr]
        with self._ctx.database.read() as session:
            return [TrustedRootView.from_row(row) for row in session.execute(statement).scalars()]

    def _find(self, session: Session, key: str, use: RootUse | None) -> TrustedRootRow:
        if not key or len(key) > 100:
            raise InvalidInput("name a trusted root by its SHA-256 fingerprint or its label")
        fingerprint = key.lower().replace(":", "")
        is_fingerprint = bool(_SHA256.match(fingerprint))
        if not is_fingerprint and not LABEL.match(key):
            raise NotFound(f"no trusted root {key!r}: neither a SHA-256 fingerprint nor a label")
        column = TrustedRootRow.sha256 if is_fingerprint else TrustedRootRow.label
        value = fingerprint if is_fingerprint else key
        statement = select(TrustedRootRow).where(column == value)  # type: ignore[arg-type]
        if use is not None:
            statement = statement.where(TrustedRootRow.use == use.value)  # type: ignore[arg-type]
        rows = list(session.execute(statement).scalars())
        if not rows:
            raise NotFound(f"no trusted root {key!r}" + (f" for {use.value}" if use else ""))
        active = [row for row in rows if row.removed_at is None]
        if len(active) > 1:
            uses = ", ".join(sorted(row.use for row in active))
            raise Conflict(f"root {key!r} is trusted for several uses ({uses}); name the use")
        if active:
            return active[0]
        return max(rows, key=lambda row: (utc(row.removed_at or row.added_at), row.id or 0))

    def get(self, key: str, *, use: str | RootUse | None = None) -> TrustedRootView:
        """By SHA-256 fingerprint (hex, colons allowed) or label; a trusted one before a retired one."""
        parsed = None if use is None else use if isinstance(use, RootUse) else parse_root_use(use)
        with self._ctx.database.read() as session:
            return TrustedRootView.from_row(self._find(session, key, parsed))

    def remove(self, key: str, *, use: str | RootUse | None = None, actor: str = "system") -> TrustedRootView:
        """Retire a trusted root: it is no longer offered or trusted, and its row is kept."""
        parsed = None if use is None else use if isinstance(use, RootUse) else parse_root_use(use)
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            row = self._find(session, key, parsed)
            if row.removed_at is not None:
                raise Conflict(f"trusted root {key!r} was already removed at {utc(row.removed_at).isoformat()}")
            retire_root(session, row, now, actor)
            return TrustedRootView.from_row(row)

    def sync(
        self,
        listing: Any,
        *,
        pool: str,
        dry_run: bool = False,
        strict: bool = False,
        actor: str = "system",
    ) -> SyncReport:
        """Bring the roots pulled from the Root Certificate Pool ``pool`` in line with its listing.

        ``listing`` is the pool's decoded ``GET /v1/root/rootCerts`` answer (the edge fetches it);
        :func:`pki.ca.trust_sync.sync_pool` says what is added, retired, refused and held back.
        """
        # trust_sync builds on this module's row functions, so it is imported where it is used.
        from pki.ca.trust_sync import sync_pool

        return sync_pool(self._ctx, listing, pool=pool, dry_run=dry_run, strict=strict, actor=actor)

    def import_file(self, path: str | Path, *, use: str | RootUse | None = None, actor: str = "system") -> ImportReport:
        """Trust every acceptable root of a PEM bundle (``use`` required) or an OPCP CTL (JSON).

        Roots already trusted for their use are unchanged; the others are checked as :meth:`add`
        checks them, and the refused ones reported with the reason. All additions are one
        transaction, one audit record per root, so importing the same file again changes nothing.
        """
        return self.import_data(self._read(Path(path)), use=use, actor=actor)

    def import_data(self, data: bytes, *, use: str | RootUse | None = None, actor: str = "system") -> ImportReport:
        """:meth:`import_file` on the file's bytes (a REST body)."""
        if len(data) > MAX_TRUST_FILE_BYTES:
            raise InvalidInput(f"the trust list is larger than {MAX_TRUST_FILE_BYTES} bytes")
        parsed_use = None if use is None else use if isinstance(use, RootUse) else parse_root_use(use)
        is_ctl = data.lstrip()[:1] == b"{"
        candidates = ctl_candidates(data, parsed_use) if is_ctl else pem_candidates(data, parsed_use)
        report = ImportReport("ctl" if is_ctl else "pem")
        now = self._ctx.clock.now()
        accepted: list[tuple[x509.Certificate, RootUse, str | None]] = []
        seen: set[object] = set()
        with self._ctx.database.write() as session:
            for candidate in candidates:
                outcome = self._judge(session, candidate, now, seen)
                if isinstance(outcome, ImportRefusal):
                    report.refused.append(outcome)
                elif isinstance(outcome, TrustedRootView):
                    report.unchanged.append(outcome)
                else:
                    accepted.append(outcome)
            for certificate, root_use, label in accepted:
                row = insert_root(session, certificate, root_use, label, "import", now, actor)
                report.added.append(TrustedRootView.from_row(row))
        return report

    def _read(self, path: Path) -> bytes:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_TRUST_FILE_BYTES + 1)
        except OSError as exc:
            raise InvalidInput(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
        if len(data) > MAX_TRUST_FILE_BYTES:
            raise InvalidInput(f"{path} is larger than {MAX_TRUST_FILE_BYTES} bytes")
        return data

    def _judge(
        self, session: Session, candidate: Candidate, now: dt.datetime, seen: set[object]
    ) -> ImportRefusal | TrustedRootView | tuple[x509.Certificate, RootUse, str | None]:
        if candidate.problem is not None or candidate.der is None or candidate.use is None:
            return ImportRefusal(candidate.entry, candidate.problem or "no certificate")
        try:
            certificate = x509.load_der_x509_certificate(candidate.der)
            entry = f"{candidate.entry} {certificate.subject.rfc4514_string()}"
        except (ValueError, x509.InvalidVersion):
            return ImportRefusal(candidate.entry, "not an X.509 certificate (malformed DER)")
        sha256 = hashlib.sha256(candidate.der).hexdigest()
        if candidate.fingerprint is not None and candidate.fingerprint != sha256:
            return ImportRefusal(entry, f"its fingerprint {candidate.fingerprint} is not the certificate's {sha256}")
        existing = _active(session, sha256=sha256, use=candidate.use)
        if existing:
            return TrustedRootView.from_row(existing[0])
        if (sha256, candidate.use) in seen:
            return ImportRefusal(entry, f"listed twice in the file for {candidate.use.value}")
        try:
            check_root(certificate, now)
        except EvpkiError as error:
            return ImportRefusal(entry, error.message)
        label = candidate.label
        if label is not None and (_label_taken(session, label) or label in seen):
            label = None  # the root is what matters; a label another root holds is dropped
        seen.add((sha256, candidate.use))
        if label is not None:
            seen.add(label)
        return certificate, candidate.use, label
