"""A decoded ISO 15118-2 message as its XML reads: the schema's element and attribute names, in order.

The typed messages (:mod:`pki.iso15118.messages`) use Python names (``oem_provisioning_cert``); a
user comparing with the standard or with another codec (EXIficient writes XML) needs the schema's
(``OEMProvisioningCert``). No second list of names is kept here: the tree is walked with the
codec's own adapters (a :class:`~pki.iso15118.exi.engine.SchemaCodec`'s ``to_events``, what the
encoder writes) and its grammar tables (which say whether a name is an attribute, simple content
or a child element of which type) — so the names are exactly those that travel in the EXI
stream. :func:`element_tree` walks ISO-2 values, :func:`schema_tree` those of another schema set
(the ISO 15118-20 codec's ``element_tree`` uses it).

Namespaces are not part of the tree: the grammar tables do not record them (EXI codes do not
carry them either), and a local name is unique within its parent in this subset of the schema.
"""

from __future__ import annotations

import base64
import enum
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pki.iso15118.exi import grammar as g
from pki.iso15118.exi.codec import ISO2, Fragment, root_element
from pki.iso15118.exi.engine import SchemaCodec
from pki.iso15118.messages import SignedInfo, V2GMessage

__all__ = ["SchemaElement", "element_tree", "schema_tree", "to_xml"]

# C0/C1 controls are not printable (and not XML 1.0 text): shown as character references instead.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class SchemaElement:
    """One element: its schema name, attributes and children in schema order, and simple content.

    ``text`` is the XML (lexical) form of the simple content — base64 for xs:base64Binary, upper-case
    hex for xs:hexBinary (SessionID), decimal integers, enumeration values — and ``value`` the decoded
    Python value; both are ``None`` for element-only content. ``repeatable`` marks an element the
    schema allows more than once in its parent (maxOccurs > 1), which a JSON rendering makes a list.
    """

    name: str
    attributes: tuple[tuple[str, str], ...] = ()
    children: tuple[SchemaElement, ...] = ()
    text: str | None = None
    value: Any = None
    simple_type: str | None = None  # schema type of the simple content, e.g. "certificateType"
    repeatable: bool = False


def _lexical(simple: g.Simple, value: Any) -> str:
    if isinstance(value, bytes):
        if simple.hex_binary:
            return value.hex().upper()
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _item(ctype: g.ComplexType, name: str) -> g.Item:
    # A name's item in its type's content model (BodyType's single item lists all body names).
    return next(item for item in ctype.items if name in item.names)


def _element(codec: SchemaCodec, name: str, type_name: str, value: Any, *, repeatable: bool = False) -> SchemaElement:
    ctype = codec.types[type_name]
    attributes: list[tuple[str, str]] = []
    children: list[SchemaElement] = []
    text: str | None = None
    content_value: Any = None
    simple_type: str | None = None
    for event, event_value in codec.to_events[type_name](value):
        item = _item(ctype, event)
        content = g.content_of(item, event)
        many = item.max is None or item.max > 1
        if item.kind == "AT":
            assert isinstance(content, g.Simple)
            attributes.append((event, _lexical(content, event_value)))
        elif item.kind == "CH":  # simple content of this element (after its attributes)
            assert isinstance(content, g.Simple)
            text, content_value, simple_type = _lexical(content, event_value), event_value, content.schema_type
        elif isinstance(content, g.Simple):  # a simple-typed child element: <SessionID>05</SessionID>
            children.append(
                SchemaElement(
                    event,
                    text=_lexical(content, event_value),
                    value=event_value,
                    simple_type=content.schema_type,
                    repeatable=many,
                )
            )
        else:
            assert isinstance(content, str)  # decoded values never hold what the codec refuses
            children.append(_element(codec, event, content, event_value, repeatable=many))
    return SchemaElement(
        name,
        attributes=tuple(attributes),
        children=tuple(children),
        text=text,
        value=content_value,
        simple_type=simple_type,
        repeatable=repeatable,
    )


def element_tree(decoded: V2GMessage | Fragment | SignedInfo) -> SchemaElement:
    """The element tree of a decoded document (``V2G_Message``), ISO-2 fragment or xmldsig SignedInfo."""
    name, type_name = root_element(decoded)
    return _element(ISO2, name, type_name, decoded)


def schema_tree(codec: SchemaCodec, name: str, type_name: str, value: Any) -> SchemaElement:
    """The element tree of ``value`` as element ``name`` of ``type_name`` in another schema set (ISO 15118-20)."""
    return _element(codec, name, type_name, value)


def to_xml(element: SchemaElement, *, comment: Callable[[SchemaElement], str | None] | None = None) -> str:
    """Indented XML without namespace prefixes; ``comment`` may add an XML comment after an element."""

    def build(node: SchemaElement) -> ET.Element:
        xml = ET.Element(node.name, dict(node.attributes))
        xml.text = node.text
        for child in node.children:
            xml.append(build(child))
            note = comment(child) if comment is not None else None
            if note:
                # "--" may not occur inside an XML comment.
                xml.append(ET.Comment(f" {note.replace('--', '- -')} "))
        return xml

    root = build(element)
    ET.indent(root)
    return _CONTROLS.sub(lambda m: f"&#x{ord(m[0]):X};", ET.tostring(root, encoding="unicode"))
