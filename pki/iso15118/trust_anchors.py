"""Which roots the provisioning service trusts for the certificates a car presents.

* OEM provisioning certificates (CertificateInstallationReq): the roots named by the setting
  ``iso15118_oem_roots`` (``EVPKI_ISO15118_OEM_ROOTS``), a comma-separated list of our CA ids
  (default ``oem-root``) and/or PEM files. For one of our CAs, its certificate is the anchor and
  every CA of ours below it an intermediate. In a PEM file, self-signed certificates are anchors
  and the others intermediates: an external OEM's root and sub-CAs, since the request carries
  the provisioning certificate alone. The trust store's OEMRootCertificate roots (``pki.trust``)
  are anchors too: an OEM root the operator added or imported, retired by removing it.
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

from cryptography import x509
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from pki.ca.profiles import ProfileName
from pki.ca.root_uses import RootUse
from pki.ca.trust_store import trusted_roots
from pki.core.errors import InvalidInput, NotFound
from pki.iso15118.chains import TrustStore
from pki.runtime.context import CaDirectory, Context

__all__ = ["oem_trust", "own_trust"]


@dataclass(frozen=True, slots=True)
class _ParsedFile:
    mtime_ns: int
    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]


_files: dict[Path, _ParsedFile] = {}
_files_lock = Lock()


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


def oem_trust(ctx: Context, directory: CaDirectory, connection: Connection, now: dt.datetime) -> TrustStore:
    anchors: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    for entry in (part.strip() for part in ctx.settings.iso15118_oem_roots.split(",")):
        if not entry:
            continue
        if entry in directory.cas:
            for ca_id in _generations(directory, entry):
                anchors.append(directory.cas[ca_id].certificate)
                intermediates.extend(_below(directory, ca_id))
        elif "/" in entry or entry.endswith(".pem"):
            parsed = _pem_file(Path(entry))
            anchors.extend(parsed.anchors)
            intermediates.extend(parsed.intermediates)
        else:
            raise NotFound(f"iso15118_oem_roots names {entry!r}, which is neither one of our CAs nor a PEM file")
    # Inside the request's own transaction: the roots are the ones trusted when it is answered.
    with Session(bind=connection) as session:
        anchors.extend(root for root in trusted_roots(session, RootUse.OEM, now) if root not in anchors)
    return TrustStore(tuple(anchors), tuple(intermediates))


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
