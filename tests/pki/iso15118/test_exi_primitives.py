"""EXI primitives of pki.iso15118.exi.bits: n-bit ints, Unsigned Integer, Integer, Binary, String."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pki.iso15118.exi import ExiError
from pki.iso15118.exi.bits import MAX_INTEGER_GROUPS, BitReader, BitWriter


def _written(fn, *args, offset: int = 0) -> bytes:
    w = BitWriter()
    w.bits(0, offset)
    getattr(w, fn)(*args)
    return w.getvalue()


@pytest.mark.parametrize(
    ("value", "hex_"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),  # low group first with the continuation bit, then 1
        (300, "ac02"),
        (16383, "ff7f"),
        (16384, "808001"),
    ],
)
def test_uint_uses_7_bit_groups_least_significant_first(value: int, hex_: str) -> None:
    assert _written("uint", value).hex() == hex_
    assert BitReader(bytes.fromhex(hex_)).uint("v") == value


def test_uint_160_bits_round_trips() -> None:
    value = (1 << 160) - 12345
    data = _written("uint", value)
    assert len(data) == 23  # ceil(160 / 7) groups of 8 bits
    assert BitReader(data).uint("v", MAX_INTEGER_GROUPS) == value


def test_uint_group_cap() -> None:
    with pytest.raises(ExiError, match="longer than 5 7-bit groups"):
        BitReader(b"\xff" * 10).uint("length")


@pytest.mark.parametrize(("value", "first_bit"), [(0, 0), (5, 0), (-1, 1), (-32768, 1), (2**200, 0), (-(2**200), 1)])
def test_integer_sign_and_magnitude(value: int, first_bit: int) -> None:
    data = _written("integer", value)
    assert data[0] >> 7 == first_bit
    assert BitReader(data).integer("v") == value


def test_integer_negative_magnitude_is_minus_v_minus_1() -> None:
    # -1 → sign 1, magnitude 0: bits 1 00000000, padded.
    assert _written("integer", -1).hex() == "8000"


def test_string_literal_and_non_ascii() -> None:
    assert _written("string", "id4").hex() == "05696434"
    data = _written("string", "é✓𝄞")
    # len+2 = 5, then 0xE9 = 2 groups, U+2713 = 2 groups, U+1D11E = 3 groups.
    assert data.hex() == "05e901934e9ea207"
    assert BitReader(data).string("s") == "é✓𝄞"


def test_string_table_hit_is_refused() -> None:
    for first in (b"\x00", b"\x01"):
        with pytest.raises(ExiError, match="string table hits are not used by ISO 15118-2"):
            BitReader(first + b"abc").string("X509IssuerName")


def test_surrogates_are_refused_both_ways() -> None:
    with pytest.raises(ExiError, match="surrogate"):
        _written("string", "a\ud800")
    with pytest.raises(ExiError, match="invalid Unicode code point"):
        BitReader(bytes.fromhex("03 80 b0 03".replace(" ", ""))).string("s")  # 0xD800
    with pytest.raises(ExiError, match="invalid Unicode code point"):
        BitReader(bytes.fromhex("03 80 80 c4 00".replace(" ", ""))).string("s")  # 0x110000


def test_binary_aligned_and_unaligned() -> None:
    assert _written("binary", b"\x01\x02").hex() == "020102"
    data = _written("binary", b"\xff\x00", offset=3)
    r = BitReader(data)
    assert r.bits(3, "pad") == 0
    assert r.binary("b") == b"\xff\x00"


def test_lengths_are_checked_before_allocating() -> None:
    with pytest.raises(ExiError, match="exceeds the 16 bits left"):
        BitReader(b"\xff\xff\x7f" + b"\x00\x00").binary("Certificate")
    with pytest.raises(ExiError, match="exceeds"):
        BitReader(b"\x7f" + b"abc").string("s")
    with pytest.raises(ExiError, match="at most 800"):
        BitReader(b"\xa1\x06" + bytes(801)).binary("Certificate", 800)


def test_truncation_reports_the_bit_position() -> None:
    r = BitReader(b"\x05")
    r.bits(3, "code")
    with pytest.raises(ExiError, match=r"EXI stream ends early at bit 3 while reading Certificate \(8 more bits"):
        r.bits(8, "Certificate")


@given(st.lists(st.tuples(st.integers(0, 32), st.integers(0, 2**32)), max_size=20))
def test_bits_round_trip(fields: list[tuple[int, int]]) -> None:
    w = BitWriter()
    for n, v in fields:
        w.bits(v & ((1 << n) - 1), n)
    r = BitReader(w.getvalue())
    for n, v in fields:
        assert r.bits(n, "f") == v & ((1 << n) - 1)


@given(
    st.integers(0, 7),
    st.integers(0, 2**160),
    st.integers(-(2**160), 2**160),
    st.binary(max_size=100),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
)
def test_primitives_round_trip_at_any_bit_offset(offset: int, u: int, i: int, b: bytes, s: str) -> None:
    w = BitWriter()
    w.bits(0, offset)
    w.uint(u)
    w.integer(i)
    w.binary(b)
    w.string(s)
    data = w.getvalue()
    assert len(data) == (w.bit_length + 7) // 8
    r = BitReader(data)
    r.bits(offset, "pad")
    assert r.uint("u", MAX_INTEGER_GROUPS) == u
    assert r.integer("i") == i
    assert r.binary("b") == b
    assert r.string("s") == s
    assert r.remaining < 8
