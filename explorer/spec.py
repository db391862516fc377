"""Network specifications: frozen dataclasses, validation against the block registry, JSON.

A spec is plain data (the JSON format below) so that it can live in a URL, in session state and
in a run directory. Validation here covers the *fields* of each block (known names, types,
ranges); whether the shapes fit is checked by `explorer.shapes.infer_shapes`, which walks the
blocks with the pure output-shape formulas.

    {"format": "cnn-explorer/spec@1", "name": "my-net", "input": [3, 32, 32], "num_classes": 10,
     "blocks": [{"type": "conv", "out_channels": 32, "kernel": 3, "padding": 1}, ...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from explorer.errors import SpecError, UserError  # noqa: F401  (SpecError is re-exported here)

SPEC_FORMAT = "cnn-explorer/spec@1"
MAX_BLOCKS = 500          # a spec longer than this is almost certainly a mistake (or an attack)
MAX_REPEAT = 64
MAX_SPEC_BYTES = 256_000  # JSON text accepted from uploads and links
MAX_FEATURES = 10_000_000  # a flat input vector


@dataclass(frozen=True)
class BlockSpec:
    """One block of a network: a registered type and its (validated, default-free) fields.

    `params` holds only what the user set, as sorted (name, value) pairs so the dataclass stays
    hashable; `explorer.registry.resolve_params` fills the defaults in.
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
        return replace(self, input=_check_input(list(input_shape)))

    def with_num_classes(self, num_classes: int) -> "NetworkSpec":
        """Change the class count, and the last linear/conv layer that produced the old count."""
        if num_classes < 1:
            raise SpecError(f"num_classes must be at least 1, got {num_classes}", field="num_classes")
        blocks = list(self.blocks)
        for i in range(len(blocks) - 1, -1, -1):
            b = blocks[i]
            key = {"linear": "out_features", "conv": "out_channels"}.get(b.type)
            if key is not None:
                if b.get(key) == self.num_classes:
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


def _check_input(value: Any) -> tuple[int, ...]:
    ok = (isinstance(value, (list, tuple)) and len(value) in (1, 3)
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
    if not ok:
        raise SpecError(f"'input' must be [channels, height, width] (or [features]) as integers, "
                        f"got {value!r}", field="input")
    limits = (MAX_FEATURES,) if len(value) == 1 else (65536, 8192, 8192)
    if any(not 1 <= v <= limit for v, limit in zip(value, limits)):
        raise SpecError(f"'input' sizes must be positive and at most {list(limits)}, got {list(value)}",
                        field="input")
    return tuple(value)


def spec_from_json(text: str | bytes) -> NetworkSpec:
    if isinstance(text, bytes):
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError(f"the spec is {len(text):,} bytes; the limit is {MAX_SPEC_BYTES:,}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError("the spec is not UTF-8 text; save it as a .json text file") from None
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is {len(text):,} characters; the limit is {MAX_SPEC_BYTES:,}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"the spec is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return spec_from_dict(data)


def spec_from_dict(data: Any) -> NetworkSpec:
    """Validate a JSON-like dict and return a NetworkSpec (block fields checked by the registry)."""
    from explorer.registry import validate_block_dict  # registry imports spec; avoid a cycle

    if not isinstance(data, dict):
        raise SpecError(f"a spec must be a JSON object, got {type(data).__name__}")
    fmt = data.get("format", SPEC_FORMAT)
    if fmt != SPEC_FORMAT:
        raise SpecError(f"unknown format {fmt!r}; this version reads {SPEC_FORMAT!r}", field="format")
    known = {"format", "name", "input", "num_classes", "blocks", "description"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"unknown key(s) {', '.join(map(repr, unknown))}; a spec has "
                        f"{', '.join(sorted(known))}", field=unknown[0])
    name = data.get("name", "network")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise SpecError("'name' must be a non-empty string of at most 100 characters", field="name")
    input_shape = _check_input(data.get("input", [3, 32, 32]))
    num_classes = data.get("num_classes", 10)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or not 1 <= num_classes <= 100_000:
        raise SpecError(f"'num_classes' must be an integer from 1 to 100000, got {num_classes!r}",
                        field="num_classes")
    blocks_data = data.get("blocks", [])
    if not isinstance(blocks_data, list):
        raise SpecError("'blocks' must be a list of block objects", field="blocks")
    if len(blocks_data) > MAX_BLOCKS:
        raise SpecError(f"{len(blocks_data)} blocks is more than the limit of {MAX_BLOCKS}", field="blocks")
    blocks = tuple(validate_block_dict(i, b) for i, b in enumerate(blocks_data))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpecError("'description' must be a string", field="description")
    return NetworkSpec(name=name.strip(), input=input_shape, num_classes=num_classes,
                       blocks=blocks, description=description)


__all__ = ["SPEC_FORMAT", "SpecError", "BlockSpec", "NetworkSpec", "spec_from_json", "spec_from_dict",
           "MAX_BLOCKS", "MAX_REPEAT", "MAX_SPEC_BYTES"]
