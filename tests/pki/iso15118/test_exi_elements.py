"""The schema's view of a decoded message (pki.iso15118.exi.elements): names, nesting, lexical values."""

from __future__ import annotations

import base64
from xml.etree import ElementTree

import pytest

from pki.iso15118.exi import ExiError, decode_message, encode_message
from pki.iso15118.exi.elements import SchemaElement, element_tree, to_xml
from pki.iso15118.messages import (
    ContractSignatureEncryptedPrivateKey,
    DHPublicKey,
    FaultCode,
    Header,
    Notification,
    RootCertificateId,
)
from tests.pki.iso15118 import samples


def _child(element: SchemaElement, name: str) -> SchemaElement:
    return next(child for child in element.children if child.name == name)


def test_an_installation_request_reads_with_the_schema_names() -> None:
    tree = element_tree(decode_message(encode_message(samples.install_req())))
    assert tree.name == "V2G_Message" and [c.name for c in tree.children] == ["Header", "Body"]
    header = _child(tree, "Header")
    assert [c.name for c in header.children] == ["SessionID", "Signature"]
    assert _child(header, "SessionID").text == "69FC09895168C8B2"  # xs:hexBinary, as EXIficient writes it
    request = _child(_child(tree, "Body"), "CertificateInstallationReq")  # the body element is named
    assert request.attributes == (("Id", "ID1"),)
    assert [c.name for c in request.children] == ["OEMProvisioningCert", "ListOfRootCertificateIDs"]
    certificate = _child(request, "OEMProvisioningCert")
    assert (
        certificate.simple_type == "certificateType"
        and certificate.text == base64.b64encode(samples.blob("oem", 520)).decode()
    )
    roots = _child(request, "ListOfRootCertificateIDs").children
    assert [r.name for r in roots] == ["RootCertificateID"] * 2 and all(r.repeatable for r in roots)
    assert [(c.name, c.text) for c in roots[1].children] == [
        ("X509IssuerName", "CN=V2GRootCA,O=Switch,C=UK,DC=V2G"),
        ("X509SerialNumber", "12345"),
    ]


def test_simple_content_with_an_id_and_enumerations() -> None:
    tree = element_tree(samples.install_res())
    response = _child(_child(tree, "Body"), "CertificateInstallationRes")
    assert [c.name for c in response.children] == [
        "ResponseCode",
        "SAProvisioningCertificateChain",
        "ContractSignatureCertChain",
        "ContractSignatureEncryptedPrivateKey",
        "DHpublickey",
        "eMAID",
    ]
    assert _child(response, "ResponseCode").text == "OK"
    emaid = _child(response, "eMAID")
    assert emaid.attributes == (("Id", "ID4"),) and emaid.text == "EMP99CQAPAB004" and not emaid.children
    subs = _child(_child(response, "SAProvisioningCertificateChain"), "SubCertificates")
    assert [(c.name, c.repeatable) for c in subs.children] == [("Certificate", True)] * 2


@pytest.mark.parametrize(
    ("fragment", "name"),
    [
        (samples.install_req().body, "CertificateInstallationReq"),
        (samples.contract_chain(), "ContractSignatureCertChain"),
        (ContractSignatureEncryptedPrivateKey("ID2", b"\x01"), "ContractSignatureEncryptedPrivateKey"),
        (DHPublicKey("ID3", b"\x04"), "DHpublickey"),
        (samples.install_res().body.emaid, "eMAID"),  # type: ignore[union-attr]
        (samples.signature("ID1").signed_info, "SignedInfo"),
    ],
)
def test_fragments_are_named_as_they_are_encoded(fragment: object, name: str) -> None:
    assert element_tree(fragment).name == name  # type: ignore[arg-type]


def test_a_value_that_is_no_document_or_fragment_is_refused() -> None:
    with pytest.raises(ExiError):
        element_tree(RootCertificateId("CN=x", 1))  # type: ignore[arg-type]


def test_xml_rendering_parses_with_comments_after_their_element() -> None:
    tree = element_tree(samples.update_res())
    xml = to_xml(tree, comment=lambda element: "a -- b" if element.name == "eMAID" else None)
    assert '<eMAID Id="id4">DEABCC123ABC56</eMAID>\n      <!-- a - - b -->' in xml  # "--" is not allowed in comments
    root = ElementTree.fromstring(xml)
    assert root.findtext("Header/SessionID") == ""
    assert root.findtext("Header/Notification/FaultMsg") == "Grüße ✓ 𝄞 msg"
    assert root.findtext("Body/CertificateUpdateRes/RetryCounter") == "-5"


def test_control_characters_are_shown_as_character_references() -> None:
    message = samples.update_res()
    header = Header(b"\x0a", notification=Notification(FaultCode.UNKNOWN_ERROR, "bad\x1b[31m <&>"))
    xml = to_xml(element_tree(type(message)(header, message.body)))
    # A terminal never sees the escape; XML 1.0 has no such character, so a reader is told which it was.
    assert "\x1b" not in xml and "<FaultMsg>bad&#x1B;[31m &lt;&amp;&gt;</FaultMsg>" in xml
    assert "<SessionID>0A</SessionID>" in xml
