"""Typed ISO 15118-2 messages of the certificate subset: what the EXI codec reads and writes.

The shapes follow the schema types of ``urn:iso:15118:2:2013:MsgDef`` (V2G_CI_MsgDef.xsd,
V2G_CI_MsgHeader.xsd, V2G_CI_MsgBody.xsd, V2G_CI_MsgDataTypes.xsd) and the xmldsig subset
ISO 15118-2 uses (xmldsig-core-schema.xsd). Only ``V2G_Message`` with the bodies
``CertificateInstallationReq/Res`` and ``CertificateUpdateReq/Res`` is modelled; everything else
is refused by the codec as an unsupported message. Python names are snake_case; the schema
name of each field is in its comment where it is not obvious.

Values are bytes, ints and strs exactly as they travel: DER certificates, raw ECDSA ``r‖s``,
raw digests. Range checks (lengths, counts) belong to the codec, which enforces the schema
facets on both encode and decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "EMAID",
    "MSG_DEF_NAMESPACE",
    "XMLDSIG_NAMESPACE",
    "Body",
    "CertificateChain",
    "CertificateInstallationReq",
    "CertificateInstallationRes",
    "CertificateUpdateReq",
    "CertificateUpdateRes",
    "ContractSignatureEncryptedPrivateKey",
    "DHPublicKey",
    "FaultCode",
    "Header",
    "Notification",
    "Reference",
    "ResponseCode",
    "RootCertificateId",
    "Signature",
    "SignedInfo",
    "V2GMessage",
]

MSG_DEF_NAMESPACE = "urn:iso:15118:2:2013:MsgDef"
XMLDSIG_NAMESPACE = "http://www.w3.org/2000/09/xmldsig#"


class ResponseCode(StrEnum):
    """``responseCodeType`` (V2G_CI_MsgDataTypes.xsd); the declaration order is the EXI enum index."""

    OK = "OK"
    OK_NEW_SESSION_ESTABLISHED = "OK_NewSessionEstablished"
    OK_OLD_SESSION_JOINED = "OK_OldSessionJoined"
    OK_CERTIFICATE_EXPIRES_SOON = "OK_CertificateExpiresSoon"
    FAILED = "FAILED"
    FAILED_SEQUENCE_ERROR = "FAILED_SequenceError"
    FAILED_SERVICE_ID_INVALID = "FAILED_ServiceIDInvalid"
    FAILED_UNKNOWN_SESSION = "FAILED_UnknownSession"
    FAILED_SERVICE_SELECTION_INVALID = "FAILED_ServiceSelectionInvalid"
    FAILED_PAYMENT_SELECTION_INVALID = "FAILED_PaymentSelectionInvalid"
    FAILED_CERTIFICATE_EXPIRED = "FAILED_CertificateExpired"
    FAILED_SIGNATURE_ERROR = "FAILED_SignatureError"
    FAILED_NO_CERTIFICATE_AVAILABLE = "FAILED_NoCertificateAvailable"
    FAILED_CERT_CHAIN_ERROR = "FAILED_CertChainError"
    FAILED_CHALLENGE_INVALID = "FAILED_ChallengeInvalid"
    FAILED_CONTRACT_CANCELED = "FAILED_ContractCanceled"
    FAILED_WRONG_CHARGE_PARAMETER = "FAILED_WrongChargeParameter"
    FAILED_POWER_DELIVERY_NOT_APPLIED = "FAILED_PowerDeliveryNotApplied"
    FAILED_TARIFF_SELECTION_INVALID = "FAILED_TariffSelectionInvalid"
    FAILED_CHARGING_PROFILE_INVALID = "FAILED_ChargingProfileInvalid"
    FAILED_METERING_SIGNATURE_NOT_VALID = "FAILED_MeteringSignatureNotValid"
    FAILED_NO_CHARGE_SERVICE_SELECTED = "FAILED_NoChargeServiceSelected"
    FAILED_WRONG_ENERGY_TRANSFER_MODE = "FAILED_WrongEnergyTransferMode"
    FAILED_CONTACTOR_ERROR = "FAILED_ContactorError"
    FAILED_CERTIFICATE_NOT_ALLOWED_AT_THIS_EVSE = "FAILED_CertificateNotAllowedAtThisEVSE"
    FAILED_CERTIFICATE_REVOKED = "FAILED_CertificateRevoked"

    @property
    def ok(self) -> bool:
        return self.value.startswith("OK")


class FaultCode(StrEnum):
    """``faultCodeType`` (V2G_CI_MsgDataTypes.xsd), in declaration order."""

    PARSING_ERROR = "ParsingError"
    NO_TLS_ROOT_CERTIFICATE_AVAILABLE = "NoTLSRootCertificatAvailable"  # sic, the schema's spelling
    UNKNOWN_ERROR = "UnknownError"


# -- header and xmldsig ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    """``NotificationType``: FaultCode, optional FaultMsg (≤ 64 characters)."""

    fault_code: FaultCode
    fault_msg: str | None = None


@dataclass(frozen=True, slots=True)
class Reference:
    """xmldsig ``ReferenceType``: attributes Id/Type/URI, Transforms (algorithm URIs), DigestMethod, DigestValue."""

    uri: str | None
    digest_method: str
    digest_value: bytes
    transforms: tuple[str, ...] = ()
    id: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class SignedInfo:
    """xmldsig ``SignedInfoType``: CanonicalizationMethod, SignatureMethod, one or more References."""

    canonicalization_method: str
    signature_method: str
    references: tuple[Reference, ...]
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Signature:
    """xmldsig ``SignatureType`` without KeyInfo and Object (ISO 15118-2 uses neither).

    ``signature_value`` is the raw ``r‖s`` of an ECDSA-P256 signature (64 bytes).
    """

    signed_info: SignedInfo
    signature_value: bytes
    id: str | None = None
    signature_value_id: str | None = None  # the Id attribute of SignatureValue


@dataclass(frozen=True, slots=True)
class Header:
    """``MessageHeaderType``: SessionID (hexBinary ≤ 8 bytes), optional Notification and Signature."""

    session_id: bytes
    notification: Notification | None = None
    signature: Signature | None = None


# -- body content types --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertificateChain:
    """``CertificateChainType``: optional Id, Certificate (DER ≤ 800 bytes), SubCertificates (1–4)."""

    certificate: bytes
    sub_certificates: tuple[bytes, ...] = ()
    id: str | None = None


@dataclass(frozen=True, slots=True)
class RootCertificateId:
    """xmldsig ``X509IssuerSerialType`` inside ``ListOfRootCertificateIDs``."""

    issuer_name: str
    serial_number: int


@dataclass(frozen=True, slots=True)
class ContractSignatureEncryptedPrivateKey:
    """``ContractSignatureEncryptedPrivateKeyType``: Id + base64Binary ≤ 48 bytes (IV ‖ ciphertext)."""

    id: str
    value: bytes


@dataclass(frozen=True, slots=True)
class DHPublicKey:
    """``DiffieHellmanPublickeyType`` (element ``DHpublickey``): Id + base64Binary ≤ 65 bytes."""

    id: str
    value: bytes


@dataclass(frozen=True, slots=True)
class EMAID:
    """``EMAIDType`` (the response's ``eMAID``, with Id): a 14–15 character string."""

    id: str
    value: str


# -- the four bodies -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertificateInstallationReq:
    """``CertificateInstallationReqType``: Id, OEMProvisioningCert, ListOfRootCertificateIDs (1–20)."""

    id: str
    oem_provisioning_cert: bytes
    root_certificate_ids: tuple[RootCertificateId, ...]


@dataclass(frozen=True, slots=True)
class CertificateUpdateReq:
    """``CertificateUpdateReqType``: Id, ContractSignatureCertChain, eMAID (plain ``eMAIDType``), root ids."""

    id: str
    contract_signature_cert_chain: CertificateChain
    emaid: str
    root_certificate_ids: tuple[RootCertificateId, ...]


@dataclass(frozen=True, slots=True)
class CertificateInstallationRes:
    """``CertificateInstallationResType``; the CPS signs the four elements that carry an Id."""

    response_code: ResponseCode
    sa_provisioning_certificate_chain: CertificateChain
    contract_signature_cert_chain: CertificateChain
    contract_signature_encrypted_private_key: ContractSignatureEncryptedPrivateKey
    dh_public_key: DHPublicKey
    emaid: EMAID


@dataclass(frozen=True, slots=True)
class CertificateUpdateRes:
    """``CertificateUpdateResType``: the installation response's elements plus optional RetryCounter (xs:short)."""

    response_code: ResponseCode
    sa_provisioning_certificate_chain: CertificateChain
    contract_signature_cert_chain: CertificateChain
    contract_signature_encrypted_private_key: ContractSignatureEncryptedPrivateKey
    dh_public_key: DHPublicKey
    emaid: EMAID
    retry_counter: int | None = None


Body = CertificateInstallationReq | CertificateInstallationRes | CertificateUpdateReq | CertificateUpdateRes


@dataclass(frozen=True, slots=True)
class V2GMessage:
    """``V2G_Message``: Header and Body (exactly one body element)."""

    header: Header
    body: Body
