"""The request payloads of operator-initiated calls, each in its OCPP version's own message names.

- install a root (M05): InstallCertificate; 1.6 CentralSystemRoot / ManufacturerRoot (V2G and MO roots
  wrapped in PnC DataTransfer); 2.0.1 CSMS / V2G / MO / Manufacturer root; 2.1 also OEMRootCertificate;
- delete (M04): DeleteCertificate; list (M03): GetInstalledCertificateIds (1.6: one type; 2.x: types or all);
- renewal (A02): 1.6 ExtendedTriggerMessage SignChargePointCertificate (SignV2GCertificate wrapped in PnC
  DataTransfer); 2.x TriggerMessage SignChargingStationCertificate / SignV2GCertificate /
  SignCombinedCertificate; 2.1 also SignV2G20Certificate;
- security log (N01): GetLog SecurityLog;
- Basic-auth password (A01): 1.6 ChangeConfiguration AuthorizationKey, 2.x SetVariables SecurityCtrlr.BasicAuthPassword;
- security profile (A05): 1.6 ChangeConfiguration SecurityProfile; 2.x (SecurityCtrlr.SecurityProfile is
  read-only there) SetNetworkProfile with the profile-3 address in a free slot, then SetVariables
  OCPPCommCtrlr.NetworkConfigurationPriority with that slot first, then Reset OnIdle (2.0.1 Ed. 3 errata
  §2.5, OCTT TC_A_19);
- firmware (L01): 1.6 SignedUpdateFirmware, 2.x UpdateFirmware.

Every value is checked against the limits of the version's JSON schema here, so a refused request
queues nothing; the bridge validates the payload against the ``ocpp`` package's schema again
before it goes on the wire.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pki.ca.root_uses import RootUse
from pki.core.errors import InvalidInput

__all__ = [
    "CERTIFICATE_ID_TYPES",
    "INSTALL_USES",
    "PNC_VENDOR_ID",
    "TRIGGERS",
    "date_time",
    "delete_certificate",
    "get_installed",
    "get_log",
    "install_certificate",
    "install_use",
    "int32",
    "network_priority",
    "reset",
    "set_network_priority",
    "set_network_profile",
    "set_password",
    "set_security_profile",
    "trigger",
    "unwrap",
]

PNC_VENDOR_ID = "org.openchargealliance.iso15118pnc"
_16_NAMES = {"CentralSystemRootCertificate": RootUse.CSMS, "ManufacturerRootCertificate": RootUse.MANUFACTURER}
# The root uses each version's InstallCertificate carries (1.6: the whitepaper's two, V2G and MO via PnC).
INSTALL_USES: dict[str, tuple[RootUse, ...]] = {
    "1.6": (RootUse.CSMS, RootUse.MANUFACTURER, RootUse.V2G, RootUse.MO),
    "2.0.1": (RootUse.CSMS, RootUse.MANUFACTURER, RootUse.V2G, RootUse.MO),
    "2.1": (RootUse.CSMS, RootUse.MANUFACTURER, RootUse.V2G, RootUse.MO, RootUse.OEM),
}
# GetInstalledCertificateIds.certificateType values per version.
CERTIFICATE_ID_TYPES: dict[str, tuple[str, ...]] = {
    "1.6": ("CentralSystemRootCertificate", "ManufacturerRootCertificate"),
    "2.0.1": (
        "V2GRootCertificate",
        "MORootCertificate",
        "CSMSRootCertificate",
        "V2GCertificateChain",
        "ManufacturerRootCertificate",
    ),
    "2.1": (
        "V2GRootCertificate",
        "MORootCertificate",
        "CSMSRootCertificate",
        "V2GCertificateChain",
        "ManufacturerRootCertificate",
        "OEMRootCertificate",
    ),
}
# Renewal triggers (A02) by what they renew: the requestedMessage per version (None: the version lacks it).
TRIGGERS: dict[str, dict[str, str | None]] = {
    "SignChargingStationCertificate": {
        "1.6": "SignChargePointCertificate",
        "2.0.1": "SignChargingStationCertificate",
        "2.1": "SignChargingStationCertificate",
    },
    "SignV2GCertificate": {"1.6": "SignV2GCertificate", "2.0.1": "SignV2GCertificate", "2.1": "SignV2GCertificate"},
    "SignCombinedCertificate": {"1.6": None, "2.0.1": "SignCombinedCertificate", "2.1": "SignCombinedCertificate"},
    "SignV2G20Certificate": {"1.6": None, "2.0.1": None, "2.1": "SignV2G20Certificate"},
}
_TRIGGER_ALIASES = {
    "SignChargePointCertificate": "SignChargingStationCertificate",
    "station": "SignChargingStationCertificate",
    "v2g": "SignV2GCertificate",
    "combined": "SignCombinedCertificate",
    "v2g20": "SignV2G20Certificate",
}
_LOCATION_MAX = {"1.6": 512, "2.0.1": 512, "2.1": 2000}
INT32_MAX = 2**31 - 1


def _wrap(action: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A 2.0.1 call to a 1.6 station through the Plug & Charge application note's DataTransfer."""
    data = json.dumps(payload, separators=(",", ":"))
    return "DataTransfer", {"vendorId": PNC_VENDOR_ID, "messageId": action, "data": data}


def unwrap(action: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The call inside a PnC DataTransfer (or the call itself)."""
    if action == "DataTransfer" and payload.get("vendorId") == PNC_VENDOR_ID:
        return str(payload.get("messageId")), json.loads(payload.get("data") or "{}")
    return action, payload


def install_use(version: str, use: str) -> RootUse:
    """The root use named ``use`` (a 2.x name, or 1.6's CentralSystemRootCertificate) if ``version`` installs it."""
    parsed = _16_NAMES.get(use)
    if parsed is None:
        try:
            parsed = RootUse(use)
        except ValueError:
            names = ", ".join(u.value for u in RootUse)
            raise InvalidInput(f"unknown certificate use {use!r}; use one of {names}") from None
    if parsed not in INSTALL_USES[version]:
        allowed = ", ".join(u.value for u in INSTALL_USES[version])
        raise InvalidInput(f"OCPP {version} has no InstallCertificate for {parsed.value} (it has {allowed})")
    return parsed


def install_certificate(version: str, use: RootUse, certificate_pem: str) -> tuple[str, dict[str, Any]]:
    """InstallCertificate (M05); a 1.6 station gets its V2G and MO roots through PnC DataTransfer."""
    if len(certificate_pem) > 5500:  # InstallCertificate.certificate maxLength (every version)
        raise InvalidInput(f"the certificate has {len(certificate_pem)} PEM characters; OCPP allows 5500")
    if version == "1.6":
        names = {RootUse.CSMS: "CentralSystemRootCertificate", RootUse.MANUFACTURER: "ManufacturerRootCertificate"}
        if use in names:
            return "InstallCertificate", {"certificateType": names[use], "certificate": certificate_pem}
        return _wrap("InstallCertificate", {"certificateType": use.value, "certificate": certificate_pem})
    return "InstallCertificate", {"certificateType": use.value, "certificate": certificate_pem}


def delete_certificate(version: str, hash_data: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """DeleteCertificate (M04) with exactly the hash data given."""
    return "DeleteCertificate", {"certificateHashData": dict(hash_data)}


def get_installed(version: str, types: list[str]) -> tuple[str, dict[str, Any]]:
    """GetInstalledCertificateIds (M03): some types, or (2.x) every type."""
    known = CERTIFICATE_ID_TYPES[version]
    names = [
        {"CSMSRootCertificate": "CentralSystemRootCertificate"}.get(t, t) if version == "1.6" else t for t in types
    ]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InvalidInput(f"OCPP {version} has no certificate type {unknown[0]!r} (it has {', '.join(known)})")
    if version == "1.6":
        if len(names) != 1:
            raise InvalidInput("OCPP 1.6 GetInstalledCertificateIds asks for exactly one type: " + " or ".join(known))
        return "GetInstalledCertificateIds", {"certificateType": names[0]}
    return "GetInstalledCertificateIds", ({"certificateType": list(dict.fromkeys(names))} if names else {})


def trigger(version: str, message: str, *, evse_id: int | None = None) -> tuple[str, dict[str, Any]]:
    """The renewal trigger (A02) of ``message`` in ``version``'s own names."""
    canonical = _TRIGGER_ALIASES.get(message, message)
    if canonical not in TRIGGERS:
        raise InvalidInput(f"unknown renewal trigger {message!r}; use one of {', '.join(TRIGGERS)}")
    requested = TRIGGERS[canonical][version]
    if requested is None:
        raise InvalidInput(f"OCPP {version} has no {canonical} trigger")
    if evse_id is not None:
        int32(evse_id, "evseId", minimum=0)
    if version == "1.6":
        if canonical == "SignChargingStationCertificate":
            return "ExtendedTriggerMessage", {"requestedMessage": requested}
        body: dict[str, Any] = {"requestedMessage": requested}
        if evse_id is not None:
            body["evse"] = {"id": evse_id}
        return _wrap("TriggerMessage", body)
    payload: dict[str, Any] = {"requestedMessage": requested}
    if evse_id is not None:
        payload["evse"] = {"id": evse_id}
    return "TriggerMessage", payload


def get_log(
    version: str,
    *,
    request_id: int,
    remote_location: str,
    oldest: dt.datetime | None = None,
    latest: dt.datetime | None = None,
    retries: int | None = None,
    retry_interval: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """GetLog of type SecurityLog (N01 / 1.6 security whitepaper)."""
    log: dict[str, Any] = {"remoteLocation": location(version, remote_location, "remoteLocation")}
    if oldest is not None:
        log["oldestTimestamp"] = date_time(oldest, "oldestTimestamp")
    if latest is not None:
        log["latestTimestamp"] = date_time(latest, "latestTimestamp")
    payload: dict[str, Any] = {"logType": "SecurityLog", "requestId": int32(request_id, "requestId"), "log": log}
    if retries is not None:
        payload["retries"] = int32(retries, "retries", minimum=0)
    if retry_interval is not None:
        payload["retryInterval"] = int32(retry_interval, "retryInterval", minimum=0)
    return "GetLog", payload


def set_password(version: str, password: str) -> tuple[str, dict[str, Any]]:
    """A01: the new Basic-auth password (2.x BasicAuthPassword, 1.6 AuthorizationKey)."""
    if version == "1.6":
        return "ChangeConfiguration", {"key": "AuthorizationKey", "value": password}
    return "SetVariables", {
        "setVariableData": [
            {
                "attributeValue": password,
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
    }


def set_security_profile(version: str, profile: int) -> tuple[str, dict[str, Any]]:
    """A05 (1.6): the new security profile, ChangeConfiguration SecurityProfile (2.x: :func:`set_network_profile`)."""
    if version != "1.6":
        raise InvalidInput("SecurityCtrlr.SecurityProfile is read-only in 2.x: the upgrade goes by SetNetworkProfile")
    return "ChangeConfiguration", {"key": "SecurityProfile", "value": str(profile)}


_URL_MAX = 512  # NetworkConnectionProfileType.ocppCsmsUrl
_INTERFACES_201 = ("Wired0", "Wired1", "Wired2", "Wired3", "Wireless0", "Wireless1", "Wireless2", "Wireless3")


def set_network_profile(
    version: str, slot: int, url: str, *, interface: str = "Wired0", message_timeout: int = 30
) -> tuple[str, dict[str, Any]]:
    """A05 (2.x): a network connection profile for security profile 3 in configuration slot ``slot``."""
    if version == "1.6":
        raise InvalidInput("a 1.6 station changes its security profile by ChangeConfiguration SecurityProfile")
    slot = int32(slot, "configurationSlot", minimum=0)
    if not url.startswith("wss://") or len(url) > _URL_MAX or any(c.isspace() for c in url):
        raise InvalidInput(f"the profile-3 address must be a wss:// URL of at most {_URL_MAX} characters")
    interfaces = (*_INTERFACES_201, "Any") if version == "2.1" else _INTERFACES_201
    if interface not in interfaces:
        raise InvalidInput(f"ocppInterface must be one of {', '.join(interfaces)}")
    connection: dict[str, Any] = {
        "ocppTransport": "JSON",
        "ocppCsmsUrl": url,
        "messageTimeout": int32(message_timeout, "messageTimeout", minimum=1),
        "securityProfile": 3,
        "ocppInterface": interface,
    }
    if version == "2.0.1":
        connection["ocppVersion"] = "OCPP20"  # required in 2.0.1 (OCPP20 stands for 2.0 and 2.0.1)
    return "SetNetworkProfile", {"configurationSlot": slot, "connectionData": connection}


def network_priority(slot: int, fallback: int | None) -> str:
    """NetworkConfigurationPriority: the new slot first, then the one to fall back to if it fails."""
    if fallback is None or fallback == slot:
        return str(slot)
    return f"{slot},{int32(fallback, 'fallback slot', minimum=0)}"


def set_network_priority(version: str, priority: str) -> tuple[str, dict[str, Any]]:
    """A05 (2.x): OCPPCommCtrlr.NetworkConfigurationPriority, the order in which the slots are tried."""
    return "SetVariables", {
        "setVariableData": [
            {
                "attributeValue": priority,
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "NetworkConfigurationPriority"},
            }
        ]
    }


def reset(version: str) -> tuple[str, dict[str, Any]]:
    """The 2.x Reset that makes an accepted SecurityProfile take effect (A05.FR.04)."""
    if version == "1.6":
        raise InvalidInput("a 1.6 station reconnects on its new security profile by itself")
    return "Reset", {"type": "OnIdle"}


def location(version: str, value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} is needed: the URL the station uploads to or downloads from")
    if not value.startswith(("http://", "https://", "ftp://", "ftps://", "sftp://")):
        raise InvalidInput(f"{name} must be an http(s), ftp(s) or sftp URL, not {value[:60]!r}")
    limit = _LOCATION_MAX[version]
    if len(value) > limit:
        raise InvalidInput(f"{name} has {len(value)} characters; OCPP {version} allows at most {limit}")
    return value


def date_time(value: dt.datetime, name: str) -> str:
    """RFC 3339 UTC with ``Z``, the schemas' date-time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} needs a time zone (OCPP date-time values are unambiguous instants)")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def int32(value: int, name: str, *, minimum: int = -INT32_MAX - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer")
    if not minimum <= value <= INT32_MAX:
        raise InvalidInput(f"{name} must be between {minimum} and {INT32_MAX}, not {value}")
    return value
