"""Typed ISO 15118-20 CommonMessages of the certificate installation: what the -20 EXI codec reads and writes.

The shapes follow the schema types of ``urn:iso:std:iso:15118:-20:CommonMessages``
(V2G_CI_CommonMessages.xsd) and ``urn:iso:std:iso:15118:-20:CommonTypes`` (V2G_CI_CommonTypes.xsd).
Unlike ISO 15118-2 there is no ``V2G_Message`` wrapper: the message element (here
``CertificateInstallationReq`` or ``CertificateInstallationRes``) is the document root and carries
its own ``Header``. The xmldsig classes (:class:`Signature`, :class:`SignedInfo`, :class:`Reference`,
:class:`RootCertificateId` for ``X509IssuerSerialType``) are the -2 ones: both parts use the same
xmldsig schema.

Values are bytes, ints and strs exactly as they travel (DER certificates, raw signatures and
digests). Lengths, bounds and counts are schema facets the codec enforces on encode and decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pki.iso15118.messages import Reference, RootCertificateId, Signature, SignedInfo

__all__ = [
    "C14N_EXI",
    "COMMON_MESSAGES_NAMESPACE",
    "COMMON_TYPES_NAMESPACE",
    "ECDSA_SHA512",
    "EDDSA_ED448",
    "SHA512",
    "SHAKE256",
    "CertificateChain",
    "CertificateInstallationReq",
    "CertificateInstallationRes",
    "ContractCertificateChain",
    "ECDHCurve",
    "EncryptedKeyType",
    "EncryptedPrivateKey",
    "MessageHeader",
    "Processing",
    "Reference",
    "ResponseCode",
    "RootCertificateId",
    "Signature",
    "SignedCertificateChain",
    "SignedInfo",
    "SignedInstallationData",
]

COMMON_MESSAGES_NAMESPACE = "urn:iso:std:iso:15118:-20:CommonMessages"
COMMON_TYPES_NAMESPACE = "urn:iso:std:iso:15118:-20:CommonTypes"

# xmldsig algorithm identifiers of -20 signatures. The codec carries any URI; these are the ones
# -20 peers write: EXI canonicalization, SHA-512 digests with ECDSA P-521 (RFC 6931), Ed448 (RFC 9231;
# SHAKE256 is the digest RFC 9231 pairs with it — reference iso15118.md §2.5–2.6, unverified).
C14N_EXI = "http://www.w3.org/TR/canonical-exi/"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
EDDSA_ED448 = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed448"
SHAKE256 = "http://www.w3.org/2021/04/xmldsig-more#shake256"


class ResponseCode(StrEnum):
    """``responseCodeType`` (V2G_CI_CommonTypes.xsd); the declaration order is the EXI enum index."""

    OK = "OK"
    OK_CERTIFICATE_EXPIRES_SOON = "OK_CertificateExpiresSoon"
    OK_NEW_SESSION_ESTABLISHED = "OK_NewSessionEstablished"
    OK_OLD_SESSION_JOINED = "OK_OldSessionJoined"
    OK_POWER_TOLERANCE_CONFIRMED = "OK_PowerToleranceConfirmed"
    WARNING_AUTHORIZATION_SELECTION_INVALID = "WARNING_AuthorizationSelectionInvalid"
    WARNING_CERTIFICATE_EXPIRED = "WARNING_CertificateExpired"
    WARNING_CERTIFICATE_NOT_YET_VALID = "WARNING_CertificateNotYetValid"
    WARNING_CERTIFICATE_REVOKED = "WARNING_CertificateRevoked"
    WARNING_CERTIFICATE_VALIDATION_ERROR = "WARNING_CertificateValidationError"
    WARNING_CHALLENGE_INVALID = "WARNING_ChallengeInvalid"
    WARNING_EIM_AUTHORIZATION_FAILURE = "WARNING_EIMAuthorizationFailure"
    WARNING_EMSP_UNKNOWN = "WARNING_eMSPUnknown"
    WARNING_EV_POWER_PROFILE_VIOLATION = "WARNING_EVPowerProfileViolation"
    WARNING_GENERAL_PNC_AUTHORIZATION_ERROR = "WARNING_GeneralPnCAuthorizationError"
    WARNING_NO_CERTIFICATE_AVAILABLE = "WARNING_NoCertificateAvailable"
    WARNING_NO_CONTRACT_MATCHING_PCID_FOUND = "WARNING_NoContractMatchingPCIDFound"
    WARNING_POWER_TOLERANCE_NOT_CONFIRMED = "WARNING_PowerToleranceNotConfirmed"
    WARNING_SCHEDULE_RENEGOTIATION_FAILED = "WARNING_ScheduleRenegotiationFailed"
    WARNING_STANDBY_NOT_ALLOWED = "WARNING_StandbyNotAllowed"
    WARNING_WPT = "WARNING_WPT"
    FAILED = "FAILED"
    FAILED_ASSOCIATION_ERROR = "FAILED_AssociationError"
    FAILED_CONTACTOR_ERROR = "FAILED_ContactorError"
    FAILED_EV_POWER_PROFILE_INVALID = "FAILED_EVPowerProfileInvalid"
    FAILED_EV_POWER_PROFILE_VIOLATION = "FAILED_EVPowerProfileViolation"
    FAILED_METERING_SIGNATURE_NOT_VALID = "FAILED_MeteringSignatureNotValid"
    FAILED_NO_ENERGY_TRANSFER_SERVICE_SELECTED = "FAILED_NoEnergyTransferServiceSelected"
    FAILED_NO_SERVICE_RENEGOTIATION_SUPPORTED = "FAILED_NoServiceRenegotiationSupported"
    FAILED_PAUSE_NOT_ALLOWED = "FAILED_PauseNotAllowed"
    FAILED_POWER_DELIVERY_NOT_APPLIED = "FAILED_PowerDeliveryNotApplied"
    FAILED_POWER_TOLERANCE_NOT_CONFIRMED = "FAILED_PowerToleranceNotConfirmed"
    FAILED_SCHEDULE_RENEGOTIATION = "FAILED_ScheduleRenegotiation"
    FAILED_SCHEDULE_SELECTION_INVALID = "FAILED_ScheduleSelectionInvalid"
    FAILED_SEQUENCE_ERROR = "FAILED_SequenceError"
    FAILED_SERVICE_ID_INVALID = "FAILED_ServiceIDInvalid"
    FAILED_SERVICE_SELECTION_INVALID = "FAILED_ServiceSelectionInvalid"
    FAILED_SIGNATURE_ERROR = "FAILED_SignatureError"
    FAILED_UNKNOWN_SESSION = "FAILED_UnknownSession"
    FAILED_WRONG_CHARGE_PARAMETER = "FAILED_WrongChargeParameter"

    @property
    def ok(self) -> bool:
        return self.value.startswith("OK")


class Processing(StrEnum):
    """``processingType`` (V2G_CI_CommonTypes.xsd), in declaration order."""

    FINISHED = "Finished"
    ONGOING = "Ongoing"
    ONGOING_WAITING_FOR_CUSTOMER_INTERACTION = "Ongoing_WaitingForCustomerInteraction"


class ECDHCurve(StrEnum):
    """``ecdhCurveType`` (V2G_CI_CommonMessages.xsd), in declaration order."""

    SECP521 = "SECP521"
    X448 = "X448"


class EncryptedKeyType(StrEnum):
    """The choice in ``SignedInstallationDataType``: the element that carries the encrypted contract key.

    The value is the element name; each has a fixed length (``length`` facet): 94, 84 and 206 bytes.
    """

    SECP521 = "SECP521_EncryptedPrivateKey"
    X448 = "X448_EncryptedPrivateKey"
    TPM = "TPM_EncryptedPrivateKey"


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """CommonTypes ``MessageHeaderType``: SessionID (hexBinary, exactly 8 bytes), TimeStamp, optional Signature.

    ``timestamp`` is xs:unsignedLong (0 … 2**64 − 1), Unix seconds in practice.
    """

    session_id: bytes
    timestamp: int
    signature: Signature | None = None


@dataclass(frozen=True, slots=True)
class CertificateChain:
    """``CertificateChainType``: Certificate (DER ≤ 1600 bytes), optional SubCertificates (1–3)."""

    certificate: bytes
    sub_certificates: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class SignedCertificateChain:
    """``SignedCertificateChainType``: a certificate chain with a required Id (what a signature references)."""

    id: str
    certificate: bytes
    sub_certificates: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class ContractCertificateChain:
    """``ContractCertificateChainType``: Certificate and SubCertificates, which is required here (1–3)."""

    certificate: bytes
    sub_certificates: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class EncryptedPrivateKey:
    """One branch of the choice in ``SignedInstallationDataType``: which element (``key_type``) and its bytes."""

    key_type: EncryptedKeyType
    value: bytes


@dataclass(frozen=True, slots=True)
class SignedInstallationData:
    """``SignedInstallationDataType`` (the element the CPS signs): Id, ContractCertificateChain,
    ECDHCurve, DHPublicKey (exactly 133 bytes in the schema) and the encrypted contract private key."""

    id: str
    contract_certificate_chain: ContractCertificateChain
    ecdh_curve: ECDHCurve
    dh_public_key: bytes
    encrypted_private_key: EncryptedPrivateKey


@dataclass(frozen=True, slots=True)
class CertificateInstallationReq:
    """``CertificateInstallationReqType``: Header, OEMProvisioningCertificateChain (what the EV signs),
    ListOfRootCertificateIDs (1–20), MaximumContractCertificateChains (xs:unsignedByte) and the
    optional PrioritizedEMAIDs (1–8 identifiers of ≤ 255 characters; ``()`` = absent)."""

    header: MessageHeader
    oem_provisioning_certificate_chain: SignedCertificateChain
    root_certificate_ids: tuple[RootCertificateId, ...]
    maximum_contract_certificate_chains: int
    prioritized_emaids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CertificateInstallationRes:
    """``CertificateInstallationResType``: Header, ResponseCode, EVSEProcessing, CPSCertificateChain,
    SignedInstallationData, RemainingContractCertificateChains (xs:unsignedByte)."""

    header: MessageHeader
    response_code: ResponseCode
    evse_processing: Processing
    cps_certificate_chain: CertificateChain
    signed_installation_data: SignedInstallationData
    remaining_contract_certificate_chains: int
