"""The ISO 15118-2 codec: the typed messages mapped onto the generic EXI engine, and the framings.

Owns: the adapters between the ISO-2 dataclasses and the ordered events of each schema type,
the ISO-2 instance of the generic engine (:data:`ISO2`, a :class:`~.engine.SchemaCodec`), and the
document / fragment / SignedInfo framings. The engine (type walk, facets) lives in :mod:`.engine`,
grammar facts in :mod:`.grammar`, bit-level primitives in :mod:`.bits`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pki.iso15118.exi import grammar as g
from pki.iso15118.exi.bits import BitReader, BitWriter
from pki.iso15118.exi.engine import Events, SchemaCodec
from pki.iso15118.exi.errors import ExiError, UnsupportedMessage
from pki.iso15118.messages import (
    EMAID,
    Body,
    CertificateChain,
    CertificateInstallationReq,
    CertificateInstallationRes,
    CertificateUpdateReq,
    CertificateUpdateRes,
    ContractSignatureEncryptedPrivateKey,
    DHPublicKey,
    FaultCode,
    Header,
    Notification,
    Reference,
    ResponseCode,
    RootCertificateId,
    Signature,
    SignedInfo,
    V2GMessage,
)

__all__ = [
    "ISO2",
    "MAX_INPUT_BYTES",
    "Fragment",
    "decode_fragment",
    "decode_message",
    "decode_signed_info",
    "encode_fragment",
    "encode_message",
    "encode_signed_info",
    "root_element",
    "schema_events",
]

# A V2G message with six 800-byte certificates is ~5 KB; 64 KiB is far above anything legitimate.
MAX_INPUT_BYTES = 64 * 1024

Fragment = (
    CertificateInstallationReq
    | CertificateUpdateReq
    | CertificateChain
    | ContractSignatureEncryptedPrivateKey
    | DHPublicKey
    | EMAID
)

_ENUMS: dict[str, tuple[Any, ...]] = {"responseCodeType": tuple(ResponseCode), "faultCodeType": tuple(FaultCode)}
# Error messages name the element, not "CH", for simple content with attributes.
_CH_WHAT = {
    "EMAIDType": "eMAID",
    "DiffieHellmanPublickeyType": "DHpublickey",
    "ContractSignatureEncryptedPrivateKeyType": "ContractSignatureEncryptedPrivateKey",
    "SignatureValueType": "SignatureValue",
}


# -- adapters: dataclass <-> ordered events of its schema type -------------------------------------------


def _opt(name: str, value: Any) -> Events:
    return [] if value is None else [(name, value)]


def _count(what: str, values: tuple[Any, ...], low: int, high: int) -> tuple[Any, ...]:
    if not isinstance(values, tuple | list) or not low <= len(values) <= high:
        n = len(values) if isinstance(values, tuple | list) else type(values).__name__
        raise ExiError(f"{what} needs {low}–{high} entries, got {n}")
    return tuple(values)


def _body_events(body: Body) -> Events:
    name = type(body).__name__
    if name not in g.BODY_TYPES or not isinstance(body, _BODY_CLASSES):
        raise ExiError(f"unsupported body {name}: expected one of {', '.join(g.BODY_TYPES)}")
    return [(name, body)]


def _res_events(res: CertificateInstallationRes | CertificateUpdateRes) -> Events:
    return [
        ("ResponseCode", res.response_code),
        ("SAProvisioningCertificateChain", res.sa_provisioning_certificate_chain),
        ("ContractSignatureCertChain", res.contract_signature_cert_chain),
        ("ContractSignatureEncryptedPrivateKey", res.contract_signature_encrypted_private_key),
        ("DHpublickey", res.dh_public_key),
        ("eMAID", res.emaid),
    ]


def _chain_events(chain: CertificateChain) -> Events:
    subs = chain.sub_certificates
    events = [*_opt("Id", chain.id), ("Certificate", chain.certificate)]
    if subs:
        events.append(("SubCertificates", _count("SubCertificates", subs, 1, 4)))
    return events


def _reference_events(ref: Reference) -> Events:
    events = [*_opt("Id", ref.id), *_opt("Type", ref.type), *_opt("URI", ref.uri)]
    if ref.transforms:
        events.append(("Transforms", tuple(ref.transforms)))
    events += [("DigestMethod", ref.digest_method), ("DigestValue", ref.digest_value)]
    return events


_TO_EVENTS: dict[str, Callable[[Any], Events]] = {
    "V2G_Message": lambda m: [("Header", m.header), ("Body", m.body)],
    "MessageHeaderType": lambda h: [
        ("SessionID", h.session_id),
        *_opt("Notification", h.notification),
        *_opt("Signature", h.signature),
    ],
    "NotificationType": lambda n: [("FaultCode", n.fault_code), *_opt("FaultMsg", n.fault_msg)],
    "BodyType": _body_events,
    "CertificateInstallationReqType": lambda r: [
        ("Id", r.id),
        ("OEMProvisioningCert", r.oem_provisioning_cert),
        ("ListOfRootCertificateIDs", r.root_certificate_ids),
    ],
    "CertificateInstallationResType": _res_events,
    "CertificateUpdateReqType": lambda r: [
        ("Id", r.id),
        ("ContractSignatureCertChain", r.contract_signature_cert_chain),
        ("eMAID", r.emaid),
        ("ListOfRootCertificateIDs", r.root_certificate_ids),
    ],
    "CertificateUpdateResType": lambda r: [*_res_events(r), *_opt("RetryCounter", r.retry_counter)],
    "CertificateChainType": _chain_events,
    "SubCertificatesType": lambda subs: [("Certificate", c) for c in subs],
    "ListOfRootCertificateIDsType": lambda ids: [
        ("RootCertificateID", i) for i in _count("ListOfRootCertificateIDs", ids, 1, 20)
    ],
    "X509IssuerSerialType": lambda i: [("X509IssuerName", i.issuer_name), ("X509SerialNumber", i.serial_number)],
    "ContractSignatureEncryptedPrivateKeyType": lambda k: [("Id", k.id), ("CH", k.value)],
    "DiffieHellmanPublickeyType": lambda k: [("Id", k.id), ("CH", k.value)],
    "EMAIDType": lambda e: [("Id", e.id), ("CH", e.value)],
    "SignatureType": lambda s: [*_opt("Id", s.id), ("SignedInfo", s.signed_info), ("SignatureValue", s)],
    "SignatureValueType": lambda s: [*_opt("Id", s.signature_value_id), ("CH", s.signature_value)],
    "SignedInfoType": lambda si: [
        *_opt("Id", si.id),
        ("CanonicalizationMethod", si.canonicalization_method),
        ("SignatureMethod", si.signature_method),
        *(("Reference", ref) for ref in _count("SignedInfo references", si.references, 1, 1 << 16)),
    ],
    "CanonicalizationMethodType": lambda a: [("Algorithm", a)],
    "SignatureMethodType": lambda a: [("Algorithm", a)],
    "DigestMethodType": lambda a: [("Algorithm", a)],
    "TransformType": lambda a: [("Algorithm", a)],
    "ReferenceType": _reference_events,
    "TransformsType": lambda ts: [("Transform", t) for t in ts],
}

_BODY_CLASSES = (CertificateInstallationReq, CertificateInstallationRes, CertificateUpdateReq, CertificateUpdateRes)


def _all(events: Events, name: str) -> tuple[Any, ...]:
    return tuple(v for n, v in events if n == name)


def _res_fields(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "response_code": d["ResponseCode"],
        "sa_provisioning_certificate_chain": d["SAProvisioningCertificateChain"],
        "contract_signature_cert_chain": d["ContractSignatureCertChain"],
        "contract_signature_encrypted_private_key": d["ContractSignatureEncryptedPrivateKey"],
        "dh_public_key": d["DHpublickey"],
        "emaid": d["eMAID"],
    }


def _from_signature(events: Events) -> Signature:
    d = dict(events)
    value_id, value = d["SignatureValue"]
    return Signature(signed_info=d["SignedInfo"], signature_value=value, id=d.get("Id"), signature_value_id=value_id)


# Decoded events always follow the grammar, so every required name is present.
_FROM_EVENTS: dict[str, Callable[[Events], Any]] = {
    "V2G_Message": lambda e: V2GMessage(header=dict(e)["Header"], body=dict(e)["Body"]),
    "MessageHeaderType": lambda e: Header(
        session_id=dict(e)["SessionID"], notification=dict(e).get("Notification"), signature=dict(e).get("Signature")
    ),
    "NotificationType": lambda e: Notification(fault_code=dict(e)["FaultCode"], fault_msg=dict(e).get("FaultMsg")),
    "BodyType": lambda e: e[0][1] if e else None,
    "CertificateInstallationReqType": lambda e: CertificateInstallationReq(
        id=dict(e)["Id"],
        oem_provisioning_cert=dict(e)["OEMProvisioningCert"],
        root_certificate_ids=dict(e)["ListOfRootCertificateIDs"],
    ),
    "CertificateInstallationResType": lambda e: CertificateInstallationRes(**_res_fields(dict(e))),
    "CertificateUpdateReqType": lambda e: CertificateUpdateReq(
        id=dict(e)["Id"],
        contract_signature_cert_chain=dict(e)["ContractSignatureCertChain"],
        emaid=dict(e)["eMAID"],
        root_certificate_ids=dict(e)["ListOfRootCertificateIDs"],
    ),
    "CertificateUpdateResType": lambda e: CertificateUpdateRes(
        **_res_fields(dict(e)), retry_counter=dict(e).get("RetryCounter")
    ),
    "CertificateChainType": lambda e: CertificateChain(
        certificate=dict(e)["Certificate"], sub_certificates=dict(e).get("SubCertificates", ()), id=dict(e).get("Id")
    ),
    "SubCertificatesType": lambda e: _all(e, "Certificate"),
    "ListOfRootCertificateIDsType": lambda e: _count("ListOfRootCertificateIDs", _all(e, "RootCertificateID"), 1, 20),
    "X509IssuerSerialType": lambda e: RootCertificateId(
        issuer_name=dict(e)["X509IssuerName"], serial_number=dict(e)["X509SerialNumber"]
    ),
    "ContractSignatureEncryptedPrivateKeyType": lambda e: ContractSignatureEncryptedPrivateKey(
        id=dict(e)["Id"], value=dict(e)["CH"]
    ),
    "DiffieHellmanPublickeyType": lambda e: DHPublicKey(id=dict(e)["Id"], value=dict(e)["CH"]),
    "EMAIDType": lambda e: EMAID(id=dict(e)["Id"], value=dict(e)["CH"]),
    "SignatureType": _from_signature,
    "SignatureValueType": lambda e: (dict(e).get("Id"), dict(e)["CH"]),
    "SignedInfoType": lambda e: SignedInfo(
        canonicalization_method=dict(e)["CanonicalizationMethod"],
        signature_method=dict(e)["SignatureMethod"],
        references=_all(e, "Reference"),
        id=dict(e).get("Id"),
    ),
    "CanonicalizationMethodType": lambda e: e[0][1],
    "SignatureMethodType": lambda e: e[0][1],
    "DigestMethodType": lambda e: e[0][1],
    "TransformType": lambda e: e[0][1],
    "ReferenceType": lambda e: Reference(
        uri=dict(e).get("URI"),
        digest_method=dict(e)["DigestMethod"],
        digest_value=dict(e)["DigestValue"],
        transforms=dict(e).get("Transforms", ()),
        id=dict(e).get("Id"),
        type=dict(e).get("Type"),
    ),
    "TransformsType": lambda e: _all(e, "Transform"),
}


def _refused(type_name: str, name: str) -> ExiError:
    if type_name == "BodyType":
        return UnsupportedMessage(
            f"unsupported ISO 15118-2 message body {name}: this codec handles "
            "CertificateInstallationReq/Res and CertificateUpdateReq/Res only",
            body=name,
        )
    return ExiError(f"unsupported EXI content {name} in {type_name} (not used by ISO 15118-2 certificate messages)")


ISO2 = SchemaCodec(
    types=g.TYPES, to_events=_TO_EVENTS, from_events=_FROM_EVENTS, enums=_ENUMS, ch_what=_CH_WHAT, refused=_refused
)
_encode_type = ISO2.encode_type
_decode_type = ISO2.decode_type
_encode_simple = ISO2.encode_simple
_decode_simple = ISO2.decode_simple


# -- framings: document, ISO-2 fragments, xmldsig SignedInfo fragment ------------------------------------


def _reader(data: bytes) -> BitReader:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ExiError(f"EXI input must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_INPUT_BYTES:
        raise ExiError(f"EXI input of {len(data)} bytes exceeds the {MAX_INPUT_BYTES}-byte limit")
    r = BitReader(data)
    header = r.bits(8, "the EXI header")
    if header != g.EXI_HEADER:
        raise ExiError(
            f"not an ISO 15118-2 EXI stream: header byte {header:#04x}, expected 0x80 (no options, no cookie)"
        )
    return r


def _finish(r: BitReader, what: str) -> None:
    # Padding bits in the last byte are insignificant (EXI §8); whole bytes after the end are not.
    if r.remaining >= 8:
        raise ExiError(f"{r.remaining // 8} unexpected byte(s) after the end of the EXI {what}")


def encode_message(message: V2GMessage) -> bytes:
    """Encode a whole ``V2G_Message`` document (header byte 0x80, SE(V2G_Message), content, ED)."""
    if not isinstance(message, V2GMessage):
        raise ExiError(f"encode_message needs a V2GMessage, got {type(message).__name__}")
    w = BitWriter()
    w.bits(g.EXI_HEADER, 8)
    w.bits(g.DOC_V2G_MESSAGE, g.DOC_CONTENT_WIDTH)
    _encode_type(w, "V2G_Message", message)
    # DocEnd offers only ED (comments/PIs are not preserved): a 0-bit event code.
    return w.getvalue()


def decode_message(data: bytes) -> V2GMessage:
    """Decode a ``V2G_Message`` document; other bodies raise :class:`UnsupportedMessage`."""
    r = _reader(data)
    code = r.bits(g.DOC_CONTENT_WIDTH, "the document root")
    if code != g.DOC_V2G_MESSAGE:
        raise ExiError(f"the EXI document root is not V2G_Message (event code {code}, expected {g.DOC_V2G_MESSAGE})")
    message = _FROM_EVENTS["V2G_Message"](_decode_type(r, "V2G_Message"))
    if message.body is None:
        raise ExiError("the V2G_Message Body is empty")
    _finish(r, "document")
    return message


_FRAGMENT_TYPES: dict[type, tuple[str, str]] = {
    CertificateInstallationReq: ("CertificateInstallationReq", "CertificateInstallationReqType"),
    CertificateUpdateReq: ("CertificateUpdateReq", "CertificateUpdateReqType"),
    CertificateChain: ("ContractSignatureCertChain", "CertificateChainType"),
    ContractSignatureEncryptedPrivateKey: (
        "ContractSignatureEncryptedPrivateKey",
        "ContractSignatureEncryptedPrivateKeyType",
    ),
    DHPublicKey: ("DHpublickey", "DiffieHellmanPublickeyType"),
}
_FRAGMENT_BY_CODE: dict[int, str] = {
    g.FRAGMENT_CODES[element]: type_name for element, type_name in _FRAGMENT_TYPES.values()
}


def root_element(value: V2GMessage | Fragment | SignedInfo) -> tuple[str, str]:
    """The element name and schema type a document, fragment or SignedInfo is encoded as."""
    if isinstance(value, V2GMessage):
        return "V2G_Message", "V2G_Message"
    if isinstance(value, SignedInfo):
        return "SignedInfo", "SignedInfoType"
    if isinstance(value, EMAID):
        return "eMAID", "EMAIDType"
    entry = _FRAGMENT_TYPES.get(type(value))
    if entry is None:
        raise ExiError(f"{type(value).__name__} is not an ISO 15118-2 document, fragment or SignedInfo")
    return entry


def schema_events(type_name: str, value: Any) -> list[tuple[str, Any]]:
    """The (schema name, value) pairs of ``value`` as content of ``type_name``, in the order the encoder writes.

    Names are the schema's: attributes (``Id``), child elements (``OEMProvisioningCert``), or ``CH``
    for simple content; the grammar's item for each name is in :data:`grammar.TYPES`.
    """
    return _TO_EVENTS[type_name](value)


def encode_fragment(element: Fragment) -> bytes:
    """Encode a signed element alone as an ISO-2 EXI fragment (the bytes its digest covers)."""
    w = BitWriter()
    w.bits(g.EXI_HEADER, 8)
    if isinstance(element, EMAID):
        _encode_emaid_fragment(w, element)
    else:
        entry = _FRAGMENT_TYPES.get(type(element))
        if entry is None:
            raise ExiError(f"no ISO 15118-2 fragment encoding for {type(element).__name__}")
        if isinstance(element, CertificateChain) and element.id is None:
            raise ExiError("ContractSignatureCertChain needs an Id to be signed as a fragment")
        name, type_name = entry
        w.bits(g.FRAGMENT_CODES[name], g.FRAGMENT_WIDTH)
        _encode_type(w, type_name, element)
    w.bits(g.FRAGMENT_ED, g.FRAGMENT_WIDTH)
    return w.getvalue()


def _encode_emaid_fragment(w: BitWriter, emaid: EMAID) -> None:
    # Generic element fragment grammar (see grammar.py): AT(Id) string, CH string, EE.
    w.bits(g.FRAGMENT_CODES["eMAID"], g.FRAGMENT_WIDTH)
    w.bits(g.ELEMENT_FRAGMENT_AT_ID, g.ELEMENT_FRAGMENT_WIDTH_0)
    _encode_simple(w, g.ID, emaid.id, "eMAID Id")
    w.bits(g.ELEMENT_FRAGMENT_CH, g.ELEMENT_FRAGMENT_WIDTH_0)
    _encode_simple(w, g.EMAID, emaid.value, "eMAID")
    w.bits(g.ELEMENT_FRAGMENT_EE, g.ELEMENT_FRAGMENT_WIDTH_2)


def _decode_emaid_fragment(r: BitReader) -> EMAID:
    for expected, width, what in (
        (g.ELEMENT_FRAGMENT_AT_ID, g.ELEMENT_FRAGMENT_WIDTH_0, "AT(Id)"),
        (g.ELEMENT_FRAGMENT_CH, g.ELEMENT_FRAGMENT_WIDTH_0, "CH"),
        (g.ELEMENT_FRAGMENT_EE, g.ELEMENT_FRAGMENT_WIDTH_2, "EE"),
    ):
        code = r.bits(width, f"the eMAID fragment {what}")
        if code != expected:
            raise ExiError(f"eMAID fragment: expected {what} (code {expected}), got event code {code} at bit {r.pos}")
        if what == "AT(Id)":
            emaid_id = _decode_simple(r, g.ID, "eMAID Id")
        elif what == "CH":
            value = _decode_simple(r, g.EMAID, "eMAID")
    return EMAID(id=emaid_id, value=value)


def decode_fragment(data: bytes) -> Fragment:
    """Decode one of the ISO-2 fragments :func:`encode_fragment` produces."""
    r = _reader(data)
    code = r.bits(g.FRAGMENT_WIDTH, "the fragment element code")
    if code == g.FRAGMENT_CODES["eMAID"]:
        element: Fragment = _decode_emaid_fragment(r)
    elif code in _FRAGMENT_BY_CODE:
        type_name = _FRAGMENT_BY_CODE[code]
        element = _FROM_EVENTS[type_name](_decode_type(r, type_name))
    else:
        raise ExiError(f"unsupported ISO 15118-2 fragment element code {code}")
    end = r.bits(g.FRAGMENT_WIDTH, "the fragment end")
    if end != g.FRAGMENT_ED:
        raise ExiError(f"fragment: expected ED (code {g.FRAGMENT_ED}), got event code {end}; one element only")
    _finish(r, "fragment")
    return element


def encode_signed_info(signed_info: SignedInfo) -> bytes:
    """Encode ``SignedInfo`` as an xmldsig fragment: the bytes the ECDSA signature covers."""
    if not isinstance(signed_info, SignedInfo):
        raise ExiError(f"encode_signed_info needs a SignedInfo, got {type(signed_info).__name__}")
    w = BitWriter()
    w.bits(g.EXI_HEADER, 8)
    w.bits(g.DSIG_FRAGMENT_SIGNED_INFO, g.DSIG_FRAGMENT_WIDTH)
    _encode_type(w, "SignedInfoType", signed_info)
    w.bits(g.DSIG_FRAGMENT_ED, g.DSIG_FRAGMENT_WIDTH)
    return w.getvalue()


def decode_signed_info(data: bytes) -> SignedInfo:
    r = _reader(data)
    code = r.bits(g.DSIG_FRAGMENT_WIDTH, "the xmldsig fragment element code")
    if code != g.DSIG_FRAGMENT_SIGNED_INFO:
        raise ExiError(f"xmldsig fragment: expected SignedInfo (code {g.DSIG_FRAGMENT_SIGNED_INFO}), got {code}")
    signed_info: SignedInfo = _FROM_EVENTS["SignedInfoType"](_decode_type(r, "SignedInfoType"))
    end = r.bits(g.DSIG_FRAGMENT_WIDTH, "the fragment end")
    if end != g.DSIG_FRAGMENT_ED:
        raise ExiError(f"xmldsig fragment: expected ED (code {g.DSIG_FRAGMENT_ED}), got event code {end}")
    _finish(r, "fragment")
    return signed_info
