"""Which roots a station trusts for what: OCPP ``InstallCertificateUse`` ↔ evpki hierarchies.

OCPP 2.0.1 M05 / 1.6 security whitepaper ``InstallCertificate`` names five root uses; each is
the root CA (no parent) of one evpki PKI. During a rollover a PKI has two roots and both are
returned, newest first, so stations get the new one before the old one is withdrawn.
"""

from __future__ import annotations

from enum import StrEnum

from pki.core.errors import InvalidInput

__all__ = ["ROOT_USE_PKI", "RootUse", "parse_root_use"]


class RootUse(StrEnum):
    CSMS = "CSMSRootCertificate"  # the CSMS server certificate's root (security profile 2/3)
    V2G = "V2GRootCertificate"  # ISO 15118 V2G root (SECC and CPS chains)
    MO = "MORootCertificate"  # mobility operator root (contract certificates)
    MANUFACTURER = "ManufacturerRootCertificate"  # firmware signing (OCPP L01)
    OEM = "OEMRootCertificate"  # OCPP 2.1 only: vehicle OEM provisioning root


ROOT_USE_PKI: dict[RootUse, str] = {
    RootUse.CSMS: "cso",
    RootUse.V2G: "v2g",
    RootUse.MO: "mo",
    RootUse.MANUFACTURER: "mf",
    RootUse.OEM: "oem",
}


def parse_root_use(text: str) -> RootUse:
    try:
        return RootUse(text)
    except ValueError:
        uses = ", ".join(use.value for use in RootUse)
        raise InvalidInput(f"unknown root certificate use {text!r}; use one of {uses}") from None
