"""Hostile input: random bytes, truncations and bit flips decode to a message or raise ExiError — fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pki.iso15118.exi import ExiError, decode_fragment, decode_message, decode_signed_info, encode_message
from pki.iso15118.exi.bits import BitWriter

VECTORS: dict[str, str] = json.loads((Path(__file__).parent / "vectors.json").read_text())["vectors"]
DOCUMENTS = [bytes.fromhex(v) for k, v in VECTORS.items() if k.endswith("_document")]
FRAGMENTS = [bytes.fromhex(v) for k, v in VECTORS.items() if k.endswith("_fragment")]
FUZZ = settings(max_examples=300, deadline=200, suppress_health_check=[HealthCheck.too_slow])


def _decodes_or_refuses(decode, data: bytes) -> None:
    try:
        result = decode(data)
    except ExiError:
        return
    if decode is decode_message:
        # Whatever decodes must be a valid message again (padding bits may differ).
        again = encode_message(result)
        assert decode_message(again) == result


def _flip(data: bytes, bits: list[int]) -> bytes:
    value = bytearray(data)
    for bit in bits:
        value[(bit // 8) % len(value)] ^= 0x80 >> (bit % 8)
    return bytes(value)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    for decode in (decode_message, decode_fragment, decode_signed_info):
        _decodes_or_refuses(decode, data)


@FUZZ
@given(st.sampled_from([b"\x80\x98", b"\x80\x98\x00", b"\x80\x98\x02", b"\x80"]), st.binary(max_size=400))
def test_random_bytes_behind_a_valid_prefix(prefix: bytes, tail: bytes) -> None:
    _decodes_or_refuses(decode_message, prefix + tail)
    _decodes_or_refuses(decode_fragment, prefix + tail)


@FUZZ
@given(st.sampled_from(DOCUMENTS + FRAGMENTS), st.data())
def test_truncations(data: bytes, draw: st.DataObject) -> None:
    cut = draw.draw(st.integers(0, len(data) - 1))
    for decode in (decode_message, decode_fragment, decode_signed_info):
        _decodes_or_refuses(decode, data[:cut])


@FUZZ
@given(st.sampled_from(DOCUMENTS), st.lists(st.integers(0, 40_000), min_size=1, max_size=4))
def test_bit_flips_in_documents(data: bytes, bits: list[int]) -> None:
    _decodes_or_refuses(decode_message, _flip(data, bits))


@FUZZ
@given(st.sampled_from(FRAGMENTS), st.lists(st.integers(0, 20_000), min_size=1, max_size=4))
def test_bit_flips_in_fragments(data: bytes, bits: list[int]) -> None:
    _decodes_or_refuses(decode_fragment, _flip(data, bits))
    _decodes_or_refuses(decode_signed_info, _flip(data, bits))


@FUZZ
@given(st.sampled_from(DOCUMENTS), st.integers(0, 60), st.binary(min_size=1, max_size=8))
def test_overwritten_header_region(data: bytes, at: int, junk: bytes) -> None:
    # Long lengths and huge counts in the first bytes must be refused before allocation.
    _decodes_or_refuses(decode_message, data[:at] + junk + data[at + len(junk) :])


def _session_id_length_prefix(groups: bytes) -> bytes:
    w = BitWriter()
    w.bits(0x80, 8)
    w.bits(76, 7)  # SE(V2G_Message)
    w.bits(0, 3)  # SE(Header), SE(SessionID), CH
    w.raw_bytes(groups)
    return w.getvalue()


def test_huge_declared_lengths_fail_fast() -> None:
    # A SessionID declaring 2**34 bytes is refused from the length alone; an endless length is capped.
    with pytest.raises(ExiError, match="exceeds the"):
        decode_message(_session_id_length_prefix(b"\xff\xff\xff\xff\x0f"))
    with pytest.raises(ExiError, match="longer than 5 7-bit groups"):
        decode_message(_session_id_length_prefix(b"\xff" * 30))
