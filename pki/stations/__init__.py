"""The OCPP station lifecycle the domain owns: the registry (identity ↔ serial, passwords), who may
connect (admission), the bridge's TLS server identity, and the deliveries a station must still
accept. Facade services: ``pki.stations`` and ``pki.deliveries``.
"""

from __future__ import annotations

from pki.stations.admission import EVENT_BASIC_AUTH, EVENT_INVALID_CERTIFICATE, EVENT_REFUSED, Admission, Refusal
from pki.stations.deliveries import DeliveryView, RenewalDue
from pki.stations.registry import StationView, parse_identity
from pki.stations.server_identity import SERVER_CERTIFICATE_VALIDITY, ServerCertificate, ServerCertificates
from pki.stations.services import Deliveries, Stations

__all__ = [
    "EVENT_BASIC_AUTH",
    "EVENT_INVALID_CERTIFICATE",
    "EVENT_REFUSED",
    "SERVER_CERTIFICATE_VALIDITY",
    "Admission",
    "Deliveries",
    "DeliveryView",
    "Refusal",
    "RenewalDue",
    "ServerCertificate",
    "ServerCertificates",
    "StationView",
    "Stations",
    "parse_identity",
]
