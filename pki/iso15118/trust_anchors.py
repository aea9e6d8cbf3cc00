"""Which roots the provisioning service trusts for the certificates a car presents.

* OEM provisioning certificates (CertificateInstallationReq): our own OEM CAs that the setting
  ``iso15118_oem_roots`` (``EVPKI_ISO15118_OEM_ROOTS``, a comma-separated list of our CA ids,
  default ``oem-root``, and/or PEM files) names, and the trust store's OEMRootCertificate roots
  (``pki.trust``). For one of our CAs, its certificate is the anchor and every CA of ours below
  it an intermediate. The PEM files are a *seed* of the trust store: their self-signed
  certificates are trusted as OEMRootCertificate roots (``source`` ``seed``) by
  :func:`seed_oem_roots`, checked as ``evpki trust add`` checks a root; their other certificates
  (an external OEM's sub-CAs: the request carries the provisioning certificate alone) stay
  intermediates read from the file.

  The seed is applied before an installation request is answered whenever the setting or a file
  it names (its modification time) changed since this process last applied it, and so once after
  each start. It is idempotent (nothing to change writes nothing) and each change is audited
  (``trust-add`` / ``trust-remove``, origin ``EVPKI_ISO15118_OEM_ROOTS``). A root the setting no
  longer names is retired; a root refused by the checks is logged and not trusted; a seeded root
  removed by hand (``evpki trust remove``) stays removed. Roots added by hand, imported or
  synced are never touched by the seed.
* The Provisioning Certificate Pool (``pki.opcp``): a vehicle whose OEM published its chain there
  (checked against these same anchors when it was published) brings its sub-CAs along, so an OEM
  whose root is in the trust store needs no PEM file of intermediates: :func:`oem_trust` with the
  request's ``pcid`` adds them.
* Contract certificates (CertificateUpdateReq): the roots of our own CAs that issue contract
  certificates, with the CAs between them as intermediates.

A root of ours counts with its generations (``evpki ca rollover``: the roots of its PKI), unless
revoked or on hold: after ``oem-root`` rolls over, cars provisioned by either generation
are trusted, and a contract certificate of the old MO generation can still be updated into the new
one (ISO 15118-2 CertificateUpdateReq), while the old root is valid.

PEM files are parsed once per modification time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from weakref import WeakKeyDictionary

from cryptography import x509
from sqlalchemy import Connection, select

from pki.ca.profiles import ProfileName
from pki.ca.root_uses import RootUse
from pki.ca.trust_store import trusted_roots
from pki.ca.trust_sync import SyncReport, seed_roots
from pki.core.errors import Conflict, InvalidInput, NotFound
from pki.iso15118.chains import TrustStore
from pki.runtime.context import CaDirectory, Context
from pki.store.db import Database, joined_session
from pki.store.models import OpcpProvisioningCertificateRow

__all__ = ["SEED_ORIGIN", "oem_trust", "own_trust", "seed_oem_roots"]

SEED_ORIGIN = "EVPKI_ISO15118_OEM_ROOTS"
_SEED_ACTOR = "system:oem-seed"


@dataclass(frozen=True, slots=True)
class _ParsedFile:
    mtime_ns: int
    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]


_files: dict[Path, _ParsedFile] = {}
_files_lock = Lock()
# Per database: the setting and file modification times the seed was last applied with.
_seeded: WeakKeyDictionary[Database, tuple[object, ...]] = WeakKeyDictionary()


def _below(directory: CaDirectory, ca_id: str) -> list[x509.Certificate]:
    """Our CAs that have ``ca_id`` among their ancestors."""
    return [
        entry.certificate
        for entry in directory.cas.values()
        if entry.id != ca_id and any(parent.id == ca_id for parent in directory.chain(entry.id)[1:])
    ]


def _generations(directory: CaDirectory, ca_id: str) -> list[str]:
    """For a root, the usable roots of its PKI (the generations of a rollover); else ``ca_id``.

    A revoked or held root is no anchor: the path check below it (``_check_revocation``) looks at
    the certificates a root issued, not at the root's own status.
    """
    named = directory.cas[ca_id]
    if not named.is_root:
        return [ca_id]
    return [
        entry.id
        for entry in directory.cas.values()
        if entry.is_root and entry.pki == named.pki and directory.statuses.get(entry.id) not in ("revoked", "on-hold")
    ]


def _pem_file(path: Path) -> _ParsedFile:
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise NotFound(f"iso15118_oem_roots names {str(path)!r}, which cannot be read: {exc.strerror}") from None
    with _files_lock:
        cached = _files.get(path)
        if cached is not None and cached.mtime_ns == mtime:
            return cached
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError:
        raise InvalidInput(f"iso15118_oem_roots: {path} holds no readable PEM certificates") from None
    anchors = tuple(c for c in certificates if c.issuer == c.subject)
    if not anchors:
        raise InvalidInput(f"iso15118_oem_roots: {path} holds no self-signed root certificate")
    parsed = _ParsedFile(mtime, anchors, tuple(c for c in certificates if c.issuer != c.subject))
    with _files_lock:
        _files[path] = parsed
    return parsed


def _entries(setting: str) -> list[str]:
    return [entry for entry in (part.strip() for part in setting.split(",")) if entry]


def _is_file(entry: str) -> bool:
    return "/" in entry or entry.endswith(".pem")  # our CA ids are kebab-case names


def seed_oem_roots(ctx: Context, *, force: bool = False) -> SyncReport | None:
    """Trust the self-signed roots of the setting's PEM files as OEMRootCertificate (the seed).

    Skipped (None) when the setting and its files are as when this process last applied it,
    unless ``force``. A file that cannot be read raises as provisioning always has.
    """
    setting = ctx.settings.iso15118_oem_roots
    files = [(entry, _pem_file(Path(entry))) for entry in _entries(setting) if _is_file(entry)]
    key = (setting, *((entry, parsed.mtime_ns) for entry, parsed in files))
    with _files_lock:
        if not force and _seeded.get(ctx.database) == key:
            return None
    roots = list({root: None for _, parsed in files for root in parsed.anchors})
    try:
        report = seed_roots(ctx, roots, use=RootUse.OEM, origin=SEED_ORIGIN, actor=_SEED_ACTOR)
    except Conflict:
        return None  # another process applied it at the same moment; the next request looks again
    with _files_lock:
        _seeded[ctx.database] = key
    return report


def oem_trust(
    ctx: Context, directory: CaDirectory, connection: Connection, now: dt.datetime, *, pcid: str | None = None
) -> TrustStore:
    """Our OEM CAs the setting names, the trust store's OEM roots, the seed files' intermediates and,
    for ``pcid``, the sub-CAs its OEM published in the Provisioning Certificate Pool.

    The seed itself (:func:`seed_oem_roots`) runs before, in its own transaction.
    """
    anchors: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    for entry in _entries(ctx.settings.iso15118_oem_roots):
        if entry in directory.cas:
            for ca_id in _generations(directory, entry):
                anchors.append(directory.cas[ca_id].certificate)
                intermediates.extend(_below(directory, ca_id))
        elif _is_file(entry):
            # Its roots are anchors through the trust store (the seed), so removing one there counts.
            intermediates.extend(_pem_file(Path(entry)).intermediates)
        else:
            raise NotFound(f"iso15118_oem_roots names {entry!r}, which is neither one of our CAs nor a PEM file")
    # Inside the request's own transaction: the roots are the ones trusted when it is answered.
    with joined_session(connection) as session:
        anchors.extend(root for root in trusted_roots(session, RootUse.OEM, now) if root not in anchors)
    if pcid is not None:
        intermediates.extend(_pool_intermediates(connection, pcid))
    return TrustStore(tuple(anchors), tuple(intermediates))


def _pool_intermediates(connection: Connection, pcid: str) -> list[x509.Certificate]:
    """The sub-CAs the PCP holds for ``pcid`` (anchors still come from the trust store or our CAs only)."""
    table = OpcpProvisioningCertificateRow.__table__  # type: ignore[attr-defined]
    row = connection.execute(select(table.c.sub_ca1_der, table.c.sub_ca2_der).where(table.c.pcid == pcid)).first()
    if row is None:
        return []
    return [x509.load_der_x509_certificate(der) for der in row if der is not None]


def own_trust(directory: CaDirectory, profile: ProfileName) -> TrustStore:
    anchors: dict[str, x509.Certificate] = {}
    intermediates: dict[str, x509.Certificate] = {}
    for entry in directory.cas.values():
        if profile.value not in entry.issues:
            continue
        chain = directory.chain(entry.id)
        top = chain[-1]
        if not top.is_root:  # under an external root: it is the anchor, and everything below it is ours to give
            intermediates.update((ca.id, ca.certificate) for ca in chain)
            intermediates.update((f"{top.id}^{n}", c) for n, c in enumerate(top.foreign_chain[:-1]))
            anchors[f"{top.id}^anchor"] = top.foreign_chain[-1]
            continue
        intermediates.update((ca.id, ca.certificate) for ca in chain[:-1])
        for root_id in _generations(directory, chain[-1].id):
            anchors[root_id] = directory.cas[root_id].certificate
            intermediates.update(
                (below.id, below.certificate)
                for below in directory.cas.values()
                if below.id != root_id and directory.chain(below.id)[-1].id == root_id
            )
    return TrustStore(tuple(anchors.values()), tuple(intermediates.values()))
