"""Schema-informed EXI grammar tables for the ISO 15118-2 certificate subset, as data.

Each complex type is written down as its content model (attributes in EXI order, then simple
content or the element sequence with min/max occurs), citing the schema type it encodes.
:func:`compile_type` derives the EXI grammar states from that model the way EXI 1.0 §8.5.4
does (epsilon productions expanded, so a state offers the current item, then — if that item
may be skipped — everything after it, then EE at the end). Event codes are the positions in
that list; the width is ⌈log2(k + 1)⌉ because ISO 15118-2 uses *non-strict* grammars, where
every state reserves one more code for the escape to second-level events (reference §3.1).

Fixed document/fragment codes (DocContent, Body, fragment grammars) are constants at the end.
No XSD text is copied here; names and facets are facts of the encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BODY_ELEMENTS",
    "BODY_TYPES",
    "EE_ITEM",
    "REFUSED_ITEM",
    "TYPES",
    "ComplexType",
    "Item",
    "Simple",
    "State",
    "compile_type",
    "content_of",
    "width_for",
]


def width_for(productions: int) -> int:
    """Bits of a non-strict first-level event code: ⌈log2(productions + 1)⌉ (the +1 is the escape)."""
    return productions.bit_length()


@dataclass(frozen=True, slots=True)
class Simple:
    """A simple value: its EXI representation and the schema facets enforced on encode and decode.

    Kinds: ``string``, ``binary`` (base64Binary / hexBinary), ``integer`` (EXI Integer), ``unsigned``
    (EXI Unsigned Integer, e.g. xs:unsignedLong), ``nbit`` (a range of at most 4096 values, e.g.
    xs:unsignedByte: the offset from ``min_value`` in n bits) and ``enum`` (an n-bit index).
    """

    kind: Literal["string", "binary", "integer", "unsigned", "nbit", "enum"]
    schema_type: str
    min_length: int = 0
    max_length: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    enum_size: int = 0  # number of enumeration values (n-bit index of ⌈log2 n⌉ bits)
    # xs:hexBinary rather than xs:base64Binary: the same EXI bytes, but an XML rendering shows hex
    # digits (EXIficient writes them upper case).
    hex_binary: bool = False

    @property
    def value_width(self) -> int:
        """Bits of an n-bit value: an enumeration index (⌈log2 n⌉) or a bounded integer's offset (EXI 1.0 §7.1.9)."""
        if self.kind == "nbit":
            assert self.min_value is not None and self.max_value is not None
            return (self.max_value - self.min_value).bit_length()
        return (self.enum_size - 1).bit_length()


@dataclass(frozen=True, slots=True)
class Item:
    """One particle of a content model: an attribute, the simple content (CH) or element(s).

    ``content`` is a :class:`Simple`, the name of a complex type in :data:`TYPES`, or ``None`` for
    productions the codec refuses (wildcards, mixed text, KeyInfo). ``names`` holds more than one
    element name for a substitution group (the ISO-2 Body) or a choice (ISO-20 SignedInstallationData's
    encrypted key); its ``content`` then maps each name to its content, or ``None`` for the ones the
    codec refuses.
    """

    kind: Literal["AT", "CH", "SE"]
    names: tuple[str, ...]
    content: Simple | str | dict[str, Simple | str | None] | None
    min: int = 1
    max: int | None = 1  # None = unbounded


@dataclass(frozen=True, slots=True)
class ComplexType:
    name: str
    items: tuple[Item, ...]
    mixed: bool = False  # mixed content: each content state also offers CH[untyped] (refused)


@dataclass(slots=True)
class State:
    """A compiled grammar state: event code width, productions by code, codes by name.

    ``productions[code]`` is ``(item_index, name, next_state)``; item_index -1 means EE, -2 an
    event the codec refuses (wildcard, mixed text).
    """

    width: int
    productions: list[tuple[int, str, int]] = field(default_factory=list)
    codes: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name -> (code, item, next)
    ee: int | None = None


EE_ITEM = -1
REFUSED_ITEM = -2


def content_of(item: Item, name: str) -> Simple | str | None:
    """The content of element (or attribute) ``name`` of ``item``; ``None`` if the codec refuses it."""
    content = item.content
    return content.get(name) if isinstance(content, dict) else content


def compile_type(ctype: ComplexType) -> list[State]:
    """Derive the grammar states of ``ctype``; state 0 is the start state.

    A state is a position ``(i, k)``: item ``i`` has occurred ``k`` times. It offers item ``i``
    (if it may occur again), and while the current item has reached its minimum also everything
    the next positions offer, ending with EE — the epsilon expansion of EXI 1.0 §8.5.4.1.
    """
    items = ctype.items
    n_items = len(items)
    first_content = next((i for i, it in enumerate(items) if it.kind != "AT"), n_items)

    def after(i: int, k: int) -> tuple[int, int]:
        item = items[i]
        if item.max is None:
            return i, min(k + 1, item.min)  # an unbounded item loops once its minimum is reached
        return (i, k + 1) if k + 1 < item.max else (i + 1, 0)

    def raw_productions(i: int, k: int) -> list[tuple[int, str, tuple[int, int] | None]]:
        out: list[tuple[int, str, tuple[int, int] | None]] = []
        while i < n_items:
            item = items[i]
            if item.max is None or k < item.max:
                nxt = after(i, k)
                out.extend((i, name, nxt) for name in item.names)
            if k < item.min:
                return out
            i, k = i + 1, 0
        out.append((EE_ITEM, "EE", None))
        return out

    keys: dict[tuple[int, int], int] = {(0, 0): 0}
    order: list[tuple[int, int]] = [(0, 0)]
    states: list[State] = []
    while len(states) < len(order):
        i, k = order[len(states)]
        entries: list[tuple[int, str, int]] = []
        for item_index, name, nxt in raw_productions(i, k):
            if nxt is not None and nxt not in keys:
                keys[nxt] = len(order)
                order.append(nxt)
            refused = item_index >= 0 and content_of(items[item_index], name) is None
            entries.append((REFUSED_ITEM if refused else item_index, name, -1 if nxt is None else keys[nxt]))
        if ctype.mixed and all(it.min == 0 for it in items[i:first_content]):
            entries.append((REFUSED_ITEM, "CH[untyped]", -1))  # mixed content: CH after the others
        state = State(width=width_for(len(entries)))
        for code, (item_index, name, nxt) in enumerate(entries):
            state.productions.append((item_index, name, nxt))
            if item_index == EE_ITEM:
                state.ee = code
            elif item_index >= 0:
                state.codes[name] = (code, item_index, nxt)
        states.append(state)
    return states


# -- simple types (V2G_CI_MsgDataTypes.xsd, xmldsig-core-schema.xsd) ---------------------------------

ID = Simple("string", "xs:ID", min_length=1)
STRING = Simple("string", "xs:string")
ANY_URI = Simple("string", "xs:anyURI")
CERTIFICATE = Simple("binary", "certificateType", max_length=800)
PRIVATE_KEY = Simple("binary", "privateKeyType", max_length=48)
DH_PUBLIC_KEY = Simple("binary", "dHpublickeyType", max_length=65)
SESSION_ID = Simple("binary", "sessionIDType", max_length=8, hex_binary=True)  # xs:hexBinary
DIGEST_VALUE = Simple("binary", "DigestValueType")
SIGNATURE_VALUE = Simple("binary", "SignatureValueType")
EMAID = Simple("string", "eMAIDType", min_length=14, max_length=15)
FAULT_MSG = Simple("string", "faultMsgType", max_length=64)
FAULT_CODE = Simple("enum", "faultCodeType", enum_size=3)
RESPONSE_CODE = Simple("enum", "responseCodeType", enum_size=26)
SHORT = Simple("integer", "xs:short", min_value=-32768, max_value=32767)
INTEGER = Simple("integer", "xs:integer")

# V2G_CI_MsgBody.xsd: the BodyElement substitution group — the abstract head BodyElement plus the
# 34 message elements declared with substitutionGroup="BodyElement", sorted by local name (all
# share the MsgBody namespace), which is the order of EXI event codes in BodyType.
BODY_ELEMENTS: tuple[str, ...] = (
    "AuthorizationReq",
    "AuthorizationRes",
    "BodyElement",
    "CableCheckReq",
    "CableCheckRes",
    "CertificateInstallationReq",
    "CertificateInstallationRes",
    "CertificateUpdateReq",
    "CertificateUpdateRes",
    "ChargeParameterDiscoveryReq",
    "ChargeParameterDiscoveryRes",
    "ChargingStatusReq",
    "ChargingStatusRes",
    "CurrentDemandReq",
    "CurrentDemandRes",
    "MeteringReceiptReq",
    "MeteringReceiptRes",
    "PaymentDetailsReq",
    "PaymentDetailsRes",
    "PaymentServiceSelectionReq",
    "PaymentServiceSelectionRes",
    "PowerDeliveryReq",
    "PowerDeliveryRes",
    "PreChargeReq",
    "PreChargeRes",
    "ServiceDetailReq",
    "ServiceDetailRes",
    "ServiceDiscoveryReq",
    "ServiceDiscoveryRes",
    "SessionSetupReq",
    "SessionSetupRes",
    "SessionStopReq",
    "SessionStopRes",
    "WeldingDetectionReq",
    "WeldingDetectionRes",
)
# The four body messages this codec handles and their content types (V2G_CI_MsgBody.xsd).
BODY_TYPES: dict[str, str] = {
    "CertificateInstallationReq": "CertificateInstallationReqType",
    "CertificateInstallationRes": "CertificateInstallationResType",
    "CertificateUpdateReq": "CertificateUpdateReqType",
    "CertificateUpdateRes": "CertificateUpdateResType",
}


def _se(name: str, content: Simple | str | None, min: int = 1, max: int | None = 1) -> Item:
    return Item("SE", (name,), content, min, max)


def _at(name: str, content: Simple, required: bool = True) -> Item:
    return Item("AT", (name,), content, 1 if required else 0, 1)


def _ch(content: Simple) -> Item:
    return Item("CH", ("CH",), content)


_TYPES: tuple[ComplexType, ...] = (
    # V2G_CI_MsgDef.xsd: the anonymous type of V2G_Message
    ComplexType("V2G_Message", (_se("Header", "MessageHeaderType"), _se("Body", "BodyType"))),
    # V2G_CI_MsgHeader.xsd MessageHeaderType
    ComplexType(
        "MessageHeaderType",
        (
            _se("SessionID", SESSION_ID),
            _se("Notification", "NotificationType", min=0),
            _se("Signature", "SignatureType", min=0),
        ),
    ),
    # V2G_CI_MsgDataTypes.xsd NotificationType
    ComplexType("NotificationType", (_se("FaultCode", FAULT_CODE), _se("FaultMsg", FAULT_MSG, min=0))),
    # V2G_CI_MsgBody.xsd BodyType: <xs:element ref="BodyElement" minOccurs="0"/>; only the four
    # certificate messages have a content type here, the other names are refused.
    ComplexType(
        "BodyType",
        (Item("SE", BODY_ELEMENTS, {name: BODY_TYPES.get(name) for name in BODY_ELEMENTS}, 0, 1),),
    ),
    # V2G_CI_MsgBody.xsd CertificateInstallationReqType (Id is {MsgBody}Id, required)
    ComplexType(
        "CertificateInstallationReqType",
        (
            _at("Id", ID),
            _se("OEMProvisioningCert", CERTIFICATE),
            _se("ListOfRootCertificateIDs", "ListOfRootCertificateIDsType"),
        ),
    ),
    # V2G_CI_MsgBody.xsd CertificateInstallationResType
    ComplexType(
        "CertificateInstallationResType",
        (
            _se("ResponseCode", RESPONSE_CODE),
            _se("SAProvisioningCertificateChain", "CertificateChainType"),
            _se("ContractSignatureCertChain", "CertificateChainType"),
            _se("ContractSignatureEncryptedPrivateKey", "ContractSignatureEncryptedPrivateKeyType"),
            _se("DHpublickey", "DiffieHellmanPublickeyType"),
            _se("eMAID", "EMAIDType"),
        ),
    ),
    # V2G_CI_MsgBody.xsd CertificateUpdateReqType (eMAID is the plain eMAIDType here)
    ComplexType(
        "CertificateUpdateReqType",
        (
            _at("Id", ID),
            _se("ContractSignatureCertChain", "CertificateChainType"),
            _se("eMAID", EMAID),
            _se("ListOfRootCertificateIDs", "ListOfRootCertificateIDsType"),
        ),
    ),
    # V2G_CI_MsgBody.xsd CertificateUpdateResType
    ComplexType(
        "CertificateUpdateResType",
        (
            _se("ResponseCode", RESPONSE_CODE),
            _se("SAProvisioningCertificateChain", "CertificateChainType"),
            _se("ContractSignatureCertChain", "CertificateChainType"),
            _se("ContractSignatureEncryptedPrivateKey", "ContractSignatureEncryptedPrivateKeyType"),
            _se("DHpublickey", "DiffieHellmanPublickeyType"),
            _se("eMAID", "EMAIDType"),
            _se("RetryCounter", SHORT, min=0),
        ),
    ),
    # V2G_CI_MsgDataTypes.xsd CertificateChainType (optional {MsgDataTypes}Id)
    ComplexType(
        "CertificateChainType",
        (
            _at("Id", ID, required=False),
            _se("Certificate", CERTIFICATE),
            _se("SubCertificates", "SubCertificatesType", min=0),
        ),
    ),
    # V2G_CI_MsgDataTypes.xsd SubCertificatesType: Certificate maxOccurs 4
    ComplexType("SubCertificatesType", (_se("Certificate", CERTIFICATE, min=1, max=4),)),
    # V2G_CI_MsgDataTypes.xsd ListOfRootCertificateIDsType: RootCertificateID maxOccurs 20. EXIficient
    # (the reference codec) does not expand 20 occurrences into 20 states: after the first it loops
    # on {RootCertificateID, EE} like an unbounded particle, so a 20th entry is followed by the
    # 2-bit EE, not a 1-bit one (found by differential testing; SubCertificates' 4 are expanded).
    # The 1–20 facet is enforced by the codec instead.
    ComplexType("ListOfRootCertificateIDsType", (_se("RootCertificateID", "X509IssuerSerialType", min=1, max=None),)),
    # V2G_CI_MsgDataTypes.xsd ContractSignatureEncryptedPrivateKeyType: privateKeyType + Id
    ComplexType("ContractSignatureEncryptedPrivateKeyType", (_at("Id", ID), _ch(PRIVATE_KEY))),
    # V2G_CI_MsgDataTypes.xsd DiffieHellmanPublickeyType: dHpublickeyType + Id
    ComplexType("DiffieHellmanPublickeyType", (_at("Id", ID), _ch(DH_PUBLIC_KEY))),
    # V2G_CI_MsgDataTypes.xsd EMAIDType: eMAIDType + Id
    ComplexType("EMAIDType", (_at("Id", ID), _ch(EMAID))),
    # xmldsig-core-schema.xsd X509IssuerSerialType
    ComplexType("X509IssuerSerialType", (_se("X509IssuerName", STRING), _se("X509SerialNumber", INTEGER))),
    # xmldsig-core-schema.xsd SignatureType: KeyInfo and Object are refused
    ComplexType(
        "SignatureType",
        (
            _at("Id", ID, required=False),
            _se("SignedInfo", "SignedInfoType"),
            _se("SignatureValue", "SignatureValueType"),
            _se("KeyInfo", None, min=0),
            _se("Object", None, min=0, max=None),
        ),
    ),
    # xmldsig-core-schema.xsd SignedInfoType: Reference maxOccurs unbounded
    ComplexType(
        "SignedInfoType",
        (
            _at("Id", ID, required=False),
            _se("CanonicalizationMethod", "CanonicalizationMethodType"),
            _se("SignatureMethod", "SignatureMethodType"),
            _se("Reference", "ReferenceType", min=1, max=None),
        ),
    ),
    # xmldsig-core-schema.xsd CanonicalizationMethodType: mixed, <any namespace="##any"> 0..unbounded
    ComplexType(
        "CanonicalizationMethodType",
        (_at("Algorithm", ANY_URI), _se("*", None, min=0, max=None)),
        mixed=True,
    ),
    # xmldsig-core-schema.xsd SignatureMethodType: mixed, HMACOutputLength?, <any ##other> 0..unbounded
    ComplexType(
        "SignatureMethodType",
        (_at("Algorithm", ANY_URI), _se("HMACOutputLength", None, min=0), _se("*", None, min=0, max=None)),
        mixed=True,
    ),
    # xmldsig-core-schema.xsd ReferenceType: attributes Id, Type, URI (all optional, EXI sorts them)
    ComplexType(
        "ReferenceType",
        (
            _at("Id", ID, required=False),
            _at("Type", ANY_URI, required=False),
            _at("URI", ANY_URI, required=False),
            _se("Transforms", "TransformsType", min=0),
            _se("DigestMethod", "DigestMethodType"),
            _se("DigestValue", DIGEST_VALUE),
        ),
    ),
    # xmldsig-core-schema.xsd TransformsType: Transform maxOccurs unbounded
    ComplexType("TransformsType", (_se("Transform", "TransformType", min=1, max=None),)),
    # xmldsig-core-schema.xsd TransformType: mixed, choice of <any ##other> / XPath, 0..unbounded;
    # EXI lists SE(XPath) before the wildcard SE(*).
    ComplexType(
        "TransformType",
        (_at("Algorithm", ANY_URI), _se("XPath", None, min=0, max=None), _se("*", None, min=0, max=None)),
        mixed=True,
    ),
    # xmldsig-core-schema.xsd DigestMethodType: mixed, <any ##other> 0..unbounded
    ComplexType(
        "DigestMethodType",
        (_at("Algorithm", ANY_URI), _se("*", None, min=0, max=None)),
        mixed=True,
    ),
    # xmldsig-core-schema.xsd SignatureValueType: base64Binary + optional Id
    ComplexType("SignatureValueType", (_at("Id", ID, required=False), _ch(SIGNATURE_VALUE))),
    # simple-typed elements (Certificate, SessionID, ...): CH then EE, one bit each
)

TYPES: dict[str, ComplexType] = {t.name: t for t in _TYPES}

# -- fixed codes of the document and fragment grammars (reference §3.3) -----------------------------

EXI_HEADER = 0x80  # distinguishing bits 10, no options, final version 1
# DocContent of the ISO-2 schema set: 7-bit code, SE(V2G_Message) = 76.
DOC_CONTENT_WIDTH = 7
DOC_V2G_MESSAGE = 76
# ISO-2 fragment grammar: 8-bit codes over the 243 element names of the ISO-2 + xmldsig schemas
# sorted by (local name, namespace), then SE(*) = 243 and ED = 244.
FRAGMENT_WIDTH = 8
FRAGMENT_ED = 244
FRAGMENT_CODES: dict[str, int] = {
    "CertificateInstallationReq": 15,
    "CertificateUpdateReq": 17,
    "ContractSignatureCertChain": 33,
    "ContractSignatureEncryptedPrivateKey": 34,
    "DHpublickey": 45,
    "eMAID": 236,
}
# eMAID is declared with two types (eMAIDType, EMAIDType), so its fragment uses the schema-informed
# *element fragment grammar* (EXI 1.0 §8.5.3): first state = AT over the 10 sorted attribute names,
# AT(*), SE over the 243 elements, SE(*), EE, CH → 257 productions + escape = 9 bits;
# {urn:iso:15118:2:2013:MsgDataTypes}Id is attribute 4, CH is 256. After CH the state offers
# SE 0..242, SE(*) 243, EE 244, CH 245 → 8 bits.
ELEMENT_FRAGMENT_WIDTH_0 = 9
ELEMENT_FRAGMENT_AT_ID = 4
ELEMENT_FRAGMENT_CH = 256
ELEMENT_FRAGMENT_WIDTH_2 = 8
ELEMENT_FRAGMENT_EE = 244
# xmldsig fragment grammar (SignedInfo only): 6-bit codes over the 45 xmldsig element names,
# SE(SignedInfo) = 32, SE(*) = 45, ED = 46.
DSIG_FRAGMENT_WIDTH = 6
DSIG_FRAGMENT_SIGNED_INFO = 32
DSIG_FRAGMENT_ED = 46
