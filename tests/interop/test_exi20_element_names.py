"""``evpki exi decode --iso20`` names what it prints as EXIficient's XML of the -20 stream does.

The oracle is the XML EXIficient's -20 grammar decodes our EXI to (:class:`Exificient20`); our
side is the command's output, XML and ``--json``. Namespaces are compared away (we print none);
element order, attribute names and every simple value must be the same. The comparison helpers
are the -2 test's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import pytest

from pki.iso15118 import exi20
from tests.interop.exificient import Exificient
from tests.interop.exificient20 import Exificient20
from tests.interop.test_exi_element_names import _assert_json_follows, _decode, _local, _node
from tests.pki.iso15118 import samples20

pytestmark = pytest.mark.interop

# (what to encode, our encoder, the oracle's kind, the CLI flags)
CASES: dict[str, tuple[Callable[[], Any], Callable[[Any], bytes], str, tuple[str, ...]]] = {
    "install_req": (samples20.install_req, exi20.encode_message, "document", ()),
    "install_res": (samples20.install_res, exi20.encode_message, "document", ()),
    "oem_chain": (
        lambda: samples20.install_req().oem_provisioning_certificate_chain,
        exi20.encode_fragment,
        "fragment",
        ("--fragment",),
    ),
    "installation_data": (samples20.installation_data, exi20.encode_fragment, "fragment", ("--fragment",)),
    "signed_info": (samples20.signed_info, exi20.encode_signed_info, "signed_info", ("--signed-info",)),
}


@pytest.fixture(scope="module")
def oracle(exificient: Exificient) -> Exificient20:
    return Exificient20(exificient)


@pytest.mark.parametrize("name", CASES)
def test_decode_iso20_prints_the_tree_exificient_decodes(oracle: Exificient20, name: str) -> None:
    make, encode, kind, flags = CASES[name]
    exi = encode(make())
    theirs = ElementTree.fromstring(oracle.decode_xml(exi, kind))
    argument = base64.b64encode(exi).decode()
    ours = ElementTree.fromstring(_decode("--iso20", *flags, argument))
    assert _node(ours) == _node(theirs)
    as_json = json.loads(_decode("--iso20", "--json", *flags, argument))
    assert list(as_json) == [_local(theirs.tag)]
    _assert_json_follows(theirs, as_json[_local(theirs.tag)], _local(theirs.tag))
