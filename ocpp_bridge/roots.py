"""Root reconciliation: what a station's trust store should gain or lose, from its GetInstalledCertificateIds answer.

OCPP M03 (inventory), M05 (InstallCertificate) and M04 (DeleteCertificate): for every root use
the station reported, each root we trust for that use (:meth:`pki.PKI.roots`: not expired, not
revoked, newest first) that the station lacks is installed; each installed root that is *ours*
but no longer trusted for that use (revoked, expired, removed from the trust set, or installed
under the wrong use) is deleted, with exactly the hash data the station reported (M04.FR.07).
Roots that are not ours are left alone, except a foreign root of the trust store (``pki.trust``)
that was retired or expired: it is deleted from the station under its use once the station
reports another trusted root of that use installed, so a station is never left without one.
Installs come before deletes, so a rollover never leaves a station without a root.

Root rollover (``evpki ca rollover``): a station that holds the old CSMS root gets the new
generation as its *link certificate* (the new root's name and key, signed by the old root), which
is what a station with SecurityCtrlr.AdditionalRootCertificateCheck accepts (M05.FR.09-16) and
what any other station can use too. The link counts as the new root while the old root is still
trusted; once the old one is not, the station gets the self-signed new root, before the old root
is deleted. The other roots (V2G, MO, Manufacturer, OEM) are installed self-signed at once: the
link rule of M05.FR.09-16 is the CSMS root's, and a firmware signer must chain directly to a
ManufacturerRootCertificate (OCPP L01), so a link would not help it. A station then holds both
generations until the old root stops being trusted and is deleted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ocpp_bridge.status import HASHES, cert_id_of
from pki import PKI
from pki.ca import RootUse
from pki.core import NotFound
from pki.runtime import pem

__all__ = ["USES_2X", "Change", "matches", "plan", "roots20"]

# GetInstalledCertificateIds 2.0.1 root uses (V2GCertificateChain is the station's own chain, not a root).
USES_2X = ("CSMSRootCertificate", "V2GRootCertificate", "MORootCertificate", "ManufacturerRootCertificate")
_USE_16 = {"CentralSystemRootCertificate": RootUse.CSMS, "ManufacturerRootCertificate": RootUse.MANUFACTURER}
# What a -20 PKI's CAs issue → the OCPP root use of its root.
_ROLE_USE = {"secc": RootUse.V2G, "cps-leaf": RootUse.V2G, "contract": RootUse.MO, "oem-provisioning": RootUse.OEM}
_HASH_FIELDS = ("hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber")


@dataclass(frozen=True, slots=True)
class Change:
    action: str  # InstallCertificate | DeleteCertificate
    topic: str  # the delivery topic: one pending change per root and use
    payload: dict[str, Any]


def matches(root: x509.Certificate, hash_data: dict[str, Any], issuer: x509.Certificate | None = None) -> bool:
    """Whether OCPP ``CertificateHashDataType`` names ``root`` (hex compared case-insensitively).

    ``issuer`` is the certificate that signed it; None for a self-signed root.
    """
    algorithm = str(hash_data.get("hashAlgorithm", ""))
    if algorithm not in HASHES:
        return False
    try:
        if int(str(hash_data["serialNumber"]), 16) != root.serial_number:
            return False
    except (KeyError, ValueError):
        return False
    expected = cert_id_of(root, issuer or root, algorithm)
    return all(
        str(hash_data.get(field, "")).lower() == expected[field].lower()
        for field in ("issuerNameHash", "issuerKeyHash")
    )


def _use(version: str, name: str) -> RootUse | None:
    if version == "1.6":
        return _USE_16.get(name)
    try:
        return RootUse(name)
    except ValueError:
        return None  # V2GCertificateChain


def _installed(
    version: str, request: dict[str, Any], response: dict[str, Any]
) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    if version == "1.6":
        use = request["certificateType"]
        return [use], [(use, entry) for entry in response.get("certificateHashData", [])]
    # M03: an omitted certificateType asks for every type.
    uses = list(request.get("certificateType") or [*USES_2X, *(["OEMRootCertificate"] if version == "2.1" else [])])
    entries = [
        (entry["certificateType"], entry["certificateHashData"])
        for entry in response.get("certificateHashDataChain", [])
    ]
    return uses, entries


def roots20(pki: PKI, use: RootUse) -> list[x509.Certificate]:
    """Our -20 roots for ``use``: not expired, not revoked, newest first."""
    now = pki.clock.now()
    cas = [ca for ca in pki.cas.list() if ca.standard == "iso15118-20"]
    uses: dict[str, set[RootUse]] = defaultdict(set)
    for ca in cas:
        uses[ca.pki].update(_ROLE_USE[profile] for profile in ca.issues if profile in _ROLE_USE)
    found = []
    for ca in sorted(cas, key=lambda c: c.not_before, reverse=True):
        if not ca.is_root or use not in uses[ca.pki] or ca.not_after <= now:
            continue
        try:
            status = pki.certificates.get(ca.serial, ca.id).status
        except NotFound:
            continue
        if status == "valid":
            found.append(x509.load_pem_x509_certificate(ca.certificate_pem.encode()))
    return found


def plan(pki: PKI, version: str, request: dict[str, Any], response: dict[str, Any]) -> list[Change]:
    """The InstallCertificate and DeleteCertificate calls that bring the station's roots in line.

    The trusted roots of a use are ours and the trust store's (:meth:`pki.PKI.cas.roots`).
    """
    uses, installed = _installed(version, request, response)
    root_ids = {
        x509.load_pem_x509_certificate(ca.certificate_pem.encode()): ca.id for ca in pki.cas.list() if ca.is_root
    }
    ours = list(root_ids)
    installs: list[Change] = []
    deletes: list[Change] = []
    for name in uses:
        use = _use(version, name)
        if use is None:
            continue
        try:
            trusted = pki.cas.roots(use)
        except NotFound:
            trusted = []
        if version == "2.1":  # ISO 15118-20 is 2.1's: its stations get the -20 roots beside the -2 ones
            trusted += [root for root in roots20(pki, use) if root not in trusted]
        entries = [entry for kind, entry in installed if kind == name]
        for root in trusted:
            if any(matches(root, entry) for entry in entries):
                continue
            link = pki.cas.root_link(root_ids[root]) if use is RootUse.CSMS and root in root_ids else None
            old = next((old for old in trusted if link is not None and old.subject == link.issuer), None)
            if link is not None and old is not None and any(matches(link, entry, old) for entry in entries):
                continue  # the link stands for the new root while the old root is trusted
            # M05.FR.09-16: a station holding the old root gets the new one signed by it.
            holds_old = old is not None and any(matches(old, entry) for entry in entries)
            certificate = link if link is not None and holds_old else root
            fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
            installs.append(
                Change(
                    "InstallCertificate",
                    f"InstallCertificate:{name}:{fingerprint}",
                    {"certificateType": name, "certificate": pem(certificate)},
                )
            )
        # A foreign root no longer trusted goes only once the station holds another root of its use.
        replaced = any(matches(root, entry) for root in trusted for entry in entries)
        known: list[x509.Certificate] | None = None  # the store's roots of this use, read only when needed
        for entry in entries:
            root = next((candidate for candidate in ours if matches(candidate, entry)), None)
            if root is None and replaced and not any(matches(candidate, entry) for candidate in trusted):
                if known is None:
                    known = [view.certificate for view in pki.trust.list(use=use, include_retired=True)]
                root = next((candidate for candidate in known if matches(candidate, entry)), None)
            if root is None or root in trusted:
                continue  # not ours nor a retired foreign root of this use, or still trusted
            fingerprint = root.fingerprint(hashes.SHA256()).hex()
            # M04.FR.07: the hash algorithm and values exactly as the station reported them.
            hash_data = {field: entry[field] for field in _HASH_FIELDS}
            deletes.append(
                Change(
                    "DeleteCertificate", f"DeleteCertificate:{name}:{fingerprint}", {"certificateHashData": hash_data}
                )
            )
    return installs + deletes
