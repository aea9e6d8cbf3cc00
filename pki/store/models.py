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
    "OcspResponseRow",
    "SettingRow",
    "StationNotificationRow",
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
