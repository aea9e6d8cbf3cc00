"""The OCPP station lifecycle the domain owns: the registry (identity ↔ serial, passwords), who may
connect (admission), the bridge's TLS server identity, and the deliveries a station must still
accept, and the calls an operator makes on a station (with what the station reports about them).
Facade services: ``pki.stations``, ``pki.deliveries`` and ``pki.station_calls``.
"""

from __future__ import annotations

from pki.stations.admission import EVENT_BASIC_AUTH, EVENT_INVALID_CERTIFICATE, EVENT_REFUSED, Admission, Refusal
from pki.stations.call_feed import CallFeed
from pki.stations.call_service import StationCalls
from pki.stations.calls import OPERATOR
from pki.stations.csr_issuance import StationDisabled
from pki.stations.deliveries import DeliveryView, RenewalDue
from pki.stations.notifications import FIRMWARE_CALLS, FirmwareUpdateView, NotificationView
from pki.stations.registry import StationView, parse_identity
from pki.stations.server_identity import SERVER_CERTIFICATE_VALIDITY, ServerCertificate, ServerCertificates
from pki.stations.services import Deliveries, Stations

__all__ = [
    "EVENT_BASIC_AUTH",
    "EVENT_INVALID_CERTIFICATE",
    "EVENT_REFUSED",
    "FIRMWARE_CALLS",
    "OPERATOR",
    "SERVER_CERTIFICATE_VALIDITY",
    "Admission",
    "CallFeed",
    "Deliveries",
    "DeliveryView",
    "FirmwareUpdateView",
    "NotificationView",
    "Refusal",
    "RenewalDue",
    "ServerCertificate",
    "ServerCertificates",
    "StationCalls",
    "StationDisabled",
    "StationView",
    "Stations",
    "parse_identity",
]
