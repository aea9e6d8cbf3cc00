"""The ISO 15118-20 codec: the -20 dataclasses mapped onto the generic EXI engine, and the framings.

Owns the adapters between :mod:`pki.iso15118.messages20` and the ordered events of each -20
schema type, the -20 instance of :class:`~pki.iso15118.exi.engine.SchemaCodec` (:data:`ISO20`),
and the document and fragment framings. The xmldsig adapters are the -2 codec's (same schema).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pki.iso15118.exi.bits import BitReader, BitWriter
from pki.iso15118.exi.codec import ISO2, MAX_INPUT_BYTES
from pki.iso15118.exi.elements import SchemaElement, schema_tree
from pki.iso15118.exi.engine import Events, SchemaCodec
from pki.iso15118.exi.errors import ExiError, UnsupportedMessage
from pki.iso15118.exi20 import grammar as g20
from pki.iso15118.messages import SignedInfo
from pki.iso15118.messages20 import (
    CertificateChain,
    CertificateInstallationReq,
    CertificateInstallationRes,
    ContractCertificateChain,
    ECDHCurve,
    EncryptedKeyType,
    EncryptedPrivateKey,
    MessageHeader,
    Processing,
    ResponseCode,
    SignedCertificateChain,
    SignedInstallationData,
)

__all__ = [
    "ISO20",
    "Message",
    "SignedFragment",
    "decode_fragment",
    "decode_message",
    "element_tree",
    "encode_fragment",
    "encode_message",
]

Message = CertificateInstallationReq | CertificateInstallationRes
SignedFragment = SignedCertificateChain | SignedInstallationData

EXI_HEADER = 0x80  # distinguishing bits 10, no options, final version 1 (as ISO 15118-2)
_DOC_SE_ANY = len(g20.DOC_ELEMENTS)  # SE(*) follows the declared global elements
_KEY_ELEMENTS = frozenset(t.value for t in EncryptedKeyType)


def _expect(value: Any, cls: type, what: str) -> Any:
    if not isinstance(value, cls):
        raise ExiError(f"{what} must be a {cls.__name__}, got {type(value).__name__}")
    return value


def _count(what: str, values: Any, low: int, high: int) -> tuple[Any, ...]:
    if not isinstance(values, tuple | list) or not low <= len(values) <= high:
        n = len(values) if isinstance(values, tuple | list) else type(values).__name__
        raise ExiError(f"{what} needs {low}–{high} entries, got {n}")
    return tuple(values)


def _opt(name: str, value: Any) -> Events:
    return [] if value is None else [(name, value)]


def _subs(subs: Any, *, required: bool) -> Events:
    if not subs and not required:
        return []
    return [("SubCertificates", _count("SubCertificates", subs, 1, 3))]


def _header_events(h: MessageHeader) -> Events:
    _expect(h, MessageHeader, "Header")
    return [("SessionID", h.session_id), ("TimeStamp", h.timestamp), *_opt("Signature", h.signature)]


def _req_events(r: CertificateInstallationReq) -> Events:
    events = [
        ("Header", r.header),
        (
            "OEMProvisioningCertificateChain",
            _expect(r.oem_provisioning_certificate_chain, SignedCertificateChain, "OEMProvisioningCertificateChain"),
        ),
        ("ListOfRootCertificateIDs", r.root_certificate_ids),
        ("MaximumContractCertificateChains", r.maximum_contract_certificate_chains),
    ]
    if r.prioritized_emaids:
        events.append(("PrioritizedEMAIDs", r.prioritized_emaids))
    return events


def _res_events(r: CertificateInstallationRes) -> Events:
    return [
        ("Header", r.header),
        ("ResponseCode", r.response_code),
        ("EVSEProcessing", r.evse_processing),
        ("CPSCertificateChain", _expect(r.cps_certificate_chain, CertificateChain, "CPSCertificateChain")),
        (
            "SignedInstallationData",
            _expect(r.signed_installation_data, SignedInstallationData, "SignedInstallationData"),
        ),
        ("RemainingContractCertificateChains", r.remaining_contract_certificate_chains),
    ]


def _installation_data_events(d: SignedInstallationData) -> Events:
    chain = _expect(d.contract_certificate_chain, ContractCertificateChain, "ContractCertificateChain")
    key = _expect(d.encrypted_private_key, EncryptedPrivateKey, "the encrypted private key")
    if not isinstance(key.key_type, EncryptedKeyType):
        raise ExiError(f"EncryptedPrivateKey.key_type must be an EncryptedKeyType, got {key.key_type!r}")
    return [
        ("Id", d.id),
        ("ContractCertificateChain", chain),
        ("ECDHCurve", d.ecdh_curve),
        ("DHPublicKey", d.dh_public_key),
        (key.key_type.value, key.value),
    ]


_TO_EVENTS: dict[str, Callable[[Any], Events]] = {
    "MessageHeaderType": _header_events,
    "CertificateInstallationReqType": _req_events,
    "CertificateInstallationResType": _res_events,
    "SignedCertificateChainType": lambda c: [
        ("Id", c.id),
        ("Certificate", c.certificate),
        *_subs(c.sub_certificates, required=False),
    ],
    "CertificateChainType": lambda c: [("Certificate", c.certificate), *_subs(c.sub_certificates, required=False)],
    "ContractCertificateChainType": lambda c: [
        ("Certificate", c.certificate),
        *_subs(c.sub_certificates, required=True),
    ],
    "SubCertificatesType": lambda subs: [("Certificate", c) for c in subs],
    "ListOfRootCertificateIDsType": lambda ids: [
        ("RootCertificateID", i) for i in _count("ListOfRootCertificateIDs", ids, 1, 20)
    ],
    "EMAIDListType": lambda emaids: [("EMAID", e) for e in _count("PrioritizedEMAIDs", emaids, 1, 8)],
    "SignedInstallationDataType": _installation_data_events,
} | {name: ISO2.to_events[name] for name in g20.XMLDSIG_TYPES}


def _all(events: Events, name: str) -> tuple[Any, ...]:
    return tuple(v for n, v in events if n == name)


def _from_installation_data(events: Events) -> SignedInstallationData:
    d = dict(events)
    (key_name, key_value) = next((n, v) for n, v in events if n in _KEY_ELEMENTS)
    return SignedInstallationData(
        id=d["Id"],
        contract_certificate_chain=d["ContractCertificateChain"],
        ecdh_curve=d["ECDHCurve"],
        dh_public_key=d["DHPublicKey"],
        encrypted_private_key=EncryptedPrivateKey(EncryptedKeyType(key_name), key_value),
    )


# Decoded events always follow the grammar, so every required name is present.
_FROM_EVENTS: dict[str, Callable[[Events], Any]] = {
    "MessageHeaderType": lambda e: MessageHeader(
        session_id=dict(e)["SessionID"], timestamp=dict(e)["TimeStamp"], signature=dict(e).get("Signature")
    ),
    "CertificateInstallationReqType": lambda e: CertificateInstallationReq(
        header=dict(e)["Header"],
        oem_provisioning_certificate_chain=dict(e)["OEMProvisioningCertificateChain"],
        root_certificate_ids=dict(e)["ListOfRootCertificateIDs"],
        maximum_contract_certificate_chains=dict(e)["MaximumContractCertificateChains"],
        prioritized_emaids=dict(e).get("PrioritizedEMAIDs", ()),
    ),
    "CertificateInstallationResType": lambda e: CertificateInstallationRes(
        header=dict(e)["Header"],
        response_code=dict(e)["ResponseCode"],
        evse_processing=dict(e)["EVSEProcessing"],
        cps_certificate_chain=dict(e)["CPSCertificateChain"],
        signed_installation_data=dict(e)["SignedInstallationData"],
        remaining_contract_certificate_chains=dict(e)["RemainingContractCertificateChains"],
    ),
    "SignedCertificateChainType": lambda e: SignedCertificateChain(
        id=dict(e)["Id"], certificate=dict(e)["Certificate"], sub_certificates=dict(e).get("SubCertificates", ())
    ),
    "CertificateChainType": lambda e: CertificateChain(
        certificate=dict(e)["Certificate"], sub_certificates=dict(e).get("SubCertificates", ())
    ),
    "ContractCertificateChainType": lambda e: ContractCertificateChain(
        certificate=dict(e)["Certificate"], sub_certificates=dict(e)["SubCertificates"]
    ),
    "SubCertificatesType": lambda e: _count("SubCertificates", _all(e, "Certificate"), 1, 3),
    "ListOfRootCertificateIDsType": lambda e: _count("ListOfRootCertificateIDs", _all(e, "RootCertificateID"), 1, 20),
    "EMAIDListType": lambda e: _count("PrioritizedEMAIDs", _all(e, "EMAID"), 1, 8),
    "SignedInstallationDataType": _from_installation_data,
} | {name: ISO2.from_events[name] for name in g20.XMLDSIG_TYPES}

_ENUMS: dict[str, tuple[Any, ...]] = {
    "responseCodeType": tuple(ResponseCode),
    "processingType": tuple(Processing),
    "ecdhCurveType": tuple(ECDHCurve),
}
_CH_WHAT = {"SignatureValueType": "SignatureValue"}


def _refused(type_name: str, name: str) -> ExiError:
    return ExiError(f"unsupported EXI content {name} in {type_name} (not used by ISO 15118-20 certificate messages)")


ISO20 = SchemaCodec(
    types=g20.TYPES, to_events=_TO_EVENTS, from_events=_FROM_EVENTS, enums=_ENUMS, ch_what=_CH_WHAT, refused=_refused
)

# -- framings ---------------------------------------------------------------------------------------------


def _reader(data: bytes) -> BitReader:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ExiError(f"EXI input must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_INPUT_BYTES:
        raise ExiError(f"EXI input of {len(data)} bytes exceeds the {MAX_INPUT_BYTES}-byte limit")
    r = BitReader(data)
    header = r.bits(8, "the EXI header")
    if header != EXI_HEADER:
        raise ExiError(
            f"not an ISO 15118-20 EXI stream: header byte {header:#04x}, expected 0x80 (no options, no cookie)"
        )
    return r


def _finish(r: BitReader, what: str) -> None:
    # Padding bits in the last byte are insignificant (EXI §8); whole bytes after the end are not.
    if r.remaining >= 8:
        raise ExiError(f"{r.remaining // 8} unexpected byte(s) after the end of the EXI {what}")


_MESSAGE_TYPES: dict[type, str] = {
    CertificateInstallationReq: "CertificateInstallationReq",
    CertificateInstallationRes: "CertificateInstallationRes",
}
_FRAGMENT_TYPES: dict[type, tuple[str, str]] = {
    SignedCertificateChain: ("OEMProvisioningCertificateChain", "SignedCertificateChainType"),
    SignedInstallationData: ("SignedInstallationData", "SignedInstallationDataType"),
}
_FRAGMENT_BY_CODE: dict[int, str] = {
    g20.FRAGMENT_CODES[element]: type_name for element, type_name in _FRAGMENT_TYPES.values()
}


def encode_message(message: Message) -> bytes:
    """Encode a -20 message document: header byte 0x80, SE(message) in 6 bits, its content (DocEnd ED is 0 bits)."""
    name = _MESSAGE_TYPES.get(type(message))
    if name is None:
        raise ExiError(
            f"encode_message needs a -20 CertificateInstallationReq or CertificateInstallationRes, "
            f"got {type(message).__name__}"
        )
    w = BitWriter()
    w.bits(EXI_HEADER, 8)
    w.bits(g20.DOC_ELEMENTS.index(name), g20.DOC_CONTENT_WIDTH)
    ISO20.encode_type(w, g20.DOC_MESSAGES[name], message)
    return w.getvalue()


def _unsupported(r: BitReader, name: str) -> UnsupportedMessage:
    """The error for another -20 message; its SessionID when its Header decodes (all messages start with it)."""
    session_id: bytes | None = None
    if name.endswith(("Req", "Res")):
        try:
            if r.bits(1, "SE(Header)") == 0:
                session_id = ISO20.decode_value(r, "MessageHeaderType").session_id
        except ExiError:
            session_id = None
    return UnsupportedMessage(
        f"unsupported ISO 15118-20 message {name}: this codec handles CertificateInstallationReq/Res only",
        body=name,
        session_id=session_id,
    )


def decode_message(data: bytes) -> Message:
    """Decode a -20 CertificateInstallationReq/Res document; other -20 messages raise :class:`UnsupportedMessage`."""
    r = _reader(data)
    code = r.bits(g20.DOC_CONTENT_WIDTH, "the document root")
    if code >= len(g20.DOC_ELEMENTS):
        what = "SE(*)" if code == _DOC_SE_ANY else f"event code {code}"
        raise ExiError(f"the EXI document root is not an ISO 15118-20 CommonMessages element ({what})")
    name = g20.DOC_ELEMENTS[code]
    type_name = g20.DOC_MESSAGES.get(name)
    if type_name is None:
        raise _unsupported(r, name)
    message: Message = ISO20.decode_value(r, type_name)
    _finish(r, "document")
    return message


def encode_fragment(element: SignedFragment) -> bytes:
    """Encode a signed element alone as a -20 EXI fragment (the bytes its digest covers).

    A :class:`SignedCertificateChain` is encoded as ``OEMProvisioningCertificateChain`` (what the EV
    signs in CertificateInstallationReq), :class:`SignedInstallationData` as itself (what the CPS signs).
    """
    entry = _FRAGMENT_TYPES.get(type(element))
    if entry is None:
        raise ExiError(f"no ISO 15118-20 fragment encoding for {type(element).__name__}")
    name, type_name = entry
    w = BitWriter()
    w.bits(EXI_HEADER, 8)
    w.bits(g20.FRAGMENT_CODES[name], g20.FRAGMENT_WIDTH)
    ISO20.encode_type(w, type_name, element)
    w.bits(g20.FRAGMENT_ED, g20.FRAGMENT_WIDTH)
    return w.getvalue()


def decode_fragment(data: bytes) -> SignedFragment:
    """Decode one of the -20 fragments :func:`encode_fragment` produces."""
    r = _reader(data)
    code = r.bits(g20.FRAGMENT_WIDTH, "the fragment element code")
    type_name = _FRAGMENT_BY_CODE.get(code)
    if type_name is None:
        raise ExiError(f"unsupported ISO 15118-20 fragment element code {code}")
    element: SignedFragment = ISO20.decode_value(r, type_name)
    end = r.bits(g20.FRAGMENT_WIDTH, "the fragment end")
    if end != g20.FRAGMENT_ED:
        raise ExiError(f"fragment: expected ED (code {g20.FRAGMENT_ED}), got event code {end}; one element only")
    _finish(r, "fragment")
    return element


def element_tree(decoded: Message | SignedFragment | SignedInfo) -> SchemaElement:
    """The element tree (schema names, in order) of a decoded -20 document, signed fragment or SignedInfo."""
    if isinstance(decoded, SignedInfo):
        return schema_tree(ISO20, "SignedInfo", "SignedInfoType", decoded)
    name = _MESSAGE_TYPES.get(type(decoded))
    if name is not None:
        return schema_tree(ISO20, name, g20.DOC_MESSAGES[name], decoded)
    entry = _FRAGMENT_TYPES.get(type(decoded))
    if entry is None:
        raise ExiError(f"{type(decoded).__name__} is not an ISO 15118-20 document, fragment or SignedInfo")
    return schema_tree(ISO20, *entry, decoded)
