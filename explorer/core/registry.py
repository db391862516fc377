"""The block registry: every block type with everything the app knows about it.

A BlockDef is the single source of truth for one block type, set in the block's own file in
explorer.core.blocks (adding a block type touches that one file):
- `fields`: the parameter schema (kind, default, range, help, UI label and abbreviation) that
  validation and the sidebar widgets are generated from;
- `output_shape(in_shape, p, warn)`: the pure shape formula, raising ShapeProblem when the
  shape does not fit (checked against a real forward pass in the tests);
- `build(in_shape, p)`: the torch module (built on whatever device is current, meta included);
- `formula(in_shape, out_shape, p)`: a one-line cs231n-style explanation of shape and params;
- `title`, `short`, `family`: how the UI, tables and diagrams name it (families: FAMILIES);
- `role`: what interpretation code may assume about it (ROLES);
- `export` and `export_support`: how it is written as standalone PyTorch source;
- `classes_field`: the field that a new class count resizes (NetworkSpec.with_num_classes);
- `kind`, `elementwise`: how the architecture diff and memory tables see it;
- `cost(in_channels, p)`: its closed-form BlockCost (leaf layers, parameters, MAC weights) that the
  server's budget (explorer.core.budget) adds up before anything is traced or built.

Shapes are per image: (C, H, W) for feature maps, (F,) for flat vectors.
The registry fails loudly on duplicate names and on unknown names, families and roles.
"""

from __future__ import annotations

import contextlib
import itertools
import difflib
import math
from dataclasses import dataclass, field as dataclass_field
from typing import Any, Callable, Iterator, NamedTuple

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

    name: str                        # the key in spec JSON, e.g. "out_channels"
    kind: str                        # see above
    default: Any = None              # None: unset (required fields have none)
    help: str = ""                   # one phrase, lower case, shown as the widget's help
    min: float | None = None         # inclusive range of numbers (and of each of "ints")
    max: float | None = None
    choices: tuple[Any, ...] = ()    # the allowed values of a "choice" field
    required: bool = False           # the spec must set it
    label: str = ""                  # the widget's label ("Filters K"); empty: from the name
    short: str = ""                  # abbreviation in one-line block summaries ("K"); empty: the name
    unset: str = ": automatic"       # after the label on an optional field's switch: what None means

    @property
    def ui_label(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def ui_short(self) -> str:
        return self.short or self.name

    @property
    def optional(self) -> bool:
        """An int field whose default is "unset" (pool stride: None means the kernel size)."""
        return self.kind == "int" and self.default is None

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

    paths: tuple[tuple[str, ...], ...]  # parallel paths of layer labels; () is the identity shortcut
    merge: str = "+"                 # "+" (add), "concat" (channels), "×" (scale channels); "": one path
    stem: tuple[str, ...] = ()       # layers before the paths split
    after: tuple[str, ...] = ()      # layers after the merge


@dataclass(frozen=True)
class Family:
    """A palette group of block types (BlockDef.family names one)."""

    name: str                # the key a BlockDef names, e.g. "pooling"
    label: str               # shown on the palette's pills, e.g. "Pooling"
    interchangeable: bool    # its members do one job (a pool is a pool): the architecture diff pairs
                             # a tanh with a relu as one replaced activation, not a removal and an addition


# Palette order: plain layers first, composite blocks last.
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("layers", "Layers", False),
    Family("activation", "Activations", True),
    Family("pooling", "Pooling", True),
    Family("normalization", "Normalization", True),
    Family("regularization", "Regularization", True),
    Family("composite", "Composite", False),
)}

# What interpretation code (explorer.interpret) may assume about a block, by its role.
ROLES: dict[str, str] = {
    "feature": "computes new feature maps (conv and composite blocks): Grad-CAM and the feature-map "
               "view look here",
    "activation": "an element-wise non-linearity: its output is the rectified map Grad-CAM prefers",
    "norm": "normalises a feature map and keeps its shape (a conv's chain continues through it)",
    "identity_in_eval": "leaves values unchanged at inference (dropout, noise; flatten only reshapes)",
    "pool": "downsamples with fixed windows",
    "adaptive_pool": "averages into a fixed size: global average pooling when that size is 1x1 (CAM)",
    "classifier": "a fully connected layer: the class scores when it comes last (CAM)",
}

ModuleSource = Callable[[Shape, Params, Any], str]


class BlockCost(NamedTuple):
    """One block instance's closed-form cost, per image (explorer.core.budget adds these up).

    The budget's MACs for the instance are mac_weights x max(input positions, output positions),
    positions being H*W of a (C, H, W) map and 1 for a flat (F,) vector."""

    layers: int                      # leaf-module calls in one forward pass (a ReLU run twice counts 2)
    params: int                      # parameter elements, bias included (exact)
    mac_weights: int | None = None   # parameters that each do at most one multiply-accumulate per
                                     # position; None: all of `params` (the upper bound composite
                                     # blocks use: no inner map is larger than both ends)


# (in_channels, params) -> BlockCost; in_channels None (before the shapes are walked) must give a
# lower bound of the layers (>= 1) over every input; a plain (layers, params) tuple is accepted
CostFn = Callable[[int | None, Params], tuple[int, ...]]


@dataclass(frozen=True)
class BlockDef:
    type: str                        # the name in spec JSON: short, lower case ("conv")
    title: str                       # its label in the palette and editor, e.g. "Convolution"
    family: str                      # palette group: a key of FAMILIES
    fields: tuple[Field, ...]        # the parameter schema
    output_shape: Callable[[Shape, Params, Warn], Shape]   # pure shape formula (raises ShapeProblem)
    build: Callable[[Shape, Params], Any]                  # (in_shape, params) -> nn.Module
    formula: Callable[[Shape, Shape, Params], str]         # one cs231n-style line on shape and params
    short: str                       # its name in memory tables and diagrams, e.g. "CONV", "FC"
    role: str                        # a key of ROLES
    description: str = ""            # one or two sentences for the help text
    input_kind: str = "spatial"      # "spatial" needs (C,H,W), "flat" needs (F,), "any"
    # the output is a same-shape function of the input (folded into the row above in memtables);
    # a callable (in_shape, out_shape, params) decides per instance
    elementwise: bool | Callable[[Shape, Shape, Params], bool] = False
    memtable_label: Callable[[Shape, Shape, Params], str] | None = None  # `short` with settings ("CONV3-64")
    branches: Callable[[Shape, Shape, Params], Branches] | None = None  # composite blocks: how to draw them
    export: ModuleSource | None = None  # constructor source of the built module, from (in_shape, params,
                                        # module); None: the module's repr, a torch.nn call ("nn." + repr)
    export_support: tuple[Any, ...] = ()  # classes/functions the exported source copies, in dependency order
    classes_field: str | None = None  # the field giving the output count a new class count resizes
                                      # (a list of widths: its last entry)
    kind: str = ""                   # coarse purpose the diff aligns on; "": the family when its members
                                     # are interchangeable, else the type ("conv" for sepconv)
    cost: CostFn = dataclass_field(kw_only=True)  # required: the budget's BlockCost (see CostFn);
    # no default: a parameter-free block of one leaf module says so with blocks._common.one_free_leaf.
    # tests/test_budget.py checks every type's against the module it builds.

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def defaults(self) -> Params:
        return {f.name: f.default for f in self.fields if not f.required}

    def row_label(self, in_shape: Shape, out_shape: Shape, p: Params) -> str:
        """The cs231n-style row label: `short` with its settings where the block says how."""
        return self.memtable_label(in_shape, out_shape, p) if self.memtable_label else self.short

    def is_elementwise(self, in_shape: Shape, out_shape: Shape, p: Params) -> bool:
        return self.elementwise(in_shape, out_shape, p) if callable(self.elementwise) else self.elementwise

    def diff_kind(self) -> str:
        """What the block is for, coarsely: the architecture diff pairs blocks of one kind."""
        if self.kind:
            return self.kind
        return self.family if FAMILIES[self.family].interchangeable else self.type

    def export_source(self, in_shape: Shape, p: Params, module: Any) -> str:
        """Python code that constructs `module` (this block built on `in_shape` with `p`)."""
        return self.export(in_shape, p, module) if self.export else "nn." + repr(module)


REGISTRY: dict[str, BlockDef] = {}


def register(block: BlockDef) -> BlockDef:
    """Add a block type; refuses duplicates, odd names, and unknown families, roles or fields."""
    if block.type in REGISTRY:
        raise ValueError(f"block type {block.type!r} is registered twice")
    if block.type != block.type.lower() or not block.type.isidentifier():
        raise ValueError(f"block type names are short lower-case identifiers, got {block.type!r}")
    if block.family not in FAMILIES:
        raise ValueError(f"block type {block.type!r}: unknown family {block.family!r}; one of {', '.join(FAMILIES)}")
    if block.role not in ROLES:
        raise ValueError(f"block type {block.type!r}: unknown role {block.role!r}; one of {', '.join(ROLES)}")
    if not block.short or not block.title:
        raise ValueError(f"block type {block.type!r} needs a title and a short name")
    if not callable(block.cost):
        raise ValueError(f"block type {block.type!r} needs a cost formula (BlockDef.cost) for the budget")
    if block.classes_field is not None and block.classes_field not in {f.name for f in block.fields}:
        raise ValueError(f"block type {block.type!r}: classes_field {block.classes_field!r} is not one of its fields")
    REGISTRY[block.type] = block
    VERSIONS[block.type] = next(_REGISTRATIONS)
    return block


def version(type_name: str) -> int:
    """Which registration of `type_name` is in force: a number no other registration had, so a
    cache keyed on (type, version) never serves a result of an earlier definition."""
    return VERSIONS[type_name]


def unregister(type_name: str) -> BlockDef:
    """Remove a block type (for tests that register one of their own); returns its definition."""
    _ensure_loaded()
    if type_name not in REGISTRY:
        raise KeyError(unknown_type_message(type_name))
    return REGISTRY.pop(type_name)


@contextlib.contextmanager
def registered(block: BlockDef) -> Iterator[BlockDef]:
    """`with registered(BlockDef(...)):` the type exists inside the block only (tests)."""
    _ensure_loaded()  # the built-in types first, so they keep their palette order
    register(block)
    try:
        yield block
    finally:
        unregister(block.type)


_LOADED = False  # every block family imported (and so registered)?
VERSIONS: dict[str, int] = {}          # type name -> the registration in force (see version)
_REGISTRATIONS = itertools.count(1)    # registrations so far, never reused


def _ensure_loaded() -> None:
    """Import explorer.core.blocks once (it registers every family); after that a flag test, as
    get_block is called for every block of every analysis."""
    global _LOADED
    if not _LOADED:
        import explorer.core.blocks  # noqa: F401  (registers every family)

        _LOADED = True


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
