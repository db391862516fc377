"""Network specifications: frozen dataclasses, validation against the block registry, JSON.

A spec is plain data (the JSON format below) so that it can live in a URL, in session state and
in a run directory. Validation here covers the *fields* of each block (known names, types,
ranges); whether the shapes fit is checked by `explorer.core.shapes.infer_shapes`, which walks the
blocks with the pure output-shape formulas.

    {"format": "cnn-explorer/spec@1", "name": "my-net", "input": [3, 32, 32], "num_classes": 10,
     "blocks": [{"type": "conv", "out_channels": 32, "kernel": 3, "padding": 1}, ...]}
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from explorer.errors import SpecError  # noqa: F401  (re-exported: explorer.core.spec.SpecError stays importable)

SPEC_FORMAT = "cnn-explorer/spec@1"
MAX_BLOCKS = 500          # a spec longer than this is almost certainly a mistake (or an attack)
MAX_REPEAT = 64
MAX_SPEC_BYTES = 256_000  # JSON text accepted from uploads and links
MAX_FEATURES = 10_000_000  # a flat input vector
MAX_DEPTH = 16            # nesting of lists/objects in spec JSON (a spec needs 4)
MAX_NUMBER_DIGITS = 30    # digits of one JSON number (Python refuses more than 4,300 itself)
MAX_NAME_CHARS = 100
MAX_CLASSES = 100_000
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 3, 60, 60, 8, 8
_REPR.maxlong = 40  # digits of an int (Python refuses to print one of more than 4,300 digits at all)


def short_repr(value: Any) -> str:
    """A bounded repr for error messages: deep or huge input never makes a huge (or failing) message."""
    return _REPR.repr(value)


# C0/C1 control characters (NUL, escape...) and lone surrogates (not encodable as UTF-8)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_text(value: Any, field: str, *, max_chars: int, single_line: bool) -> str:
    """A string field from outside: encodable as UTF-8 (no lone surrogates), no control characters
    (NUL, escape sequences; newlines and tabs allowed unless single_line), at most max_chars."""
    if not isinstance(value, str):
        raise SpecError(f"'{field}' must be a string, got {short_repr(value)}", field=field)
    if len(value) > max_chars:
        raise SpecError(f"'{field}' has {len(value):,} characters; the limit is {max_chars:,}", field=field)
    bad = (_CONTROL_LINE if single_line else _CONTROL).search(value)
    if bad:
        raise SpecError(f"'{field}' contains the character U+{ord(bad.group()):04X}, which a {field} cannot "
                        f"hold (a control character or half of a surrogate pair); remove it", field=field)
    return value


@dataclass(frozen=True)
class BlockSpec:
    """One block of a network: a registered type and its (validated, default-free) fields.

    `params` holds only what the user set, as sorted (name, value) pairs so the dataclass stays
    hashable; `explorer.core.registry.resolve_params` fills the defaults in.
    """

    type: str
    params: tuple[tuple[str, Any], ...] = ()
    repeat: int = 1  # the block is stacked this many times (shapes carried through)

    @staticmethod
    def make(type: str, repeat: int = 1, **params: Any) -> "BlockSpec":
        return BlockSpec(type=type, params=_freeze(params), repeat=repeat)

    @property
    def values(self) -> dict[str, Any]:
        return {k: _thaw(v) for k, v in self.params}

    def get(self, name: str, default: Any = None) -> Any:
        for k, v in self.params:
            if k == name:
                return _thaw(v)
        return default

    def with_values(self, **changes: Any) -> "BlockSpec":
        values = self.values
        repeat = changes.pop("repeat", self.repeat)
        values.update(changes)
        return BlockSpec(type=self.type, params=_freeze(values), repeat=repeat)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type}
        d.update(self.values)
        if self.repeat != 1:
            d["repeat"] = self.repeat
        return d


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network: input shape (C, H, W) or (features,), classes, and the block list."""

    name: str = "network"
    input: tuple[int, ...] = (3, 32, 32)
    num_classes: int = 10
    blocks: tuple[BlockSpec, ...] = ()
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": SPEC_FORMAT, "name": self.name, "input": list(self.input),
                             "num_classes": self.num_classes,
                             "blocks": [b.to_dict() for b in self.blocks]}
        if self.description:
            d["description"] = self.description
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @staticmethod
    def from_dict(data: Any) -> "NetworkSpec":
        return spec_from_dict(data)

    @staticmethod
    def from_json(text: str | bytes) -> "NetworkSpec":
        return spec_from_json(text)

    # Editing helpers used by the builder; each returns a new spec (specs are immutable).
    def with_blocks(self, blocks: Iterable[BlockSpec]) -> "NetworkSpec":
        return replace(self, blocks=tuple(blocks))

    def with_input(self, input_shape: Iterable[int]) -> "NetworkSpec":
        return replace(self, input=check_input_shape(list(input_shape)))

    def with_num_classes(self, num_classes: int) -> "NetworkSpec":
        """Change the class count, and the last block that can produce class scores (one whose
        registry entry names a `classes_field`: linear, conv) if it produced the old count."""
        from explorer.core.registry import get_block  # registry imports spec; avoid a cycle

        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or not 1 <= num_classes <= MAX_CLASSES:
            raise SpecError(f"num_classes must be an integer from 1 to {MAX_CLASSES}, got "
                            f"{short_repr(num_classes)}", field="num_classes")
        blocks = list(self.blocks)
        for i in range(len(blocks) - 1, -1, -1):
            b = blocks[i]
            key = get_block(b.type).classes_field
            if key is not None:
                value = b.get(key)   # an int, or a list of widths whose last one is the output count
                if isinstance(value, (list, tuple)) and value and value[-1] == self.num_classes:
                    blocks[i] = b.with_values(**{key: [*value[:-1], num_classes]})
                elif value == self.num_classes:
                    blocks[i] = b.with_values(**{key: num_classes})
                break
        return replace(self, num_classes=num_classes, blocks=tuple(blocks))


def freeze_params(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Block values as sorted (name, value) pairs with lists as tuples: hashable, order-free."""
    return _freeze(values)


def _freeze(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))


def _thaw(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def check_input_shape(value: Any) -> tuple[int, ...]:
    ok = (isinstance(value, (list, tuple)) and len(value) in (1, 3)
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
    if not ok:
        raise SpecError(f"'input' must be [channels, height, width] (or [features]) as integers, "
                        f"got {short_repr(value)}", field="input")
    limits = (MAX_FEATURES,) if len(value) == 1 else (65536, 8192, 8192)
    if any(not 1 <= v <= limit for v, limit in zip(value, limits)):
        raise SpecError(f"'input' sizes must be positive and at most {list(limits)}, got {list(value)}",
                        field="input")
    return tuple(value)


def spec_from_json(text: str | bytes) -> NetworkSpec:
    """Parse and validate spec JSON text (str, or bytes in UTF-8 with or without a BOM).

    Every failure is a SpecError: not text, too long, nested deeper than MAX_DEPTH, numbers with
    more than MAX_NUMBER_DIGITS digits, NaN/Infinity, invalid JSON, or an invalid spec."""
    return spec_from_dict(parse_json(text, "the spec"))


def parse_json(text: Any, what: str = "the spec") -> Any:
    """JSON text from outside -> Python data, bounded in size, depth and number length.

    Python's json module would raise RecursionError on "[[[[...", ValueError on an integer of
    more than 4,300 digits, and accept NaN/Infinity; here each is a SpecError naming `what`."""
    if isinstance(text, (bytes, bytearray)):
        text = _decode(bytes(text), what)
    if not isinstance(text, str):
        raise SpecError(f"{what} must be JSON text, got {type(text).__name__}")
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"{what} is {len(text):,} characters; the limit is {MAX_SPEC_BYTES:,}")
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    depth = _nesting_depth(text)
    if depth > MAX_DEPTH:
        raise SpecError(f"{what} nests lists/objects {depth} levels deep; a spec needs at most 4 "
                        f"(the limit is {MAX_DEPTH}). Was the file cut or generated by mistake?")
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise SpecError(f"{what} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None


def _decode(data: bytes, what: str) -> str:
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{what} is {len(data):,} bytes; the limit is {MAX_SPEC_BYTES:,}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(f"{what} is UTF-16 text; save it as UTF-8 (the usual .json encoding)")
    try:
        return data.decode("utf-8")  # a leading BOM is dropped with the text's (once)
    except UnicodeDecodeError:
        raise SpecError(f"{what} is not UTF-8 text; save it as a UTF-8 .json text file") from None


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)  # JSON string literals (brackets inside do not nest)
_BRACKETS = re.compile(r"[\[\]{}]")


def _nesting_depth(text: str) -> int:
    """Deepest nesting of [ and { outside strings (linear time; no recursion)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth = depth + 1 if bracket in "[{" else depth - 1
        deepest = max(deepest, depth)
    return deepest


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise SpecError(f"a number in the spec has {len(digits):,} digits; numbers in a spec have at "
                        f"most {MAX_NUMBER_DIGITS}")
    return int(digits)


def _parse_float(text: str) -> float:
    value = float(text) if len(text) <= 64 else math.inf
    if not math.isfinite(value):
        raise SpecError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is too large or too "
                        f"long; numbers in a spec are finite, with at most 64 characters")
    return value


def _no_constant(name: str) -> float:
    raise SpecError(f"{name} is not a number a spec can hold (JSON has no NaN or Infinity); "
                    f"write a finite number")


def spec_from_dict(data: Any) -> NetworkSpec:
    """Validate a JSON-like dict and return a NetworkSpec (block fields checked by the registry)."""
    from explorer.core.registry import validate_block_dict  # registry imports spec; avoid a cycle

    if not isinstance(data, dict):
        raise SpecError(f"a spec must be a JSON object, got {type(data).__name__}")
    if not all(isinstance(k, str) for k in data):
        raise SpecError("a spec's keys must be strings")
    fmt = data.get("format", SPEC_FORMAT)
    if not isinstance(fmt, str) or fmt != SPEC_FORMAT:
        raise SpecError(f"unknown format {short_repr(fmt)}; this version reads {SPEC_FORMAT!r}", field="format")
    known = {"format", "name", "input", "num_classes", "blocks", "description"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"unknown key(s) {', '.join(map(short_repr, unknown[:5]))}; a spec has "
                        f"{', '.join(sorted(known))}", field=unknown[0])
    name = check_text(data.get("name", "network"), "name", max_chars=MAX_NAME_CHARS, single_line=True)
    if not name.strip():
        raise SpecError(f"'name' must be a non-empty string of at most {MAX_NAME_CHARS} characters", field="name")
    input_shape = check_input_shape(data.get("input", [3, 32, 32]))
    num_classes = data.get("num_classes", 10)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or not 1 <= num_classes <= MAX_CLASSES:
        raise SpecError(f"'num_classes' must be an integer from 1 to {MAX_CLASSES}, got {short_repr(num_classes)}",
                        field="num_classes")
    blocks_data = data.get("blocks", [])
    if not isinstance(blocks_data, list):
        raise SpecError("'blocks' must be a list of block objects", field="blocks")
    if len(blocks_data) > MAX_BLOCKS:
        raise SpecError(f"{len(blocks_data)} blocks is more than the limit of {MAX_BLOCKS}", field="blocks")
    blocks = tuple(validate_block_dict(i, b) for i, b in enumerate(blocks_data))
    description = check_text(data.get("description", ""), "description", max_chars=MAX_SPEC_BYTES,
                             single_line=False)
    return NetworkSpec(name=name.strip(), input=input_shape, num_classes=num_classes,
                       blocks=blocks, description=description)


__all__ = ["SPEC_FORMAT", "SpecError", "check_input_shape", "BlockSpec", "NetworkSpec", "spec_from_json", "spec_from_dict",
           "MAX_BLOCKS", "MAX_REPEAT", "MAX_SPEC_BYTES", "MAX_DEPTH", "MAX_CLASSES", "parse_json",
           "short_repr", "check_text"]
