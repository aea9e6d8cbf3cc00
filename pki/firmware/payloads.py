"""OCPP secure firmware update payloads: ``UpdateFirmwareRequest`` (2.0.1/2.1) and ``SignedUpdateFirmware.req`` (1.6).

This module owns the signed file as the edges receive it (:class:`FirmwareSignature`), the
ready-to-send request payloads built from it, and the field limits of the OCPP JSON schemas they
are checked against (location, signing certificate, signature, 32-bit integers, ``date-time``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pki.core.clock import utc
from pki.core.errors import InvalidInput
from pki.firmware.signers import MANUFACTURER_ROOT

__all__ = [
    "INT32_MAX",
    "LOCATION_MAX_CHARS",
    "OCPP_VERSIONS",
    "SIGNATURE_MAX_CHARS",
    "SIGNING_CERTIFICATE_MAX_CHARS",
    "FirmwareSignature",
    "OcppVersion",
    "check_location",
    "ocpp_date_time",
    "ocpp_integer",
]

OcppVersion = Literal["1.6", "2.0.1", "2.1"]
OCPP_VERSIONS: tuple[OcppVersion, ...] = ("1.6", "2.0.1", "2.1")
# FirmwareType limits in the schemas of every version (reference/ocpp.md §2.11).
LOCATION_MAX_CHARS: dict[OcppVersion, int] = {"1.6": 512, "2.0.1": 512, "2.1": 2000}
SIGNING_CERTIFICATE_MAX_CHARS = 5500
SIGNATURE_MAX_CHARS = 800
# OCPP-J integers are 32-bit signed; a larger requestId is refused by schema-checking peers in practice.
INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class FirmwareSignature:
    """A signed firmware file: what an OCPP UpdateFirmware request carries, and the payloads themselves.

    ``signature`` is Base64 (the wire form of ``firmware.signature``); ``certificate_pem`` is the
    signing certificate alone (``firmware.signingCertificate``). ``location`` and ``retrieve_at``
    are the defaults of the payload methods.
    """

    sha256: str
    size: int
    signature: str
    algorithm: str
    certificate_pem: str = field(repr=False)
    signer_serial: str
    location: str | None
    retrieve_at: dt.datetime | None = None
    signer_ca: str = MANUFACTURER_ROOT  # the manufacturer root (generation) that issued the signer

    def update_firmware_201(
        self,
        request_id: int,
        retrieve_date_time: dt.datetime | None = None,
        *,
        install_date_time: dt.datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
        location: str | None = None,
        ocpp_version: Literal["2.0.1", "2.1"] = "2.0.1",
    ) -> dict[str, Any]:
        """The ``UpdateFirmwareRequest`` payload of OCPP 2.0.1 (or 2.1), secure update use case L01."""
        if ocpp_version not in ("2.0.1", "2.1"):
            raise InvalidInput(
                f"UpdateFirmware is OCPP 2.0.1 or 2.1, not {ocpp_version!r}; 1.6 has SignedUpdateFirmware"
            )
        return self._request(
            ocpp_version, request_id, retrieve_date_time, install_date_time, retries, retry_interval, location
        )

    def signed_update_firmware_16(
        self,
        request_id: int,
        retrieve_date_time: dt.datetime | None = None,
        *,
        install_date_time: dt.datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
        location: str | None = None,
    ) -> dict[str, Any]:
        """The ``SignedUpdateFirmware.req`` payload of the OCPP 1.6 security whitepaper (L01)."""
        return self._request(
            "1.6", request_id, retrieve_date_time, install_date_time, retries, retry_interval, location
        )

    def payload(
        self,
        ocpp_version: OcppVersion,
        request_id: int,
        retrieve_date_time: dt.datetime | None = None,
        *,
        install_date_time: dt.datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
        location: str | None = None,
    ) -> dict[str, Any]:
        """The request payload of ``ocpp_version``: SignedUpdateFirmware for 1.6, UpdateFirmware for 2.x."""
        return self._request(
            _version(ocpp_version), request_id, retrieve_date_time, install_date_time, retries, retry_interval, location
        )

    def _request(
        self,
        version: OcppVersion,
        request_id: int,
        retrieve_date_time: dt.datetime | None,
        install_date_time: dt.datetime | None,
        retries: int | None,
        retry_interval: int | None,
        location: str | None,
    ) -> dict[str, Any]:
        retrieve = retrieve_date_time if retrieve_date_time is not None else self.retrieve_at
        if retrieve is None:
            raise InvalidInput("retrieveDateTime is needed: say when the station should download the firmware")
        firmware: dict[str, Any] = {
            "location": check_location(location if location is not None else self.location, version),
            "retrieveDateTime": ocpp_date_time(retrieve, "retrieveDateTime"),
        }
        if install_date_time is not None:
            firmware["installDateTime"] = ocpp_date_time(install_date_time, "installDateTime")
        # OCPP 2.0.1 L01.FR.11: the CSMS SHALL send the signing certificate; 1.6 requires both fields.
        firmware["signingCertificate"] = _within(
            self.certificate_pem, SIGNING_CERTIFICATE_MAX_CHARS, "signingCertificate"
        )
        firmware["signature"] = _within(self.signature, SIGNATURE_MAX_CHARS, "signature")
        payload: dict[str, Any] = {}
        if retries is not None:
            payload["retries"] = ocpp_integer(retries, "retries", minimum=0)
        if retry_interval is not None:
            payload["retryInterval"] = ocpp_integer(retry_interval, "retryInterval", minimum=0)
        # OCPP 2.0.1 L01.FR.10: the station reports every status of this update under this requestId.
        payload["requestId"] = ocpp_integer(request_id, "requestId", minimum=-INT32_MAX - 1)
        payload["firmware"] = firmware
        return payload

    def to_json(self) -> dict[str, Any]:
        """snake_case fields for the edges (REST bodies, CLI ``--json``)."""
        return {
            "sha256": self.sha256,
            "size": self.size,
            "algorithm": self.algorithm,
            "signature": self.signature,
            "certificate_pem": self.certificate_pem,
            "signer_serial": self.signer_serial,
            "location": self.location,
            "retrieve_at": utc(self.retrieve_at).isoformat() if self.retrieve_at is not None else None,
        }


def check_location(location: str | None, ocpp_version: OcppVersion) -> str:
    """``location`` if it fits ``firmware.location`` of ``ocpp_version``; else :class:`InvalidInput`."""
    limit = LOCATION_MAX_CHARS[_version(ocpp_version)]
    if location is None or not location.strip():
        raise InvalidInput(
            "a firmware location is needed for an OCPP payload: the URI the station downloads the file from"
        )
    if len(location) > limit:
        raise InvalidInput(
            f"the firmware location has {len(location)} characters; OCPP {ocpp_version} allows at most {limit}"
        )
    return location


def _version(value: str) -> OcppVersion:
    if value not in OCPP_VERSIONS:
        raise InvalidInput(f"unknown OCPP version {value!r}; use one of {', '.join(OCPP_VERSIONS)}")
    return cast(OcppVersion, value)


def ocpp_date_time(value: dt.datetime, name: str) -> str:
    """RFC 3339 UTC with a ``Z``, as the schemas' ``date-time`` format wants it."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} is a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} needs a time zone (OCPP date-time values are unambiguous instants)")
    text = utc(value).isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _within(value: str, limit: int, name: str) -> str:
    if len(value) > limit:
        raise InvalidInput(f"firmware.{name} has {len(value)} characters; OCPP allows at most {limit}")
    return value


def ocpp_integer(value: int, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} is an int, not {type(value).__name__}")
    if not minimum <= value <= INT32_MAX:
        raise InvalidInput(f"{name} must be between {minimum} and {INT32_MAX}, not {value}")
    return value
