"""The independent EXI oracle: Siemens' EXIficient (Josev's ``EXICodec.jar``) driven through py4j.

This module owns two things and shares no code with ``pki.iso15118.exi``:

* :class:`Exificient`, a small client for the jar shipped in the ``iso15118==0.31.2`` wheel
  (``iso15118/shared/EXICodec.jar``; installed with ``--no-deps``, no other module of that wheel is
  imported). The jar translates between EXI and a JSON rendering of the schema (reference
  ``iso15118.md`` §3.5). One JVM serves a whole test session (the ``exificient`` fixture in
  ``tests/interop/conftest.py``); :meth:`Exificient.close` shuts the gateway down.
* :func:`to_json` / :func:`from_json` (and the per-element :func:`element_to_json` /
  :func:`element_from_json`), converters between that JSON and the dataclasses of
  ``pki.iso15118.messages``. They are written from the jar's observed JSON conventions only:

  - base64Binary (certificates, keys, digests, signature values) = base64 strings,
    hexBinary (``SessionID``) = hex string (the jar answers upper case),
  - simple content with an attribute = ``{"Id": ..., "value": ...}`` (``SignatureValue`` without
    an Id is ``{"value": ...}``),
  - repeated elements (``Reference``, ``Transform``, ``Certificate`` in ``SubCertificates``,
    ``RootCertificateID``) are arrays in the jar's output; a single object is accepted on input
    and by :func:`from_json`,
  - a fragment is ``{"<ElementName>": {...}}``, a document ``{"V2G_Message": {...}}``,
  - ``X509SerialNumber`` is a JSON integer of any size (negative too).

What the jar can and cannot be trusted for (found while writing this, see also reference §3.5):

* document encode/decode of ``V2G_Message`` with the four certificate bodies: exact;
* ISO-2 fragments of ``ContractSignatureCertChain``, ``ContractSignatureEncryptedPrivateKey``,
  ``DHpublickey``, ``eMAID`` (generic element fragment grammar) and ``CertificateInstallationReq``: exact;
* the xmldsig ``SignedInfo`` fragment is built from a template: only each Reference's ``URI`` and
  ``DigestValue`` are taken from the JSON; the canonicalization, signature, transform and digest
  algorithms are always the ISO 15118-2 ones, Id/Type attributes are dropped and a Reference without
  URI makes it fail. Exact only for SignedInfos of that shape (which is every real one);
* ``CertificateUpdateReq`` fragments: not supported (the jar emits a non-schema stream);
* decoding ISO-2 fragments: not supported (they are read as documents: errors or unrelated messages);
* invalid JSON documents are not rejected by ``encode``: it emits whatever its marshaller produced.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
    "FRAGMENT_NAMES",
    "ISO2",
    "ISO2_FRAGMENT_ED",
    "XMLDSIG",
    "XMLDSIG_FRAGMENT_ED",
    "Exificient",
    "ExificientError",
    "ExificientUnavailable",
    "body_from_json",
    "body_to_json",
    "element_from_json",
    "element_to_json",
    "find_jar",
    "fragment_content_bits",
    "fragment_to_json",
    "from_json",
    "signed_info_from_json",
    "signed_info_to_json",
    "to_bits",
    "to_json",
]

ISO2 = "urn:iso:15118:2:2013:MsgDef"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
CODEC_CLASS = "com.siemens.ct.exi.main.cmd.EXICodec"

Json = dict[str, Any]


class ExificientError(Exception):
    """The jar refused to encode or decode (its last error message is attached)."""


class ExificientUnavailable(Exception):
    """Java, py4j or the ``iso15118`` wheel (with its jar) is missing; the reason is the message."""


def find_jar() -> Path:
    """The ``EXICodec.jar`` inside the installed ``iso15118`` wheel, without importing the package."""
    spec = importlib.util.find_spec("iso15118")
    if spec is None or spec.origin is None:
        raise ExificientUnavailable("the iso15118 wheel is not installed (pip install --no-deps iso15118==0.31.2)")
    jar = Path(spec.origin).parent / "shared" / "EXICodec.jar"
    if not jar.is_file():
        raise ExificientUnavailable(f"iso15118 is installed but {jar} is missing")
    return jar


def _json_text(value: Mapping[str, Any]) -> str:
    # ensure_ascii: characters outside the BMP travel as surrogate-pair escapes, which org.json joins.
    return json.dumps(value, ensure_ascii=True)


class Exificient:
    """One JVM running the jar's ``EXICodec``; not thread-safe (one call at a time)."""

    def __init__(self, jar: Path | None = None) -> None:
        if shutil.which("java") is None:
            raise ExificientUnavailable("no java executable on PATH (Java 17 runs the EXIficient jar)")
        try:
            from py4j.java_gateway import JavaGateway
        except ImportError as exc:
            raise ExificientUnavailable("py4j is not installed") from exc
        self.jar = jar or find_jar()
        self._gateway = JavaGateway.launch_gateway(
            classpath=str(self.jar),
            die_on_exit=True,
            javaopts=["--add-opens", "java.base/java.lang=ALL-UNNAMED"],
        )
        self._codec = getattr(self._gateway.jvm, CODEC_CLASS)()
        self.version = str(self._codec.get_version())

    @property
    def jvm(self) -> Any:
        """The gateway's JVM view, for oracles that drive EXIficient's own classes (``tests.interop.exificient20``)."""
        if self._gateway is None:
            raise ExificientUnavailable("the EXIficient gateway is closed")
        return self._gateway.jvm

    @property
    def codec(self) -> Any:
        """The jar's ``EXICodec`` (JSON ⇄ EXI for every schema the jar knows)."""
        return self._codec

    def close(self) -> None:
        """Shut the gateway and its JVM down (idempotent)."""
        gateway, self._gateway = self._gateway, None
        if gateway is not None:
            gateway.shutdown()

    def __enter__(self) -> Exificient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- raw calls -------------------------------------------------------------------------------

    def decode(self, exi: bytes, namespace: str = ISO2) -> Json:
        """Decode a document (or an xmldsig ``SignedInfo`` fragment) into the jar's JSON (parsed).

        ISO-2 fragments are not decodable: the jar reads them as documents and fails or returns nonsense.
        """
        text = self._codec.decode(bytes(exi), namespace)
        if text is None:
            error = self._codec.get_last_decoding_error()
            raise ExificientError(f"EXIficient cannot decode {bytes(exi)[:16].hex()}…: {error}")
        parsed: Json = json.loads(str(text))
        return parsed

    def decode_xml(self, exi: bytes, namespace: str = ISO2) -> str:
        """Decode like :meth:`decode`, but answer the XML EXIficient decoded to (its JSON is made from it).

        The jar keeps that XML of its last successful decode (``getDecodedExi``); a failed decode raises
        before it could be a stale one.
        """
        self.decode(exi, namespace)
        return str(self._codec.getDecodedExi())

    def encode(self, doc: Mapping[str, Any], namespace: str = ISO2) -> bytes:
        """Encode ``{"V2G_Message": ...}`` (or a fragment ``{"<Element>": ...}``) to EXI."""
        result = self._codec.encode(_json_text(doc), namespace)
        if result is None:
            error = self._codec.get_last_encoding_error()
            raise ExificientError(f"EXIficient cannot encode {next(iter(doc), '?')}: {error}")
        return bytes(result)

    def encode_fragment(self, element_name: str, content: Mapping[str, Any]) -> bytes:
        """ISO-2 fragment of one element, e.g. ``("eMAID", {"Id": "id4", "value": "DE..."})``.

        Only the jar's fragment list is trustworthy (see the module docstring); ``CertificateUpdateReq``
        is refused here instead of silently producing garbage.
        """
        if element_name == "CertificateUpdateReq":
            raise ExificientError("EXIficient cannot fragment-encode CertificateUpdateReq (reference §3.5 item 6)")
        return self.encode({element_name: dict(content)}, ISO2)

    def encode_signed_info(self, signed_info: Mapping[str, Any]) -> bytes:
        """xmldsig fragment of ``SignedInfo`` (content of ``{"SignedInfo": ...}``), what the signer signs."""
        return self.encode({"SignedInfo": dict(signed_info)}, XMLDSIG)


# -- JSON ⇄ dataclasses ----------------------------------------------------------------------------


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _unb64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _items(value: Any) -> list[Any]:
    """A repeated element: the jar writes arrays; accept a lone object as one item."""
    if isinstance(value, list):
        return value
    return [value]


def _chain_to_json(chain: CertificateChain) -> Json:
    out: Json = {}
    if chain.id is not None:
        out["Id"] = chain.id
    out["Certificate"] = _b64(chain.certificate)
    if chain.sub_certificates:
        out["SubCertificates"] = {"Certificate": [_b64(c) for c in chain.sub_certificates]}
    return out


def _chain_from_json(data: Json) -> CertificateChain:
    subs = data.get("SubCertificates")
    return CertificateChain(
        certificate=_unb64(data["Certificate"]),
        sub_certificates=tuple(_unb64(c) for c in _items(subs["Certificate"])) if subs is not None else (),
        id=data.get("Id"),
    )


def _roots_to_json(roots: Sequence[RootCertificateId]) -> Json:
    return {
        "RootCertificateID": [{"X509IssuerName": r.issuer_name, "X509SerialNumber": r.serial_number} for r in roots]
    }


def _roots_from_json(data: Json) -> tuple[RootCertificateId, ...]:
    return tuple(
        RootCertificateId(issuer_name=item["X509IssuerName"], serial_number=int(item["X509SerialNumber"]))
        for item in _items(data["RootCertificateID"])
    )


def _valued_to_json(ident: str, value: str) -> Json:
    return {"Id": ident, "value": value}


def signed_info_to_json(signed_info: SignedInfo) -> Json:
    """``SignedInfoType`` content (without the element name)."""
    out: Json = {}
    if signed_info.id is not None:
        out["Id"] = signed_info.id
    out["CanonicalizationMethod"] = {"Algorithm": signed_info.canonicalization_method}
    out["SignatureMethod"] = {"Algorithm": signed_info.signature_method}
    refs = []
    for ref in signed_info.references:
        item: Json = {}
        if ref.id is not None:
            item["Id"] = ref.id
        if ref.uri is not None:
            item["URI"] = ref.uri
        if ref.type is not None:
            item["Type"] = ref.type
        if ref.transforms:
            item["Transforms"] = {"Transform": [{"Algorithm": t} for t in ref.transforms]}
        item["DigestMethod"] = {"Algorithm": ref.digest_method}
        item["DigestValue"] = _b64(ref.digest_value)
        refs.append(item)
    out["Reference"] = refs
    return out


def signed_info_from_json(data: Json) -> SignedInfo:
    refs = []
    for item in _items(data["Reference"]):
        transforms = item.get("Transforms")
        refs.append(
            Reference(
                uri=item.get("URI"),
                digest_method=item["DigestMethod"]["Algorithm"],
                digest_value=_unb64(item["DigestValue"]),
                transforms=tuple(t["Algorithm"] for t in _items(transforms["Transform"])) if transforms else (),
                id=item.get("Id"),
                type=item.get("Type"),
            )
        )
    return SignedInfo(
        canonicalization_method=data["CanonicalizationMethod"]["Algorithm"],
        signature_method=data["SignatureMethod"]["Algorithm"],
        references=tuple(refs),
        id=data.get("Id"),
    )


def _signature_to_json(sig: Signature) -> Json:
    out: Json = {}
    if sig.id is not None:
        out["Id"] = sig.id
    out["SignedInfo"] = signed_info_to_json(sig.signed_info)
    value: Json = {}
    if sig.signature_value_id is not None:
        value["Id"] = sig.signature_value_id
    value["value"] = _b64(sig.signature_value)
    out["SignatureValue"] = value
    return out


def _signature_from_json(data: Json) -> Signature:
    value = data["SignatureValue"]
    return Signature(
        signed_info=signed_info_from_json(data["SignedInfo"]),
        signature_value=_unb64(value["value"]),
        id=data.get("Id"),
        signature_value_id=value.get("Id"),
    )


def _header_to_json(header: Header) -> Json:
    out: Json = {"SessionID": header.session_id.hex().upper()}
    if header.notification is not None:
        note: Json = {"FaultCode": header.notification.fault_code.value}
        if header.notification.fault_msg is not None:
            note["FaultMsg"] = header.notification.fault_msg
        out["Notification"] = note
    if header.signature is not None:
        out["Signature"] = _signature_to_json(header.signature)
    return out


def _header_from_json(data: Json) -> Header:
    note = data.get("Notification")
    sig = data.get("Signature")
    return Header(
        session_id=bytes.fromhex(data["SessionID"]),
        notification=Notification(FaultCode(note["FaultCode"]), note.get("FaultMsg")) if note is not None else None,
        signature=_signature_from_json(sig) if sig is not None else None,
    )


def _res_to_json(res: CertificateInstallationRes | CertificateUpdateRes) -> Json:
    out: Json = {
        "ResponseCode": res.response_code.value,
        "SAProvisioningCertificateChain": _chain_to_json(res.sa_provisioning_certificate_chain),
        "ContractSignatureCertChain": _chain_to_json(res.contract_signature_cert_chain),
        "ContractSignatureEncryptedPrivateKey": element_to_json(res.contract_signature_encrypted_private_key),
        "DHpublickey": element_to_json(res.dh_public_key),
        "eMAID": element_to_json(res.emaid),
    }
    if isinstance(res, CertificateUpdateRes) and res.retry_counter is not None:
        out["RetryCounter"] = res.retry_counter
    return out


def _res_fields(data: Json) -> dict[str, Any]:
    key = data["ContractSignatureEncryptedPrivateKey"]
    dh = data["DHpublickey"]
    emaid = data["eMAID"]
    return {
        "response_code": ResponseCode(data["ResponseCode"]),
        "sa_provisioning_certificate_chain": _chain_from_json(data["SAProvisioningCertificateChain"]),
        "contract_signature_cert_chain": _chain_from_json(data["ContractSignatureCertChain"]),
        "contract_signature_encrypted_private_key": ContractSignatureEncryptedPrivateKey(
            id=key["Id"], value=_unb64(key["value"])
        ),
        "dh_public_key": DHPublicKey(id=dh["Id"], value=_unb64(dh["value"])),
        "emaid": EMAID(id=emaid["Id"], value=emaid["value"]),
    }


def body_to_json(body: Body) -> Json:
    """``{"<BodyElement>": {...}}`` for one of the four bodies."""
    if isinstance(body, CertificateInstallationReq):
        return {
            "CertificateInstallationReq": {
                "Id": body.id,
                "OEMProvisioningCert": _b64(body.oem_provisioning_cert),
                "ListOfRootCertificateIDs": _roots_to_json(body.root_certificate_ids),
            }
        }
    if isinstance(body, CertificateUpdateReq):
        return {
            "CertificateUpdateReq": {
                "Id": body.id,
                "ContractSignatureCertChain": _chain_to_json(body.contract_signature_cert_chain),
                "eMAID": body.emaid,
                "ListOfRootCertificateIDs": _roots_to_json(body.root_certificate_ids),
            }
        }
    if isinstance(body, CertificateUpdateRes):
        return {"CertificateUpdateRes": _res_to_json(body)}
    if isinstance(body, CertificateInstallationRes):
        return {"CertificateInstallationRes": _res_to_json(body)}
    raise TypeError(f"not a certificate body: {type(body).__name__}")


def body_from_json(data: Json) -> Body:
    (name, content), *rest = data.items()
    if rest:
        raise ValueError(f"Body holds more than one element: {list(data)}")
    if name == "CertificateInstallationReq":
        return CertificateInstallationReq(
            id=content["Id"],
            oem_provisioning_cert=_unb64(content["OEMProvisioningCert"]),
            root_certificate_ids=_roots_from_json(content["ListOfRootCertificateIDs"]),
        )
    if name == "CertificateUpdateReq":
        return CertificateUpdateReq(
            id=content["Id"],
            contract_signature_cert_chain=_chain_from_json(content["ContractSignatureCertChain"]),
            emaid=content["eMAID"],
            root_certificate_ids=_roots_from_json(content["ListOfRootCertificateIDs"]),
        )
    if name == "CertificateInstallationRes":
        return CertificateInstallationRes(**_res_fields(content))
    if name == "CertificateUpdateRes":
        retry = content.get("RetryCounter")
        return CertificateUpdateRes(**_res_fields(content), retry_counter=int(retry) if retry is not None else None)
    raise ValueError(f"not a certificate body: {name}")


def to_json(message: V2GMessage) -> Json:
    """The jar's JSON for a whole ``V2G_Message``."""
    return {"V2G_Message": {"Header": _header_to_json(message.header), "Body": body_to_json(message.body)}}


def from_json(data: Json) -> V2GMessage:
    """A ``V2GMessage`` from the jar's JSON of a document."""
    msg = data["V2G_Message"]
    return V2GMessage(header=_header_from_json(msg["Header"]), body=body_from_json(msg["Body"]))


Element = (
    CertificateChain
    | ContractSignatureEncryptedPrivateKey
    | DHPublicKey
    | EMAID
    | CertificateInstallationReq
    | CertificateUpdateReq
)


def element_to_json(element: Element) -> Json:
    """Content JSON of a fragment element (a ``CertificateChain`` stands for ``ContractSignatureCertChain``)."""
    if isinstance(element, CertificateChain):
        return _chain_to_json(element)
    if isinstance(element, ContractSignatureEncryptedPrivateKey | DHPublicKey | EMAID):
        value = element.value if isinstance(element, EMAID) else _b64(element.value)
        return _valued_to_json(element.id, value)
    if isinstance(element, CertificateInstallationReq | CertificateUpdateReq):
        (content,) = body_to_json(element).values()
        return content
    raise TypeError(f"not a fragment element: {type(element).__name__}")


FRAGMENT_NAMES: dict[type, str] = {
    CertificateChain: "ContractSignatureCertChain",
    ContractSignatureEncryptedPrivateKey: "ContractSignatureEncryptedPrivateKey",
    DHPublicKey: "DHpublickey",
    EMAID: "eMAID",
    CertificateInstallationReq: "CertificateInstallationReq",
    CertificateUpdateReq: "CertificateUpdateReq",
}


def fragment_to_json(element: Element) -> Json:
    """``{"<ElementName>": content}`` as the jar takes and returns fragments."""
    return {FRAGMENT_NAMES[type(element)]: element_to_json(element)}


def element_from_json(data: Json) -> Element:
    """The dataclass of a fragment ``{"<ElementName>": content}``."""
    ((name, content),) = data.items()
    if name == "ContractSignatureCertChain":
        return _chain_from_json(content)
    if name == "ContractSignatureEncryptedPrivateKey":
        return ContractSignatureEncryptedPrivateKey(id=content["Id"], value=_unb64(content["value"]))
    if name == "DHpublickey":
        return DHPublicKey(id=content["Id"], value=_unb64(content["value"]))
    if name == "eMAID":
        return EMAID(id=content["Id"], value=content["value"])
    if name in ("CertificateInstallationReq", "CertificateUpdateReq"):
        body = body_from_json(data)
        assert isinstance(body, CertificateInstallationReq | CertificateUpdateReq)
        return body
    raise ValueError(f"not a fragment element: {name}")


# -- bit views (for the "fragment bits = document bits" property) ------------------------------------

ISO2_FRAGMENT_ED = 244  # 8-bit ED of the ISO-2 fragment grammar (243 element names, SE(*), ED)
XMLDSIG_FRAGMENT_ED = 46  # 6-bit ED of the xmldsig fragment grammar (45 element names, SE(*), ED); SE(SignedInfo) = 32


def to_bits(data: bytes) -> str:
    """``data`` as a string of '0'/'1', most significant bit first (EXI bit-packed order)."""
    return "".join(f"{byte:08b}" for byte in data)


def fragment_content_bits(fragment: bytes, *, code_bits: int = 8, ed_code: int = ISO2_FRAGMENT_ED) -> str:
    """The element content bits of a one-element fragment: strip header, SE code, ED and zero padding.

    The ED code followed by zero padding is unambiguous for 244 (``11110100``): no shift of it by
    1–7 bits agrees with itself on the overlap.
    """
    bits = to_bits(fragment)
    if bits[:8] != "10000000":
        raise ValueError(f"not an EXI stream with the ISO 15118 header: {fragment[:4].hex()}")
    ed = f"{ed_code:0{code_bits}b}"
    for pad in range(8):
        end = len(bits) - pad
        if set(bits[end:]) <= {"0"} and bits[end - len(ed) : end] == ed:
            return bits[8 + code_bits : end - len(ed)]
    raise ValueError(f"no ED {ed_code} before the padding of {fragment[-4:].hex()}")
