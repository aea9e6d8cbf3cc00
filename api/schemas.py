"""Request and response bodies of the REST API: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from pki.ca import (
    BATCH_LIMIT,
    MAX_CSR_CHARS,
    MAX_TRUST_FILE_BYTES,
    CaRequestView,
    ImportReport,
    InstallReport,
    RequestIdentity,
    RootUse,
    TrustedRootView,
)
from pki.iso15118 import CONTRACT_STATUSES, MAX_NOTE_CHARS, ContractRevocation, ContractView
from pki.runtime import CaView, CertificateView

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "MAX_ROW_NUMBER",
    "AuditRecordOut",
    "AuditVerificationOut",
    "CaOut",
    "CertificateList",
    "CertificateOut",
    "CertificateRefOut",
    "ContractIn",
    "ContractList",
    "ContractOut",
    "ContractRevocationOut",
    "ContractRevokeIn",
    "DeleteCertificateIn",
    "FirmwareSignatureOut",
    "FirmwareUpdateList",
    "FirmwareUpdateOut",
    "FirmwareVerificationOut",
    "GetLogIn",
    "IdentityIn",
    "InstallCertificateIn",
    "InstalledCertificatesIn",
    "IssueBatchIn",
    "IssueBatchItemOut",
    "IssueBatchOut",
    "IssueIn",
    "IssuedOut",
    "OcppCallIn",
    "OcppErrorIn",
    "OcppFollowUp",
    "OcppFollowUpsOut",
    "OcppHandledOut",
    "OcppResultIn",
    "OcppStationIn",
    "PasswordIn",
    "Problem",
    "RevokeIn",
    "RootSyncIn",
    "RootSyncOut",
    "SecurityProfileIn",
    "StationCallList",
    "StationCallOut",
    "StationNotificationOut",
    "TriggerIn",
    "TrustImportIn",
    "TrustImportOut",
    "TrustRefusalOut",
    "TrustedRootIn",
    "TrustedRootList",
    "TrustedRootOut",
]


# OCPP-J integers are 32-bit signed (OCPP 2.0.1 Part 2 / 1.6 JSON: `integer` is int32); the OCPP ids that
# pass through this API (requestId, deliveryId) stay within that range.
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
# Row ids, audit sequence numbers and therefore offsets into any listing fit an INTEGER column, which is
# 32-bit on PostgreSQL (SQLite's is 64-bit): a larger value cannot match a row, and the database would
# refuse to even compare it (PostgreSQL "integer out of range", SQLite OverflowError beyond 64 bits).
MAX_ROW_NUMBER = INT32_MAX


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["urn:evpki:problem:policy-violation"])
    title: str
    status: int
    detail: str
    instance: str
    rule: str | None = Field(default=None, description="the policy rule that refused the request")


class IdentityIn(_Wire):
    """Who the certificate is for; which fields are needed depends on the profile."""

    station_id: str | None = Field(default=None, max_length=255, description="OCPP identity (station profile)")
    station_serial: str | None = Field(
        default=None, max_length=255, description="CN of a station certificate (OCPP A00.FR.511); default stationId"
    )
    secc_id: str | None = Field(default=None, max_length=255, description="SECC id (secc profile CN)")
    fqdn: str | None = Field(default=None, max_length=253, description="host name (csms-server profile)")
    emaid: str | None = Field(default=None, max_length=64, description="eMAID (contract profile)")
    pcid: str | None = Field(default=None, max_length=64, description="PCID (oem-provisioning profile)")

    def to_domain(self) -> RequestIdentity:
        return RequestIdentity(
            station_id=self.station_id,
            station_serial=self.station_serial,
            secc_id=self.secc_id,
            fqdn=self.fqdn,
            emaid=self.emaid,
            pcid=self.pcid,
        )


_CSR_EXAMPLE = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBDDCBsw...\n-----END CERTIFICATE REQUEST-----\n"


class IssueIn(_Wire):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "profile": "station",
                    "csr": _CSR_EXAMPLE,
                    "identity": {"stationId": "CP-0001", "stationSerial": "SN-0001"},
                }
            ]
        },
    )

    profile: str = Field(description="certificate profile: station, secc, csms-server, ...", max_length=32)
    # The 5,500-character cap (OCPP) is the policy's rule (pki.policy), enforced there once.
    csr: str = Field(description=f"PEM PKCS#10 request, at most {MAX_CSR_CHARS} characters (OCPP's cap)")
    identity: IdentityIn = Field(default_factory=IdentityIn)
    ca: str | None = Field(default=None, max_length=64, description="issuing CA id; default: the CA for the profile")
    validity: str | None = Field(default=None, max_length=16, description="e.g. 365d; capped by the profile")


class RevokeIn(_Wire):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "keyCompromise"}]},
    )

    reason: str = Field(description="RFC 5280 reason name, e.g. keyCompromise, superseded, certificateHold")


class CertificateOut(_Wire):
    issuer_id: str
    serial: str = Field(description="upper-case hex, as OCPP CertificateHashData.serialNumber")
    sha256: str
    profile: str
    subject: str
    identity: str | None
    station_serial: str | None
    not_before: dt.datetime
    not_after: dt.datetime
    status: str = Field(description="valid | superseded | expired | revoked | on-hold")
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    superseded_by: str | None
    label: str | None
    certificate_pem: str

    @classmethod
    def of(cls, view: CertificateView) -> CertificateOut:
        return cls(**{name: getattr(view, name) for name in cls.model_fields})


class IssuedOut(_Wire):
    certificate: CertificateOut
    chain_pem: str = Field(description="leaf then sub-CAs, root left out (OCPP CertificateSigned.certificateChain)")


class IssueBatchIn(_Wire):
    requests: list[IssueIn] = Field(
        min_length=1,
        max_length=BATCH_LIMIT,
        description=f"1 to {BATCH_LIMIT} issuance requests, each as POST /api/v1/certificates takes it",
    )


class IssueBatchItemOut(_Wire):
    """One request's outcome: its certificate (status 201) or its refusal (the problem it would get alone)."""

    status: int = Field(description="201 when issued; else the status the request alone would have got")
    certificate: CertificateOut | None = None
    chain_pem: str | None = Field(default=None, description="as IssuedOut.chainPem, when issued")
    problem: Problem | None = Field(default=None, description="RFC 9457 problem details, when refused")


class IssueBatchOut(_Wire):
    results: list[IssueBatchItemOut] = Field(description="one per request, in the order of the requests")
    issued: int
    refused: int


class CertificateList(_Wire):
    items: list[CertificateOut]
    offset: int
    limit: int
    next_offset: int | None = Field(description="pass as offset for the next page; null on the last page")


class CaOut(_Wire):
    id: str
    pki: str
    standard: str
    parent_id: str | None
    subject: str
    serial: str
    sha256: str
    not_before: dt.datetime
    not_after: dt.datetime
    issues: list[str]
    key_backend: str
    crl_number: int
    external_parent: bool = Field(
        description="installed under a CA we do not run (parentId is null and its issuer is external)"
    )

    @classmethod
    def of(cls, view: CaView) -> CaOut:
        data: dict[str, Any] = {name: getattr(view, name) for name in cls.model_fields}
        data["issues"] = list(view.issues)
        return cls(**data)


class AuditRecordOut(_Wire):
    seq: int
    at: dt.datetime
    actor: str
    action: str
    ca_id: str | None
    serial: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditVerificationOut(_Wire):
    ok: bool
    records: int
    first_broken_seq: int | None = None
    reason: str | None = None


class FirmwareSignatureOut(_Wire):
    sha256: str
    size: int
    algorithm: str
    signature: str = Field(description="Base64 signature over the whole file (firmware.signature)")
    signing_certificate: str = Field(description="PEM (firmware.signingCertificate)")
    update_firmware: dict[str, Any] | None = Field(
        default=None, description="OCPP 2.0.1/2.1 UpdateFirmwareRequest payload (needs location)"
    )
    signed_update_firmware: dict[str, Any] | None = Field(
        default=None, description="OCPP 1.6 SignedUpdateFirmware.req payload (needs location)"
    )


class FirmwareVerificationOut(_Wire):
    ok: bool
    sha256: str
    size: int
    signer_subject: str
    signer_serial: str
    signer_not_after: dt.datetime


class ContractIn(_Wire):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"emaid": "DE-ABC-C123ABC56", "pcid": "WMIV2G0000000001A", "validity": "1y", "note": "customer 4711"},
                {"emaid": "DEABCC123ABC57", "pcid": "WMIV2G0000000001A", "validUntil": "2027-12-31T23:59:59Z"},
            ]
        },
    )

    emaid: str = Field(max_length=32, description="ISO 15118-2 eMAID; hyphens are removed, letters upper-cased")
    pcid: str = Field(max_length=32, description="the vehicle: CN of its OEM provisioning certificate (17-18 chars)")
    valid_from: AwareDatetime | None = Field(default=None, description="start, with an offset; default now")
    valid_until: AwareDatetime | None = Field(
        default=None, description="end (exclusive); none: contract certificates get the profile's default validity"
    )
    validity: str | None = Field(default=None, max_length=16, description="end as a duration after validFrom, e.g. 1y")
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS, description="e.g. a customer reference")
    priority: int = Field(
        default=0, ge=0, le=1_000_000, description="order among the vehicle's contracts, lower first (ISO 15118-20)"
    )
    concurrent: bool = Field(
        default=False,
        description="may overlap the vehicle's other contracts (ISO 15118-20 hands a car several); "
        "otherwise a vehicle holds one contract at a time",
    )


class CertificateRefOut(_Wire):
    issuer_id: str
    serial: str = Field(description="upper-case hex")


class ContractOut(_Wire):
    emaid: str = Field(description="normalised: no separators, upper case")
    pcid: str
    status: str = Field(description=" | ".join(CONTRACT_STATUSES))
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    note: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    revoked_at: dt.datetime | None
    revocation_note: str | None
    current_certificate: CertificateRefOut | None = Field(description="the contract certificate issued last")
    priority: int = Field(default=0, description="order among the vehicle's contracts, lower first")

    @classmethod
    def of(cls, view: ContractView) -> ContractOut:
        data: dict[str, Any] = {name: getattr(view, name) for name in cls.model_fields}
        current = view.current_certificate
        data["current_certificate"] = (
            CertificateRefOut(issuer_id=current.issuer_id, serial=current.serial) if current else None
        )
        return cls(**data)


class ContractList(_Wire):
    items: list[ContractOut]
    offset: int
    limit: int
    next_offset: int | None = Field(description="pass as offset for the next page; null on the last page")


class ContractRevokeIn(_Wire):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={"examples": [{"note": "terminated by the customer"}]},
    )

    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS, description="why")


class ContractRevocationOut(_Wire):
    contract: ContractOut
    revoked_certificates: list[CertificateRefOut] = Field(
        description="contract certificates revoked with the contract (cessationOfOperation)"
    )

    @classmethod
    def of(cls, result: ContractRevocation) -> ContractRevocationOut:
        return cls(
            contract=ContractOut.of(result.contract),
            revoked_certificates=[
                CertificateRefOut(issuer_id=ref.issuer_id, serial=ref.serial) for ref in result.revoked_certificates
            ],
        )


class OcppFollowUp(_Wire):
    """A call the CSMS must send to the station after answering it (OCPP payload in camelCase, as on the wire)."""

    action: str = Field(max_length=64, examples=["CertificateSigned"])
    payload: dict[str, Any] = Field(description="the CALL payload, schema-valid for the OCPP version")
    delivery_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ROW_NUMBER,
        description="tracked delivery: report the station's answer to .../results with it",
    )


class OcppCallIn(_Wire):
    station_id: str = Field(max_length=48, description="the station's OCPP identity (last URL path segment)")
    payload: dict[str, Any] = Field(description="the station's CALL payload, exactly as received (camelCase)")


class OcppHandledOut(_Wire):
    response: dict[str, Any] = Field(description="the CALLRESULT payload to send back to the station")
    follow_ups: list[OcppFollowUp] = Field(description="send these, in order, after the response")


class OcppStationIn(_Wire):
    station_id: str = Field(max_length=48, description="the station's OCPP identity")


class OcppResultIn(_Wire):
    station_id: str = Field(max_length=48)
    follow_up: OcppFollowUp = Field(description="the follow-up as this API returned it")
    response: dict[str, Any] = Field(description="the station's CALLRESULT payload for it")


class OcppErrorIn(_Wire):
    station_id: str = Field(max_length=48)
    follow_up: OcppFollowUp
    code: str = Field(max_length=64, description="the CALLERROR code, or Timeout when the station did not answer")
    description: str = Field(default="", max_length=512)


class OcppFollowUpsOut(_Wire):
    follow_ups: list[OcppFollowUp]


# A root certificate in PEM is well under 16 KiB (the trust store refuses anything larger).
MAX_ROOT_PEM_CHARS = 16384


class TrustedRootIn(_Wire):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"certificate": "-----BEGIN CERTIFICATE-----\n...", "use": "V2GRootCertificate", "label": "hubject-g2"}
            ]
        },
    )

    certificate: str = Field(max_length=MAX_ROOT_PEM_CHARS, description="the root certificate, PEM")
    use: RootUse = Field(description="OCPP InstallCertificateUse the root is trusted for")
    label: str | None = Field(
        default=None, max_length=64, description="a short name to refer to it by (letters, digits, ._:-)"
    )


class TrustedRootOut(_Wire):
    use: RootUse
    sha256: str = Field(description="SHA-256 of the DER certificate, lower-case hex")
    subject: str
    label: str | None
    source: str = Field(
        description="manual | import | rcp (trust sync) | seed (EVPKI_ISO15118_OEM_ROOTS) | "
        "ca-install (the external root a CA was installed under)"
    )
    origin: str | None = Field(description="for rcp and seed: the pool's URL or the setting the root came from")
    not_before: dt.datetime
    not_after: dt.datetime
    added_at: dt.datetime
    added_by: str
    removed_at: dt.datetime | None = Field(description="set once the root is removed (retired); it is kept")
    removed_by: str | None
    removed_reason: str | None = Field(description="why a sync or the seed retired it; null when removed by hand")
    certificate_pem: str

    @classmethod
    def of(cls, view: TrustedRootView) -> TrustedRootOut:
        return cls(**{name: getattr(view, name) for name in cls.model_fields})


class TrustedRootList(_Wire):
    items: list[TrustedRootOut] = Field(description="newest first")


class TrustImportIn(_Wire):
    """Exactly one of ``pem`` (a bundle, with ``use``) and ``ctl`` (an OPCP RCP Certificate Trust List)."""

    pem: str | None = Field(default=None, max_length=MAX_TRUST_FILE_BYTES, description="a PEM bundle of roots")
    ctl: dict[str, Any] | None = Field(
        default=None, description="the JSON of an OPCP RCP GET /v1/root/ctl answer (signerCertificate, timeStamp, CTL)"
    )
    use: RootUse | None = Field(
        default=None, description="the use of every root of a PEM bundle; for a CTL, import only roots of this use"
    )


class TrustRefusalOut(_Wire):
    entry: str = Field(description="#position in the file, and the subject when readable")
    reason: str


class TrustImportOut(_Wire):
    format: str = Field(description="pem | ctl")
    added: list[TrustedRootOut]
    unchanged: list[TrustedRootOut]
    refused: list[TrustRefusalOut]

    @classmethod
    def of(cls, report: ImportReport) -> TrustImportOut:
        return cls(
            format=report.format,
            added=[TrustedRootOut.of(view) for view in report.added],
            unchanged=[TrustedRootOut.of(view) for view in report.unchanged],
            refused=[TrustRefusalOut(entry=item.entry, reason=item.reason) for item in report.refused],
        )


class CaRequestOut(_Wire):
    """A CA whose external parent has yet to sign its request."""

    id: str
    pki: str
    standard: str
    subject: str
    path_length: int | None
    issues: list[str]
    key_backend: str
    created_at: dt.datetime
    csr_pem: str = Field(description="the PKCS#10 request (PEM) to hand to the external CA")

    @classmethod
    def of(cls, view: CaRequestView) -> CaRequestOut:
        data: dict[str, Any] = {name: getattr(view, name) for name in cls.model_fields}
        data["issues"] = list(view.issues)
        return cls(**data)


class CaInstallIn(_Wire):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    certificate: str = Field(
        max_length=MAX_TRUST_FILE_BYTES, description="the CA certificate the external CA signed (PEM)"
    )
    chain: str | None = Field(
        default=None,
        max_length=MAX_TRUST_FILE_BYTES,
        description="the external CA's intermediates and, unless the trust store holds it, its root (PEM)",
    )


class CaAnchorOut(_Wire):
    subject: str
    sha256: str
    added: bool = Field(description="the root was not in the trust store and was added with the chain")


class CaInstallOut(_Wire):
    ca: CaOut
    intermediates: list[str] = Field(description="subjects of the external CAs between it and the root")
    anchor: CaAnchorOut
    created: list[str] = Field(description="CAs and leaves of the hierarchy created now that it can sign")
    waiting: list[str] = Field(description="what still waits for another CA's certificate")

    @classmethod
    def of(cls, report: InstallReport) -> CaInstallOut:
        return cls(
            ca=CaOut.of(report.ca),
            intermediates=list(report.intermediates),
            anchor=CaAnchorOut(subject=report.anchor_subject, sha256=report.anchor_sha256, added=report.anchor_added),
            created=list(report.created),
            waiting=list(report.waiting),
        )


# -- operator calls on a station (/api/v1/stations/{id}/...) -------------------------------------------


class StationNotificationOut(_Wire):
    action: str = Field(examples=["FirmwareStatusNotification"])
    request_id: int | None = None
    status: str = Field(examples=["Installed"])
    payload: dict[str, Any]
    received_at: dt.datetime


class StationCallOut(_Wire):
    """A stored call to a station and, once it answered, its answer (status + statusInfo) or CALLERROR."""

    id: int = Field(description="the call's id; also the requestId of GetLog and UpdateFirmware")
    station_id: str
    action: str = Field(examples=["InstallCertificate"], description="the OCPP action, in the station's version")
    topic: str
    payload: dict[str, Any] = Field(description="the CALL payload (a Basic-auth password is shown as ********)")
    status: str = Field(
        examples=["pending"],
        description="pending | accepted | rejected | failed | answered | error (CALLERROR) | expired | superseded",
    )
    origin: str = Field(examples=["operator"], description="operator, or bridge for the bridge's own deliveries")
    ocpp_version: str | None = None
    requested_by: str | None = None
    attempts: int
    created_at: dt.datetime
    last_sent_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    result: dict[str, Any] | None = Field(
        default=None, description="the station's CALLRESULT payload, or {errorCode, errorDescription}"
    )
    certificate_issuer: str | None = None
    certificate_serial: str | None = None
    notifications: list[StationNotificationOut] = Field(
        default_factory=list, description="Log/FirmwareStatusNotifications filed under the call's requestId"
    )


class StationCallList(_Wire):
    calls: list[StationCallOut]


class InstallCertificateIn(_Wire):
    use: str = Field(
        max_length=40,
        examples=["CSMSRootCertificate"],
        description="CSMS/Manufacturer/V2G/MO root (2.1: OEMRootCertificate); 1.6 CentralSystemRootCertificate too",
    )
    ca_id: str | None = Field(default=None, max_length=64, description="one of our roots")
    trusted: str | None = Field(default=None, max_length=100, description="a trust-store root: label or SHA-256")
    certificate: str | None = Field(default=None, max_length=10000, description="a root certificate, PEM")
    ocpp_version: str | None = Field(default=None, max_length=8, description="default: the station's last one")


class DeleteCertificateIn(_Wire):
    hash_data: dict[str, str] | None = Field(
        default=None, description="CertificateHashDataType exactly as the station reported it"
    )
    ca_id: str | None = Field(default=None, max_length=64)
    trusted: str | None = Field(default=None, max_length=100)
    certificate: str | None = Field(default=None, max_length=10000, description="PEM")
    hash_algorithm: str | None = Field(
        default=None, max_length=8, description="default: the one the station reported (else SHA256)"
    )
    ocpp_version: str | None = Field(default=None, max_length=8)


class InstalledCertificatesIn(_Wire):
    types: list[str] = Field(
        default_factory=list, max_length=8, description="certificate types; empty: all (2.x; 1.6 needs one)"
    )
    ocpp_version: str | None = Field(default=None, max_length=8)


class TriggerIn(_Wire):
    message: str = Field(
        max_length=40,
        examples=["SignChargingStationCertificate"],
        description="SignChargingStationCertificate | SignV2GCertificate | SignCombinedCertificate | "
        "SignV2G20Certificate (2.1)",
    )
    evse_id: int | None = Field(default=None, ge=0, le=INT32_MAX)
    ocpp_version: str | None = Field(default=None, max_length=8)


class GetLogIn(_Wire):
    remote_location: str = Field(max_length=2000, examples=["https://logs.example.com/upload"])
    oldest_timestamp: AwareDatetime | None = None
    latest_timestamp: AwareDatetime | None = None
    retries: int | None = Field(default=None, ge=0, le=INT32_MAX)
    retry_interval: int | None = Field(default=None, ge=0, le=INT32_MAX)
    ocpp_version: str | None = Field(default=None, max_length=8)


class PasswordIn(_Wire):
    password: str | None = Field(
        default=None, min_length=16, max_length=40, description="default: a random one (never shown)"
    )
    ocpp_version: str | None = Field(default=None, max_length=8)


class SecurityProfileIn(_Wire):
    profile: int = Field(default=3, ge=3, le=3)
    slot: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="2.x: the configuration slot for the profile-3 network profile"
    )
    url: str | None = Field(
        default=None, max_length=512, pattern="^wss://\\S+$", description="2.x: the profile-3 wss:// address"
    )
    fallback_slot: int | None = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        description="2.x: the slot tried after the new one (the station's current connection); null: none",
    )
    ocpp_interface: str = Field(default="Wired0", max_length=16, description="2.x: ocppInterface of the profile")
    ocpp_version: str | None = Field(default=None, max_length=8)


class RootSyncIn(_Wire):
    mode: str | None = Field(default=None, pattern="^(on|off)$", description="on, off, or null: the default")
    delay_seconds: int | None = Field(default=None, ge=0, le=86400, description="null: the default")


class FirmwareUpdateOut(_Wire):
    request_id: int
    outcome: str = Field(
        examples=["installed"],
        description="queued | sent | accepted | in-progress | installed | refused | failed | error | expired | "
        "superseded",
    )
    reason: str
    call: StationCallOut
    notifications: list[StationNotificationOut]


class FirmwareUpdateList(_Wire):
    updates: list[FirmwareUpdateOut]


class RootSyncOut(_Wire):
    station_id: str
    mode: str | None = Field(description="on, off, or null: the bridge's default (EVPKI_OCPP_ROOT_SYNC)")
    delay_seconds: int | None
