"""The independent ISO 15118-20 EXI oracle: EXIficient's own classes inside Josev's jar, driven with XML.

This module shares no code with ``pki.iso15118.exi20``. It drives the EXIficient core that the jar
bundles (``DefaultEXIFactory`` with the precompiled grammar ``ISO15118_20_V2G_CI_CommonMessages``,
or ``XMLDSIG_Core_Schema_Grammar`` for SignedInfo) through the JVM of the session's
:class:`~tests.interop.exificient.Exificient` client, so the -2 and -20 tests share one JVM:

* documents: SAX events of an XML text into an ``EXIResult``; decoding an ``EXISource`` back to XML;
* fragments (``OEMProvisioningCertificateChain``, ``SignedInstallationData``) the same way with
  ``setFragment(true)`` — the jar's JSON front end cannot make a ``SignedInstallationData``
  fragment (it silently answers a document, reference iso15118.md §2.6);
* SignedInfo with the xmldsig grammar in fragment mode — the jar's JSON SignedInfo helper forces
  the -2 algorithms, this path takes any.

The factory options are the jar's own (``AbstractEXICodec``: value string table off, no built-in
element grammars or productions — every string is a literal), everything else EXIficient's
defaults (non-strict, bit-packed, header without options). The converters between XML and the
dataclasses of ``pki.iso15118.messages20`` know only the schema's element names and namespaces:
``elementFormDefault``/``attributeFormDefault`` are qualified in both -20 schemas, so each local
element and ``Id`` attribute lives in the namespace of the schema that declares it (``Header``,
``SessionID``, ``ResponseCode``, ``RootCertificateID`` in CommonTypes; xmldsig content in xmldsig).
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from typing import Any

from pki.iso15118.messages import Reference, RootCertificateId, Signature, SignedInfo
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
from tests.interop.exificient import Exificient, ExificientError

__all__ = [
    "CM",
    "CT",
    "DS",
    "Exificient20",
    "fragment_from_xml",
    "fragment_to_xml",
    "message_from_xml",
    "message_to_xml",
    "signed_info_from_xml",
    "signed_info_to_xml",
]

CM = "urn:iso:std:iso:15118:-20:CommonMessages"
CT = "urn:iso:std:iso:15118:-20:CommonTypes"
DS = "http://www.w3.org/2000/09/xmldsig#"
GRAMMARS = "com.siemens.ct.exi.main.generatedgrammar"

Message = CertificateInstallationReq | CertificateInstallationRes
Fragment = SignedCertificateChain | SignedInstallationData


class Exificient20:
    """EXIficient (-20 CommonMessages and xmldsig grammars) on the JVM of an :class:`Exificient` client."""

    def __init__(self, client: Exificient) -> None:
        self.client = client
        jvm = client.jvm
        self._jvm = jvm
        grammar20 = getattr(jvm, f"{GRAMMARS}.ISO15118_20_V2G_CI_CommonMessages")()
        dsig = getattr(jvm, f"{GRAMMARS}.XMLDSIG_Core_Schema_Grammar")()
        self._factories = {
            "document": self._factory(grammar20, fragment=False),
            "fragment": self._factory(grammar20, fragment=True),
            "signed_info": self._factory(dsig, fragment=True),
            "strict": self._factory(grammar20, fragment=False, strict=True),
        }
        parsers = jvm.javax.xml.parsers.SAXParserFactory.newInstance()
        parsers.setNamespaceAware(True)
        self._xml_reader = parsers.newSAXParser().getXMLReader()
        self._transformer = jvm.javax.xml.transform.TransformerFactory.newInstance().newTransformer()

    def _factory(self, grammars: Any, *, fragment: bool, strict: bool = False) -> Any:
        factory = self._jvm.com.siemens.ct.exi.core.helpers.DefaultEXIFactory.newInstance()
        # AbstractEXICodec's options (javap of the jar): no value string table, no built-in grammars.
        factory.setValueMaxLength(0)
        factory.setValuePartitionCapacity(0)
        factory.setMaximumNumberOfBuiltInElementGrammars(0)
        factory.setMaximumNumberOfBuiltInProductions(0)
        factory.setGrammars(grammars)
        factory.setFragment(fragment)
        if strict:
            factory.setFidelityOptions(self._jvm.com.siemens.ct.exi.core.FidelityOptions.createStrict())
        return factory

    def encode_xml(self, xml: str, kind: str = "document") -> bytes:
        """EXI of an XML text; ``kind`` is document, fragment, signed_info or strict (a document, strict grammars)."""
        jvm = self._jvm
        out = jvm.java.io.ByteArrayOutputStream()
        result = jvm.com.siemens.ct.exi.main.api.sax.EXIResult(self._factories[kind])
        result.setOutputStream(out)
        self._xml_reader.setContentHandler(result.getHandler())
        try:
            self._xml_reader.parse(jvm.org.xml.sax.InputSource(jvm.java.io.StringReader(xml)))
        except Exception as exc:  # py4j's Py4JJavaError: the encoder refused the events
            raise ExificientError(f"EXIficient cannot encode this {kind}: {exc}") from exc
        return bytes(out.toByteArray())

    def decode_xml(self, data: bytes, kind: str = "document") -> str:
        """The XML text EXIficient decodes ``data`` to."""
        jvm = self._jvm
        source = jvm.com.siemens.ct.exi.main.api.sax.EXISource(self._factories[kind])
        writer = jvm.java.io.StringWriter()
        sax_source = jvm.javax.xml.transform.sax.SAXSource(
            source.getXMLReader(), jvm.org.xml.sax.InputSource(jvm.java.io.ByteArrayInputStream(bytes(data)))
        )
        try:
            self._transformer.transform(sax_source, jvm.javax.xml.transform.stream.StreamResult(writer))
        except Exception as exc:
            raise ExificientError(f"EXIficient cannot decode this {kind}: {exc}") from exc
        return str(writer.toString())

    # -- dataclass conveniences --------------------------------------------------------------------

    def encode_message(self, message: Message) -> bytes:
        return self.encode_xml(message_to_xml(message))

    def decode_message(self, data: bytes) -> Message:
        return message_from_xml(self.decode_xml(data))

    def encode_fragment(self, element: Fragment) -> bytes:
        return self.encode_xml(fragment_to_xml(element), "fragment")

    def decode_fragment(self, data: bytes) -> Fragment:
        return fragment_from_xml(self.decode_xml(data, "fragment"))

    def encode_signed_info(self, signed_info: SignedInfo) -> bytes:
        return self.encode_xml(signed_info_to_xml(signed_info), "signed_info")

    def decode_signed_info(self, data: bytes) -> SignedInfo:
        return signed_info_from_xml(self.decode_xml(data, "signed_info"))


# -- dataclasses → XML --------------------------------------------------------------------------------


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _sub(parent: ET.Element, ns: str, name: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, f"{{{ns}}}{name}")
    child.text = text
    return child


def _chain_xml(parent: ET.Element, name: str, chain: Any, chain_id: str | None = None) -> None:
    node = _sub(parent, CM, name)
    if chain_id is not None:
        node.set(f"{{{CM}}}Id", chain_id)
    _sub(node, CM, "Certificate", _b64(chain.certificate))
    if chain.sub_certificates:
        subs = _sub(node, CM, "SubCertificates")
        for cert in chain.sub_certificates:
            _sub(subs, CM, "Certificate", _b64(cert))


def _signed_info_xml(parent: ET.Element | None, si: SignedInfo) -> ET.Element:
    node = ET.Element(f"{{{DS}}}SignedInfo") if parent is None else _sub(parent, DS, "SignedInfo")
    if si.id is not None:
        node.set("Id", si.id)
    _sub(node, DS, "CanonicalizationMethod").set("Algorithm", si.canonicalization_method)
    _sub(node, DS, "SignatureMethod").set("Algorithm", si.signature_method)
    for ref in si.references:
        r = _sub(node, DS, "Reference")
        for attr, value in (("Id", ref.id), ("URI", ref.uri), ("Type", ref.type)):
            if value is not None:
                r.set(attr, value)
        if ref.transforms:
            transforms = _sub(r, DS, "Transforms")
            for algorithm in ref.transforms:
                _sub(transforms, DS, "Transform").set("Algorithm", algorithm)
        _sub(r, DS, "DigestMethod").set("Algorithm", ref.digest_method)
        _sub(r, DS, "DigestValue", _b64(ref.digest_value))
    return node


def _header_xml(parent: ET.Element, header: MessageHeader) -> None:
    node = _sub(parent, CT, "Header")
    _sub(node, CT, "SessionID", header.session_id.hex().upper())
    _sub(node, CT, "TimeStamp", str(header.timestamp))
    sig = header.signature
    if sig is not None:
        s = _sub(node, DS, "Signature")
        if sig.id is not None:
            s.set("Id", sig.id)
        _signed_info_xml(s, sig.signed_info)
        value = _sub(s, DS, "SignatureValue", _b64(sig.signature_value))
        if sig.signature_value_id is not None:
            value.set("Id", sig.signature_value_id)


def _installation_data_xml(parent: ET.Element | None, data: SignedInstallationData) -> ET.Element:
    tag = f"{{{CM}}}SignedInstallationData"
    node = ET.Element(tag) if parent is None else ET.SubElement(parent, tag)
    node.set(f"{{{CM}}}Id", data.id)
    _chain_xml(node, "ContractCertificateChain", data.contract_certificate_chain)
    _sub(node, CM, "ECDHCurve", data.ecdh_curve.value)
    _sub(node, CM, "DHPublicKey", _b64(data.dh_public_key))
    key = data.encrypted_private_key
    _sub(node, CM, key.key_type.value, _b64(key.value))
    return node


def _text(node: ET.Element) -> str:
    return ET.tostring(node, encoding="unicode")


def message_to_xml(message: Message) -> str:
    """The XML of a -20 message document (its root is the message element)."""
    if isinstance(message, CertificateInstallationReq):
        root = ET.Element(f"{{{CM}}}CertificateInstallationReq")
        _header_xml(root, message.header)
        chain = message.oem_provisioning_certificate_chain
        _chain_xml(root, "OEMProvisioningCertificateChain", chain, chain.id)
        roots = _sub(root, CM, "ListOfRootCertificateIDs")
        for rid in message.root_certificate_ids:
            node = _sub(roots, CT, "RootCertificateID")
            _sub(node, DS, "X509IssuerName", rid.issuer_name)
            _sub(node, DS, "X509SerialNumber", str(rid.serial_number))
        _sub(root, CM, "MaximumContractCertificateChains", str(message.maximum_contract_certificate_chains))
        if message.prioritized_emaids:
            emaids = _sub(root, CM, "PrioritizedEMAIDs")
            for emaid in message.prioritized_emaids:
                _sub(emaids, CM, "EMAID", emaid)
        return _text(root)
    root = ET.Element(f"{{{CM}}}CertificateInstallationRes")
    _header_xml(root, message.header)
    _sub(root, CT, "ResponseCode", message.response_code.value)
    _sub(root, CM, "EVSEProcessing", message.evse_processing.value)
    _chain_xml(root, "CPSCertificateChain", message.cps_certificate_chain)
    _installation_data_xml(root, message.signed_installation_data)
    _sub(root, CM, "RemainingContractCertificateChains", str(message.remaining_contract_certificate_chains))
    return _text(root)


def fragment_to_xml(element: Fragment) -> str:
    """The XML of a signed fragment: ``OEMProvisioningCertificateChain`` or ``SignedInstallationData``."""
    if isinstance(element, SignedCertificateChain):
        holder = ET.Element("holder")
        _chain_xml(holder, "OEMProvisioningCertificateChain", element, element.id)
        return _text(holder[0])
    return _text(_installation_data_xml(None, element))


def signed_info_to_xml(signed_info: SignedInfo) -> str:
    return _text(_signed_info_xml(None, signed_info))


# -- XML → dataclasses --------------------------------------------------------------------------------


def _local(node: ET.Element) -> str:
    return node.tag.rsplit("}", 1)[-1]


def _child(node: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in node if _local(c) == name), None)


def _need(node: ET.Element, name: str) -> ET.Element:
    child = _child(node, name)
    if child is None:
        raise ValueError(f"{_local(node)} has no {name}")
    return child


def _str(node: ET.Element) -> str:
    return node.text or ""


def _unb64(node: ET.Element) -> bytes:
    return base64.b64decode("".join(_str(node).split()), validate=True)


def _attr(node: ET.Element, name: str) -> str | None:
    # Qualified ({CommonMessages}Id) or not (xmldsig): match the local name.
    return next((v for k, v in node.attrib.items() if k.rsplit("}", 1)[-1] == name), None)


def _subs_from(node: ET.Element) -> tuple[bytes, ...]:
    subs = _child(node, "SubCertificates")
    return () if subs is None else tuple(_unb64(c) for c in subs)


def _signed_info_from(node: ET.Element) -> SignedInfo:
    refs = []
    for ref in (c for c in node if _local(c) == "Reference"):
        transforms = _child(ref, "Transforms")
        refs.append(
            Reference(
                uri=_attr(ref, "URI"),
                digest_method=_attr(_need(ref, "DigestMethod"), "Algorithm") or "",
                digest_value=_unb64(_need(ref, "DigestValue")),
                transforms=tuple(_attr(t, "Algorithm") or "" for t in transforms) if transforms is not None else (),
                id=_attr(ref, "Id"),
                type=_attr(ref, "Type"),
            )
        )
    return SignedInfo(
        canonicalization_method=_attr(_need(node, "CanonicalizationMethod"), "Algorithm") or "",
        signature_method=_attr(_need(node, "SignatureMethod"), "Algorithm") or "",
        references=tuple(refs),
        id=_attr(node, "Id"),
    )


def _header_from(node: ET.Element) -> MessageHeader:
    sig = _child(node, "Signature")
    signature = None
    if sig is not None:
        value = _need(sig, "SignatureValue")
        signature = Signature(
            signed_info=_signed_info_from(_need(sig, "SignedInfo")),
            signature_value=_unb64(value),
            id=_attr(sig, "Id"),
            signature_value_id=_attr(value, "Id"),
        )
    return MessageHeader(
        session_id=bytes.fromhex(_str(_need(node, "SessionID"))),
        timestamp=int(_str(_need(node, "TimeStamp"))),
        signature=signature,
    )


def _installation_data_from(node: ET.Element) -> SignedInstallationData:
    chain = _need(node, "ContractCertificateChain")
    key = next(c for c in node if _local(c).endswith("_EncryptedPrivateKey"))
    return SignedInstallationData(
        id=_attr(node, "Id") or "",
        contract_certificate_chain=ContractCertificateChain(_unb64(_need(chain, "Certificate")), _subs_from(chain)),
        ecdh_curve=ECDHCurve(_str(_need(node, "ECDHCurve"))),
        dh_public_key=_unb64(_need(node, "DHPublicKey")),
        encrypted_private_key=EncryptedPrivateKey(EncryptedKeyType(_local(key)), _unb64(key)),
    )


def message_from_xml(xml: str) -> Message:
    root = ET.fromstring(xml)
    header = _header_from(_need(root, "Header"))
    if _local(root) == "CertificateInstallationReq":
        chain = _need(root, "OEMProvisioningCertificateChain")
        emaids = _child(root, "PrioritizedEMAIDs")
        return CertificateInstallationReq(
            header=header,
            oem_provisioning_certificate_chain=SignedCertificateChain(
                _attr(chain, "Id") or "", _unb64(_need(chain, "Certificate")), _subs_from(chain)
            ),
            root_certificate_ids=tuple(
                RootCertificateId(_str(_need(r, "X509IssuerName")), int(_str(_need(r, "X509SerialNumber"))))
                for r in _need(root, "ListOfRootCertificateIDs")
            ),
            maximum_contract_certificate_chains=int(_str(_need(root, "MaximumContractCertificateChains"))),
            prioritized_emaids=tuple(_str(e) for e in emaids) if emaids is not None else (),
        )
    if _local(root) != "CertificateInstallationRes":
        raise ValueError(f"not a certificate installation message: {_local(root)}")
    cps = _need(root, "CPSCertificateChain")
    return CertificateInstallationRes(
        header=header,
        response_code=ResponseCode(_str(_need(root, "ResponseCode"))),
        evse_processing=Processing(_str(_need(root, "EVSEProcessing"))),
        cps_certificate_chain=CertificateChain(_unb64(_need(cps, "Certificate")), _subs_from(cps)),
        signed_installation_data=_installation_data_from(_need(root, "SignedInstallationData")),
        remaining_contract_certificate_chains=int(_str(_need(root, "RemainingContractCertificateChains"))),
    )


def fragment_from_xml(xml: str) -> Fragment:
    root = ET.fromstring(xml)
    if _local(root) == "OEMProvisioningCertificateChain":
        return SignedCertificateChain(_attr(root, "Id") or "", _unb64(_need(root, "Certificate")), _subs_from(root))
    if _local(root) == "SignedInstallationData":
        return _installation_data_from(root)
    raise ValueError(f"not a -20 signed fragment: {_local(root)}")


def signed_info_from_xml(xml: str) -> SignedInfo:
    return _signed_info_from(ET.fromstring(xml))
