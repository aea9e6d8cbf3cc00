"""A refused request changes nothing: validate everything, then act (issue 11, item 2).

One table of invalid variants: at least one row for every mutating REST operation (each
POST/PUT/PATCH/DELETE in the app's OpenAPI document) and for every CLI command that can change
state. Each row is sent to a PKI of this module's own and must be refused -- a 4xx problem+json
(or, for an OCPP call, the protocol's own refusal in the CALLRESULT), a documented non-zero exit
code with a one-line message -- and must leave every table (its rows, not only their number),
the audit chain and the key directory exactly as they were. The completeness checks fail when an
operation or command has no row, so a new one cannot skip the rule.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import shlex
import tarfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import pytest_asyncio
import typer.main
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from sqlalchemy import MetaData, create_engine, select
from starlette.routing import Mount
from typer.testing import CliRunner, Result

from api.app import create_app
from cli.main import app as cli_app
from pki import PKI, RequestIdentity
from pki.iso15118 import ev
from pki.opcp import ProvisioningCertificateIn, SubscriptionIn
from pki.operations.backup import create_backup
from pki.operations.tokens import Role
from tests.conftest import ORG, TEST_PASSPHRASE, _copy_database, drop_database, make_csr, make_settings
from tests.foreign_roots import foreign_root, pem_of

ROOT = Path(__file__).resolve().parent.parent
BAD_SIGNATURE_CSR = ROOT / "test_certs" / "csr" / "bad-signature.csr.pem"
RSA1024_CSR = ROOT / "test_certs" / "csr" / "rsa1024.csr.pem"

STATION, STATION_SERIAL = "CS-REFUSE-1", "SN-REFUSE-1"
BASIC_STATION = "CS-REFUSE-2"
UNREGISTERED = "CS-NOBODY"
PCID, EMAID = "WMIREFUSE00000001", "DEEVPC000000001"
POOL_PCID, FREE_EMAID = "WMIREFUSE00000003", "DEEVPC000000002"
TOKEN_NAME = "refusal-existing"
TRUSTED_LABEL, RETIRED_LABEL = "refusal-trusted", "refusal-retired"
MUTATING = frozenset({"post", "put", "patch", "delete"})
LONG_ID = "X" * 49  # one more than the 48 characters of an OCPP identity (the schemas' max_length)
LONG_NOTE = "n" * 201  # MAX_NOTE_CHARS is 200
INT32_OVER = str(2**31)
_STATION_ARGS = f"--station-id {STATION} --station-serial {STATION_SERIAL}"
_FIRMWARE_URL = "https://fw.example.com/"

# Commands that only read (or print what they are given); every other command needs a row.
READ_ONLY_COMMANDS = frozenset(
    {
        "audit verify",
        "ca export",
        "ca request",
        "ca list",
        "ca show",
        "cert list",
        "cert show",
        "contract list",
        "contract show",
        "est secret list",
        "exi decode",
        "station calls",
        "station firmware-status",
        "station list",
        "station show",
        "token list",
        "trust list",
        "trust show",
        "opcp client list",
    }
)


@dataclass(frozen=True, slots=True)
class Ref:
    """A value of the module's PKI (a serial, a file path) filled in when the row is sent."""

    name: str


@dataclass(frozen=True, slots=True)
class Rest:
    operation: str  # "POST /api/v1/certificates/{key}/revoke": method and path as the OpenAPI names them
    why: str
    path: str | Ref | None = None  # the concrete path; default: the operation's own
    json: Any = None
    content: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str | Ref] = field(default_factory=dict)
    role: Role = Role.ADMIN
    status: int = 400
    ocpp_status: str | None = None  # an OCPP call refused by its protocol: HTTP 200 with this response status
    opcp: str | None = None  # an OPCP route (under /opcp): the OPCP client whose access token is sent


@dataclass(frozen=True, slots=True)
class Cli:
    command: str  # "cert issue": the command path
    why: str
    args: str  # the command line after "evpki", with {name} placeholders for the module's PKI
    exit_code: int
    usage: bool = False  # refused by click itself (usage error, unconfirmed prompt): its text, not evpki's line
    input: str | None = None


def _ocpp(version: str, route: str, why: str, body: dict[str, Any], **kwargs: Any) -> Rest:
    return Rest(f"POST /api/v1/ocpp/{version}/{route}", why, json=body, **kwargs)


def _for_versions(versions: tuple[str, ...], route: str, why: str, body: dict[str, Any], **kwargs: Any) -> list[Rest]:
    return [_ocpp(version, route, why, body, **kwargs) for version in versions]


ALL_VERSIONS = ("1.6", "2.0.1", "2.1")
V2X = ("2.0.1", "2.1")
_SIGNED_FOLLOW_UP = {"action": "CertificateSigned", "payload": {"certificateChain": "x"}, "deliveryId": 999_999}

# Operator calls on a station (issue 16): refused before anything is queued. STATION (profile 3) last
# connected with 2.0.1, BASIC_STATION (profile 2) with 1.6.
_CALLS = f"/api/v1/stations/{STATION}"
OPERATOR_CALL_REFUSALS: tuple[Rest, ...] = tuple(
    Rest(f"{method} /api/v1/stations/{{station_id}}/{route}", why, path=path or f"{_CALLS}/{route}", **kwargs)
    for method, route, why, path, kwargs in (
        ("POST", "install-certificate", "unknown station", f"/api/v1/stations/{UNREGISTERED}/install-certificate",
         {"json": {"use": "CSMSRootCertificate"}, "status": 404}),
        ("POST", "install-certificate", "OEM root on a 2.0.1 station", None,
         {"json": {"use": "OEMRootCertificate"}, "status": 400}),
        ("POST", "install-certificate", "a certificate that is not a root", None,
         {"json": {"use": "V2GRootCertificate", "certificate": Ref("not_ca_root")}, "status": 422}),
        ("POST", "install-certificate", "our root of another use", None,
         {"json": {"use": "CSMSRootCertificate", "caId": "mf-root"}, "status": 422}),
        ("POST", "delete-certificate", "hash data without issuerKeyHash", None,
         {"json": {"hashData": {"hashAlgorithm": "SHA256", "issuerNameHash": "00", "serialNumber": "1"}}}),
        ("POST", "installed-certificates", "OEM roots from a 2.0.1 station", None,
         {"json": {"types": ["OEMRootCertificate"]}}),
        ("POST", "trigger", "SignV2G20Certificate on 2.0.1", None, {"json": {"message": "SignV2G20Certificate"}}),
        ("POST", "security-log", "upload location that is not a URL", None, {"json": {"remoteLocation": "here"}}),
        ("POST", "password", "profile-3 station", None, {"json": {}, "status": 422}),
        ("POST", "security-profile", "already on profile 3", None, {"json": {}, "status": 409}),
        ("POST", "firmware", "unknown station", f"/api/v1/stations/{UNREGISTERED}/firmware",
         {"content": b"firmware", "params": {"location": _FIRMWARE_URL}, "status": 404}),
        ("POST", "firmware", "signature without its signing certificate", None,
         {"content": b"firmware", "params": {"location": _FIRMWARE_URL}, "headers": {"Firmware-Signature": "AAAA"}}),
        ("PUT", "root-sync", "unknown mode", None, {"json": {"mode": "sometimes"}}),
        ("PUT", "root-sync", "unknown station", f"/api/v1/stations/{UNREGISTERED}/root-sync",
         {"json": {"mode": "off"}, "status": 404}),
    )
)  # fmt: skip
OPERATOR_CALL_CLI_REFUSALS: tuple[Cli, ...] = (
    Cli("station install-cert", "unknown station", f"station install-cert {UNREGISTERED} --use CSMSRootCertificate", 5),
    Cli("station install-cert", "not a root", f"station install-cert {STATION} --use V2GRootCertificate "
        "--certificate {not_ca_root_file}", 4),
    Cli("station delete-cert", "hash data not JSON", f"station delete-cert {STATION} --hash-data not-json", 3),
    Cli("station installed", "unknown type", f"station installed {STATION} --type OEMRootCertificate", 3),
    Cli("station trigger", "no such 2.0.1 trigger", f"station trigger {STATION} --message v2g20", 3),
    Cli("station get-log", "location not a URL", f"station get-log {STATION} --url here", 3),
    Cli("station rotate-password", "profile-3 station", f"station rotate-password {STATION}", 4),
    Cli("station upgrade-profile", "already on profile 3", f"station upgrade-profile {STATION}", 6),
    Cli("station update-firmware", "unknown station", f"station update-firmware {UNREGISTERED} "
        f"--firmware {{firmware_file}} --location {_FIRMWARE_URL}", 5),
    Cli("station root-sync", "unknown mode", f"station root-sync {STATION} --mode sometimes", 2),
)  # fmt: skip

REST_REFUSALS: tuple[Rest, ...] = (
    Rest(
        "POST /api/v1/certificates",
        "CSR whose signature does not verify",
        json={
            "profile": "station",
            "csr": Ref("bad_signature_csr"),
            "identity": {"stationId": STATION, "stationSerial": STATION_SERIAL},
        },
        status=422,
    ),
    Rest(
        "POST /api/v1/certificates",
        "good CSR, unknown CA",
        json={
            "profile": "station",
            "csr": Ref("station_csr"),
            "ca": "no-such-ca",
            "identity": {"stationId": STATION, "stationSerial": STATION_SERIAL},
        },
        status=404,
    ),
    Rest(
        "POST /api/v1/certificates",
        "good CSR, malformed validity",
        json={
            "profile": "station",
            "csr": Ref("station_csr"),
            "validity": "5x",
            "identity": {"stationId": STATION, "stationSerial": STATION_SERIAL},
        },
    ),
    Rest(
        "POST /api/v1/certificates",
        "csms role asks for a csms-server certificate",
        json={"profile": "csms-server", "csr": Ref("station_csr"), "identity": {"fqdn": "csms.example.com"}},
        role=Role.CSMS,
        status=403,
    ),
    Rest(
        "POST /api/v1/certificates/renew",
        "RSA-1024 CSR",
        json={
            "profile": "station",
            "csr": Ref("rsa1024_csr"),
            "identity": {"stationId": STATION, "stationSerial": STATION_SERIAL},
        },
        status=422,
    ),
    Rest(
        "POST /api/v1/certificates/{key}/revoke",
        "unknown reason",
        path=Ref("revoke_path"),
        json={"reason": "becauseISaidSo"},
    ),
    Rest(
        "POST /api/v1/certificates/{key}/revoke",
        "good reason, unknown CA",
        path=Ref("revoke_path"),
        json={"reason": "keyCompromise"},
        params={"ca": "no-such-ca"},
        status=404,
    ),
    Rest(
        "POST /api/v1/certificates/{key}/release",
        "certificate not on hold",
        path=Ref("release_path"),
        status=409,
    ),
    Rest(
        "POST /api/v1/contracts",
        "malformed eMAID",
        json={"emaid": "not an emaid", "pcid": "WMIREFUSE00000002"},
    ),
    Rest(
        "POST /api/v1/contracts",
        "end before start",
        json={
            "emaid": "DEEVPC000000002",
            "pcid": "WMIREFUSE00000002",
            "validFrom": "2027-01-01T00:00:00Z",
            "validUntil": "2026-12-31T00:00:00Z",
        },
    ),
    Rest(
        "POST /api/v1/contracts",
        "negative priority",
        json={"emaid": "DEEVPC000000002", "pcid": "WMIREFUSE00000002", "priority": -1, "concurrent": True},
    ),
    Rest(
        "POST /api/v1/contracts/{key}/revoke",
        "note over 200 characters",
        path=f"/api/v1/contracts/{EMAID}/revoke",
        json={"note": LONG_NOTE},
    ),
    Rest(
        "POST /api/v1/contracts/{key}/revoke",
        "unknown eMAID",
        path="/api/v1/contracts/DEEVPC999999999/revoke",
        status=404,
    ),
    Rest(
        "POST /api/v1/firmware/sign",
        "requestId beyond int32 (OCPP integer)",
        content=b"firmware",
        params={"location": "https://fw.example.com/fw.bin", "requestId": INT32_OVER},
    ),
    Rest(
        "POST /api/v1/firmware/sign",
        "location longer than OCPP 1.6/2.0.1 allow (512)",
        content=b"firmware",
        params={"location": "https://fw.example.com/" + "a" * 600},
    ),
    Rest(
        "POST /api/v1/firmware/sign",
        "retrieveDateTime without a time zone",
        content=b"firmware",
        params={"location": "https://fw.example.com/fw.bin", "retrieveDateTime": "2027-01-01T02:00:00"},
    ),
    Rest("POST /api/v1/firmware/sign", "empty file", content=b""),
    Rest(
        "POST /api/v1/firmware/verify",
        "signature not Base64",
        content=b"firmware",
        headers={"Firmware-Signature": "!!!", "Firmware-Signing-Certificate": Ref("firmware_signer_b64")},
    ),
    Rest("POST /ocsp", "request over the OCSP size limit", content=b"\x30" * 70_000, status=413),
    *_for_versions(
        ALL_VERSIONS,
        "results",
        "unknown delivery",
        {"stationId": STATION, "followUp": _SIGNED_FOLLOW_UP, "response": {"status": "Accepted"}},
        status=404,
    ),
    *_for_versions(
        ALL_VERSIONS,
        "results",
        "answer the OCPP schema refuses",
        {"stationId": STATION, "followUp": _SIGNED_FOLLOW_UP, "response": {"status": "Maybe"}},
        status=422,
    ),
    *_for_versions(
        ALL_VERSIONS,
        "errors",
        "CALLERROR code over 64 characters",
        {"stationId": STATION, "followUp": _SIGNED_FOLLOW_UP, "code": "E" * 65},
    ),
    *_for_versions(ALL_VERSIONS, "boot", "identity over 48 characters", {"stationId": LONG_ID}),
    *_for_versions(ALL_VERSIONS, "renewal", "identity over 48 characters", {"stationId": LONG_ID}),
    *_for_versions(
        ALL_VERSIONS, "SignCertificate", "payload without csr", {"stationId": STATION, "payload": {}}, status=422
    ),
    *_for_versions(
        ALL_VERSIONS,
        "SignCertificate",
        "CSR with a broken signature from an unregistered station",
        {"stationId": UNREGISTERED, "payload": {"csr": Ref("bad_signature_csr")}},
        ocpp_status="Rejected",
    ),
    *_for_versions(
        ALL_VERSIONS,
        "SignCertificate",
        "CSR with a broken signature from a registered station",
        {"stationId": STATION, "payload": {"csr": Ref("bad_signature_csr")}},
        ocpp_status="Rejected",
    ),
    *_for_versions(
        ALL_VERSIONS,
        "SecurityEventNotification",
        "no timestamp",
        {"stationId": STATION, "payload": {"type": "FirmwareUpdated"}},
        status=422,
    ),
    _ocpp(
        "1.6",
        "DataTransfer",
        "PnC data that is not JSON",
        {
            "stationId": STATION,
            "payload": {"vendorId": "org.openchargealliance.iso15118pnc", "messageId": "SignCertificate", "data": "{"},
        },
        status=422,
    ),
    *_for_versions(
        V2X,
        "Get15118EVCertificate",
        "no exiRequest",
        {
            "stationId": STATION,
            "payload": {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install"},
        },
        status=422,
    ),
    *_for_versions(
        V2X,
        "Get15118EVCertificate",
        "exiRequest that is not EXI",
        {
            "stationId": STATION,
            "payload": {
                "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
                "action": "Install",
                "exiRequest": "AAAA",
            },
        },
        ocpp_status="Failed",
    ),
    *_for_versions(
        V2X, "GetCertificateStatus", "no ocspRequestData", {"stationId": STATION, "payload": {}}, status=422
    ),
    _ocpp(
        "2.1",
        "GetCertificateChainStatus",
        "no certificateStatusRequests",
        {"stationId": STATION, "payload": {}},
        status=422,
    ),
    *_for_versions(
        V2X,
        "Authorize",
        "not Plug & Charge (an RFID idToken is the CSMS's own)",
        {"stationId": STATION, "payload": {"idToken": {"idToken": "04A2B3C4", "type": "ISO14443"}}},
        status=422,
    ),
    Rest(
        "POST /api/v1/trust",
        "root that is not a CA",
        json={"certificate": Ref("not_ca_root"), "use": "V2GRootCertificate"},
        status=422,
    ),
    Rest(
        "POST /api/v1/trust",
        "root already trusted for the use",
        json={"certificate": Ref("trusted_root"), "use": "V2GRootCertificate"},
        status=409,
    ),
    Rest(
        "POST /api/v1/trust",
        "good root, label in use",
        json={"certificate": Ref("untrusted_root"), "use": "MORootCertificate", "label": TRUSTED_LABEL},
        status=409,
    ),
    Rest(
        "POST /api/v1/cas/{ca_id}/certificate",
        "CA that has its certificate",
        path="/api/v1/cas/cpo-sub1/certificate",
        json={"certificate": Ref("untrusted_root")},
        status=409,
    ),
    Rest(
        "POST /api/v1/cas/{ca_id}/certificate",
        "no such CA",
        path="/api/v1/cas/nope/certificate",
        json={"certificate": Ref("untrusted_root")},
        status=404,
    ),
    Rest(
        "POST /api/v1/cas/{ca_id}/certificate",
        "certificate missing",
        path="/api/v1/cas/cpo-sub1/certificate",
        json={"chain": Ref("untrusted_root")},
        status=400,
    ),
    Rest("POST /api/v1/trust/import", "neither a PEM bundle nor a CTL", json={}, status=400),
    Rest(
        "POST /api/v1/trust/import",
        "PEM bundle without a use",
        json={"pem": Ref("untrusted_root")},
        status=400,
    ),
    Rest("POST /api/v1/trust/import", "CTL without rootCertificates", json={"ctl": {"CTL": {}}}, status=400),
    Rest("DELETE /api/v1/trust/{key}", "unknown root", path="/api/v1/trust/no-such-root", status=404),
    Rest("DELETE /api/v1/trust/{key}", "already removed", path=f"/api/v1/trust/{RETIRED_LABEL}", status=409),
    # OPCP pool services (their error bodies are OPCP's: errorMessages, or OAuth's error on the token endpoint)
    Rest("POST /opcp/oauth/token", "wrong client secret", json=Ref("opcp_bad_credentials"), opcp="", status=401),
    Rest("PUT /opcp/v1/root/rootCerts", "PE root (no OCPP use)", json=Ref("opcp_pe_root"), opcp="admin"),
    Rest("PUT /opcp/v1/root/rootCerts", "good root, a CPO may not", json=Ref("opcp_mo_root"), opcp="cpo", status=403),
    Rest(
        "DELETE /opcp/v1/root/rootCerts/{rootCertificateId}",
        "unknown root",
        path="/opcp/v1/root/rootCerts/00000000-0000-0000-0000-000000000000",
        opcp="admin",
        status=404,
    ),
    Rest("PUT /opcp/v1/oem/provCerts", "vehicle certificate not Base64 DER", json=Ref("opcp_bad_vehicle"), opcp="oem"),
    Rest("PUT /opcp/v1/oem/provCerts", "chain to an untrusted OEM root", json=Ref("opcp_untrusted_chain"), opcp="oem"),
    Rest(
        "DELETE /opcp/v1/oem/provCerts/{pcid}",
        "another OEM's WMI",
        path=f"/opcp/v1/oem/provCerts/{PCID}",
        opcp="oem-foreign",
        status=403,
    ),
    Rest(
        "POST /opcp/v1/webhook/endpoints",
        "not an http(s) URL",
        json={"url": "ftp://hooks.example", "enabledEvents": ["root.cert.added"]},
        opcp="cpo",
    ),
    Rest(
        "PUT /opcp/v1/webhook/endpoints/{id}",
        "another client's endpoint",
        path=Ref("opcp_hook_path"),
        json={"url": "https://hooks.example/x"},
        opcp="oem",
        status=404,
    ),
    Rest(
        "DELETE /opcp/v1/webhook/endpoints/{id}",
        "another client's endpoint",
        path=Ref("opcp_hook_path"),
        opcp="oem",
        status=404,
    ),
    *OPERATOR_CALL_REFUSALS,
    # OCPP 2.1 / ISO 15118-20 (branch ocpp21): a -20 SECC CSR where no -20 CPO CA exists.
    _ocpp(
        "2.1",
        "SignCertificate",
        "V2G20Certificate CSR without an ISO 15118-20 CPO CA",
        {"stationId": STATION, "payload": {"csr": Ref("station_csr"), "certificateType": "V2G20Certificate"}},
        ocpp_status="Rejected",
    ),
    # OPCP CCP (the contract EMAID of PCID exists)
    Rest(
        "POST /opcp/v1/ccp/signedContractData",
        "not an EXI request",
        json={"certificateInstallationReq": "AAAA", "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef"},
        opcp="cpo",
    ),
    Rest(
        "DELETE /opcp/v1/ccp/signedContractData/{emaid}",
        "an OEM may not",
        path=f"/opcp/v1/ccp/signedContractData/{EMAID}",
        opcp="oem",
        status=403,
    ),
    Rest(
        "POST /opcp/v1/ccp/signedContractData/{pcid}/{emaid}/default",
        "another OEM's WMI",
        path=f"/opcp/v1/ccp/signedContractData/{PCID}/{EMAID}/default",
        opcp="oem-foreign",
        status=403,
    ),
    Rest("PUT /opcp/v1/cps/signedContractData", "an OEM may not", json=Ref("opcp_cps_chain"), opcp="oem", status=403),
    Rest("PUT /opcp/v1/cps/contractData/signed", "an OEM may not", json=Ref("opcp_cps_flat"), opcp="oem", status=403),
    Rest(
        "PUT /opcp/v1/cps/forward/signedContractData",
        "an OEM may not",
        json=Ref("opcp_cps_chain"),
        opcp="oem",
        status=403,
    ),
    Rest(
        "PUT /opcp/v1/cps/generate/signedContractData",
        "EMAID already used by another PCID",
        json=Ref("opcp_generate_used_emaid"),
        opcp="mo-v2g",
    ),
    Rest(
        "PUT /opcp/v1/cps/generate/signedContractData",
        "contractEnds in the past",
        json=Ref("opcp_generate_ended"),
        opcp="mo-v2g",
    ),
    Rest(
        "PUT /opcp/v1/cps/generate/signedContractData",
        "the CPS may not (an MO without own PKI only)",
        json=Ref("opcp_generate_ended"),
        opcp="cps",
        status=403,
    ),
    Rest(
        "PUT /opcp/v1/ccp/signedContractData",
        "not EXI signed contract data",
        json={
            "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
            "emaid": EMAID,
            "pcid": PCID,
            "signedContractDataXML": "AAAA",
        },
        opcp="cps",
    ),
)

# Arguments are one shell-like line; {name} is filled in from the module's PKI (shell-quoted).
CLI_REFUSALS: tuple[Cli, ...] = (
    Cli("init", "another organisation", "init --org 'Another CSO'", 6),
    Cli("init", "unknown key store", "init --keystore cloud", 2, usage=True),
    Cli("ca rollover", "not a root", "ca rollover cso-sub", 3),
    Cli("ca install", "CA that has its certificate", "ca install cpo-sub1 --certificate {untrusted_root_file}", 6),
    Cli("ca install", "installed CA, unreadable file", "ca install cpo-sub1 --certificate {plain_file}", 6),
    Cli("ca install", "no such CA", "ca install nope --certificate {untrusted_root_file}", 5),
    Cli("ca install", "certificate file missing", "ca install nope --certificate {missing_dir_out}", 3),
    Cli("ca rollover", "zero validity", "ca rollover cso-root --validity 0d", 3),
    Cli("ca rollover", "validity past the year 9999", "ca rollover cso-root --validity 9000y", 3),
    Cli("ca rollover", "link certificate output unwritable", "ca rollover cso-root --link-out {missing_dir_out}", 3),
    Cli(
        "cert issue",
        "CSR with a broken signature",
        f"cert issue --profile station --csr {{bad_signature_csr_file}} {_STATION_ARGS}",
        4,
    ),
    Cli(
        "cert issue",
        "good CSR, output unwritable",
        f"cert issue --profile station --csr {{station_csr_file}} {_STATION_ARGS} --out {{missing_dir_out}}",
        3,
    ),
    Cli("cert renew", "RSA-1024 CSR", f"cert renew --csr {RSA1024_CSR} {_STATION_ARGS}", 4),
    Cli(
        "cert renew",
        "good CSR, output unwritable",
        f"cert renew --csr {{station_csr_file}} {_STATION_ARGS} --out {{missing_dir_out}}",
        3,
    ),
    Cli("cert revoke", "unknown reason", "cert revoke {serial} --reason becauseISaidSo", 3),
    Cli("cert release", "certificate not on hold", "cert release {serial}", 6),
    Cli("crl generate", "unknown format", "crl generate --ca cso-sub --format xml", 3),
    Cli("crl generate", "zero next update", "crl generate --ca cso-sub --next-update 0d", 3),
    Cli("crl generate", "output unwritable", "crl generate --ca cso-sub --out {missing_dir_out}", 3),
    Cli("crl show", "unknown CA", "crl show --ca no-such-ca", 5),
    Cli("crl show", "output unwritable", "crl show --ca cso-sub --out {missing_dir_out}", 3),
    Cli("contract add", "malformed PCID", "contract add --emaid DEEVPC000000003 --pcid short", 3),
    Cli(
        "contract add",
        "end and validity both given",
        "contract add --emaid DEEVPC000000003 --pcid WMIREFUSE00000003 --valid-until 2030-01-01 --validity 1y",
        3,
    ),
    Cli(
        "contract add",
        "negative priority",
        "contract add --emaid DEEVPC000000003 --pcid WMIREFUSE00000003 --concurrent --priority -1",
        3,
    ),
    Cli("contract revoke", "note over 200 characters", f"contract revoke {EMAID} --note {LONG_NOTE}", 3),
    Cli("contract install", "exiRequest that is not EXI", "contract install --exi-request AAAA --action Install", 3),
    Cli(
        "contract install",
        "unknown OCPP version",
        "contract install --exi-request AAAA --action Install --ocpp-version 3.0",
        3,
    ),
    Cli("station add", "security profile 1", "station add CS-REFUSE-9 --serial SN-9 --profile 1", 2),
    Cli(
        "station add",
        "password too short",
        "station add CS-REFUSE-9 --serial SN-9 --profile 2 --password-file {short_password_file}",
        3,
    ),
    Cli("station add", "identity already registered", f"station add {STATION} --serial SN-OTHER", 6),
    Cli("station remove", "unknown station", f"station remove {UNREGISTERED} --yes", 5),
    Cli("station remove", "not confirmed", f"station remove {STATION}", 1, usage=True, input="n\n"),
    Cli("station disable", "unknown station", f"station disable {UNREGISTERED}", 5),
    Cli("station enable", "unknown station", f"station enable {UNREGISTERED}", 5),
    Cli(
        "station passwd",
        "password too short",
        f"station passwd {BASIC_STATION} --password-file {{short_password_file}}",
        3,
    ),
    Cli("token create", "unknown role", "token create --role root --name refusal-new", 3),
    Cli("token create", "name already taken", f"token create --role auditor --name {TOKEN_NAME}", 6),
    Cli("token revoke", "unknown token", "token revoke no-such-token", 5),
    Cli(
        "firmware sign",
        "requestId beyond int32",
        f"firmware sign {{firmware_file}} --location {_FIRMWARE_URL} --request-id {INT32_OVER}",
        2,
        usage=True,
    ),
    Cli(
        "firmware sign",
        "location longer than any OCPP version allows",
        f"firmware sign {{firmware_file}} --location {_FIRMWARE_URL}{'a' * 2100}",
        3,
    ),
    Cli("firmware sign", "output unwritable", "firmware sign {firmware_file} --out {missing_dir_out}", 3),
    Cli(
        "firmware verify",
        "signature not Base64",
        "firmware verify {firmware_file} --signature !!! --certificate {firmware_signer_file}",
        3,
    ),
    Cli("ocsp presign", "unknown CA", "ocsp presign --ca no-such-ca", 5),
    Cli("ocsp responder", "unknown CA", "ocsp responder --ca no-such-ca", 5),
    Cli("ocsp rotate", "unknown CA", "ocsp rotate --ca no-such-ca", 5),
    Cli("ev create-vehicle", "malformed PCID", "ev create-vehicle --pcid short --out-dir {car_dir}", 4),
    Cli(
        "ev create-vehicle",
        "good PCID, output directory is a file",
        "ev create-vehicle --pcid WMIREFUSE00000009 --out-dir {plain_file}",
        3,
    ),
    Cli(
        "ev simulate-install",
        "good vehicle, output directory is a file",
        "ev simulate-install --oem-cert {oem_cert} --oem-key {oem_key} --out-dir {plain_file}",
        3,
    ),
    Cli(
        "ev simulate-install",
        "unknown OCPP version",
        "ev simulate-install --oem-cert {oem_cert} --oem-key {oem_key} --ocpp-version 3.0",
        3,
    ),
    Cli(
        "ev simulate-update",
        "good contract, output directory is a file",
        "ev simulate-update --contract-cert {contract_cert} --contract-key {contract_key} --out-dir {plain_file}",
        3,
    ),
    Cli("backup", "archive in a directory that does not exist", "backup --out {missing_dir_out}", 3),
    Cli("restore", "not an archive", "restore {garbage_archive} --force", 3),
    Cli("restore", "archive whose audit chain is broken", "restore {broken_chain_archive} --force", 8),
    Cli("serve", "no workers", "serve --workers 0", 2, usage=True),
    Cli("serve", "port out of range", "serve --port 70000", 2, usage=True),
    Cli("bridge", "upstream that is not a websocket URL", "bridge --upstream ftp://csms.example", 2),
    Cli("bridge", "both listeners off", "bridge --port 0 --basic-port 0", 2),
    Cli("trust add", "root that is not a CA", "trust add {not_ca_root_file} --use V2GRootCertificate", 4),
    Cli("trust add", "root already trusted", "trust add {trusted_root_file} --use V2GRootCertificate", 6),
    Cli("trust add", "unknown use", "trust add {untrusted_root_file} --use V2GRoot", 3),
    Cli("trust import", "neither PEM nor CTL", "trust import {plain_file} --use V2GRootCertificate", 3),
    Cli("trust import", "CTL without rootCertificates", "trust import {empty_ctl_file}", 3),
    Cli("trust remove", "unknown root", "trust remove no-such-root", 5),
    Cli("trust remove", "already removed", f"trust remove {RETIRED_LABEL}", 6),
    Cli("opcp client add", "unknown role", "opcp client add --role root --name refusal-opcp-new", 3),
    Cli("opcp client add", "OEM without a WMI", "opcp client add --role oem --name refusal-opcp-new", 3),
    Cli("opcp client add", "name already taken", "opcp client add --role cpo --name refusal-opcp-cpo", 6),
    Cli("opcp client remove", "unknown client", "opcp client remove no-such-client", 5),
    Cli("opcp key rotate", "not confirmed", "opcp key rotate", 1, usage=True, input="n\n"),
    *(
        Cli("trust sync", why, f"trust sync --rcp {url} --client-id c --client-secret-file {{{secret}}}", code)
        for why, url, secret, code in (
            ("plain http to a host that is not loopback", "http://rcp.example.com", "rcp_secret_file", 3),
            ("pool unreachable (nothing listens)", "http://127.0.0.1:9", "rcp_secret_file", 7),
        )
    ),
    Cli("est secret add", "station not registered", f"est secret add --identity {UNREGISTERED}", 5),
    Cli("est secret add", "a profile without secrets", f"est secret add --identity {EMAID} --profile contract", 3),
    Cli("est secret add", "malformed lifetime", f"est secret add --identity {STATION} --ttl soon", 3),
    Cli(
        "est secret add", "CA that does not issue the profile", f"est secret add --identity {STATION} --ca cpo-sub2", 3
    ),
    Cli("est secret revoke", "unknown secret", "est secret revoke 999999", 5),
    Cli("serve", "EST port out of range", "serve --est-port 70000", 2, usage=True),
    *OPERATOR_CALL_CLI_REFUSALS,
    # ISO 15118-20 cars (branch ocpp21): this PKI has no -20 CAs; a -2 car's P-256 key is no -20 key.
    Cli(
        "ev create-vehicle",
        "--iso 20 without -20 CAs",
        "ev create-vehicle --iso 20 --pcid WMIREFUSE00000020 --out-dir {car_dir}",
        3,
    ),
    Cli(
        "ev simulate-install",
        "--iso 20 with a P-256 key",
        "ev simulate-install --iso 20 --oem-cert {oem_cert} --oem-key {oem_key}",
        3,
    ),
)


# Bulk issuance (issue 17): the whole batch refused up front, or every CSR of it refused.
_CSR_DIR = BAD_SIGNATURE_CSR.parent
_BATCH_ITEM = {"profile": "station", "csr": Ref("station_csr"), "identity": {"stationId": STATION}}
REST_REFUSALS += (
    Rest("POST /api/v1/certificates:batch", "no requests", json={"requests": []}),
    Rest("POST /api/v1/certificates:batch", "over 1000 requests", json={"requests": [_BATCH_ITEM] * 1001}),
    Rest(
        "POST /api/v1/certificates:batch",
        "csms role asks for a csms-server certificate among stations",
        json={"requests": [_BATCH_ITEM, {**_BATCH_ITEM, "profile": "csms-server", "identity": {"fqdn": "a.example"}}]},
        role=Role.CSMS,
        status=403,
    ),
)
CLI_REFUSALS += (
    Cli(
        "cert issue-batch",
        "CSR directory missing",
        "cert issue-batch --csr-dir {missing_dir_out} --out-dir {car_dir}",
        3,
    ),
    Cli(
        "cert issue-batch", "no CSR files", f"cert issue-batch --csr-dir {ROOT / 'test_certs'} --out-dir {{car_dir}}", 3
    ),
    Cli(
        "cert issue-batch",
        "output directory is a file",
        f"cert issue-batch --csr-dir {_CSR_DIR} --out-dir {{plain_file}}",
        3,
    ),
    Cli("cert issue-batch", "every CSR refused", f"cert issue-batch --csr-dir {_CSR_DIR} --out-dir {{car_dir}}", 4),
)

# -- the module's own PKI ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class State:
    """What a refusal must leave as it was: every table's rows, the audit head, the key and data files."""

    tables: dict[str, tuple[int, str]]  # name -> (rows, SHA-256 of the sorted rows)
    audit_head: tuple[int, str] | None
    keys: dict[str, str]  # file name -> SHA-256
    files: frozenset[str]  # everything else in the data directory (outputs, staging files)


@dataclass
class World:
    home: Path
    url: str
    pki: PKI
    app: FastAPI
    tokens: dict[Role, str]
    refs: dict[str, Any]

    def state(self) -> State:
        engine = create_engine(self.url)
        try:
            metadata = MetaData()
            metadata.reflect(engine)
            tables: dict[str, tuple[int, str]] = {}
            head = None
            with engine.connect() as connection:
                for table in metadata.sorted_tables:
                    rows = sorted(repr(tuple(row)) for row in connection.execute(select(table)))
                    tables[table.name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
                audit_head = metadata.tables["audit_head"]
                found = connection.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
                head = (int(found[0]), str(found[1])) if found is not None else None
        finally:
            engine.dispose()
        keys_dir = self.home / "keys"
        keys = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(keys_dir.iterdir())}
        files = frozenset(
            str(p.relative_to(self.home))
            for p in self.home.rglob("*")
            if not p.name.startswith("evpki.db") and keys_dir not in p.parents
        )
        return State(tables, head, keys, files)

    def fill(self, value: Any) -> Any:
        if isinstance(value, Ref):
            return self.refs[value.name]
        if isinstance(value, dict):
            return {key: self.fill(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.fill(item) for item in value]
        return value


def _changes(before: State, after: State) -> list[str]:
    """What a request changed, one line per table, audit head, key file or data file."""
    changes: list[str] = []
    for name in sorted(before.tables.keys() | after.tables.keys()):
        old, new = before.tables.get(name, (0, "")), after.tables.get(name, (0, ""))
        if old != new:
            changes.append(
                f"table {name}: {old[0]} -> {new[0]} rows" if old[0] != new[0] else f"table {name}: rows changed"
            )
    if before.audit_head != after.audit_head:
        changes.append(f"audit head: {before.audit_head} -> {after.audit_head}")
    changes += [
        f"key file {name}: {'added' if name not in before.keys else 'removed' if name not in after.keys else 'changed'}"
        for name in sorted(before.keys.keys() | after.keys.keys())
        if before.keys.get(name) != after.keys.get(name)
    ]
    changes += [f"data file added: {name}" for name in sorted(after.files - before.files)]
    changes += [f"data file removed: {name}" for name in sorted(before.files - after.files)]
    return changes


runner = CliRunner()


def _invoke(args: list[str], input_text: str | None = None) -> Result:
    return runner.invoke(cli_app, args, input=input_text)


def _broken_chain_archive(source: Path, target: Path) -> None:
    """``source`` with one audit record altered and a key file added, its manifest hashes made to match.

    The checksums pass, so restore gets as far as the audit verification inside its transaction;
    the extra key file shows whether the key directory was touched before that verdict.
    """
    with tarfile.open(source, mode="r:gz") as archive:
        files = {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }
    manifest = json.loads(files.pop("manifest.json"))
    records = files["database/audit_record.jsonl"].decode().splitlines()
    first = json.loads(records[0])
    first["actor"] = "someone-else"
    records[0] = json.dumps(first, sort_keys=True)
    files["database/audit_record.jsonl"] = ("\n".join(records) + "\n").encode()
    files["keys/ca-intruder.pem"] = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n-----END ENCRYPTED PRIVATE KEY-----\n"
    manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    with tarfile.open(target, mode="w:gz") as archive:
        for name, data in {"manifest.json": json.dumps(manifest).encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def _environment(home: Path, url: str) -> dict[str, str]:
    return {"EVPKI_HOME": str(home), "EVPKI_DATABASE_URL": url, "EVPKI_KEY_PASSPHRASE": TEST_PASSPHRASE}


def _vehicle_with_contract(pki: PKI, car: Path) -> None:
    """A test car (OEM certificate and key) holding a contract it has installed (contract.pem and key)."""
    csr, key = ev.vehicle_csr(PCID)
    oem = pki.certificates.issue(profile="oem-provisioning", csr=csr, identity=RequestIdentity(pcid=PCID))
    car.mkdir()
    (car / "oem.pem").write_text(oem.chain_pem)
    plain = serialization.NoEncryption()
    (car / "oem.key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, plain)
    )
    pki.contracts.add(emaid=EMAID, pcid=PCID)
    installed = _invoke(
        ["ev", "simulate-install", "--oem-cert", str(car / "oem.pem"), "--oem-key", str(car / "oem.key.pem"),
         "--out-dir", str(car)]
    )  # fmt: skip
    assert installed.exit_code == 0, installed.output


def _firmware_signer(firmware: Path) -> str:
    """The PEM signing certificate of a real signature (through the CLI, as a user would get it)."""
    signed = _invoke(["firmware", "sign", str(firmware), "--json"])
    assert signed.exit_code == 0, signed.output
    return str(json.loads(signed.stdout)["signingCertificate"])


def _opcp_world(pki: PKI) -> dict[str, Any]:
    """OPCP clients (and their tokens, so the signing key exists), a webhook, and the rows' OPCP bodies."""
    from tests.opcp_support import b64, foreign_oem_chain

    tokens: dict[str, str] = {}
    credentials: dict[str, str] = {}
    for name, role, scope in (
        ("admin", "admin", {}),
        ("cpo", "cpo", {}),
        ("oem", "oem", {"wmis": ["WMI"]}),
        ("oem-foreign", "oem", {"wmis": ["QQQ"]}),
        ("cps", "cps", {}),
        ("mo-v2g", "mo-v2g-pki", {"providers": [EMAID[:5]]}),
    ):
        view, secret = pki.opcp.add_client(name=f"refusal-opcp-{name}", role=role, **scope)
        grant = pki.opcp.issue_token(client_id=view.client_id, client_secret=secret, audience=pki.opcp.audience)
        tokens[f"opcp_token:{name}"], credentials[name] = grant.access_token, view.client_id
    hook = pki.opcp.webhooks.create(
        pki.opcp.authenticate(tokens["opcp_token:cpo"]),
        SubscriptionIn(url="https://hooks.example/cpo", enabled_events=("root.cert.added",)),
    )
    untrusted_root = b64(foreign_root().certificate)
    # a vehicle in the PCP that a generated contract could be for
    in_pool = foreign_oem_chain(POOL_PCID)
    pki.trust.add(in_pool.root.public_bytes(serialization.Encoding.DER), use="OEMRootCertificate")
    pki.opcp.pcp.publish(
        pki.opcp.authenticate(tokens["opcp_token:oem"]),
        ProvisioningCertificateIn(
            sub_ca1_certificate=in_pool.body()["subCA1Certificate"],
            sub_ca2_certificate=in_pool.body()["subCA2Certificate"],
            vehicle_certificate=in_pool.body()["vehicleCertificate"],
        ),
    )
    now = pki.clock.now()
    generate = {
        "contractBegins": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "contractEnds": (now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pcid": POOL_PCID,
        "emaid": EMAID,  # the contract of PCID
        "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
    }
    return {
        "opcp_generate_used_emaid": generate,
        "opcp_generate_ended": {**generate, "emaid": FREE_EMAID, "contractEnds": "2025-01-01T00:00:00Z"},
        **tokens,
        "opcp_hook_path": f"/opcp/v1/webhook/endpoints/{hook.id}",
        "opcp_bad_credentials": {
            "client_id": credentials["cpo"],
            "client_secret": "wrong",
            "audience": pki.opcp.audience,
            "grant_type": "client_credentials",
        },
        "opcp_pe_root": {"caCertificate": untrusted_root, "rootType": "PE"},
        "opcp_mo_root": {"caCertificate": untrusted_root, "rootType": "MO"},
        "opcp_bad_vehicle": {"subCA1Certificate": untrusted_root, "vehicleCertificate": "!!"},
        "opcp_untrusted_chain": foreign_oem_chain("WMIREFUSE00000002").body(),
        "opcp_cps_chain": {
            "emaid": EMAID,
            "contractData": {
                "contractSignatureCertChain": {
                    "contractSignatureCertChainCertificate": untrusted_root,
                    "contractSignatureCertChainSubCertificates": [untrusted_root],
                },
                "contractSignatureEncryptedPrivateKey": "AA==",
                "dHpublickey": "AA==",
            },
        },
        "opcp_cps_flat": {
            "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
            "contractData": {
                "contractCertificate": untrusted_root,
                "contractSubCa1Certificate": untrusted_root,
                "contractSignatureEncryptedPrivateKey": "AA==",
                "dHpublickey": "AA==",
            },
        },
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, _fresh_template: tuple[Path, str | None]) -> Iterator[World]:
    """A PKI of this module's own (a copy of the session template) with something for each row to refuse.

    Each row would succeed but for its one invalid parameter where that can be arranged: the station,
    its certificate, a contract, a vehicle, a token and a firmware signer exist.
    """
    home = tmp_path_factory.mktemp("refusals")
    url, name = _copy_database(_fresh_template, home)
    settings = make_settings(home, url)
    pki = PKI.open(settings)
    inputs = home / "inputs"
    inputs.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _environment(home, url).items():
            mp.setenv(key, value)
        tokens = {role: pki.tokens.create(name=f"refusal-{role.value}", role=role)[1] for role in Role}
        pki.tokens.create(name=TOKEN_NAME, role=Role.OPERATOR)
        pki.stations.add(identity=STATION, serial=STATION_SERIAL)
        pki.stations.add(identity=BASIC_STATION, serial="SN-REFUSE-2", security_profile=2, password="p" * 20)
        pki.stations.record_connection(STATION, "2.0.1")  # operator calls need the station's OCPP version
        pki.stations.record_connection(BASIC_STATION, "1.6")
        serial = pki.certificates.issue(
            profile="station",
            csr=make_csr(STATION_SERIAL, organization=ORG)[0],
            identity=RequestIdentity(station_id=STATION, station_serial=STATION_SERIAL),
        ).certificate.serial
        station_csr = make_csr(STATION_SERIAL, organization=ORG)[0]  # a new key: issue and renew would pass
        (inputs / "station.csr.pem").write_text(station_csr)
        (inputs / "short-password").write_text("short\n")
        (inputs / "firmware.bin").write_bytes(b"firmware image")
        (inputs / "plain-file").write_text("not a directory\n")
        (inputs / "garbage.tar.gz").write_bytes(b"not a tar archive")
        car = inputs / "car"
        _vehicle_with_contract(pki, car)
        signer_pem = _firmware_signer(inputs / "firmware.bin")
        (inputs / "firmware-signer.pem").write_text(signer_pem)
        create_backup(settings, inputs / "backup.tar.gz")
        _broken_chain_archive(inputs / "backup.tar.gz", inputs / "broken-chain.tar.gz")
        (inputs / "backup.tar.gz").unlink()
        trusted, untrusted = pem_of(foreign_root().certificate), pem_of(foreign_root().certificate)
        not_ca = pem_of(foreign_root(ca=False).certificate)
        pki.trust.add(trusted, use="V2GRootCertificate", label=TRUSTED_LABEL)
        pki.trust.add(pem_of(foreign_root().certificate), use="MORootCertificate", label=RETIRED_LABEL)
        pki.trust.remove(RETIRED_LABEL)
        for kind, text in (("trusted", trusted), ("untrusted", untrusted), ("not-ca", not_ca)):
            (inputs / f"{kind}-root.pem").write_text(text)
        (inputs / "empty-ctl.json").write_text('{"CTL": {}}')
        (inputs / "rcp-secret").write_text("rcp-client-secret\n")
        (inputs / "rcp-secret").chmod(0o600)
        opcp_refs = _opcp_world(pki)
    signer_der = x509.load_pem_x509_certificate(signer_pem.encode()).public_bytes(serialization.Encoding.DER)
    refs = {
        "serial": serial,
        "revoke_path": f"/api/v1/certificates/{serial}/revoke",
        "release_path": f"/api/v1/certificates/{serial}/release",
        "station_csr": station_csr,
        "bad_signature_csr": BAD_SIGNATURE_CSR.read_text(),
        "rsa1024_csr": RSA1024_CSR.read_text(),
        "station_csr_file": str(inputs / "station.csr.pem"),
        "bad_signature_csr_file": str(BAD_SIGNATURE_CSR),
        "short_password_file": str(inputs / "short-password"),
        "firmware_file": str(inputs / "firmware.bin"),
        "firmware_signer_file": str(inputs / "firmware-signer.pem"),
        "firmware_signer_b64": base64.b64encode(signer_der).decode(),
        "plain_file": str(inputs / "plain-file"),
        "missing_dir_out": str(home / "no-such-directory" / "out.pem"),
        "car_dir": str(inputs / "car-2"),
        "oem_cert": str(car / "oem.pem"),
        "oem_key": str(car / "oem.key.pem"),
        "contract_cert": str(car / "contract.pem"),
        "contract_key": str(car / "contract.key.pem"),
        "garbage_archive": str(inputs / "garbage.tar.gz"),
        "broken_chain_archive": str(inputs / "broken-chain.tar.gz"),
        "trusted_root": trusted,
        "untrusted_root": untrusted,
        "not_ca_root": not_ca,
        "trusted_root_file": str(inputs / "trusted-root.pem"),
        "untrusted_root_file": str(inputs / "untrusted-root.pem"),
        "not_ca_root_file": str(inputs / "not-ca-root.pem"),
        "empty_ctl_file": str(inputs / "empty-ctl.json"),
        "rcp_secret_file": str(inputs / "rcp-secret"),
        **opcp_refs,
    }
    yield World(home, url, pki, create_app(pki), tokens, refs)
    pki.close()
    drop_database(name)


@pytest_asyncio.fixture
async def http(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        yield client


# -- the rows ----------------------------------------------------------------------------------


def _rest_id(row: Rest) -> str:
    return f"{row.operation} [{row.why}]"


def _cli_id(row: Cli) -> str:
    return f"{row.command} [{row.why}]"


@pytest.mark.asyncio
@pytest.mark.parametrize("row", REST_REFUSALS, ids=_rest_id)
async def test_a_refused_rest_request_changes_nothing(row: Rest, world: World, http: httpx.AsyncClient) -> None:
    method, template = row.operation.split(" ", 1)
    path = world.fill(row.path) if row.path is not None else template
    if row.opcp is None:
        headers = {"Authorization": f"Bearer {world.tokens[row.role]}", **world.fill(row.headers)}
    else:
        headers = {"Authorization": f"Bearer {world.refs['opcp_token:' + row.opcp]}"} if row.opcp else {}
    before = world.state()
    response = await http.request(
        method,
        path,
        params=row.params,
        headers=headers,
        json=world.fill(row.json) if row.content is None else None,
        content=row.content,
    )
    after = world.state()
    if row.ocpp_status is not None:
        assert response.status_code == 200, response.text
        assert response.json()["response"]["status"] == row.ocpp_status, response.text
        assert response.json()["followUps"] == [], response.text
    elif row.opcp is not None:  # OPCP's error bodies (OAuth's on the token endpoint)
        assert response.status_code == row.status, response.text
        assert response.json().get("errorMessages") or response.json().get("error"), response.text
    else:
        assert response.status_code == row.status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == row.status
    assert _changes(before, after) == []


@pytest.mark.parametrize("row", CLI_REFUSALS, ids=_cli_id)
def test_a_refused_cli_command_changes_nothing(row: Cli, world: World) -> None:
    refs = {name: shlex.quote(value) for name, value in world.refs.items() if isinstance(value, str)}
    args = shlex.split(row.args.format(**refs))
    before = world.state()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _environment(world.home, world.url).items():
            mp.setenv(key, value)
        result = _invoke(args, row.input)
    after = world.state()
    assert result.exit_code == row.exit_code, (result.stdout, result.stderr, result.exception)
    if not row.usage:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert _changes(before, after) == []


# -- completeness ------------------------------------------------------------------------------


def _mutating_operations(app: FastAPI) -> set[str]:
    # Mounted sub-applications (the OPCP services under /opcp) have OpenAPI documents of their own.
    documents = [("", app)] + [(route.path, route.app) for route in app.routes if isinstance(route, Mount)]
    return {
        f"{method.upper()} {prefix}{path}"
        for prefix, document in documents
        for path, operations in document.openapi()["paths"].items()  # type: ignore[attr-defined]
        for method in operations
        if method in MUTATING
    }


def _commands(command: Any, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    if hasattr(command, "list_commands"):
        context = click.Context(command)
        for name in command.list_commands(context):
            yield from _commands(command.get_command(context, name), (*prefix, name))
    else:
        yield " ".join(prefix)


def test_every_mutating_rest_operation_has_a_row(world: World) -> None:
    operations = _mutating_operations(world.app)
    covered = {row.operation for row in REST_REFUSALS}
    assert operations - covered == set(), "mutating operations without a refusal row"
    assert covered - operations == set(), "rows for operations the API does not have"


def test_every_mutating_cli_command_has_a_row() -> None:
    commands = set(_commands(typer.main.get_command(cli_app)))
    covered = {row.command for row in CLI_REFUSALS}
    assert commands - covered - READ_ONLY_COMMANDS == set(), "commands neither refused in the table nor read-only"
    assert (covered | READ_ONLY_COMMANDS) - commands == set(), "rows for commands the CLI does not have"
