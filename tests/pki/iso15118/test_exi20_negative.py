"""The ISO 15118-20 codec refuses what the schema does not allow, both ways, and malformed streams with ExiError.

Facet violations on decode need streams no valid encoder writes: :data:`LAX` is the codec's own
engine over the same tables with every value facet removed (lengths, bounds, NCName; an int is
written as a raw enumeration index), so it writes structurally valid EXI carrying out-of-range values.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pki.iso15118 import exi20
from pki.iso15118.exi import ExiError, UnsupportedMessage
from pki.iso15118.exi import grammar as g
from pki.iso15118.exi.bits import BitWriter
from pki.iso15118.exi.engine import SchemaCodec
from pki.iso15118.exi20 import codec as codec20
from pki.iso15118.exi20 import grammar as g20
from pki.iso15118.messages import ResponseCode as ResponseCode2
from pki.iso15118.messages import SignedInfo
from pki.iso15118.messages20 import (
    CertificateChain,
    ContractCertificateChain,
    EncryptedKeyType,
    EncryptedPrivateKey,
    MessageHeader,
    RootCertificateId,
    SignedCertificateChain,
)
from tests.pki.iso15118 import samples20

VECTORS: dict[str, bytes] = {
    name: bytes.fromhex(value)
    for name, value in json.loads((Path(__file__).parent / "vectors20.json").read_text())["vectors"].items()
}
DOCUMENTS = [v for k, v in VECTORS.items() if k.endswith("_document")]
FRAGMENTS = [v for k, v in VECTORS.items() if k.endswith("_fragment")]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
req, res, data = samples20.install_req, samples20.install_res, samples20.installation_data


def _lax_simple(simple: g.Simple) -> g.Simple:
    if simple.kind in ("binary", "string"):
        return dataclasses.replace(simple, schema_type="lax", min_length=0, max_length=None)
    if simple.kind in ("integer", "unsigned"):
        return dataclasses.replace(simple, min_value=None, max_value=None)
    if simple.kind == "enum":  # every index of the same width: the members, then the indices as ints
        return dataclasses.replace(simple, enum_size=2**simple.value_width)
    return simple


def _lax_item(item: g.Item) -> g.Item:
    content = item.content
    if isinstance(content, g.Simple):
        return dataclasses.replace(item, content=_lax_simple(content))
    if isinstance(content, dict):
        lax = {k: _lax_simple(v) if isinstance(v, g.Simple) else v for k, v in content.items()}
        return dataclasses.replace(item, content=lax)
    return item


LAX = SchemaCodec(
    types={n: dataclasses.replace(t, items=tuple(map(_lax_item, t.items))) for n, t in g20.TYPES.items()},
    to_events=codec20._TO_EVENTS,
    from_events=codec20._FROM_EVENTS,
    enums={name: (*members, *range(len(members), 64)) for name, members in codec20._ENUMS.items()},
    ch_what={},
    refused=codec20._refused,
)


def _lax_document(message: Any) -> bytes:
    w = BitWriter()
    w.bits(0x80, 8)
    name = type(message).__name__
    w.bits(g20.DOC_ELEMENTS.index(name), 6)
    LAX.encode_type(w, g20.DOC_MESSAGES[name], message)
    return w.getvalue()


_FRAGMENT_PREFIX = b"\x80\x73"  # header, then the first 8 bits of SE(SignedInstallationData) = 231 (9 bits)


def _lax_fragment(element: Any) -> bytes:
    w = BitWriter()
    w.bits(0x80, 8)
    w.bits(231, 9)
    LAX.encode_type(w, "SignedInstallationDataType", element)
    w.bits(282, 9)
    return w.getvalue()


def _chain(n_subs: int) -> SignedCertificateChain:
    return SignedCertificateChain("id1", b"\x30", (b"\x31",) * n_subs)


def _key(key_type: EncryptedKeyType, size: int) -> Any:
    return data(encrypted_private_key=EncryptedPrivateKey(key_type, bytes(size)))


ENCODE_VIOLATIONS: list[tuple[Any, str]] = [
    (req(header=MessageHeader(bytes(7), 0)), "SessionID is 7 bytes long, sessionIDType allows 8–8"),
    (req(header=MessageHeader(bytes(9), 0)), "SessionID is 9 bytes long"),
    (req(header=MessageHeader("0102030405060708", 0)), "SessionID must be bytes"),  # type: ignore[arg-type]
    (req(header=MessageHeader(bytes(8), -1)), r"TimeStamp = -1 is outside the xs:unsignedLong range"),
    (req(header=MessageHeader(bytes(8), 2**64)), "outside the xs:unsignedLong range"),
    (req(header=MessageHeader(bytes(8), True)), "TimeStamp must be an int"),
    (req(header="header"), "Header must be a MessageHeader"),
    (req(maximum_contract_certificate_chains=256), "MaximumContractCertificateChains = 256 is outside"),
    (req(maximum_contract_certificate_chains=-1), "outside the xs:unsignedByte range 0..255"),
    (req(oem_provisioning_certificate_chain=_chain(4)), "SubCertificates needs 1–3 entries, got 4"),
    (req(oem_provisioning_certificate_chain=SignedCertificateChain("id1", bytes(1601))), "at most|allows 0–1600"),
    (req(oem_provisioning_certificate_chain=SignedCertificateChain("1d", b"\x30")), "not a valid xs:ID"),
    (req(oem_provisioning_certificate_chain=SignedCertificateChain("", b"\x30")), "Id is 0 characters"),
    (req(oem_provisioning_certificate_chain=CertificateChain(b"\x30")), "must be a SignedCertificateChain"),
    (req(root_certificate_ids=()), "ListOfRootCertificateIDs needs 1–20 entries, got 0"),
    (req(root_certificate_ids=(RootCertificateId("a", 1),) * 21), "needs 1–20 entries, got 21"),
    (req(root_certificate_ids=(RootCertificateId("a", 2**500),)), "more than 448 bits"),
    (req(prioritized_emaids=("E",) * 9), "PrioritizedEMAIDs needs 1–8 entries, got 9"),
    (req(prioritized_emaids=("E" * 256,)), "EMAID is 256 characters long, identifierType allows 0–255"),
    (req(prioritized_emaids=(b"DE123",)), "EMAID must be a str"),
    (res(response_code=ResponseCode2.FAILED_CONTRACT_CANCELED), "is not a responseCodeType value"),
    (res(evse_processing="Done"), "is not a processingType value"),
    (res(remaining_contract_certificate_chains=256), "RemainingContractCertificateChains = 256"),
    (res(cps_certificate_chain=CertificateChain(b"\x30", (b"1",) * 4)), "SubCertificates needs 1–3"),
    (res(signed_installation_data="data"), "must be a SignedInstallationData"),
    (res(signed_installation_data=data(ecdh_curve="P256")), "is not a ecdhCurveType value"),
    (res(signed_installation_data=data(dh_public_key=bytes(55))), "DHPublicKey is 55 bytes long"),
    (res(signed_installation_data=data(dh_public_key=bytes(134))), "DHPublicKey is 134 bytes long"),
    (res(signed_installation_data=data(id="a b")), "not a valid xs:ID"),
    (
        res(signed_installation_data=data(contract_certificate_chain=ContractCertificateChain(b"\x30", ()))),
        "SubCertificates needs 1–3 entries, got 0",
    ),
    (res(signed_installation_data=data(contract_certificate_chain=CertificateChain(b"\x30"))), "must be a Contract"),
    (res(signed_installation_data=_key(EncryptedKeyType.SECP521, 84)), "SECP521_EncryptedPrivateKey is 84 bytes"),
    (res(signed_installation_data=_key(EncryptedKeyType.X448, 94)), "X448_EncryptedPrivateKey is 94 bytes"),
    (res(signed_installation_data=_key(EncryptedKeyType.TPM, 209)), "TPM_EncryptedPrivateKey is 209 bytes"),
    (
        res(signed_installation_data=data(encrypted_private_key=EncryptedPrivateKey("X448_EncryptedPrivateKey", b""))),  # type: ignore[arg-type]
        "must be an EncryptedKeyType",
    ),
    (res(signed_installation_data=data(encrypted_private_key=bytes(94))), "must be a EncryptedPrivateKey"),
]


@pytest.mark.parametrize(("message", "match"), ENCODE_VIOLATIONS)
def test_encoding_enforces_schema_facets(message: Any, match: str) -> None:
    with pytest.raises(ExiError, match=match):
        exi20.encode_message(message)


def test_encode_refuses_what_it_does_not_encode() -> None:
    with pytest.raises(ExiError, match="needs a -20 CertificateInstallationReq or CertificateInstallationRes"):
        exi20.encode_message(samples20.installation_data())  # type: ignore[arg-type]
    with pytest.raises(ExiError, match="no ISO 15118-20 fragment encoding for CertificateChain"):
        exi20.encode_fragment(CertificateChain(b"\x30"))  # type: ignore[arg-type]
    with pytest.raises(ExiError, match="encode_signed_info needs a SignedInfo"):
        exi20.encode_signed_info(samples20.install_req())  # type: ignore[arg-type]


DECODE_VIOLATIONS: list[tuple[bytes, str]] = [
    (_lax_document(req(header=MessageHeader(bytes(7), 0))), "SessionID is 7 bytes long, sessionIDType allows 8–8"),
    (_lax_document(req(header=MessageHeader(bytes(9), 0))), "SessionID is 9 bytes long, the schema allows at most 8"),
    (_lax_document(req(header=MessageHeader(bytes(8), 2**64))), "TimeStamp = 18446744073709551616 is outside"),
    (_lax_document(req(header=MessageHeader(bytes(8), 2**70))), "longer than 10 7-bit groups"),
    (_lax_document(req(oem_provisioning_certificate_chain=SignedCertificateChain("id1", bytes(1601)))), "at most 1600"),
    (_lax_document(req(oem_provisioning_certificate_chain=SignedCertificateChain("9", b"\x30"))), "not a valid xs:ID"),
    (
        _lax_document(req(prioritized_emaids=("E" * 256,))),
        "EMAID is 256 characters long, the schema allows at most 255",
    ),
    (_lax_document(res(response_code=40)), "enumeration index 40 out of range for responseCodeType"),
    (_lax_document(res(response_code=63)), "enumeration index 63 out of range"),
    (_lax_document(res(evse_processing=3)), "enumeration index 3 out of range for processingType"),
    (_lax_document(res(signed_installation_data=data(dh_public_key=bytes(55)))), "DHPublicKey is 55 bytes long"),
    (_lax_fragment(_key(EncryptedKeyType.SECP521, 93)), "SECP521_EncryptedPrivateKey is 93 bytes long"),
    (_lax_fragment(_key(EncryptedKeyType.X448, 94)), "X448_EncryptedPrivateKey is 94 bytes long"),
    (_lax_fragment(_key(EncryptedKeyType.TPM, 0)), "TPM_EncryptedPrivateKey is 0 bytes long"),
    (_lax_fragment(data(id="")), "Id is 0 characters long"),
]


@pytest.mark.parametrize(("stream", "match"), DECODE_VIOLATIONS)
def test_decoding_enforces_schema_facets(stream: bytes, match: str) -> None:
    fragment = stream.startswith(_FRAGMENT_PREFIX)
    with pytest.raises(ExiError, match=match):
        (exi20.decode_fragment if fragment else exi20.decode_message)(stream)


def test_the_lax_codec_is_the_real_one_for_valid_values() -> None:
    """The negative streams above differ from valid ones in their values only."""
    assert _lax_document(samples20.install_res()) == exi20.encode_message(samples20.install_res())
    assert _lax_fragment(data()) == exi20.encode_fragment(data())


def test_decode_refuses_malformed_framing() -> None:
    good = VECTORS["install_res_document"]
    with pytest.raises(ExiError, match="not an ISO 15118-20 EXI stream: header byte 0x24"):
        exi20.decode_message(b"$EXI" + good)
    with pytest.raises(ExiError, match="1 unexpected byte"):
        exi20.decode_message(good + b"\x00")
    with pytest.raises(ExiError, match="1 unexpected byte"):
        exi20.decode_fragment(VECTORS["oem_chain_fragment"] + b"\x00")
    with pytest.raises(ExiError, match="exceeds the 65536-byte limit"):
        exi20.decode_message(b"\x80" + bytes(64 * 1024))
    with pytest.raises(ExiError, match="must be bytes"):
        exi20.decode_message("80")  # type: ignore[arg-type]
    with pytest.raises(ExiError, match=r"ends early"):
        exi20.decode_message(b"")


def _stream(*fields: tuple[int, int]) -> bytes:
    w = BitWriter()
    w.bits(0x80, 8)
    for value, width in fields:
        w.bits(value, width)
    return w.getvalue()


@pytest.mark.parametrize(
    ("stream", "match"),
    [
        (_stream((54, 6)), r"not an ISO 15118-20 CommonMessages element \(SE\(\*\)\)"),
        (_stream((55, 6)), r"\(event code 55\)"),
        (_stream((63, 6)), r"\(event code 63\)"),
        (_stream((7, 6), (1, 1)), "unsupported EXI deviation: event code 1"),  # escape instead of SE(Header)
        (_stream((8, 6), (0, 1), (1, 1)), "unsupported EXI deviation"),  # escape instead of SE(SessionID)
    ],
)
def test_wrong_document_event_codes(stream: bytes, match: str) -> None:
    with pytest.raises(ExiError, match=match):
        exi20.decode_message(stream)


def test_wrong_fragment_event_codes() -> None:
    with pytest.raises(ExiError, match="unsupported ISO 15118-20 fragment element code 230"):
        exi20.decode_fragment(_stream((230, 9)))  # SignedInfo in the -20 fragment grammar: not a fragment we sign
    with pytest.raises(ExiError, match="unsupported ISO 15118-20 fragment element code 511"):
        exi20.decode_fragment(_stream((511, 9)))
    fragment = VECTORS["oem_chain_fragment"]
    bits = "".join(f"{b:08b}" for b in fragment).rstrip("0")
    assert bits.endswith(f"{282:09b}".rstrip("0"))
    # ED replaced by another SE: one element per fragment.
    wrong_end = bits[: -len(f"{282:09b}".rstrip("0"))] + f"{128:09b}"
    tampered = int(wrong_end.ljust(-(-len(wrong_end) // 8) * 8, "0"), 2).to_bytes(-(-len(wrong_end) // 8), "big")
    with pytest.raises(ExiError, match="expected ED"):
        exi20.decode_fragment(tampered)


def test_other_messages_are_unsupported_with_their_session_id() -> None:
    # SessionSetupReq (DocContent 35): SE(Header), SE(SessionID) CH hexBinary(8) EE, SE(TimeStamp) CH uint EE, ...
    w = BitWriter()
    w.bits(0x80, 8)
    w.bits(35, 6)
    w.bits(0, 1)
    w.bits(0, 2)
    w.binary(b"\x11" * 8)
    w.bits(0, 3)
    w.uint(5)
    w.bits(0, 1)
    w.bits(1, 2)  # EE of the header (no Signature)
    with pytest.raises(UnsupportedMessage, match="unsupported ISO 15118-20 message SessionSetupReq") as info:
        exi20.decode_message(w.getvalue())
    assert info.value.body == "SessionSetupReq"
    assert info.value.session_id == b"\x11" * 8
    with pytest.raises(UnsupportedMessage, match="message Signature") as info:
        exi20.decode_message(_stream((39, 6)))  # a global xmldsig element as the root
    assert info.value.session_id is None


@pytest.mark.parametrize("name", [n for n in VECTORS if n.endswith(("_document", "_fragment"))])
def test_every_truncation_is_refused(name: str) -> None:
    stream = VECTORS[name]
    decode = exi20.decode_message if name.endswith("_document") else exi20.decode_fragment
    for cut in range(len(stream)):
        with pytest.raises(ExiError):
            decode(stream[:cut])


def _decodes_or_refuses(data: bytes) -> None:
    for decode, encode in (
        (exi20.decode_message, exi20.encode_message),
        (exi20.decode_fragment, exi20.encode_fragment),
    ):
        try:
            result = decode(data)
        except ExiError:
            continue
        assert decode(encode(result)) == result  # whatever decodes is a valid value again


@FUZZ
@given(st.sampled_from(DOCUMENTS + FRAGMENTS), st.lists(st.integers(min_value=0), min_size=1, max_size=4))
def test_bit_flips(stream: bytes, positions: list[int]) -> None:
    value = bytearray(stream)
    for bit in positions:
        value[(bit // 8) % len(value)] ^= 0x80 >> (bit % 8)
    _decodes_or_refuses(bytes(value))


@FUZZ
@given(st.sampled_from([b"\x80\x1c", b"\x80\x20", b"\x80\x40", b"\x80\x73", b"\x80"]), st.binary(max_size=300))
def test_random_bytes_behind_a_valid_prefix(prefix: bytes, tail: bytes) -> None:
    _decodes_or_refuses(prefix + tail)


def test_signed_info_fragment_refuses_garbage() -> None:
    with pytest.raises(ExiError):
        exi20.decode_signed_info(VECTORS["signed_info_ed448"][:-3])
    assert isinstance(exi20.decode_signed_info(VECTORS["signed_info_ed448"]), SignedInfo)
