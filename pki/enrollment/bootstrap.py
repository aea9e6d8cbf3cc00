"""Bootstrap certificates: the factory certificate a device presents on its first ``/simpleenroll``.

The setting ``est_bootstrap_cas`` (``EVPKI_EST_BOOTSTRAP_CAS``) names the CAs whose certificates
may authenticate a first enrollment, comma-separated: our CA ids and/or PEM files of foreign CAs
(a manufacturer's device CA). A presented certificate is a bootstrap credential when

- it was issued by one of our named CAs and is in our store, inside its validity by the PKI's
  clock and neither revoked nor on hold; or
- its signature verifies with the key of a certificate in one of the PEM files, whose subject is
  its issuer, and both are inside their validity by the PKI's clock. A foreign CA publishes no
  revocation evpki reads: to stop trusting its devices, take its certificate out of the file (re-read
  when the file changes) or the file out of the setting (and restart ``evpki serve``).

The TLS layer only asked for a chain to one of these (or to our CAs); this is where the decision
is made. PEM files are parsed once per modification time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from pki.core.clock import utc
from pki.core.errors import NotFound, PolicyViolation, Unavailable
from pki.runtime.context import Context
from pki.store import repository

__all__ = ["BootstrapAnchors", "bootstrap_anchors", "check_bootstrap"]


@dataclass(frozen=True, slots=True)
class BootstrapAnchors:
    ca_ids: frozenset[str]  # ours: a certificate counts only if our store has it
    own: tuple[x509.Certificate, ...]  # those CAs' certificates
    foreign: tuple[x509.Certificate, ...]  # the PEM files' CA certificates

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """What a TLS listener must accept client certificates under."""
        return self.own + self.foreign


_files: dict[Path, tuple[int, tuple[x509.Certificate, ...]]] = {}
_files_lock = Lock()


def _pem_file(path: Path) -> tuple[x509.Certificate, ...]:
    try:
        mtime = path.stat().st_mtime_ns
        with _files_lock:
            cached = _files.get(path)
            if cached is not None and cached[0] == mtime:
                return cached[1]
        certificates = tuple(x509.load_pem_x509_certificates(path.read_bytes()))
    except OSError as exc:
        raise Unavailable(f"est_bootstrap_cas names {str(path)!r}, which cannot be read: {exc.strerror}") from None
    except ValueError:
        raise Unavailable(f"est_bootstrap_cas: {path} holds no readable PEM certificates") from None
    with _files_lock:
        _files[path] = (mtime, certificates)
    return certificates


def bootstrap_anchors(ctx: Context) -> BootstrapAnchors:
    """The CAs ``est_bootstrap_cas`` names; :class:`Unavailable` (a configuration error) for an entry that is
    neither one of our CA ids nor a readable PEM file."""
    ca_ids: set[str] = set()
    own: list[x509.Certificate] = []
    foreign: list[x509.Certificate] = []
    entries = [part.strip() for part in ctx.settings.est_bootstrap_cas.split(",") if part.strip()]
    if not entries:
        return BootstrapAnchors(frozenset(), (), ())
    directory = ctx.cached_ca_directory()
    for entry in entries:
        if directory is None or (entry not in directory.cas and not Path(entry).is_file()):
            with ctx.database.read() as session:  # a CA made since the directory was cached
                directory = ctx.ca_directory(session.connection())
        if entry in directory.cas:
            ca_ids.add(entry)
            own.append(directory.cas[entry].certificate)
            continue
        path = Path(entry)
        if not path.is_file():
            raise Unavailable(f"est_bootstrap_cas names {entry!r}, which is neither one of our CAs nor a PEM file")
        foreign.extend(_pem_file(path))
    return BootstrapAnchors(frozenset(ca_ids), tuple(own), tuple(foreign))


def _within(certificate: x509.Certificate, now: dt.datetime) -> bool:
    return certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc


def check_bootstrap(ctx: Context, certificate_der: bytes, anchors: BootstrapAnchors) -> x509.Certificate:
    """The bootstrap certificate, if ``certificate_der`` is one; :class:`PolicyViolation` with the reason otherwise."""
    certificate = x509.load_der_x509_certificate(certificate_der)
    now = ctx.clock.now()
    fingerprint = hashlib.sha256(certificate_der).hexdigest()
    if anchors.ca_ids:
        with ctx.database.read() as session:
            try:
                row = repository.find_certificate(session, fingerprint)
            except NotFound:
                row = None
            if row is not None and row.issuer_id in anchors.ca_ids:
                if row.status != "valid":
                    raise PolicyViolation(
                        "est.bootstrap-revoked", f"bootstrap certificate {row.serial} is {row.status}"
                    )
                if not utc(row.not_before) <= now < utc(row.not_after):
                    raise PolicyViolation(
                        "est.bootstrap-expired", f"bootstrap certificate {row.serial} is not valid now"
                    )
                return certificate
    for anchor in anchors.foreign:
        if anchor.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if not (_within(anchor, now) and _within(certificate, now)):
            raise PolicyViolation(
                "est.bootstrap-expired", "the bootstrap certificate or its CA is not inside its validity period"
            )
        return certificate
    raise PolicyViolation(
        "est.bootstrap-ca",
        "the client certificate is neither one we issued and may renew (use simplereenroll) nor from a "
        "bootstrap CA (EVPKI_EST_BOOTSTRAP_CAS)",
    )
