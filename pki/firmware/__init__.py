"""Firmware signing and verification (OCPP L01 secure firmware update, 1.6 SignedUpdateFirmware),
streamed, with the newest valid signer of the manufacturer root. Facade service: ``pki.firmware``.
"""

from __future__ import annotations

from pki.firmware.service import Firmware
from pki.firmware.signing import (
    LOCATION_MAX_CHARS,
    OCPP_VERSIONS,
    FirmwareSignature,
    FirmwareVerification,
    OcppVersion,
    check_location,
)

__all__ = [
    "LOCATION_MAX_CHARS",
    "OCPP_VERSIONS",
    "Firmware",
    "FirmwareSignature",
    "FirmwareVerification",
    "OcppVersion",
    "check_location",
]
