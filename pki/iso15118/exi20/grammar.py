"""Schema-informed EXI grammar tables for the ISO 15118-20 certificate installation subset, as data.

The content models of V2G_CI_CommonMessages.xsd / V2G_CI_CommonTypes.xsd that the two messages
and their signed fragments use, written the way :mod:`pki.iso15118.exi.grammar` writes the -2
ones and compiled by the same :func:`~pki.iso15118.exi.grammar.compile_type`. The xmldsig types
(Signature, SignedInfo, X509IssuerSerial, ...) are the -2 tables themselves: both parts import
the same xmldsig-core-schema.xsd, and their EXI grammars are identical (checked against
EXIficient by the differential tests).

Derived complex types (``CertificateInstallationReqType`` extends ``V2GRequestType`` extends
``V2GMessageType``) start with the base type's particles: Header first, then ResponseCode for
responses (EXI grammars follow the XSD's effective content model). No XSD text is copied here;
names and facets are facts of the encoding.
"""

from __future__ import annotations

from pki.iso15118.exi import grammar as g
from pki.iso15118.exi.grammar import ComplexType, Item, Simple

__all__ = [
    "CERTIFICATE",
    "DOC_CONTENT_WIDTH",
    "DOC_ELEMENTS",
    "DOC_MESSAGES",
    "FRAGMENT_CODES",
    "FRAGMENT_ED",
    "FRAGMENT_WIDTH",
    "TYPES",
    "XMLDSIG_TYPES",
]

# -- simple types -------------------------------------------------------------------------------------

CERTIFICATE = Simple("binary", "certificateType", max_length=1600)
SESSION_ID = Simple("binary", "sessionIDType", min_length=8, max_length=8, hex_binary=True)  # xs:hexBinary
UNSIGNED_LONG = Simple("unsigned", "xs:unsignedLong", min_value=0, max_value=2**64 - 1)
UNSIGNED_BYTE = Simple("nbit", "xs:unsignedByte", min_value=0, max_value=255)
IDENTIFIER = Simple("string", "identifierType", max_length=255)
RESPONSE_CODE = Simple("enum", "responseCodeType", enum_size=40)
PROCESSING = Simple("enum", "processingType", enum_size=3)
ECDH_CURVE = Simple("enum", "ecdhCurveType", enum_size=2)
# The XSD fixes dhPublicKeyType at 133 bytes (an uncompressed P-521 point), but [V2G20-2495] has an
# X448 ephemeral key travel as its 56 bytes without filler; EXI carries the length either way. The
# codec accepts 56-133 bytes, and provisioning checks the exact size per ECDHCurve.
DH_PUBLIC_KEY = Simple("binary", "dhPublicKeyType", min_length=56, max_length=133)
SECP521_KEY = Simple("binary", "secp521_EncryptedPrivateKeyType", min_length=94, max_length=94)
X448_KEY = Simple("binary", "x448_EncryptedPrivateKeyType", min_length=84, max_length=84)
TPM_KEY = Simple("binary", "tpm_EncryptedPrivateKeyType", min_length=206, max_length=206)


def _se(name: str, content: Simple | str, min: int = 1, max: int | None = 1) -> Item:
    return Item("SE", (name,), content, min, max)


# xmldsig-core-schema.xsd, shared with the -2 tables (X509IssuerSerialType is RootCertificateID's type).
XMLDSIG_TYPES: tuple[str, ...] = (
    "SignatureType",
    "SignedInfoType",
    "CanonicalizationMethodType",
    "SignatureMethodType",
    "ReferenceType",
    "TransformsType",
    "TransformType",
    "DigestMethodType",
    "SignatureValueType",
    "X509IssuerSerialType",
)

# EXIficient (1.55, the reference codec) expands every bounded maxOccurs of this subset into states:
# SubCertificates (3), EMAID (8) and RootCertificateID (20) — after the 20th RootCertificateID only a
# 1-bit EE follows. Its -2 grammar does not do that for the -2 list of 20 (see the -2 tables); the
# -20 one does (found by the differential tests). The counts are enforced by the adapters as well.
_TYPES: tuple[ComplexType, ...] = (
    # CommonTypes MessageHeaderType: SessionID, TimeStamp, xmlsig:Signature?
    ComplexType(
        "MessageHeaderType",
        (_se("SessionID", SESSION_ID), _se("TimeStamp", UNSIGNED_LONG), _se("Signature", "SignatureType", min=0)),
    ),
    # CommonMessages CertificateInstallationReqType (extends V2GRequestType: Header)
    ComplexType(
        "CertificateInstallationReqType",
        (
            _se("Header", "MessageHeaderType"),
            _se("OEMProvisioningCertificateChain", "SignedCertificateChainType"),
            _se("ListOfRootCertificateIDs", "ListOfRootCertificateIDsType"),
            _se("MaximumContractCertificateChains", UNSIGNED_BYTE),
            _se("PrioritizedEMAIDs", "EMAIDListType", min=0),
        ),
    ),
    # CommonMessages CertificateInstallationResType (extends V2GResponseType: Header, ResponseCode)
    ComplexType(
        "CertificateInstallationResType",
        (
            _se("Header", "MessageHeaderType"),
            _se("ResponseCode", RESPONSE_CODE),
            _se("EVSEProcessing", PROCESSING),
            _se("CPSCertificateChain", "CertificateChainType"),
            _se("SignedInstallationData", "SignedInstallationDataType"),
            _se("RemainingContractCertificateChains", UNSIGNED_BYTE),
        ),
    ),
    # CommonMessages SignedCertificateChainType: Id (required, {CommonMessages}Id), Certificate, SubCertificates?
    ComplexType(
        "SignedCertificateChainType",
        (
            Item("AT", ("Id",), g.ID),
            _se("Certificate", CERTIFICATE),
            _se("SubCertificates", "SubCertificatesType", min=0),
        ),
    ),
    # CommonMessages CertificateChainType: Certificate, SubCertificates?
    ComplexType(
        "CertificateChainType",
        (_se("Certificate", CERTIFICATE), _se("SubCertificates", "SubCertificatesType", min=0)),
    ),
    # CommonMessages ContractCertificateChainType: Certificate, SubCertificates (required)
    ComplexType(
        "ContractCertificateChainType",
        (_se("Certificate", CERTIFICATE), _se("SubCertificates", "SubCertificatesType")),
    ),
    # CommonMessages SubCertificatesType: Certificate maxOccurs 3
    ComplexType("SubCertificatesType", (_se("Certificate", CERTIFICATE, min=1, max=3),)),
    # CommonTypes ListOfRootCertificateIDsType: xmlsig X509IssuerSerialType, maxOccurs 20 (see above)
    ComplexType("ListOfRootCertificateIDsType", (_se("RootCertificateID", "X509IssuerSerialType", min=1, max=20),)),
    # CommonMessages EMAIDListType: EMAID (identifierType) maxOccurs 8
    ComplexType("EMAIDListType", (_se("EMAID", IDENTIFIER, min=1, max=8),)),
    # CommonMessages SignedInstallationDataType: Id (required), ContractCertificateChain, ECDHCurve,
    # DHPublicKey, choice of the three encrypted-key elements (EXI codes in schema order).
    ComplexType(
        "SignedInstallationDataType",
        (
            Item("AT", ("Id",), g.ID),
            _se("ContractCertificateChain", "ContractCertificateChainType"),
            _se("ECDHCurve", ECDH_CURVE),
            _se("DHPublicKey", DH_PUBLIC_KEY),
            Item(
                "SE",
                ("SECP521_EncryptedPrivateKey", "X448_EncryptedPrivateKey", "TPM_EncryptedPrivateKey"),
                {
                    "SECP521_EncryptedPrivateKey": SECP521_KEY,
                    "X448_EncryptedPrivateKey": X448_KEY,
                    "TPM_EncryptedPrivateKey": TPM_KEY,
                },
            ),
        ),
    ),
)

TYPES: dict[str, ComplexType] = {t.name: t for t in _TYPES} | {name: g.TYPES[name] for name in XMLDSIG_TYPES}

# -- fixed codes of the document and fragment grammars (see the package docstring for the evidence) ----

# DocContent of the -20 CommonMessages schema set: the 54 global elements of CommonMessages,
# CommonTypes and xmldsig sorted by (local name, namespace), then SE(*) → 55 productions + escape,
# 6 bits. The two messages this codec handles are codes 7 and 8.
DOC_CONTENT_WIDTH = 6
DOC_ELEMENTS: tuple[str, ...] = (
    "AuthorizationReq",
    "AuthorizationRes",
    "AuthorizationSetupReq",
    "AuthorizationSetupRes",
    "CLReqControlMode",
    "CLResControlMode",
    "CanonicalizationMethod",
    "CertificateInstallationReq",
    "CertificateInstallationRes",
    "DSAKeyValue",
    "DigestMethod",
    "DigestValue",
    "KeyInfo",
    "KeyName",
    "KeyValue",
    "Manifest",
    "MeteringConfirmationReq",
    "MeteringConfirmationRes",
    "MgmtData",
    "Object",
    "PGPData",
    "PowerDeliveryReq",
    "PowerDeliveryRes",
    "RSAKeyValue",
    "Reference",
    "RetrievalMethod",
    "SPKIData",
    "ScheduleExchangeReq",
    "ScheduleExchangeRes",
    "ServiceDetailReq",
    "ServiceDetailRes",
    "ServiceDiscoveryReq",
    "ServiceDiscoveryRes",
    "ServiceSelectionReq",
    "ServiceSelectionRes",
    "SessionSetupReq",
    "SessionSetupRes",
    "SessionStopReq",
    "SessionStopRes",
    "Signature",
    "SignatureMethod",
    "SignatureProperties",
    "SignatureProperty",
    "SignatureValue",
    "SignedInfo",
    "SignedInstallationData",
    "SignedMeteringData",
    "Transform",
    "Transforms",
    "VehicleCheckInReq",
    "VehicleCheckInRes",
    "VehicleCheckOutReq",
    "VehicleCheckOutRes",
    "X509Data",
)
DOC_MESSAGES: dict[str, str] = {
    "CertificateInstallationReq": "CertificateInstallationReqType",
    "CertificateInstallationRes": "CertificateInstallationResType",
}
# -20 fragment grammar: 9-bit codes over the 281 element names (global and local) of the schema set
# sorted by (local name, namespace), SE(*) = 281, ED = 282.
FRAGMENT_WIDTH = 9
FRAGMENT_ED = 282
FRAGMENT_CODES: dict[str, int] = {"OEMProvisioningCertificateChain": 128, "SignedInstallationData": 231}
