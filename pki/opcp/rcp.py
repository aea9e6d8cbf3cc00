"""The Root Certificate Pool (OPCP ``rcp.v1.json``), backed by the trust store and our own roots.

The pool lists the V2G, MO and OEM roots a participant should trust: our own usable roots of each
kind (evpki's V2G, MO and OEM roots) and the trust store's roots of the matching OCPP use
(``V2GRootCertificate``, ``MORootCertificate``, ``OEMRootCertificate``), as ``pki.cas.roots``
offers them to stations (expired, revoked and retired roots left out). ``PE`` roots have no OCPP
use and are refused.

A root's ``rootCertificateId`` is a name-based UUID (RFC 9562 v5) of its use and SHA-256, so it is
the same in every process and after a restore, with no table of its own. ``saveRootCa`` trusts a
root (the trust store's checks; the same root again is no change), ``deleteRootCa`` retires it;
evpki's own roots are the hierarchy's (``evpki ca``) and cannot be deleted here.

The Certificate Trust List (``GET /v1/root/ctl``) is the same listing with a time stamp, in the shape
``evpki trust import`` reads. OPCP has not defined its signer yet, so it carries no signature.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from pki.ca.root_uses import RootUse
from pki.ca.services import CertificateAuthorities
from pki.ca.trust_store import TrustStore
from pki.core.errors import Conflict, InvalidInput, NotFound
from pki.opcp.certinfo import (
    b64_der,
    colon_hex,
    common_name,
    der,
    distinguished_name,
    fingerprints,
    iso_time,
    key_identifier,
    organization,
    signature_algorithm,
    xsd_namespace,
)
from pki.runtime.context import Context

__all__ = ["ROOT_TYPES", "PoolRoot", "RootPool", "root_certificate_id"]

ROOT_TYPES: dict[str, RootUse] = {"V2G": RootUse.V2G, "MO": RootUse.MO, "OEM": RootUse.OEM}
_NAMESPACE = uuid.UUID("5b8f3c0e-6a51-4c3b-9d7e-0e1f5a0c2b9d")  # evpki's own: names RCP entries


def root_certificate_id(use: RootUse, sha256: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{use.value}:{sha256}"))


@dataclass(frozen=True, slots=True)
class PoolRoot:
    root_certificate_id: str
    root_type: str
    certificate: x509.Certificate
    own: bool  # one of evpki's own roots (not deletable here)

    @property
    def sha256(self) -> str:
        return fingerprints(self.certificate)[0]

    def as_opcp(self) -> dict[str, Any]:
        """The ``RootCertV2`` object (its informative fields are read from the certificate itself)."""
        certificate = self.certificate
        sha256, sha1 = fingerprints(certificate)
        ski = key_identifier(certificate)
        body: dict[str, Any] = {
            "rootCertificateId": self.root_certificate_id,
            "rootType": self.root_type,
            "caCertificate": b64_der(certificate),
            "rootAuthorityKeyIdentifier": base64.b64encode(ski).decode(),
            "rootAuthorityKeyIdentifierHex": colon_hex(ski),
            "rootIssuerSerialNumber": f"{certificate.serial_number:x}",
            "validFrom": iso_time(certificate.not_valid_before_utc),
            "validTo": iso_time(certificate.not_valid_after_utc),
            "fingerprint": sha256,
            "fingerprintSha1": sha1,
        }
        optional = {
            "distinguishedName": distinguished_name(certificate.subject),
            "commonName": common_name(certificate),
            "organizationName": organization(certificate),
            "signatureAlgorithm": signature_algorithm(certificate),
            "xsdMsgDefNamespace": xsd_namespace(certificate),
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


def parse_root_type(text: str) -> str:
    upper = text.upper() if isinstance(text, str) else ""
    if upper == "PE":
        raise InvalidInput("PE roots have no OCPP root use; this pool holds V2G, MO and OEM roots")
    if upper not in ROOT_TYPES:
        raise InvalidInput(f"rootType must be one of {', '.join(ROOT_TYPES)}")
    return upper


class RootPool:
    """``pki.opcp.rcp``: the OPCP root pool over ``pki.cas`` (our roots) and ``pki.trust`` (the store)."""

    def __init__(self, ctx: Context, cas: CertificateAuthorities, trust: TrustStore) -> None:
        self._ctx = ctx
        self._cas = cas
        self._trust = trust

    def list(self, root_type: str | None = None) -> list[PoolRoot]:
        types = [parse_root_type(root_type)] if root_type is not None else list(ROOT_TYPES)
        roots: list[PoolRoot] = []
        for kind in types:
            use = ROOT_TYPES[kind]
            foreign = {view.sha256 for view in self._trust.list(use=use)}
            try:
                usable = self._cas.roots(use)
            except NotFound:
                continue
            for certificate in usable:
                sha256 = fingerprints(certificate)[0]
                roots.append(PoolRoot(root_certificate_id(use, sha256), kind, certificate, sha256 not in foreign))
        return roots

    def get(self, root_certificate_id: str) -> PoolRoot:
        for root in self.list():
            if root.root_certificate_id == root_certificate_id.lower():
                return root
        raise NotFound("Root certificate with the given ID is not found")

    def save(self, ca_certificate: str, root_type: str, *, actor: str) -> PoolRoot:
        """Trust a root for its type's use (``saveRootCa``); the same root again changes nothing."""
        kind = parse_root_type(root_type)
        try:
            raw = base64.b64decode("".join(str(ca_certificate).split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("caCertificate is not Base64") from None
        use = ROOT_TYPES[kind]
        try:
            certificate = x509.load_der_x509_certificate(raw)
        except ValueError:
            raise InvalidInput("caCertificate is not a DER certificate") from None
        sha256 = fingerprints(certificate)[0]
        existing = [root for root in self.list(kind) if root.sha256 == sha256]
        if existing:
            return existing[0]
        with contextlib.suppress(Conflict):  # trusted meanwhile (or trusted but not usable now): the pool holds it
            self._trust.add(der(certificate), use=use, actor=actor)
        return PoolRoot(root_certificate_id(use, sha256), kind, certificate, False)

    def delete(self, root_certificate_id: str, *, actor: str) -> PoolRoot:
        """Retire a trusted root (``deleteRootCa``); evpki's own roots are the hierarchy's business."""
        root = self.get(root_certificate_id)
        if root.own:
            raise InvalidInput("this is one of evpki's own roots; it leaves the pool when it expires or is revoked")
        self._trust.remove(root.sha256, use=ROOT_TYPES[root.root_type], actor=actor)
        return root

    def trust_list(self) -> dict[str, Any]:
        """The Certificate Trust List: every root of the pool and when it was read (unsigned, see the module)."""
        return {
            "timeStamp": self._ctx.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "CTL": {"rootCertificates": [root.as_opcp() for root in self.list()]},
        }
