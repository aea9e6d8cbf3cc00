"""ISO 15118-2 Plug & Charge: the EXI codec (``exi/``), messages, signatures, contract-key encryption,
the contract registry and the contract provisioning service behind OCPP Get15118EVCertificate.
Facade service: ``pki.contracts``; ``ev`` / ``ev20`` play the -2 / -20 car (test vehicles, signed requests); ``exi20``
is the ISO 15118-20 EXI codec of the certificate installation (messages in ``messages20``).
"""

from __future__ import annotations

from pki.iso15118 import ev, ev20, exi20, messages20
from pki.iso15118.authorization import (
    AuthorizationDecision,
    CertificateStatus,
    ForeignQuery,
    ForeignResult,
    HashEntry,
    IdTokenStatus,
    OcspAnswer,
)
from pki.iso15118.chains import readable_certificate
from pki.iso15118.contract_input import MAX_NOTE_CHARS
from pki.iso15118.contract_registry import MAX_LIMIT
from pki.iso15118.contract_views import CONTRACT_STATUSES, ContractRevocation, ContractView
from pki.iso15118.exi import Fragment, decode_fragment, decode_message, decode_signed_info
from pki.iso15118.exi.elements import SchemaElement, element_tree, to_xml
from pki.iso15118.messages import MSG_DEF_NAMESPACE, ResponseCode, SignedInfo, V2GMessage
from pki.iso15118.provisioning_request import EXI_RESPONSE_LIMITS
from pki.iso15118.provisioning_result import ProvisioningResult
from pki.iso15118.service import Contracts

__all__ = [
    "CONTRACT_STATUSES",
    "EXI_RESPONSE_LIMITS",
    "MAX_LIMIT",
    "MAX_NOTE_CHARS",
    "MSG_DEF_NAMESPACE",
    "AuthorizationDecision",
    "CertificateStatus",
    "ContractRevocation",
    "ContractView",
    "Contracts",
    "ForeignQuery",
    "ForeignResult",
    "Fragment",
    "HashEntry",
    "IdTokenStatus",
    "OcspAnswer",
    "ProvisioningResult",
    "ResponseCode",
    "SchemaElement",
    "SignedInfo",
    "V2GMessage",
    "decode_fragment",
    "decode_message",
    "decode_signed_info",
    "element_tree",
    "ev",
    "ev20",
    "exi20",
    "messages20",
    "readable_certificate",
    "to_xml",
]
