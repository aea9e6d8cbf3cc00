"""``evpki exi decode`` names what it prints as EXIficient's XML does: same elements, attributes, nesting.

The oracle is the XML the EXIficient jar decodes our EXI to (:meth:`Exificient.decode_xml`); our side
is the command's own output, XML by default and ``--json``. Namespaces are compared away (we print
none); element order, attribute names and every simple value must be the same.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from cli.main import app
from pki.iso15118.exi import encode_message, encode_signed_info
from pki.iso15118.messages import V2GMessage
from tests.interop.exificient import XMLDSIG, Exificient
from tests.pki.iso15118 import samples

pytestmark = pytest.mark.interop

SAMPLES: dict[str, Callable[[], V2GMessage]] = {
    "install_req": samples.install_req,
    "install_res": samples.install_res,
    "update_req": samples.update_req,
    "update_res": samples.update_res,
    "edge_res": samples.edge_res,
    "edge_req": samples.edge_req,
}

# (name, attributes, text, children): an element with namespaces dropped; text only for leaves.
Node = tuple[str, tuple[tuple[str, str], ...], str | None, tuple[Any, ...]]


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _node(element: ElementTree.Element) -> Node:
    children = tuple(_node(child) for child in element)
    attributes = tuple(sorted((_local(k), v) for k, v in element.attrib.items()))
    # Indentation is text of elements with children; a leaf's text is its value ("" when empty).
    text = None if children else (element.text or "")
    return _local(element.tag), attributes, text, children


def _decode(*args: str) -> str:
    result = CliRunner().invoke(app, ["exi", "decode", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def _assert_json_follows(xml: ElementTree.Element, value: Any, path: str) -> None:
    """The JSON has the XML's attributes and child elements as keys, in order, lists for repeats."""
    attributes = {_local(k): v for k, v in xml.attrib.items()}
    children = list(xml)
    if not children and not attributes:
        return  # a simple value: the CLI may summarise it (certificates, X509SerialNumber)
    assert isinstance(value, dict), path
    names = list(dict.fromkeys(_local(child.tag) for child in children))
    keys = [key for key in value if key != "value"]  # "value": simple content next to attributes
    assert set(keys[: len(attributes)]) == set(attributes) and keys[len(attributes) :] == names, path
    for name, text in attributes.items():
        assert value[name] == text, f"{path}/@{name}"
    for name in names:
        group = [child for child in children if _local(child.tag) == name]
        entries = value[name] if isinstance(value[name], list) else [value[name]]
        assert len(entries) == len(group), f"{path}/{name}"
        for child, entry in zip(group, entries, strict=True):
            _assert_json_follows(child, entry, f"{path}/{name}")


@pytest.mark.parametrize("name", SAMPLES)
def test_decode_prints_the_element_tree_exificient_decodes(exificient: Exificient, name: str) -> None:
    exi = encode_message(SAMPLES[name]())
    theirs = ElementTree.fromstring(exificient.decode_xml(exi))
    ours = ElementTree.fromstring(_decode(base64.b64encode(exi).decode()))
    assert _node(ours) == _node(theirs)


@pytest.mark.parametrize("name", SAMPLES)
def test_decode_json_is_keyed_by_the_same_names(exificient: Exificient, name: str) -> None:
    exi = encode_message(SAMPLES[name]())
    theirs = ElementTree.fromstring(exificient.decode_xml(exi))
    ours = json.loads(_decode("--json", base64.b64encode(exi).decode()))
    assert list(ours) == [_local(theirs.tag)] == ["V2G_Message"]
    _assert_json_follows(theirs, ours["V2G_Message"], "V2G_Message")


def test_signed_info_prints_as_exificient_decodes_the_xmldsig_fragment(exificient: Exificient) -> None:
    signed_info = samples.install_res().header.signature.signed_info  # type: ignore[union-attr]
    exi = encode_signed_info(signed_info)
    theirs = ElementTree.fromstring(exificient.decode_xml(exi, XMLDSIG))
    ours = ElementTree.fromstring(_decode("--signed-info", base64.b64encode(exi).decode()))
    assert _node(ours) == _node(theirs)
