"""The CSMS's TLS server identity for the station gateway: its certificates and their keys, kept fresh.

- Two server certificates, ECDSA P-256 and RSA-2048, so that every cipher suite OCPP requires of
  a CSMS can be negotiated (A00.FR.421: ECDHE-ECDSA-AES128/256-GCM and RSA-AES128/256-GCM); a
  station needs only one of the pairs (A00.FR.422). Both carry CN = SAN dNSName = the server's
  FQDN (A00.FR.510) and come from the ``csms-server`` profile (issued by ``cso-sub``).
- Fast expiration instead of revocation (A00.FR.701): 24 h certificates, re-issued when half of
  their life is gone, at start and by :meth:`ServerCertificates.refresh` while running. The keys
  are generated here and kept as PKCS#8 files encrypted with the key store's passphrase (mode
  0600) next to their chains; the gateway never sees a private key, only an SSL context loaded
  by :meth:`ServerCertificates.load_into`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pki.ca.issuance import IssueRequest, issue
from pki.ca.policy import RequestIdentity
from pki.core.secret_files import write_private
from pki.keys.file import encrypt_pkcs8
from pki.runtime.context import Context

__all__ = ["SERVER_CERTIFICATE_VALIDITY", "ServerCertificate", "ServerCertificates"]

log = logging.getLogger("evpki.bridge.tls")

SERVER_CERTIFICATE_VALIDITY = dt.timedelta(hours=24)  # A00.FR.701: CSMS certificates expire fast
_KINDS = ("ecdsa", "rsa")  # load order: ECDSA first, then RSA (one SSL_CTX holds one of each)


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    kind: str  # "ecdsa" | "rsa"
    chain_path: Path  # leaf first, then the issuing sub-CAs (no root)
    key_path: Path  # encrypted PKCS#8 PEM
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime

    def needs_renewal(self, now: dt.datetime) -> bool:
        """True once half of the certificate's life is gone (so a 24 h certificate is renewed at 12 h)."""
        return now >= self.not_before + (self.not_after - self.not_before) / 2


def _new_key(kind: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    # A00.FR.501-503: >= 112-bit strength (P-256, RSA-2048).
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class ServerCertificates:
    """The bridge's ECDSA and RSA ``csms-server`` certificates for one FQDN, kept fresh."""

    def __init__(
        self,
        ctx: Context,
        *,
        server_name: str,
        directory: Path,
        validity: dt.timedelta = SERVER_CERTIFICATE_VALIDITY,
    ) -> None:
        self._ctx = ctx
        self.server_name = server_name
        self.directory = directory
        self.validity = validity
        self.current: dict[str, ServerCertificate] = {}

    def _paths(self, kind: str) -> tuple[Path, Path]:
        stem = f"csms-server-{self.server_name}-{kind}"
        return self.directory / f"{stem}.chain.pem", self.directory / f"{stem}.key.pem"

    def _load(self, kind: str) -> ServerCertificate | None:
        chain_path, key_path = self._paths(kind)
        if not chain_path.is_file() or not key_path.is_file():
            return None
        try:
            leaf = x509.load_pem_x509_certificates(chain_path.read_bytes())[0]
        except ValueError:
            log.warning("unreadable server certificate %s; issuing a new one", chain_path)
            return None
        names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names or names[0].value != self.server_name:
            return None
        return ServerCertificate(
            kind,
            chain_path,
            key_path,
            format(leaf.serial_number, "X"),
            leaf.not_valid_before_utc,
            leaf.not_valid_after_utc,
        )

    def _issue(self, kind: str) -> ServerCertificate:
        key = _new_key(kind)
        with self._ctx.database.read() as session:
            organization = self._ctx.organization(session)
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, self.server_name)]
        if organization:
            subject.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name(subject))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(self.server_name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        request = IssueRequest(
            profile="csms-server",
            csr=csr.public_bytes(serialization.Encoding.PEM),
            identity=RequestIdentity(fqdn=self.server_name),
            validity=self.validity,
        )
        issued = issue(self._ctx, request, "bridge")
        chain_path, key_path = self._paths(kind)
        # Key first: a chain file is only ever published next to the key it belongs to.
        write_private(key_path, encrypt_pkcs8(key, self._ctx.settings.passphrase()))
        write_private(chain_path, issued.chain_pem.encode())
        view = issued.certificate
        log.info(
            "issued %s server certificate %s for %s, valid until %s",
            kind,
            view.serial,
            self.server_name,
            view.not_after,
        )
        return ServerCertificate(kind, chain_path, key_path, view.serial, view.not_before, view.not_after)

    def refresh(self) -> bool:
        """Issue whichever certificate is missing or half-way through its life; True if any changed."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        now = self._ctx.clock.now()
        changed = False
        for kind in _KINDS:
            existing = self.current.get(kind) or self._load(kind)
            if existing is None or existing.needs_renewal(now) or existing.not_after <= now:
                existing = self._issue(kind)
                changed = True
            self.current[kind] = existing
        return changed

    def load_into(self, context: ssl.SSLContext) -> None:
        """Load both certificates into ``context`` (ECDSA, then RSA); new handshakes use them at once."""
        password = self._ctx.settings.passphrase()
        for kind in _KINDS:
            certificate = self.current[kind]
            context.load_cert_chain(certificate.chain_path, certificate.key_path, password=password)
