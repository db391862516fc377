"""The block registry: every block type with its parameter schema, builder and formulas.

A BlockDef is the single source of truth for one block type:
- `fields`: the parameter schema (kind, default, range, help) that validation and the sidebar
  widgets are generated from;
- `output_shape(in_shape, p, warn)`: the pure shape formula, raising ShapeProblem when the
  shape does not fit (checked against a real forward pass in the tests);
- `build(in_shape, p)`: the torch module (built on whatever device is current, meta included);
- `formula(in_shape, out_shape, p)`: a one-line cs231n-style explanation of shape and params.

Shapes are per image: (C, H, W) for feature maps, (F,) for flat vectors.
The registry fails loudly on duplicate names and on unknown names (with the known ones listed).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Callable

from explorer.core.spec import MAX_REPEAT, BlockSpec, SpecError, short_repr

Shape = tuple[int, ...]
Params = dict[str, Any]
Warn = Callable[[str], None]


class ShapeProblem(Exception):
    """Raised by a shape formula: the message says what to change; `field` names the culprit."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Field:
    """One parameter of a block type.

    kind: "int", "float", "bool", "choice" (one of `choices`), "padding" (int >= 0 or "same"),
    "ints" (a list of ints, e.g. mlpconv channel widths).
    """

    name: str
    kind: str
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    required: bool = False

    def check(self, value: Any) -> Any:
        """Return the value if it fits this field, else raise ValueError with what is expected.

        Types are strict (true is not 1, 5.0 is not 5); floats must be finite (NaN passes no
        range check, so it is refused here); messages quote at most a short repr of the value."""
        if self.kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"must be an integer, got {short_repr(value)}")
        elif self.kind == "float":
            value = _finite_float(value)
        elif self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false, got {short_repr(value)}")
        elif self.kind == "choice":
            if not any(type(value) is type(c) and value == c for c in self.choices):
                raise ValueError(f"must be one of {', '.join(map(repr, self.choices))}, got {short_repr(value)}")
        elif self.kind == "padding":
            if isinstance(value, str) and value == "same":
                return value
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"must be an integer or \"same\", got {short_repr(value)}")
        elif self.kind == "ints":
            if (not isinstance(value, (list, tuple)) or not value
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
                raise ValueError(f"must be a non-empty list of integers, got {short_repr(value)}")
            if len(value) > 16:
                raise ValueError(f"can list at most 16 values, got {len(value)}")
            for v in value:
                self._check_range(v)
            return list(value)
        else:  # pragma: no cover - a programming error in a block definition
            raise AssertionError(f"unknown field kind {self.kind}")
        if self.kind in ("int", "float", "padding"):
            self._check_range(value)
        return value

    def _check_range(self, value: float) -> None:
        if self.min is not None and value < self.min:
            raise ValueError(f"must be at least {self.min:g}, got {value}")
        if self.max is not None and value > self.max:
            raise ValueError(f"must be at most {self.max:g}, got {value}")


def _finite_float(value: Any) -> float:
    """A JSON number as a finite float (ints too large for a float and NaN/inf are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {short_repr(value)}")
    if isinstance(value, int) and abs(value) > 2**53:
        raise ValueError("must be a number of ordinary size (at most 2**53 in magnitude)")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return value


@dataclass(frozen=True)
class Branches:
    """How a composite block is drawn (explorer.charts.diagram): its input may pass a `stem`, then
    parallel `paths` (each a sequence of layer labels; an empty path is the identity shortcut)
    meet at `merge`, and `after` follows the merge. Labels are short, e.g. "3x3 conv s2 → 64"."""

    paths: tuple[tuple[str, ...], ...]
    merge: str = "+"                 # "+" (add), "concat" (channels), "×" (scale channels)
    stem: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class BlockDef:
    type: str
    title: str                       # shown in the palette, e.g. "Convolution"
    family: str                      # palette group: layers, pooling, normalization, ...
    fields: tuple[Field, ...]
    output_shape: Callable[[Shape, Params, Warn], Shape]
    build: Callable[[Shape, Params], Any]
    formula: Callable[[Shape, Shape, Params], str]
    description: str = ""            # one or two sentences for the help text
    input_kind: str = "spatial"      # "spatial" needs (C,H,W), "flat" needs (F,), "any"
    elementwise: bool = False        # output is a same-shape function of the input (folded in memtables)
    memtable_label: Callable[[Shape, Shape, Params], str] | None = None
    branches: Callable[[Shape, Shape, Params], Branches] | None = None  # composite blocks: how to draw them

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def defaults(self) -> Params:
        return {f.name: f.default for f in self.fields if not f.required}


REGISTRY: dict[str, BlockDef] = {}


def register(block: BlockDef) -> BlockDef:
    if block.type in REGISTRY:
        raise ValueError(f"block type {block.type!r} is registered twice")
    if block.type != block.type.lower() or not block.type.isidentifier():
        raise ValueError(f"block type names are short lower-case identifiers, got {block.type!r}")
    REGISTRY[block.type] = block
    return block


def _ensure_loaded() -> None:
    if not REGISTRY:
        import explorer.core.blocks  # noqa: F401  (registers every family)


def get_block(type_name: str) -> BlockDef:
    _ensure_loaded()
    try:
        return REGISTRY[type_name]
    except KeyError:
        raise KeyError(unknown_type_message(type_name)) from None


def block_types() -> list[str]:
    _ensure_loaded()
    return list(REGISTRY)


def unknown_type_message(type_name: Any) -> str:
    _ensure_loaded()
    close = difflib.get_close_matches(str(type_name)[:100], REGISTRY, n=3) if isinstance(type_name, str) else []
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    return (f"unknown block type {short_repr(type_name)}.{hint} Known types: {', '.join(REGISTRY)}")


def validate_block_dict(index: int, data: Any) -> BlockSpec:
    """Check one block object from JSON against its schema; return a BlockSpec."""
    _ensure_loaded()
    if not isinstance(data, dict):
        raise SpecError(f"each block must be an object like {{\"type\": \"conv\", ...}}, got {short_repr(data)}",
                        block_index=index)
    if not all(isinstance(k, str) for k in data):
        raise SpecError("a block's keys must be strings", block_index=index)
    type_name = data.get("type")
    if type_name is None:
        raise SpecError("the block has no 'type'", block_index=index, field="type")
    if not isinstance(type_name, str) or type_name not in REGISTRY:
        raise SpecError(unknown_type_message(type_name), block_index=index, field="type")
    block = REGISTRY[type_name]
    names = {f.name for f in block.fields}
    params: dict[str, Any] = {}
    repeat = 1
    for key, value in data.items():
        if key == "type":
            continue
        if key == "repeat":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_REPEAT:
                raise SpecError(f"'repeat' must be an integer from 1 to {MAX_REPEAT}, got {short_repr(value)}",
                                block_index=index, block_type=type_name, field="repeat")
            repeat = value
            continue
        if key not in names:
            close = difflib.get_close_matches(key[:100], names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(f"unknown field {short_repr(key)}{hint}; {type_name} takes "
                            f"{', '.join(sorted(names)) or 'no fields'}",
                            block_index=index, block_type=type_name, field=key)
        try:
            params[key] = block.field(key).check(value)
        except ValueError as e:
            raise SpecError(f"{key} {e}", block_index=index, block_type=type_name, field=key) from None
    for f in block.fields:
        if f.required and f.name not in params:
            raise SpecError(f"'{f.name}' is required ({f.help})", block_index=index,
                            block_type=type_name, field=f.name)
    return BlockSpec.make(type_name, repeat=repeat, **params)


def resolve_params(block: BlockSpec) -> Params:
    """The block's values with defaults filled in."""
    params = get_block(block.type).defaults()
    params.update(block.values)
    return params
