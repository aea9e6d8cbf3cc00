"""The ``PKI`` facade: the one object every edge (CLI, REST, OCPP) talks to.

It wires settings, database, key store and clock together and exposes intention-named
operations; the rules themselves live in the modules it calls.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import func, select, text

from pki.ca import rollover
from pki.ca.bootstrap import init_hierarchy, stored_organization
from pki.ca.hierarchy import load_hierarchy
from pki.ca.issuance import IssueRequest, issue
from pki.ca.policy import RequestIdentity
from pki.core import events
from pki.core.clock import Clock, SystemClock, utc
from pki.core.errors import EvpkiError, NotFound, Unavailable
from pki.core.settings import Settings
from pki.firmware.signing import FirmwareSignature, FirmwareVerification, OcppVersion, sign_firmware, verify_firmware
from pki.iso15118 import contracts
from pki.iso15118.contracts import ContractRevocation, ContractView
from pki.iso15118.provisioning import ProvisioningResult, provision
from pki.keys import open_key_store
from pki.keys.base import KeyStore
from pki.operations import audit, tokens
from pki.operations.audit import AuditEntry, AuditVerification
from pki.operations.tokens import TokenView
from pki.revocation import crl_publishing as crls
from pki.revocation.ocsp_responder import OcspAnswer, OcspResponder
from pki.revocation.reasons import RevocationReason, apply_revocation, parse_reason, release_hold, status_change_time
from pki.runtime.context import ORGANIZATION_SETTING, Context
from pki.runtime.views import CaView, CertificateView, CrlView, InitReport, IssuedCertificate
from pki.stations import deliveries
from pki.stations import registry as stations
from pki.stations.deliveries import SECC_CERTIFICATE_TOPIC, STATION_CERTIFICATE_TOPIC, DeliveryView, RenewalDue
from pki.stations.registry import StationView
from pki.stations.root_uses import ROOT_USE_PKI, RootUse, parse_root_use
from pki.store import repository
from pki.store.db import Database
from pki.store.models import CertificateAuthorityRow, CertificateRow
from pki.store.repository import CertificateFilter

__all__ = ["PKI"]


class PKI:
    def __init__(self, *, database: Database, keys: KeyStore, settings: Settings, clock: Clock | None = None) -> None:
        self._ctx = Context(database=database, keys=keys, settings=settings, clock=clock or SystemClock())
        self._ocsp_responder: OcspResponder | None = None

    @classmethod
    def open(cls, settings: Settings | None = None, *, clock: Clock | None = None, migrate: bool = True) -> PKI:
        """Open the configured database (migrating it to the newest schema) and key store."""
        settings = settings or Settings()
        database = Database(settings.resolved_database_url)
        if migrate:
            database.migrate()
        return cls(database=database, keys=open_key_store(settings), settings=settings, clock=clock)

    def close(self) -> None:
        self._ctx.database.dispose()

    @property
    def clock(self) -> Clock:
        return self._ctx.clock

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    # -- hierarchy ---------------------------------------------------------------------------

    def init(self, *, config: Path | None = None, organization: str | None = None, actor: str = "system") -> InitReport:
        """Build the hierarchy of ``config`` (the packaged default when None); keeps what exists."""
        spec = load_hierarchy(config, organization or stored_organization(self._ctx))
        return init_hierarchy(self._ctx, spec, actor)

    def organization(self) -> str | None:
        with self._ctx.database.read() as session:
            return repository.get_setting(session, ORGANIZATION_SETTING)

    def list_cas(self) -> list[CaView]:
        with self._ctx.database.read() as session:
            return [CaView.from_row(row) for row in repository.list_cas(session)]

    def get_ca(self, ca_id: str) -> CaView:
        with self._ctx.database.read() as session:
            return CaView.from_row(repository.get_ca(session, ca_id))

    def roots(self, use: str | RootUse) -> list[x509.Certificate]:
        """The root certificates stations install for an OCPP ``InstallCertificateUse``, newest first.

        Roots that are expired or revoked are left out: a station must not be told to trust them.
        """
        parsed = use if isinstance(use, RootUse) else parse_root_use(use)
        now = self._ctx.clock.now()
        with self._ctx.database.read() as session:
            roots = [
                row
                for row in repository.list_cas(session)
                if row.parent_id is None and row.pki == ROOT_USE_PKI[parsed] and utc(row.not_after) > now
            ]
            usable = []
            for row in sorted(roots, key=lambda r: (utc(r.created_at), r.id), reverse=True):
                status = repository.find_certificate(session, row.serial, row.id).status
                if status == "valid":
                    usable.append(self._ctx.ca_certificate(row))
        if not usable:
            raise NotFound(f"no usable {parsed.value} in this PKI")
        return usable

    def ca_chain(self, ca_id: str) -> list[x509.Certificate]:
        """The CA's certificate followed by its ancestors', root last."""
        with self._ctx.database.read() as session:
            return self._ctx.chain(session, ca_id)

    # -- issuance ----------------------------------------------------------------------------

    def issue(
        self,
        *,
        profile: str,
        csr: bytes | str,
        identity: RequestIdentity,
        ca_id: str | None = None,
        validity: dt.timedelta | None = None,
        actor: str = "system",
    ) -> IssuedCertificate:
        return issue(self._ctx, IssueRequest(profile, csr, identity, ca_id, validity), actor)

    def renew(
        self,
        *,
        csr: bytes | str,
        identity: RequestIdentity,
        profile: str = "station",
        ca_id: str | None = None,
        validity: dt.timedelta | None = None,
        actor: str = "system",
    ) -> IssuedCertificate:
        return issue(self._ctx, IssueRequest(profile, csr, identity, ca_id, validity, renew=True), actor)

    # -- lookup ------------------------------------------------------------------------------

    def certificate(self, key: str, ca_id: str | None = None) -> CertificateView:
        """By serial (hex, as ``openssl x509 -serial`` prints it) or SHA-256 fingerprint."""
        with self._ctx.database.read() as session:
            row = repository.find_certificate(session, key, ca_id)
            return self._view(session, row)

    def certificates(self, flt: CertificateFilter) -> list[CertificateView]:
        with self._ctx.database.read() as session:
            now = self._ctx.clock.now()
            return [self._view(session, row) for row in repository.list_certificates(session, flt, now)]

    def _view(self, session: object, row: CertificateRow) -> CertificateView:
        successor = None
        if row.superseded_by_id is not None:
            successor = session.get(CertificateRow, row.superseded_by_id).serial  # type: ignore[attr-defined]
        return CertificateView.from_row(row, self._ctx.clock.now(), successor)

    # -- revocation --------------------------------------------------------------------------

    def revoke(
        self,
        key: str,
        reason: str | RevocationReason,
        *,
        ca_id: str | None = None,
        actor: str = "system",
        publish_crls: bool = True,
    ) -> CertificateView:
        parsed = reason if isinstance(reason, RevocationReason) else parse_reason(reason)
        with self._ctx.database.write() as session:
            row = repository.find_certificate(session, key, ca_id)
            now = status_change_time(session, row.issuer_id, self._ctx.clock)
            apply_revocation(row, parsed, now)
            audit.append(
                session,
                at=now,
                actor=actor,
                action="revoke",
                ca_id=row.issuer_id,
                serial=row.serial,
                details={"reason": parsed.value, "sha256": row.sha256},
            )
            session.flush()
            view = self._view(session, row)
        events.emit("revocation", {"reason": parsed.value})
        if publish_crls:
            self.publish_crls(view.issuer_id)
        return view

    def release_hold(
        self, key: str, *, ca_id: str | None = None, actor: str = "system", publish_crls: bool = True
    ) -> CertificateView:
        with self._ctx.database.write() as session:
            row = repository.find_certificate(session, key, ca_id)
            now = status_change_time(session, row.issuer_id, self._ctx.clock)
            release_hold(row, now)
            audit.append(
                session,
                at=now,
                actor=actor,
                action="release-hold",
                ca_id=row.issuer_id,
                serial=row.serial,
                details={"sha256": row.sha256},
            )
            session.flush()
            view = self._view(session, row)
        if publish_crls:
            self.publish_crls(view.issuer_id)
        return view

    def publish_crls(self, ca_id: str) -> None:
        """Republish the CA's CRLs after a committed status change; failing here fails nothing.

        The change is already committed, and :meth:`current_crl` regenerates stale CRLs later.
        """
        try:
            crls.publish_after_change(self._ctx, ca_id)
        except EvpkiError as error:
            logging.getLogger("evpki.crl").warning("CRLs of %s not republished: %s", ca_id, error.message)

    def generate_crl(
        self,
        ca_id: str,
        *,
        next_update: dt.timedelta | None = None,
        actor: str = "system",
        delta: bool = False,
    ) -> CrlView:
        """Build, sign and store the next full CRL of ``ca_id`` (a delta CRL with ``delta``)."""
        return crls.generate(self._ctx, ca_id, kind="delta" if delta else "full", next_update=next_update, actor=actor)

    def latest_crl(self, ca_id: str) -> CrlView:
        """The newest stored full CRL, current or not; :class:`NotFound` before the first."""
        return crls.latest(self._ctx, ca_id)

    def current_crl(self, ca_id: str, *, delta: bool = False) -> CrlView:
        """The CA's current full (or delta) CRL, regenerated first when the stored one is stale."""
        return crls.current(self._ctx, ca_id, kind="delta" if delta else "full")

    # -- audit -------------------------------------------------------------------------------

    def verify_audit(self) -> AuditVerification:
        with self._ctx.database.read() as session:
            return audit.verify(session)

    def audit_records(
        self, *, after: int = 0, limit: int = 100, action: str | None = None, ca_id: str | None = None
    ) -> list[AuditEntry]:
        with self._ctx.database.read() as session:
            return audit.read_records(session, after=after, limit=limit, action=action, ca_id=ca_id)

    def audit_count(self) -> int:
        from pki.store.models import AuditHead

        with self._ctx.database.read() as session:
            head = session.execute(select(AuditHead)).scalar_one_or_none()
            return head.seq if head else 0

    # -- operations --------------------------------------------------------------------------

    def check_ready(self) -> None:
        """Raise :class:`Unavailable` unless the database answers and the key store holds a CA key.

        The database gets a trivial query; the key store is asked whether one CA's key exists
        (a file, or an object on the PKCS#11 token), which needs neither passphrase nor PIN use.
        """
        with self._ctx.database.read() as session:
            session.execute(text("SELECT 1"))
            key_id = session.execute(select(CertificateAuthorityRow.key_id).limit(1)).scalar_one_or_none()
        if key_id is None:
            raise Unavailable("no CA in this PKI yet: run 'evpki init'")
        try:
            present = self._ctx.keys.exists(key_id)
        except EvpkiError:
            raise
        except Exception as exc:  # a backend that cannot be reached (token gone, directory unreadable)
            raise Unavailable(f"key store unavailable: {type(exc).__name__}") from None
        if not present:
            raise Unavailable(f"key store unavailable: CA key {key_id!r} not found")

    def expiring_counts(self, within: dt.timedelta) -> dict[str, int]:
        """Per issuing CA, how many valid certificates expire within ``within`` from now (one grouped query)."""
        now = self._ctx.clock.now()
        statement = (
            select(CertificateRow.issuer_id, func.count())
            .where(CertificateRow.status == "valid")  # type: ignore[arg-type]
            .where(CertificateRow.not_after > now)  # type: ignore[arg-type]
            .where(CertificateRow.not_after <= now + within)  # type: ignore[arg-type]
            .group_by(CertificateRow.issuer_id)
        )
        with self._ctx.database.read() as session:
            return {issuer: int(count) for issuer, count in session.execute(statement)}

    # -- OCSP --------------------------------------------------------------------------------

    @property
    def _ocsp(self) -> OcspResponder:
        if self._ocsp_responder is None:
            self._ocsp_responder = OcspResponder(self._ctx)
        return self._ocsp_responder

    def ocsp_respond(self, request_der: bytes) -> OcspAnswer:
        """Answer one DER OCSPRequest (RFC 6960); bad input gives an error *response*, never an exception."""
        started = time.perf_counter()
        answer = self._ocsp.respond(request_der)
        events.emit(
            "ocsp",
            {"status": _ocsp_status_label(answer), "cache": "hit" if answer.from_store else "miss"},
            time.perf_counter() - started,
        )
        return answer

    def ocsp_presign(self, ca_id: str | None = None) -> dict[str, int]:
        """Pre-sign responses for every unexpired certificate lacking a current one; per CA, how many."""
        ca_ids = [ca_id] if ca_id is not None else [ca.id for ca in self.list_cas()]
        return {ca: self._ocsp.presign(ca) for ca in ca_ids}

    def ocsp_responder(self, ca_id: str) -> CertificateView:
        """The CA's current delegated responder certificate, issued or rotated when needed."""
        responder = self._ocsp.responders.get(ca_id)
        return self.certificate(responder.serial, ca_id)

    def rotate_ocsp_responder(self, ca_id: str, *, actor: str = "system") -> CertificateView:
        responder = self._ocsp.responders.rotate(ca_id, actor=actor)
        return self.certificate(responder.serial, ca_id)

    # -- API tokens --------------------------------------------------------------------------

    def create_token(self, *, name: str, role: str, actor: str = "system") -> tuple[TokenView, str]:
        """A new API token; the secret is returned once and only its hash is stored."""
        return tokens.create_token(self._ctx, name=name, role=role, actor=actor)

    def list_tokens(self) -> list[TokenView]:
        return tokens.list_tokens(self._ctx)

    def revoke_token(self, name: str, *, actor: str = "system") -> TokenView:
        return tokens.revoke_token(self._ctx, name, actor=actor)

    def authenticate(self, token: str) -> TokenView:
        return tokens.authenticate(self._ctx, token)

    # -- firmware ----------------------------------------------------------------------------

    def sign_firmware(
        self,
        chunks: Iterable[bytes],
        *,
        location: str | None = None,
        retrieve_at: dt.datetime | None = None,
        actor: str = "system",
        signer_ca: str | None = None,
        payloads: Iterable[OcppVersion] = (),
        request_id: int | None = None,
    ) -> FirmwareSignature:
        """Sign a firmware file, streamed as byte chunks, with the newest valid firmware-signer key (OCPP L01);
        ``signer_ca`` picks the signer of one manufacturer root generation (after ``rollover_root``).
        ``payloads`` and ``request_id``: the OCPP payloads the caller builds next, checked before signing."""
        return sign_firmware(
            self._ctx,
            chunks,
            location=location,
            retrieve_at=retrieve_at,
            max_bytes=self._ctx.settings.firmware_max_bytes,
            actor=actor,
            signer_ca=signer_ca,
            payloads=payloads,
            request_id=request_id,
        )

    def verify_firmware(
        self, chunks: Iterable[bytes], *, signature: str, certificate: str | bytes
    ) -> FirmwareVerification:
        """Check a firmware file against its Base64 signature and PEM signing certificate (OCPP A00.FR.707)."""
        return verify_firmware(
            self._ctx,
            chunks,
            signature_b64=signature,
            certificate_pem=certificate,
            max_bytes=self._ctx.settings.firmware_max_bytes,
        )

    # -- contracts ---------------------------------------------------------------------------

    def add_contract(
        self,
        *,
        emaid: str,
        pcid: str,
        valid_from: dt.datetime | None = None,
        valid_until: dt.datetime | None = None,
        validity: dt.timedelta | None = None,
        note: str | None = None,
        actor: str = "system",
    ) -> ContractView:
        """Record that vehicle ``pcid`` holds contract ``emaid`` (ISO 15118); one contract per PCID at a time."""
        return contracts.add_contract(
            self._ctx,
            emaid=emaid,
            pcid=pcid,
            valid_from=valid_from,
            valid_until=valid_until,
            validity=validity,
            note=note,
            actor=actor,
        )

    def contracts(
        self, *, pcid: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ContractView]:
        return contracts.list_contracts(self._ctx, pcid=pcid, status=status, limit=limit, offset=offset)

    def contract(self, emaid: str) -> ContractView:
        """By eMAID, with or without separators."""
        return contracts.get_contract(self._ctx, emaid)

    def revoke_contract(
        self, emaid: str, *, note: str | None = None, actor: str = "system", publish_crls: bool = True
    ) -> ContractRevocation:
        """Revoke the contract and its usable contract certificates (cessationOfOperation), then the CRLs."""
        result = contracts.revoke_contract(self._ctx, emaid, note=note, actor=actor)
        if publish_crls:
            for ca_id in sorted({ref.issuer_id for ref in result.revoked_certificates}):
                self.publish_crls(ca_id)
        return result

    # -- ISO 15118 contract provisioning -------------------------------------------------------

    def provision_contract(
        self,
        *,
        iso15118_schema_version: str,
        action: str,
        exi_request: str,
        ocpp_version: str = "2.0.1",
        max_response_chars: int | None = None,
        actor: str = "csms",
    ) -> ProvisioningResult:
        """Answer an OCPP Get15118EVCertificate request (see :mod:`pki.iso15118.provisioning`).

        Never raises for the request's content: every outcome is an OCPP status (Accepted with an
        EXI response, possibly carrying a FAILED_* ResponseCode, or Failed with a reason).
        """
        return provision(
            self._ctx,
            iso15118_schema_version=iso15118_schema_version,
            action=action,
            exi_request=exi_request,
            ocpp_version=ocpp_version,
            max_response_chars=max_response_chars,
            actor=actor,
        )

    # -- OCPP stations and deliveries ----------------------------------------------------------

    def add_station(
        self,
        *,
        identity: str,
        serial: str,
        security_profile: int = 3,
        password: str | None = None,
        actor: str = "system",
    ) -> StationView:
        """Register a station: its OCPP identity, the serial its certificate CN carries, its security profile."""
        return stations.add_station(
            self._ctx,
            identity=identity,
            serial=serial,
            security_profile=security_profile,
            password=password,
            actor=actor,
        )

    def station(self, identity: str) -> StationView:
        return stations.get_station(self._ctx, identity)

    def stations(self, *, limit: int = 1000, offset: int = 0) -> list[StationView]:
        return stations.list_stations(self._ctx, limit=limit, offset=offset)

    def set_station_password(self, identity: str, password: str, *, actor: str = "system") -> StationView:
        return stations.set_password(self._ctx, identity, password, actor=actor)

    def set_station_status(self, identity: str, status: str, *, actor: str = "system") -> StationView:
        return stations.set_station_status(self._ctx, identity, status, actor=actor)

    def remove_station(self, identity: str, *, actor: str = "system") -> None:
        stations.remove_station(self._ctx, identity, actor=actor)

    def check_station_password(self, identity: str, password: str) -> StationView | None:
        """The station when ``password`` is its Basic-auth password (profile 2, active), else None."""
        return stations.check_password(self._ctx, identity, password)

    def record_station_connection(self, identity: str, ocpp_version: str) -> None:
        stations.record_connection(self._ctx, identity, ocpp_version)

    def issue_for_station(
        self,
        *,
        station: str,
        profile: str,
        csr: str | bytes,
        topic: str,
        payload_for: Callable[[str], dict[str, Any]],
        identity: RequestIdentity | None = None,
        actor: str = "ocpp",
    ) -> tuple[DeliveryView, bool]:
        """The CertificateSigned delivery for a station's CSR, and whether it is new (:mod:`pki.stations.deliveries`).

        The CSR is checked as any issuance's before a pending delivery is re-offered; when a new
        key replaces a pending certificate, that one is revoked and the CRLs republished.
        """
        delivery, new, changed_ca = deliveries.issue_for_station(
            self._ctx,
            station=station,
            profile=profile,
            csr=csr,
            topic=topic,
            payload_for=payload_for,
            identity=identity,
            actor=actor,
        )
        if changed_ca is not None:
            events.emit("revocation", {"reason": RevocationReason.SUPERSEDED.value})
            self.publish_crls(changed_ca)
        return delivery, new

    def create_delivery(
        self, *, station: str, action: str, topic: str, payload: dict[str, Any], actor: str = "system"
    ) -> DeliveryView:
        return deliveries.create_delivery(
            self._ctx, station=station, action=action, topic=topic, payload=payload, actor=actor
        )

    def pending_delivery(self, station: str, topic: str) -> DeliveryView | None:
        return deliveries.find_pending(self._ctx, station, topic)

    def last_delivery(self, station: str, topic: str, *, status: str = "accepted") -> DeliveryView | None:
        """The newest delivery on ``topic`` that ended with ``status`` (renewal finds the installed SECC one)."""
        return deliveries.last_delivery(self._ctx, station, topic, status)

    def pending_deliveries(self, station: str) -> list[DeliveryView]:
        return deliveries.pending_deliveries(self._ctx, station)

    def delivery(self, delivery_id: int) -> DeliveryView:
        return deliveries.delivery(self._ctx, delivery_id)

    def mark_delivery_sent(self, delivery_id: int, *, station: str | None = None) -> None:
        """Count a send that got no answer; with ``station``, only that station's delivery (else NotFound)."""
        deliveries.mark_sent(self._ctx, delivery_id, station=station)

    def record_delivery_result(
        self,
        delivery_id: int,
        response: dict[str, Any],
        *,
        station: str | None = None,
        actor: str = "ocpp",
        sent: bool = False,
    ) -> DeliveryView:
        """Close a delivery with the station's answer; a rejected certificate is revoked and the CRLs republished.

        With ``station``, only that station's delivery may be closed (another's is NotFound).
        """
        view, changed_ca = deliveries.record_result(
            self._ctx, delivery_id, response, station=station, actor=actor, sent=sent
        )
        if changed_ca is not None:
            self.publish_crls(changed_ca)
        return view

    def record_security_event(
        self, *, station: str, event_type: str, timestamp: str, tech_info: str | None = None, actor: str = "ocpp"
    ) -> None:
        """A station's SecurityEventNotification, kept in the hash-chained audit log (OCPP A04)."""
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            audit.append(
                session,
                at=now,
                actor=actor,
                action="security-event",
                details={
                    "station": station,
                    "type": event_type[:50],
                    "timestamp": timestamp[:40],
                    "tech_info": (tech_info or "")[:255] or None,
                },
            )

    # -- root rollover -------------------------------------------------------------------------

    def rollover_root(self, ca_id: str, *, validity: dt.timedelta | None = None, actor: str = "system") -> str:
        """A new generation of root ``ca_id`` and its subtree, linked by a certificate the old root signs."""
        return rollover.rollover_root(self._ctx, ca_id, validity=validity, actor=actor)

    def root_link(self, root_id: str) -> x509.Certificate | None:
        """The link certificate of root ``root_id`` (its name and key, signed by the previous root), if any."""
        with self._ctx.database.read() as session:
            row = repository.managed_leaf(session, f"{rollover.LINK_LABEL_PREFIX}{root_id}")
            return x509.load_der_x509_certificate(row.der) if row is not None else None

    # -- station certificate lifecycle (OCPP A02/A03) --------------------------------------------

    def renewal_due(self, station: str) -> RenewalDue:
        """Whether the station's certificate and its SECC (V2G) certificate are due for renewal.

        Due when the newest one expires within ``ocpp_renew_before_station`` / ``_secc`` and no
        CertificateSigned is already pending for it. The SECC certificate is the one the station last
        accepted (it is named by its SECC id, not the station).
        """
        now = self._ctx.clock.now()
        settings = self._ctx.settings
        station_certificates = [
            view
            for view in self.certificates(CertificateFilter(identity=station, profile="station"))
            if view.identity == station and view.status in ("valid", "expired")
        ]
        station_due = (
            bool(station_certificates)
            and max(view.not_after for view in station_certificates) - now
            <= settings.duration("ocpp_renew_before_station")
            and self.pending_delivery(station, STATION_CERTIFICATE_TOPIC) is None
        )
        secc_due = False
        installed = self.last_delivery(station, SECC_CERTIFICATE_TOPIC)
        if installed is not None and installed.certificate_serial and installed.certificate_issuer:
            secc = self.certificate(installed.certificate_serial, installed.certificate_issuer)
            secc_due = (
                secc.not_after - now <= settings.duration("ocpp_renew_before_secc")
                and secc.status in ("valid", "expired")
                and self.pending_delivery(station, SECC_CERTIFICATE_TOPIC) is None
            )
        return RenewalDue(station=station_due, secc=secc_due)

    def revoke_superseded(self, station: str, connected_with: str, *, actor: str = "ocpp") -> list[CertificateView]:
        """Once a station connects with its current certificate (SHA-256 ``connected_with``), revoke
        the station certificates it superseded (A02.FR.08-10); nothing when it is not ours or not current."""
        try:
            current = self.certificate(connected_with)
        except NotFound:
            return []  # not ours (a factory certificate)
        if current.profile != "station" or current.identity != station or current.status != "valid":
            return []
        superseded = self.certificates(CertificateFilter(identity=station, profile="station", status="superseded"))
        return [
            self.revoke(old.serial, "superseded", ca_id=old.issuer_id, actor=actor)
            for old in superseded
            if old.identity == station and old.serial != current.serial
        ]


def _ocsp_status_label(answer: OcspAnswer) -> str:
    """good | revoked | unknown (the first CertID's status) or the OCSP error status, for metrics."""
    if answer.status == "successful":
        return answer.cert_statuses[0] if answer.cert_statuses else "unknown"
    return {"malformedRequest": "malformed"}.get(answer.status, answer.status)
