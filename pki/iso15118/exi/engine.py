"""The schema-independent EXI engine: one loop over grammar states for every complex type of a schema set.

Owns simple-value encoding with schema facets (both directions) and :class:`SchemaCodec`, which
walks the compiled grammar tables of one schema set (:mod:`.grammar` for ISO 15118-2,
:mod:`pki.iso15118.exi20.grammar` for ISO 15118-20) and maps each complex type to and from a
Python value through that set's adapters (``to_events`` / ``from_events``). The framings
(document, fragments) and the adapters belong to each schema set's codec module.

Decoding depth is bounded by the tables: :class:`SchemaCodec` refuses a type graph with a cycle
when it is built, so a stream cannot nest deeper than the schema's longest type path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pki.iso15118.exi import grammar as g
from pki.iso15118.exi.bits import MAX_INTEGER_GROUPS, BitReader, BitWriter
from pki.iso15118.exi.errors import ExiError, UnsupportedMessage

__all__ = ["MAX_INTEGER_BITS", "Events", "SchemaCodec", "check_length", "check_range"]

Events = list[tuple[str, Any]]

# xs:ID is an NCName; \w covers Unicode letters and digits (a close approximation of XML NameChar).
_NCNAME = re.compile(r"[^\W\d][\w.\-]*")
MAX_INTEGER_BITS = 7 * MAX_INTEGER_GROUPS
# Empty simple content is written as the escape followed by the second-level EE: code 0 of 3 bits.
_EMPTY_CONTENT = 0
_EMPTY_CONTENT_WIDTH = 3


def check_length(simple: g.Simple, n: int, unit: str, what: str) -> None:
    if n < simple.min_length or (simple.max_length is not None and n > simple.max_length):
        upper = "" if simple.max_length is None else f"–{simple.max_length}"
        raise ExiError(f"{what} is {n} {unit} long, {simple.schema_type} allows {simple.min_length}{upper}")


def check_range(simple: g.Simple, value: int, what: str) -> None:
    if (simple.min_value is not None and value < simple.min_value) or (
        simple.max_value is not None and value > simple.max_value
    ):
        raise ExiError(
            f"{what} = {value} is outside the {simple.schema_type} range {simple.min_value}..{simple.max_value}"
        )


def _check_id(simple: g.Simple, value: str, what: str) -> None:
    if simple.schema_type == "xs:ID" and not _NCNAME.fullmatch(value):
        raise ExiError(f"{what} {value!r} is not a valid xs:ID (an XML NCName)")


def _int_value(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ExiError(f"{what} must be an int, got {type(value).__name__}")
    return value


class SchemaCodec:
    """Encoder and decoder of the complex types of one schema set.

    ``types`` are the content models, ``to_events`` / ``from_events`` map each type name to the
    adapter between its Python value and its ordered ``(schema name, value)`` events, ``enums``
    maps an enumeration's schema type to its members in declaration order (the EXI index), and
    ``ch_what`` names the element whose simple content a type carries (for error messages).
    ``refused(type_name, name)`` builds the error for a production the codec does not handle.
    """

    def __init__(
        self,
        *,
        types: Mapping[str, g.ComplexType],
        to_events: Mapping[str, Callable[[Any], Events]],
        from_events: Mapping[str, Callable[[Events], Any]],
        enums: Mapping[str, tuple[Any, ...]],
        ch_what: Mapping[str, str],
        refused: Callable[[str, str], ExiError],
    ) -> None:
        self.types = types
        self.states: dict[str, list[g.State]] = {name: g.compile_type(t) for name, t in types.items()}
        self.to_events = to_events
        self.from_events = from_events
        self.enums = enums
        self.ch_what = ch_what
        self.refused = refused
        self._check_tables()

    def _check_tables(self) -> None:
        """Every referenced type exists, has adapters both ways, and no type contains itself."""
        children: dict[str, set[str]] = {}
        enums = self.enums
        for name, ctype in self.types.items():
            if name not in self.to_events or name not in self.from_events:
                raise ValueError(f"grammar type {name} has no adapter")
            refs: set[str] = set()
            for item in ctype.items:
                contents = item.content.values() if isinstance(item.content, dict) else (item.content,)
                for content in contents:
                    if isinstance(content, str):
                        if content not in self.types:
                            raise ValueError(f"{name} refers to the unknown type {content}")
                        refs.add(content)
                    elif isinstance(content, g.Simple) and content.kind == "enum" and content.schema_type not in enums:
                        raise ValueError(f"{name} uses the enumeration {content.schema_type} without members")
            children[name] = refs
        done: set[str] = set()

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in path:
                raise ValueError(f"recursive grammar types: {' → '.join((*path, name))}")
            if name not in done:
                for child in children[name]:
                    visit(child, (*path, name))
                done.add(name)

        for name in self.types:
            visit(name, ())

    # -- simple values ---------------------------------------------------------------------------

    def encode_simple(self, w: BitWriter, simple: g.Simple, value: Any, what: str) -> None:
        kind = simple.kind
        if kind == "binary":
            if not isinstance(value, bytes | bytearray):
                raise ExiError(f"{what} must be bytes, got {type(value).__name__}")
            check_length(simple, len(value), "bytes", what)
            w.binary(bytes(value))
        elif kind == "string":
            if not isinstance(value, str):
                raise ExiError(f"{what} must be a str, got {type(value).__name__}")
            check_length(simple, len(value), "characters", what)
            _check_id(simple, value, what)
            w.string(value)
        elif kind == "integer":
            value = _int_value(value, what)
            check_range(simple, value, what)
            if (value if value >= 0 else -value - 1).bit_length() > MAX_INTEGER_BITS:
                raise ExiError(f"{what} needs more than {MAX_INTEGER_BITS} bits, this codec's integer limit")
            w.integer(value)
        elif kind == "unsigned":  # EXI Unsigned Integer (xs:unsignedLong and other unbounded ranges ≥ 0)
            value = _int_value(value, what)
            check_range(simple, value, what)
            w.uint(value)
        elif kind == "nbit":  # a bounded range of ≤ 4096 values: offset from the minimum in n bits
            value = _int_value(value, what)
            check_range(simple, value, what)
            assert simple.min_value is not None
            w.bits(value - simple.min_value, simple.value_width)
        else:  # enum: n-bit index in declaration order
            members = self.enums[simple.schema_type]
            try:
                index = members.index(value)
            except ValueError:
                raise ExiError(f"{what} {value!r} is not a {simple.schema_type} value") from None
            w.bits(index, simple.value_width)

    def decode_simple(self, r: BitReader, simple: g.Simple, what: str) -> Any:
        kind = simple.kind
        if kind == "binary":
            value: Any = r.binary(what, simple.max_length)
            check_length(simple, len(value), "bytes", what)
        elif kind == "string":
            value = r.string(what, simple.max_length)
            check_length(simple, len(value), "characters", what)
            _check_id(simple, value, what)
        elif kind == "integer":
            value = r.integer(what)
            check_range(simple, value, what)
        elif kind == "unsigned":
            assert simple.max_value is not None
            value = r.uint(what, max(1, -(-simple.max_value.bit_length() // 7)))
            check_range(simple, value, what)
        elif kind == "nbit":
            assert simple.min_value is not None
            value = simple.min_value + r.bits(simple.value_width, what)
            check_range(simple, value, what)
        else:
            index = r.bits(simple.value_width, what)
            if index >= simple.enum_size:
                raise ExiError(f"{what}: enumeration index {index} out of range for {simple.schema_type}")
            value = self.enums[simple.schema_type][index]
        return value

    # -- complex types ---------------------------------------------------------------------------

    def encode_type(self, w: BitWriter, type_name: str, value: Any) -> None:
        """Encode ``value`` with the grammar of ``type_name``: one event code per production, then EE."""
        states = self.states[type_name]
        items = self.types[type_name].items
        state = states[0]
        for name, item_value in self.to_events[type_name](value):
            entry = state.codes.get(name)
            if entry is None:
                expected = ", ".join(p[1] for p in state.productions if p[0] != g.REFUSED_ITEM)
                raise ExiError(f"{type_name}: {name} is not allowed here (expected {expected})")
            code, item_index, nxt = entry
            item = items[item_index]
            content = g.content_of(item, name)
            what = self.ch_what.get(type_name, type_name) if name == "CH" else name
            if isinstance(content, g.Simple):
                if item.kind != "AT" and item_value in (b"", "") and isinstance(item_value, bytes | str):
                    # Empty simple content: EXIficient writes no CH but the escape code of the state and
                    # the second-level EE (3 bits, code 0), which ends the element. For a simple-typed
                    # element that is SE, escape (1 bit), EE; for simple content after attributes the
                    # escape replaces CH itself.
                    check_length(content, 0, "bytes" if content.kind == "binary" else "characters", what)
                    if item.kind == "SE":
                        w.bits(code, state.width)
                        w.bits(1, 1)
                    else:
                        w.bits(len(state.productions), state.width)
                    w.bits(_EMPTY_CONTENT, _EMPTY_CONTENT_WIDTH)
                    if item.kind == "CH":
                        return  # the second-level EE closed this element
                elif item.kind == "SE":  # simple-typed element: CH (1 bit), value, EE (1 bit)
                    w.bits(code, state.width)
                    w.bits(0, 1)
                    self.encode_simple(w, content, item_value, what)
                    w.bits(0, 1)
                else:
                    w.bits(code, state.width)
                    self.encode_simple(w, content, item_value, what)
            else:
                assert content is not None
                w.bits(code, state.width)
                self.encode_type(w, content, item_value)
            state = states[nxt]
        if state.ee is None:
            expected = ", ".join(p[1] for p in state.productions)
            raise ExiError(f"{type_name} is incomplete: expected {expected}")
        w.bits(state.ee, state.width)

    def _decode_empty(self, r: BitReader, simple: g.Simple, what: str) -> Any:
        code = r.bits(_EMPTY_CONTENT_WIDTH, f"a second-level event in {what}")
        if code != _EMPTY_CONTENT or simple.kind not in ("binary", "string"):
            raise ExiError(f"unsupported EXI deviation: second-level event code {code} in {what} at bit {r.pos}")
        value = b"" if simple.kind == "binary" else ""
        check_length(simple, 0, "bytes" if simple.kind == "binary" else "characters", what)
        return value

    @staticmethod
    def _read_code(r: BitReader, state: g.State, where: str) -> tuple[int, str, int]:
        code = r.bits(state.width, f"an event code in {where}")
        if code >= len(state.productions):
            # code == len(productions) is the escape to second-level events (xsi:type, undeclared
            # attributes, ...) that ISO 15118 never uses; anything above is not a valid code.
            raise ExiError(f"unsupported EXI deviation: event code {code} at bit {r.pos} in {where}")
        return state.productions[code]

    def decode_type(self, r: BitReader, type_name: str) -> Events:
        """Decode the content of a ``type_name`` element up to and including its EE."""
        states = self.states[type_name]
        items = self.types[type_name].items
        state = states[0]
        events: Events = []
        while True:
            if "CH" in state.codes and r.remaining >= state.width:
                # A state offering simple content: its escape may carry empty content (see encode_type).
                start = r.pos
                if r.bits(state.width, type_name) == len(state.productions):
                    _, item_index, _ = state.codes["CH"]
                    content = g.content_of(items[item_index], "CH")
                    assert isinstance(content, g.Simple)
                    events.append(("CH", self._decode_empty(r, content, self.ch_what.get(type_name, type_name))))
                    return events
                r.pos = start
            item_index, name, nxt = self._read_code(r, state, type_name)
            if item_index == g.EE_ITEM:
                return events
            if item_index == g.REFUSED_ITEM:
                raise self.refused(type_name, name)
            item = items[item_index]
            content = g.content_of(item, name)
            if isinstance(content, g.Simple):
                if item.kind == "SE":
                    if r.bits(1, name):  # escape: only the empty-content form (second-level EE) is accepted
                        value = self._decode_empty(r, content, name)
                    else:
                        value = self.decode_simple(r, content, name)
                        if r.bits(1, name):
                            raise ExiError(
                                f"unsupported EXI deviation: escape code at the end of {name} at bit {r.pos}"
                            )
                else:
                    what = self.ch_what.get(type_name, type_name) if name == "CH" else name
                    value = self.decode_simple(r, content, what)
            else:
                assert content is not None
                try:
                    value = self.decode_value(r, content)
                except UnsupportedMessage as exc:
                    if events and events[0][0] == "Header":  # keep the SessionID for the caller
                        exc.session_id = events[0][1].session_id
                    raise
            events.append((name, value))
            state = states[nxt]

    def decode_value(self, r: BitReader, type_name: str) -> Any:
        """Decode a ``type_name`` element's content into its Python value."""
        return self.from_events[type_name](self.decode_type(r, type_name))
