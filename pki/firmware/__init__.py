"""Firmware signing and verification (OCPP L01 secure firmware update, 1.6 SignedUpdateFirmware),
streamed, with the newest valid signer of the manufacturer root. Facade service: ``pki.firmware``.
"""

from __future__ import annotations

from pki.firmware.payloads import LOCATION_MAX_CHARS, OCPP_VERSIONS, FirmwareSignature, OcppVersion, check_location
from pki.firmware.service import Firmware
from pki.firmware.verification import FirmwareVerification

__all__ = [
    "LOCATION_MAX_CHARS",
    "OCPP_VERSIONS",
    "Firmware",
    "FirmwareSignature",
    "FirmwareVerification",
    "OcppVersion",
    "check_location",
]
