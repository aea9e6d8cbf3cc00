"""Reading roots to trust from what an operator hands over: one certificate (PEM or DER), a PEM
bundle, or a Certificate Trust List as an OPCP Root Certificate Pool serves it (``GET /v1/root/ctl``:
an object whose ``CTL`` holds RCP root certificate objects, ``rootType`` and Base64 DER
``caCertificate``). Nothing here judges a root; :mod:`pki.ca.trust_store` does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.ca.root_uses import RootUse
from pki.core.errors import InvalidInput

__all__ = [
    "LABEL",
    "MAX_CERTIFICATE_BYTES",
    "MAX_TRUST_FILE_BYTES",
    "RCP_ROOT_TYPES",
    "Candidate",
    "ctl_candidates",
    "load_one",
    "pem_candidates",
    "rcp_entries",
]

MAX_TRUST_FILE_BYTES = 4 << 20  # a trust list of a few thousand roots
MAX_CERTIFICATE_BYTES = 16 << 10
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
# OPCP RCP rootType -> OCPP InstallCertificateUse. "PE" (a provisioning environment) has none.
RCP_ROOT_TYPES = {"V2G": RootUse.V2G, "MO": RootUse.MO, "OEM": RootUse.OEM}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A root read from input, with what the file says about it, before any check."""

    entry: str
    der: bytes | None
    use: RootUse | None
    label: str | None = None
    problem: str | None = None  # why it cannot even be checked (bad Base64, unknown rootType)
    fingerprint: str | None = None  # what an RCP entry claims its SHA-256 is


def load_one(data: bytes) -> x509.Certificate:
    stripped = data.strip()
    try:
        if stripped.startswith(b"-----BEGIN"):
            found = x509.load_pem_x509_certificates(stripped)
            if len(found) != 1:
                raise InvalidInput(f"expected one PEM certificate, found {len(found)}; use 'trust import' for a bundle")
            return found[0]
        return x509.load_der_x509_certificate(data)
    except (ValueError, x509.InvalidVersion) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput("not an X.509 certificate (malformed PEM or DER)") from None


def pem_candidates(data: bytes, use: RootUse | None) -> list[Candidate]:
    if use is None:
        raise InvalidInput("a PEM bundle names no use: pass --use (e.g. V2GRootCertificate)")
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", data, flags=re.DOTALL)
    if not blocks:
        raise InvalidInput("neither a PEM bundle of certificates nor an OPCP Certificate Trust List (JSON)")
    candidates = []
    for index, block in enumerate(blocks, start=1):
        try:
            der = x509.load_pem_x509_certificate(block).public_bytes(serialization.Encoding.DER)
        except (ValueError, x509.InvalidVersion):
            candidates.append(Candidate(f"#{index}", None, use, problem="malformed PEM certificate"))
            continue
        candidates.append(Candidate(f"#{index}", der, use))
    return candidates


def rcp_entries(document: Any) -> list[Any]:
    """The RCP root certificate objects of a CTL response (or of a ``/v1/root/rootCerts`` listing)."""
    if not isinstance(document, dict):
        raise InvalidInput("the Certificate Trust List is not a JSON object")
    body = document.get("CTL", document)
    if not isinstance(body, dict):
        raise InvalidInput("the Certificate Trust List's CTL member is not an object")
    collection = body.get("RootCertificateCollection", body)
    entries = collection.get("rootCertificates") if isinstance(collection, dict) else None
    if not isinstance(entries, list):
        raise InvalidInput("the Certificate Trust List holds no rootCertificates array")
    return entries


def ctl_candidates(data: bytes, use: RootUse | None) -> list[Candidate]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the Certificate Trust List is not valid JSON") from None
    candidates = []
    for index, entry in enumerate(rcp_entries(document), start=1):
        name = f"#{index}"
        if not isinstance(entry, dict):
            candidates.append(Candidate(name, None, None, problem="not a root certificate object"))
            continue
        root_type, encoded = entry.get("rootType"), entry.get("caCertificate")
        mapped = RCP_ROOT_TYPES.get(root_type) if isinstance(root_type, str) else None
        identifier = entry.get("rootCertificateId")
        label = f"rcp:{identifier}" if isinstance(identifier, str) and LABEL.match(f"rcp:{identifier}") else None
        claimed = entry.get("fingerprint")
        fingerprint = claimed.lower().replace(":", "") if isinstance(claimed, str) else None
        problem = None
        der = None
        if mapped is None:
            problem = f"rootType {root_type!r} has no OCPP root use (V2G, MO and OEM have)"
        elif use is not None and mapped is not use:
            problem = f"rootType {root_type} is not the requested {use.value}"
        elif not isinstance(encoded, str):
            problem = "no caCertificate"
        else:
            try:
                der = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                problem = "caCertificate is not Base64"
        candidates.append(Candidate(name, der, mapped, label, problem, fingerprint))
    return candidates
