"""OPCP pool services: what Hubject's Open Plug&Charge Protocol clients (CSMSs, OEM backends, MOs)
call, answered by evpki -- OAuth2 client credentials and ES256 access tokens with the OPCP roles
and scopes (the access table), the Root Certificate Pool over the trust store, the Provisioning
Certificate Pool, and webhooks fed from the audit log. Facade service: ``pki.opcp``.
"""

from __future__ import annotations

from pki.opcp.access import ACCESS, AccessDenied, OpcpRole, Operation, Principal, authorize, parse_role
from pki.opcp.ccp import ContractPool, SignedContractData
from pki.opcp.clients import ClientView
from pki.opcp.cps import ContractDataIn, ProvisioningService, SignedContractDataOut
from pki.opcp.generate import ContractRequestIn, GeneratedContract
from pki.opcp.pcp import NOT_FOUND, ProvisioningCertificateIn, VehicleEntry
from pki.opcp.rcp import ROOT_TYPES, PoolRoot
from pki.opcp.service import Opcp
from pki.opcp.tokens import TokenGrant
from pki.opcp.webhooks import (
    EVENT_TYPES,
    MAX_ATTEMPTS,
    DeliveryJob,
    DeliveryView,
    SubscriptionIn,
    SubscriptionView,
    signature_headers,
)

__all__ = [
    "ACCESS",
    "EVENT_TYPES",
    "MAX_ATTEMPTS",
    "NOT_FOUND",
    "ROOT_TYPES",
    "AccessDenied",
    "ClientView",
    "ContractDataIn",
    "ContractPool",
    "ContractRequestIn",
    "DeliveryJob",
    "DeliveryView",
    "GeneratedContract",
    "Opcp",
    "OpcpRole",
    "Operation",
    "PoolRoot",
    "Principal",
    "ProvisioningCertificateIn",
    "ProvisioningService",
    "SignedContractData",
    "SignedContractDataOut",
    "SubscriptionIn",
    "SubscriptionView",
    "TokenGrant",
    "VehicleEntry",
    "authorize",
    "parse_role",
    "signature_headers",
]
