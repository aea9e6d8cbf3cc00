"""OCPP 2.1's ISO 15118-20 side of the certificate handlers (:mod:`ocpp_bridge.core` calls in here).

- Get15118EVCertificate: the 2.1 fields ``maximumContractCertificateChains`` and
  ``prioritizedEMAIDs`` (M01.FR.03-06) go to the -20 provisioning with the EXI request; its
  ``remainingContracts`` (M01.FR.07) comes back from ``pki.contracts.provision``.
- SignCertificate ``certificateType = V2G20Certificate`` (2.1 A02): the -20 SECC certificate, from
  the one CA of ``standard = iso15118-20`` that issues ``secc`` (the -20 CPO sub-CA); a -2
  ``V2GCertificate`` from the -2 one when a PKI holds both.
- ``exiResponse`` size: 2.1's 17,000 characters, or what the station advertises in
  ``OCPPCommCtrlr.FieldLength["Get15118EVCertificateResponse.exiResponse"]`` (2.1 Part 2 §1.23)
  when the CSMS tells the service (``CertificateService(field_lengths=...)``); a larger advertised
  length lets the response exceed the schema's maxLength, the one schema rule it lifts.
- Renewal: ``TriggerMessage(SignV2G20Certificate)`` when the -20 SECC certificate the station last
  accepted expires within ``ocpp_renew_before_secc`` and none is pending.
- Root reconciliation: a 2.1 station also gets the -20 roots of each use (V2G, MO, OEM), the role
  read from what the root's PKI issues.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocpp_bridge import roots as root_sync
from pki import PKI
from pki.ca import RootUse
from pki.core import NotFound
from pki.iso15118 import EXI_RESPONSE_LIMITS

__all__ = [
    "EXI_RESPONSE_FIELD",
    "ISO15118_20",
    "V2G20_CERTIFICATE",
    "V2G20_TOPIC",
    "FieldLengths",
    "NoIssuer",
    "exi_response_limit",
    "names_v2g_root",
    "provisioning_options",
    "schema_view",
    "secc20_renewal_due",
    "secc_issuer",
]

ISO15118_20 = "iso15118-20"
V2G20_CERTIFICATE = "V2G20Certificate"
V2G20_TOPIC = f"CertificateSigned:{V2G20_CERTIFICATE}"


EXI_RESPONSE_FIELD = "Get15118EVCertificateResponse.exiResponse"
# (station id, field name) -> the station's OCPPCommCtrlr.FieldLength for it, None when unknown.
FieldLengths = Callable[[str, str], int | None]


def exi_response_limit(version: str, station_id: str, field_lengths: FieldLengths | None) -> int | None:
    """The station's advertised ``exiResponse`` length (OCPP 2.1 §1.23); None: the version's limit."""
    if version != "2.1" or field_lengths is None:
        return None
    advertised = field_lengths(station_id, EXI_RESPONSE_FIELD)
    return advertised if advertised is not None and advertised > 0 else None


def schema_view(version: str, action: str, response: dict[str, Any]) -> dict[str, Any]:
    """The response as the schema check sees it: an ``exiResponse`` the station's FieldLength allowed
    beyond the schema's maxLength is checked for everything but that length."""
    limit = EXI_RESPONSE_LIMITS["2.1"]
    if version != "2.1" or action != "Get15118EVCertificate" or len(response.get("exiResponse", "")) <= limit:
        return response
    return {**response, "exiResponse": response["exiResponse"][:limit]}


def provisioning_options(version: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``pki.contracts.provision`` that OCPP 2.1's request adds (M01.FR.03-06)."""
    if version != "2.1":
        return {}
    return {
        "maximum_contract_certificate_chains": payload.get("maximumContractCertificateChains"),
        "prioritized_emaids": payload.get("prioritizedEMAIDs"),
    }


class NoIssuer(Exception):
    """This PKI has no CA for the SECC certificate the station asks for."""


def secc_issuer(pki: PKI, certificate_type: str) -> str | None:
    """The CA issuing the SECC certificate of ``certificate_type``; None: issuance's own choice."""
    standard = ISO15118_20 if certificate_type == V2G20_CERTIFICATE else "iso15118-2"
    issuers = [ca.id for ca in pki.cas.list() if "secc" in ca.issues and ca.standard == standard]
    if certificate_type != V2G20_CERTIFICATE:
        return issuers[0] if len(issuers) == 1 else None
    if len(issuers) != 1:
        raise NoIssuer(
            f"this PKI has {len(issuers)} ISO 15118-20 CAs issuing SECC certificates, needs one "
            "(`evpki init --iso15118-20`)"
        )
    return issuers[0]


def names_v2g_root(pki: PKI, certificate_type: str, hash_data: dict[str, Any]) -> bool:
    """OCPP 2.1 A02.FR.24-27: whether ``hashRootCertificate`` names a V2G root of the certificate's edition."""
    if certificate_type == V2G20_CERTIFICATE:
        candidates = root_sync.roots20(pki, RootUse.V2G)
    else:
        try:
            candidates = pki.cas.roots(RootUse.V2G)
        except NotFound:
            return False
    return any(root_sync.matches(root, hash_data) for root in candidates)


def secc20_renewal_due(pki: PKI, station: str) -> bool:
    """Whether the -20 SECC certificate the station last accepted is due for renewal (none pending)."""
    installed = pki.deliveries.last(station, V2G20_TOPIC)
    if installed is None or not installed.certificate_serial or not installed.certificate_issuer:
        return False
    secc = pki.certificates.get(installed.certificate_serial, installed.certificate_issuer)
    return (
        secc.not_after - pki.clock.now() <= pki.settings.duration("ocpp_renew_before_secc")
        and secc.status in ("valid", "expired")
        and pki.deliveries.find_pending(station, V2G20_TOPIC) is None
    )
