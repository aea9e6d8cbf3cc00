"""Bit-packed EXI streams: a bit writer, a bit reader and the EXI primitive value encodings.

This module owns the bit level only (EXI 1.0 §7: n-bit unsigned integers, Unsigned Integer in
7-bit groups, Integer, Binary, String as literals). It knows nothing about grammars.

Speed matters more than elegance here: a 4 KB CertificateInstallationRes is mostly DER bytes, so
the writer packs whole byte strings with one big-int shift instead of a per-bit loop, and the
reader slices the input once per value. Every length read from the input is checked against
the bits that remain *before* anything is allocated, and Unsigned Integers are read in a capped
number of 7-bit groups, so garbage input fails fast with :class:`ExiError`.
"""

from __future__ import annotations

from pki.iso15118.exi.errors import ExiError

__all__ = ["MAX_INTEGER_GROUPS", "BitReader", "BitWriter"]

# X509SerialNumber is an xs:integer (arbitrary precision); RFC 5280 serials are ≤ 20 octets
# (160 bits = 23 groups). 64 groups (448 bits) leave room for odd peers without letting a
# hostile stream build a huge int.
MAX_INTEGER_GROUPS = 64
# Lengths (strings, binaries) and code points never need more than 5 groups (35 bits).
_MAX_LENGTH_GROUPS = 5
_MAX_CODE_POINT = 0x10FFFF


class BitWriter:
    """MSB-first bit writer: full bytes go to a bytearray, fewer than 8 bits wait in ``_acc``."""

    __slots__ = ("_acc", "_buf", "_nacc")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._acc = 0
        self._nacc = 0

    @property
    def bit_length(self) -> int:
        return len(self._buf) * 8 + self._nacc

    def bits(self, value: int, n: int) -> None:
        """Write ``value`` as an ``n``-bit unsigned integer (callers guarantee ``0 <= value < 2**n``)."""
        acc = (self._acc << n) | value
        nacc = self._nacc + n
        if nacc >= 8:
            rem = nacc & 7
            self._buf += (acc >> rem).to_bytes(nacc >> 3, "big")
            acc &= (1 << rem) - 1
            nacc = rem
        self._acc = acc
        self._nacc = nacc

    def raw_bytes(self, data: bytes) -> None:
        """Write ``data`` 8 bits per byte; byte-aligned writes are a plain extend."""
        if not self._nacc:
            self._buf += data
        elif data:
            self.bits(int.from_bytes(data, "big"), 8 * len(data))

    def uint(self, value: int) -> None:
        """EXI Unsigned Integer: 7-bit groups, least significant first, high bit = more follow."""
        if value < 0x80:
            self.bits(value, 8)
            return
        groups = 0
        n = 0
        while True:
            low = value & 0x7F
            value >>= 7
            if value:
                groups |= (0x80 | low) << (8 * n)
                n += 1
            else:
                groups |= low << (8 * n)
                n += 1
                break
        # groups holds the first group in its lowest byte; the stream wants it first.
        self.raw_bytes(groups.to_bytes(n, "little"))

    def integer(self, value: int) -> None:
        """EXI Integer: sign bit, then the magnitude (``-v - 1`` for negatives) as Unsigned Integer."""
        if value < 0:
            self.bits(1, 1)
            self.uint(-value - 1)
        else:
            self.bits(0, 1)
            self.uint(value)

    def binary(self, data: bytes) -> None:
        """EXI Binary (base64Binary and hexBinary): Unsigned Integer length, then the bytes."""
        self.uint(len(data))
        self.raw_bytes(data)

    def string(self, text: str) -> None:
        """EXI String as a literal: Unsigned Integer ``len + 2`` (0 and 1 mean table hits), code points."""
        self.uint(len(text) + 2)
        if text.isascii():
            # A code point below 0x80 is exactly one 8-bit group equal to its byte value.
            self.raw_bytes(text.encode("ascii"))
        else:
            for ch in text:
                cp = ord(ch)
                if 0xD800 <= cp <= 0xDFFF:
                    raise ExiError(f"string contains the surrogate code point {cp:#x}, not a Unicode scalar value")
                self.uint(cp)

    def getvalue(self) -> bytes:
        """The stream padded with zero bits to a byte boundary (EXI §8: padding at the end)."""
        if self._nacc:
            return bytes(self._buf) + ((self._acc << (8 - self._nacc)) & 0xFF).to_bytes(1, "big")
        return bytes(self._buf)


class BitReader:
    """MSB-first bit reader over an immutable byte string; ``pos`` is the bit position."""

    __slots__ = ("_data", "_total", "pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._total = len(data) * 8
        self.pos = 0

    @property
    def remaining(self) -> int:
        return self._total - self.pos

    def _short(self, n: int, what: str) -> ExiError:
        return ExiError(f"EXI stream ends early at bit {self.pos} while reading {what} ({n} more bits needed)")

    def bits(self, n: int, what: str) -> int:
        """Read an ``n``-bit unsigned integer."""
        pos = self.pos
        end_bit = pos + n
        if end_bit > self._total:
            raise self._short(n, what)
        start = pos >> 3
        end = (end_bit + 7) >> 3
        chunk = int.from_bytes(self._data[start:end], "big")
        self.pos = end_bit
        return (chunk >> ((end << 3) - end_bit)) & ((1 << n) - 1)

    def raw_bytes(self, n: int, what: str) -> bytes:
        """Read ``n`` bytes of 8 bits each (the caller has checked ``n`` against ``remaining``)."""
        pos = self.pos
        if pos + 8 * n > self._total:
            raise self._short(8 * n, what)
        if not pos & 7:
            self.pos = pos + 8 * n
            return self._data[pos >> 3 : (pos >> 3) + n]
        return self.bits(8 * n, what).to_bytes(n, "big")

    def uint(self, what: str, max_groups: int = _MAX_LENGTH_GROUPS) -> int:
        """Read an Unsigned Integer of at most ``max_groups`` 7-bit groups."""
        value = 0
        shift = 0
        for _ in range(max_groups):
            group = self.bits(8, what)
            value |= (group & 0x7F) << shift
            if not group & 0x80:
                return value
            shift += 7
        raise ExiError(f"EXI unsigned integer longer than {max_groups} 7-bit groups at bit {self.pos} in {what}")

    def integer(self, what: str) -> int:
        negative = self.bits(1, what)
        magnitude = self.uint(what, MAX_INTEGER_GROUPS)
        return -magnitude - 1 if negative else magnitude

    def _length(self, what: str, unit_bits: int) -> int:
        n = self.uint(what)
        # Check before allocating: each unit needs at least unit_bits bits of input.
        if n * unit_bits > self.remaining:
            raise ExiError(
                f"EXI length {n} at bit {self.pos} in {what} exceeds the {self.remaining} bits left in the stream"
            )
        return n

    def binary(self, what: str, max_length: int | None = None) -> bytes:
        n = self._length(what, 8)
        if max_length is not None and n > max_length:
            raise ExiError(f"{what} is {n} bytes long, the schema allows at most {max_length}")
        return self.raw_bytes(n, what)

    def string(self, what: str, max_length: int | None = None) -> str:
        n = self.uint(what)
        if n < 2:
            raise ExiError(
                f"string table hits are not used by ISO 15118-2 or -20 (found one in {what} at bit {self.pos})"
            )
        n -= 2
        if n * 8 > self.remaining:
            raise ExiError(f"EXI string length {n} at bit {self.pos} in {what} exceeds the {self.remaining} bits left")
        if max_length is not None and n > max_length:
            raise ExiError(f"{what} is {n} characters long, the schema allows at most {max_length}")
        start = self.pos
        raw = self.raw_bytes(n, what)
        if raw.isascii():
            return raw.decode("ascii")
        # Some character needs more than one group: re-read code point by code point.
        self.pos = start
        chars = []
        for _ in range(n):
            cp = self.uint(what)
            if cp > _MAX_CODE_POINT or 0xD800 <= cp <= 0xDFFF:
                raise ExiError(f"invalid Unicode code point {cp:#x} in {what} at bit {self.pos}")
            chars.append(chr(cp))
        return "".join(chars)
