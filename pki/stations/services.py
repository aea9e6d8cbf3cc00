"""The station lifecycle's services on the facade: ``pki.stations`` and ``pki.deliveries``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509

from pki.ca.policy import RequestIdentity
from pki.ca.services import Certificates
from pki.core import events
from pki.core.errors import NotFound
from pki.operations import audit
from pki.revocation.reasons import RevocationReason
from pki.revocation.services import Crls, Revocations
from pki.runtime.context import Context
from pki.runtime.views import CertificateView
from pki.stations import admission, csr_issuance, deliveries, limits, notifications, registry
from pki.stations.admission import Admission, Refusal
from pki.stations.deliveries import SECC_CERTIFICATE_TOPIC, STATION_CERTIFICATE_TOPIC, DeliveryView, RenewalDue
from pki.stations.registry import StationView
from pki.stations.server_identity import SERVER_CERTIFICATE_VALIDITY, ServerCertificates
from pki.store.repository import CertificateFilter

__all__ = ["Deliveries", "Stations"]


class Deliveries:
    """``pki.deliveries``: the calls a station still has to accept, kept until it answers."""

    def __init__(self, ctx: Context, crls: Crls) -> None:
        self._ctx = ctx
        self._crls = crls

    def issue_for_station(
        self,
        *,
        station: str,
        profile: str,
        csr: str | bytes,
        topic: str,
        payload_for: Callable[[str], dict[str, Any]],
        identity: RequestIdentity | None = None,
        ca_id: str | None = None,
        actor: str = "ocpp",
    ) -> tuple[DeliveryView, bool]:
        """The CertificateSigned delivery for a station's CSR, and whether it is new (:mod:`pki.stations.csr_issuance`).

        The CSR is checked as any issuance's before a pending delivery is re-offered; when a new
        key replaces a pending certificate, that one is revoked and the CRLs republished.
        """
        delivery, new, changed_ca = csr_issuance.issue_for_station(
            self._ctx,
            station=station,
            profile=profile,
            csr=csr,
            topic=topic,
            payload_for=payload_for,
            identity=identity,
            ca_id=ca_id,
            actor=actor,
        )
        if changed_ca is not None:
            events.emit("revocation", {"reason": RevocationReason.SUPERSEDED.value})
            self._crls.publish(changed_ca)
        return delivery, new

    def create(
        self, *, station: str, action: str, topic: str, payload: dict[str, Any], actor: str = "system"
    ) -> DeliveryView:
        """Store a pending call (InstallCertificate, DeleteCertificate, TriggerMessage, ...)."""
        return deliveries.create_delivery(
            self._ctx, station=station, action=action, topic=topic, payload=payload, actor=actor
        )

    def find_pending(self, station: str, topic: str) -> DeliveryView | None:
        """The station's pending delivery on ``topic``, if any."""
        return deliveries.find_pending(self._ctx, station, topic)

    def last(self, station: str, topic: str, *, status: str = "accepted") -> DeliveryView | None:
        """The newest delivery on ``topic`` that ended with ``status`` (renewal finds the installed SECC one)."""
        return deliveries.last_delivery(self._ctx, station, topic, status)

    def pending(self, station: str) -> list[DeliveryView]:
        """What the station must still accept, oldest first (the order to re-send on reconnect)."""
        return deliveries.pending_deliveries(self._ctx, station)

    def get(self, delivery_id: int) -> DeliveryView:
        return deliveries.delivery(self._ctx, delivery_id)

    def mark_sent(self, delivery_id: int, *, station: str | None = None) -> None:
        """Count a send that got no answer; with ``station``, only that station's delivery (else NotFound)."""
        deliveries.mark_sent(self._ctx, delivery_id, station=station)

    def record_result(
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
            self._crls.publish(changed_ca)
        return view


class Stations:
    """``pki.stations``: the registry of OCPP stations and the lifecycle of their certificates."""

    def __init__(
        self, ctx: Context, certificates: Certificates, revocation: Revocations, deliveries: Deliveries
    ) -> None:
        self._ctx = ctx
        self._certificates = certificates
        self._revocation = revocation
        self._deliveries = deliveries

    def add(
        self,
        *,
        identity: str,
        serial: str,
        security_profile: int = 3,
        password: str | None = None,
        actor: str = "system",
    ) -> StationView:
        """Register a station: its OCPP identity, the serial its certificate CN carries, its security profile."""
        return registry.add_station(
            self._ctx,
            identity=identity,
            serial=serial,
            security_profile=security_profile,
            password=password,
            actor=actor,
        )

    def get(self, identity: str) -> StationView:
        return registry.get_station(self._ctx, identity)

    def list(self, *, limit: int = 1000, offset: int = 0) -> list[StationView]:
        return registry.list_stations(self._ctx, limit=limit, offset=offset)

    def set_password(self, identity: str, password: str, *, actor: str = "system") -> StationView:
        return registry.set_password(self._ctx, identity, password, actor=actor)

    def set_status(self, identity: str, status: str, *, actor: str = "system") -> StationView:
        return registry.set_station_status(self._ctx, identity, status, actor=actor)

    def remove(self, identity: str, *, actor: str = "system") -> None:
        registry.remove_station(self._ctx, identity, actor=actor)

    def check_password(self, identity: str, password: str) -> StationView | None:
        """The station when ``password`` is its Basic-auth password (profile 2, active), else None."""
        return registry.check_password(self._ctx, identity, password)

    def record_connection(self, identity: str, ocpp_version: str) -> None:
        registry.record_connection(self._ctx, identity, ocpp_version)

    def record_security_event(
        self, *, station: str, event_type: str, timestamp: str, tech_info: str | None = None, actor: str = "ocpp"
    ) -> None:
        """A station's SecurityEventNotification, kept in the hash-chained audit log (OCPP A04); the
        firmware events (L01) are also filed under the station's newest firmware update."""
        if event_type in notifications.FIRMWARE_EVENTS:
            payload = {"type": event_type, "timestamp": timestamp[:40], "techInfo": (tech_info or "")[:255]}
            notifications.record_notification(
                self._ctx, station=station, action="SecurityEventNotification", payload=payload, actor=actor
            )
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
            for view in self._certificates.list(CertificateFilter(identity=station, profile="station"))
            if view.identity == station and view.status in ("valid", "expired")
        ]
        station_due = (
            bool(station_certificates)
            and max(view.not_after for view in station_certificates) - now
            <= settings.duration("ocpp_renew_before_station")
            and self._deliveries.find_pending(station, STATION_CERTIFICATE_TOPIC) is None
        )
        secc_due = False
        installed = self._deliveries.last(station, SECC_CERTIFICATE_TOPIC)
        if installed is not None and installed.certificate_serial and installed.certificate_issuer:
            secc = self._certificates.get(installed.certificate_serial, installed.certificate_issuer)
            secc_due = (
                secc.not_after - now <= settings.duration("ocpp_renew_before_secc")
                and secc.status in ("valid", "expired")
                and self._deliveries.find_pending(station, SECC_CERTIFICATE_TOPIC) is None
            )
        return RenewalDue(station=station_due, secc=secc_due)

    def revoke_superseded(self, station: str, connected_with: str, *, actor: str = "ocpp") -> list[CertificateView]:
        """Once a station connects with its current certificate (SHA-256 ``connected_with``), revoke
        the station certificates it superseded (A02.FR.08-10); nothing when it is not ours or not current."""
        try:
            current = self._certificates.get(connected_with)
        except NotFound:
            return []  # not ours (a factory certificate)
        if current.profile != "station" or current.identity != station or current.status != "valid":
            return []
        superseded = self._certificates.list(
            CertificateFilter(identity=station, profile="station", status="superseded")
        )
        return [
            self._revocation.revoke(old.serial, "superseded", ca_id=old.issuer_id, actor=actor)
            for old in superseded
            if old.identity == station and old.serial != current.serial
        ]

    # -- limits every bridge process honours (pki.stations.limits) ---------------------------------------

    def connection_failures(self, address: str) -> int:
        """Refused connection attempts from ``address`` in the current minute, counted by every process."""
        return limits.count_failures(self._ctx, address)

    def add_connection_failure(self, address: str) -> int:
        """Count a refused attempt from ``address``; the count of the current minute."""
        return limits.add_failure(self._ctx, address)

    def claim_trigger(self, station: str, trigger: str, cooldown: float) -> bool:
        """True (and the cool-down started) unless ``trigger`` was sent to ``station`` less than ``cooldown`` s ago."""
        return limits.claim_cooldown(self._ctx, f"trigger:{station}:{trigger}", cooldown)

    # -- who may connect, and as whom the CSMS answers (OCPP A00) ------------------------------------

    def admit_certificate(
        self, identity: str, certificate_der: bytes | None, *, station_issuers: frozenset[str] | None = None
    ) -> Admission | Refusal:
        """Profile 3: may the holder of this TLS-verified client certificate speak as ``identity``?"""
        return admission.admit_certificate(self._ctx, identity, certificate_der, station_issuers=station_issuers)

    def admit_password(self, identity: str, credentials: tuple[str, str] | None) -> Admission | Refusal:
        """Profile 2: do the HTTP Basic ``(user, password)`` name ``identity`` with its password?"""
        return admission.admit_password(self._ctx, identity, credentials)

    def station_issuer_ids(self) -> frozenset[str]:
        """The CA ids whose station certificates admission accepts (every generation of the CSO hierarchy)."""
        return admission.station_issuer_ids(self._ctx)

    def client_ca_certificates(self) -> list[x509.Certificate]:
        """The CA certificates a profile 3 TLS listener trusts for client certificates."""
        return admission.client_ca_certificates(self._ctx)

    def server_certificates(
        self, *, server_name: str, directory: Path, validity: dt.timedelta = SERVER_CERTIFICATE_VALIDITY
    ) -> ServerCertificates:
        """The gateway's TLS server identity for ``server_name``: its certificates and keys, kept in ``directory``."""
        return ServerCertificates(self._ctx, server_name=server_name, directory=directory, validity=validity)
