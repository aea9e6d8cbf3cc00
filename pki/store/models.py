"""The tables. Alembic migrations in ``pki/store/migrations`` create exactly these.

Serials are stored as canonical upper-case hex without leading zeros (OCPP
CertificateHashData style) because 20-octet serials do not fit a BIGINT. Times are aware
UTC; SQLite hands them back naive, so readers pass them through :func:`pki.core.clock.utc`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, DateTime, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

__all__ = [
    "ApiTokenRow",
    "AuditHead",
    "AuditRecord",
    "BridgeLimitRow",
    "CaRequestRow",
    "CertificateAuthorityRow",
    "CertificateRow",
    "ContractRow",
    "CrlRow",
    "EstSecretRow",
    "OcspResponseRow",
    "OpcpClientRow",
    "OpcpDeliveryRow",
    "OpcpEventRow",
    "OpcpFeedCursorRow",
    "OpcpProvisioningCertificateRow",
    "OpcpSigningKeyRow",
    "OpcpWebhookRow",
    "SettingRow",
    "StationNotificationRow",
    "StatusChangeRow",
    "StatusFeedRow",
    "TrustedRootRow",
]


def _when(*, nullable: bool = False, index: bool = False) -> object:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index))


class CertificateAuthorityRow(SQLModel, table=True):
    __tablename__ = "certificate_authority"

    id: str = Field(primary_key=True, max_length=64)
    pki: str = Field(max_length=16)
    standard: str = Field(max_length=16)
    parent_id: str | None = Field(default=None, foreign_key="certificate_authority.id", max_length=64)
    key_id: str = Field(max_length=128)
    key_backend: str = Field(max_length=16)
    issues: str = Field(default="", max_length=256)  # comma-separated profile names
    rsa_pss: bool = False
    serial: str = Field(max_length=40)
    sha256: str = Field(max_length=64)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    not_before: dt.datetime = _when()  # type: ignore[assignment]
    not_after: dt.datetime = _when()  # type: ignore[assignment]
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    crl_number: int = 0
    created_at: dt.datetime = _when()  # type: ignore[assignment]
    # A CA under a parent we do not run: the certificates above it that are not ours, PEM,
    # intermediates first and the (foreign) root last. NULL for our own roots and sub-CAs.
    foreign_chain: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

    @property
    def is_root(self) -> bool:
        """One of our own self-signed roots (a CA under an external parent has no parent row either)."""
        return self.parent_id is None and self.foreign_chain is None


class CaRequestRow(SQLModel, table=True):
    """A CA whose parent is external and that awaits its certificate (``evpki ca request/install``).

    ``csr`` is the PKCS#10 request made at ``init`` (subject, extensions, signed by the CA's key);
    installing the certificate the external CA signed moves the CA to ``certificate_authority``
    and deletes this row, in one transaction.
    """

    __tablename__ = "ca_request"

    id: str = Field(primary_key=True, max_length=64)
    pki: str = Field(max_length=16)
    standard: str = Field(max_length=16)
    key_id: str = Field(max_length=128)
    key_backend: str = Field(max_length=16)
    issues: str = Field(default="", max_length=256)
    rsa_pss: bool = False
    path_length: int | None = None
    csr: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # The CA this one succeeds (a rollover under an external parent): once installed, it takes over
    # the profiles and subtree of that CA, as a rolled-over root's generation does.
    successor_of: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = _when()  # type: ignore[assignment]


class CertificateRow(SQLModel, table=True):
    __tablename__ = "certificate"
    __table_args__ = (
        UniqueConstraint("issuer_id", "serial", name="uq_certificate_issuer_serial"),
        Index("ix_certificate_issuer_status", "issuer_id", "status"),
        Index("ix_certificate_identity", "profile", "identity"),
        Index("ix_certificate_issuer_changed", "issuer_id", "status_changed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    issuer_id: str = Field(foreign_key="certificate_authority.id", max_length=64)
    serial: str = Field(max_length=40, index=True)
    sha256: str = Field(max_length=64, unique=True)
    profile: str = Field(max_length=32)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    identity: str | None = Field(default=None, max_length=255)
    station_serial: str | None = Field(default=None, max_length=255)
    not_before: dt.datetime = _when()  # type: ignore[assignment]
    not_after: dt.datetime = _when(index=True)  # type: ignore[assignment]
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="valid", max_length=16)  # valid | revoked | on-hold
    revoked_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    revocation_reason: str | None = Field(default=None, max_length=32)
    # Every status change (revoke, hold, release) stamps the time, for delta CRLs, and bumps
    # the version, so a pre-signed OCSP response built from an older status is never served.
    status_changed_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    status_version: int = 0
    superseded_by_id: int | None = Field(default=None, foreign_key="certificate.id")
    key_id: str | None = Field(default=None, max_length=128)  # set when evpki holds the key
    label: str | None = Field(default=None, max_length=64, index=True)
    created_at: dt.datetime = _when()  # type: ignore[assignment]


class CrlRow(SQLModel, table=True):
    __tablename__ = "crl"
    __table_args__ = (UniqueConstraint("ca_id", "number", name="uq_crl_ca_number"),)

    id: int | None = Field(default=None, primary_key=True)
    ca_id: str = Field(foreign_key="certificate_authority.id", max_length=64)
    number: int  # RFC 5280 §5.2.3: full and delta CRLs of one CA share the sequence
    kind: str = Field(default="full", max_length=8)  # full | delta
    base_number: int | None = None  # delta CRLs: the full CRL they complete (§5.2.4)
    this_update: dt.datetime = _when()  # type: ignore[assignment]
    next_update: dt.datetime = _when()  # type: ignore[assignment]
    revoked_count: int
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status_seq: int | None = None  # the CA's status_feed.seq it was built from (migration 0014)


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_record"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: dt.datetime = _when()  # type: ignore[assignment]
    actor: str = Field(max_length=128)
    action: str = Field(max_length=32)
    ca_id: str | None = Field(default=None, max_length=64)
    serial: str | None = Field(default=None, max_length=40)
    details: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row: the last sequence number and hash. Appends lock it, which serialises the chain."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = 0
    hash: str = Field(max_length=64)


class SettingRow(SQLModel, table=True):
    __tablename__ = "pki_setting"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


class OcspResponseRow(SQLModel, table=True):
    """A pre-signed OCSP response (RFC 5019) for one certificate and one CertID hash algorithm."""

    __tablename__ = "ocsp_response"

    ca_id: str = Field(primary_key=True, max_length=64)
    serial: str = Field(primary_key=True, max_length=40)
    hash_algorithm: str = Field(primary_key=True, max_length=8)  # sha1 | sha256 | ...
    status_version: int  # the certificate's status_version this response states
    responder_serial: str = Field(max_length=40)  # served only while this responder is current
    this_update: dt.datetime = _when()  # type: ignore[assignment]
    next_update: dt.datetime = _when()  # type: ignore[assignment]
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ApiTokenRow(SQLModel, table=True):
    """An API token: only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = _when()  # type: ignore[assignment]
    created_by: str = Field(max_length=128)
    revoked_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]


class ContractRow(SQLModel, table=True):
    """A mobility operator's contract: which vehicle (PCID) holds which eMAID (ISO 15118-2).

    ``status`` is stored as active | revoked; pending and expired follow from the validity.
    The current contract certificate is named by (issuer, serial), as certificates are.
    """

    __tablename__ = "contract"
    __table_args__ = (Index("ix_contract_pcid_status", "pcid", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    emaid: str = Field(max_length=15, unique=True)  # normalised: no separators, upper case
    pcid: str = Field(max_length=18)
    status: str = Field(default="active", max_length=16)  # active | revoked
    valid_from: dt.datetime = _when()  # type: ignore[assignment]
    valid_until: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    note: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = _when()  # type: ignore[assignment]
    updated_at: dt.datetime = _when()  # type: ignore[assignment]
    revoked_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    revocation_note: str | None = Field(default=None, max_length=200)
    current_certificate_issuer: str | None = Field(default=None, max_length=64)
    current_certificate_serial: str | None = Field(default=None, max_length=40)
    # Among the vehicle's unrevoked contracts, lower first (ISO 15118-20 hands out several; 0008).
    priority: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class StationRow(SQLModel, table=True):
    """A charging station the OCPP bridge knows: its OCPP identity and the serial its certificate names.

    OCPP A00.FR.405/511: the station certificate's CN is the station's serial number, which need
    not be its OCPP identity (the URL path), so the mapping is stored explicitly.
    """

    __tablename__ = "station"

    id: int | None = Field(default=None, primary_key=True)
    identity: str = Field(max_length=48, unique=True)  # OCPP identity (identifierString ≤ 48)
    serial: str = Field(max_length=64)  # CN of its station certificate
    security_profile: int = Field(default=3)  # 2 (TLS + Basic auth) or 3 (mutual TLS)
    password_hash: str | None = Field(default=None, max_length=200)  # profile 2 only; scrypt
    status: str = Field(default="active", max_length=16)  # active | disabled
    ocpp_version: str | None = Field(default=None, max_length=8)  # of the last connection
    last_seen_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    created_at: dt.datetime = _when()  # type: ignore[assignment]
    updated_at: dt.datetime = _when()  # type: ignore[assignment]
    # Root reconciliation after boot for this station: NULL = the bridge's default, "on" or "off";
    # a delay in seconds (NULL = the default) before the inventory is asked for.
    root_sync: str | None = Field(default=None, max_length=8)
    root_sync_delay: int | None = Field(default=None)
    # A05: the profile an accepted upgrade moves the station to once it reconnects on it.
    pending_security_profile: int | None = Field(default=None)


class OcppDeliveryRow(SQLModel, table=True):
    """A call the CSMS must get a station to accept (CertificateSigned, InstallCertificate, ...).

    ``topic`` names what the call is about, so a repeated request finds the call still pending
    instead of making a second one (a station re-sending its CSR with back-off gets the same
    certificate). ``status``: pending | accepted | rejected | failed | superseded.
    """

    __tablename__ = "ocpp_delivery"
    __table_args__ = (
        Index("ix_ocpp_delivery_station_status", "station_identity", "status"),
        Index("ix_ocpp_delivery_status_origin", "status", "origin"),  # the bridges' poll for operator calls
    )

    id: int | None = Field(default=None, primary_key=True)
    station_identity: str = Field(max_length=48)
    action: str = Field(max_length=48)
    topic: str = Field(max_length=200)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the call's JSON payload
    status: str = Field(default="pending", max_length=16)
    certificate_issuer: str | None = Field(default=None, max_length=64)  # what CertificateSigned delivers
    certificate_serial: str | None = Field(default=None, max_length=40)
    attempts: int = Field(default=0)
    created_at: dt.datetime = _when()  # type: ignore[assignment]
    last_sent_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    completed_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # the station's answer
    # Operator-initiated calls (pki.stations.calls): origin "operator" (NULL: the bridge's own), the
    # OCPP version the payload was built for, who asked, and when an unsent call expires.
    origin: str | None = Field(default=None, max_length=16)
    ocpp_version: str | None = Field(default=None, max_length=8)
    requested_by: str | None = Field(default=None, max_length=200)
    expires_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]


class BridgeLimitRow(SQLModel, table=True):
    """A limit every bridge process honours, kept here so that it holds across processes: refused
    connection attempts per remote address and minute (``auth:<address>``), and renewal-trigger
    cool-downs per station (``trigger:<station>:<digest>``)."""

    __tablename__ = "bridge_limit"

    key: str = Field(primary_key=True, max_length=200)
    window_start: dt.datetime = _when()  # type: ignore[assignment]
    count: int = Field(default=0)
    until: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]


class StationNotificationRow(SQLModel, table=True):
    """What a station reported about a call it accepted: FirmwareStatusNotification, 1.6
    SignedFirmwareStatusNotification, LogStatusNotification, and the firmware security events.

    ``request_id`` is the requestId of the UpdateFirmware / GetLog call (the call's id), NULL when
    the station did not send one.
    """

    __tablename__ = "station_notification"
    __table_args__ = (Index("ix_station_notification_station_request", "station_identity", "request_id"),)

    id: int | None = Field(default=None, primary_key=True)
    station_identity: str = Field(max_length=48)
    action: str = Field(max_length=48)
    request_id: int | None = Field(default=None)
    status: str = Field(max_length=50)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    received_at: dt.datetime = _when()  # type: ignore[assignment]


_ACTIVE = text("removed_at IS NULL")


class TrustedRootRow(SQLModel, table=True):
    """A root certificate we did not make but trust for one OCPP root use (the trust store).

    A retired root keeps its row (``removed_at`` set), so the store's history stays readable and
    the bridge can still recognise it on a station. Among the roots not retired, a certificate is
    trusted at most once per use and a label names at most one root (partial unique indexes, on
    SQLite and PostgreSQL alike).
    """

    __tablename__ = "trusted_root"
    __table_args__ = (
        Index(
            "uq_trusted_root_active_use",
            "sha256",
            "use",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        Index("uq_trusted_root_active_label", "label", unique=True, sqlite_where=_ACTIVE, postgresql_where=_ACTIVE),
    )

    id: int | None = Field(default=None, primary_key=True)
    use: str = Field(max_length=32, index=True)  # OCPP InstallCertificateUse
    sha256: str = Field(max_length=64)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    label: str | None = Field(default=None, max_length=64)
    source: str = Field(max_length=16)  # manual | import | rcp | seed
    # The pool (RCP base URL) or setting a synced or seeded root came from; None for manual and import.
    origin: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    not_before: dt.datetime = _when()  # type: ignore[assignment]
    not_after: dt.datetime = _when()  # type: ignore[assignment]
    added_at: dt.datetime = _when()  # type: ignore[assignment]
    added_by: str = Field(max_length=128)
    removed_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    removed_by: str | None = Field(default=None, max_length=128)
    # Why a sync or seed retired it; None when removed by hand (a sync then never trusts it again itself).
    removed_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class StatusFeedRow(SQLModel, table=True):
    """Per CA, how many certificate status changes it has had: the head of its change feed.

    Written only by database triggers (migration 0008) on every change of a certificate's status
    columns, whatever statement made it, so that every process's OCSP answer cache can learn of
    changes committed by any other (:mod:`pki.revocation.status_feed`). The row is locked from the
    change to the commit, so one CA's sequence numbers commit in order.
    """

    __tablename__ = "status_feed"

    ca_id: str = Field(primary_key=True, max_length=64)
    seq: int = 0


class StatusChangeRow(SQLModel, table=True):
    """One certificate status change: the CA, its feed sequence number and the serial that changed."""

    __tablename__ = "status_change"

    ca_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)
    serial: str = Field(max_length=40)
    changed_at: dt.datetime = _when()  # type: ignore[assignment]


class EstSecretRow(SQLModel, table=True):
    """A one-time EST enrollment secret (RFC 7030 §3.2.3 HTTP Basic): only its SHA-256 is stored.

    It lets ``identity`` enroll one certificate of ``profile`` (optionally from ``ca_id``) until
    ``expires_at``. Using it stamps ``used_at`` and names the certificate, in the issuance's own
    transaction; a revoked, used or expired secret authenticates nobody.
    """

    __tablename__ = "est_secret"

    id: int | None = Field(default=None, primary_key=True)
    identity: str = Field(max_length=255, index=True)
    profile: str = Field(max_length=32)
    ca_id: str | None = Field(default=None, max_length=64)
    secret_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = _when()  # type: ignore[assignment]
    created_by: str = Field(max_length=128)
    expires_at: dt.datetime = _when()  # type: ignore[assignment]
    used_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    certificate_issuer: str | None = Field(default=None, max_length=64)
    certificate_serial: str | None = Field(default=None, max_length=40)
    revoked_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    revoked_by: str | None = Field(default=None, max_length=128)


# -- OPCP pool services (pki.opcp) -----------------------------------------------------------------


class OpcpClientRow(SQLModel, table=True):
    """An OAuth2 client of the OPCP services: its role, its scope (WMIs, eMAID provider prefixes), its secret's hash."""

    __tablename__ = "opcp_client"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=24)
    wmis: str = Field(default="", sa_column=Column(Text, nullable=False))  # comma-separated, upper case
    providers: str = Field(default="", sa_column=Column(Text, nullable=False))  # comma-separated, upper case
    secret_hash: str = Field(max_length=64)
    created_at: dt.datetime = _when()  # type: ignore[assignment]
    created_by: str = Field(max_length=128)


class OpcpSigningKeyRow(SQLModel, table=True):
    """A JWT signing key (its private half in the key store); the newest one not retired signs."""

    __tablename__ = "opcp_signing_key"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=64, unique=True)
    key_id: str = Field(max_length=128)
    public_pem: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = _when()  # type: ignore[assignment]
    retired_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]


class OpcpProvisioningCertificateRow(SQLModel, table=True):
    """A vehicle's OEM provisioning certificate and its sub-CAs in the Provisioning Certificate Pool."""

    __tablename__ = "opcp_provisioning_certificate"

    id: int | None = Field(default=None, primary_key=True)
    pcid: str = Field(max_length=18, unique=True)
    wmi: str = Field(max_length=3, index=True)
    leaf_der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sub_ca1_der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sub_ca2_der: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    root_der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    details: str = Field(sa_column=Column(Text, nullable=False))  # JSON: previousPcid, v2gRootAuthorityKeyIdentifiers
    not_after: dt.datetime = _when()  # type: ignore[assignment]
    created_at: dt.datetime = _when()  # type: ignore[assignment]
    updated_at: dt.datetime = _when()  # type: ignore[assignment]
    updated_by: str = Field(max_length=128)


class OpcpSignedContractDataRow(SQLModel, table=True):
    """Signed contract data (a CPS-signed CertificateInstallationRes, EXI) stored in the Contract Certificate Pool."""

    __tablename__ = "opcp_signed_contract_data"

    id: int | None = Field(default=None, primary_key=True)
    emaid: str = Field(max_length=15, unique=True)
    pcid: str = Field(max_length=18, index=True)
    exi: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    root_id: str | None = Field(default=None, max_length=36)
    created_at: dt.datetime = _when()  # type: ignore[assignment]
    updated_at: dt.datetime = _when()  # type: ignore[assignment]
    updated_by: str = Field(max_length=128)


class OpcpWebhookRow(SQLModel, table=True):
    """A webhook subscription of one OPCP client; ``secret`` keys the HMAC of every delivery."""

    __tablename__ = "opcp_webhook"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=36, unique=True)
    client_id: str = Field(max_length=64, index=True)
    url: str = Field(sa_column=Column(Text, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    events: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    metadata_json: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=16)
    api_version: str = Field(max_length=16)
    secret: str = Field(max_length=64)
    created_at: dt.datetime = _when()  # type: ignore[assignment]


class OpcpEventRow(SQLModel, table=True):
    """One OPCP event (root added, provisioning certificate updated, contract created, ...)."""

    __tablename__ = "opcp_event"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=36, unique=True)
    event_type: str = Field(max_length=48)
    dedupe_key: str = Field(max_length=128, unique=True)  # one event per fact (an audit record, an expiry)
    body: str = Field(sa_column=Column(Text, nullable=False))  # the JSON body every subscriber receives
    created_at: dt.datetime = _when()  # type: ignore[assignment]


class OpcpDeliveryRow(SQLModel, table=True):
    """One event for one subscription: pending until delivered or given up, with its last attempt."""

    __tablename__ = "opcp_delivery"
    __table_args__ = (UniqueConstraint("webhook_id", "event_id", name="uq_opcp_delivery_webhook_event"),)

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="opcp_webhook.id", index=True)
    event_id: int = Field(foreign_key="opcp_event.id")
    status: str = Field(max_length=16, index=True)  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: dt.datetime = _when(index=True)  # type: ignore[assignment]
    last_attempt_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delivered_at: dt.datetime | None = _when(nullable=True)  # type: ignore[assignment]


class OpcpFeedCursorRow(SQLModel, table=True):
    """One row: the last audit record turned into OPCP events. Locking it serialises the fan-out."""

    __tablename__ = "opcp_feed_cursor"

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    audit_seq: int = 0
