"""Flatten and fully connected (linear) layers (each type's registry entry)."""

from __future__ import annotations

import math

from torch import nn

from explorer.core.blocks._common import f_bias, flat, n, one_free_leaf
from explorer.core.registry import BlockCost, BlockDef, Field, Params, Shape, Warn, register


def _flatten_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    return (math.prod(shape),)


register(BlockDef(
    type="flatten", title="Flatten", family="layers",
    description="Unrolls a CxHxW feature map into one vector of C*H*W numbers for linear layers.",
    fields=(), output_shape=_flatten_out, build=lambda s, p: nn.Flatten(1),
    formula=lambda i, o, p: f"{'*'.join(map(str, i))} = {o[0]:,}; no params", input_kind="any",
    elementwise=True, short="FLATTEN", role="identity_in_eval",  # values unchanged, only reshaped
    cost=one_free_leaf,
))


def _linear_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    flat(shape, "linear")
    return (p["out_features"],)


def _linear_formula(i: Shape, o: Shape, p: Params) -> str:
    w = i[0] * o[0]
    return (f"params {i[0]:,}*{o[0]:,}" + (f" + {o[0]:,} = {n(w + o[0])}" if p["bias"] else f" = {n(w)}"))


def _linear_cost(c: int | None, p: Params) -> BlockCost:
    """One nn.Linear: F_in x F_out weights (one MAC each per image) + F_out biases."""
    weights = (c or 0) * p["out_features"]
    return BlockCost(1, weights + p["out_features"] * p["bias"], mac_weights=weights)


register(BlockDef(
    type="linear", title="Linear (fully connected)", family="layers",
    description="Every output is a weighted sum of every input plus a bias. Most of VGG's "
                "parameters sit in these layers.",
    fields=(Field("out_features", "int", 10, "number of outputs", min=1, max=1_000_000,
                  label="Output features", short="out"), f_bias()),
    output_shape=_linear_out, build=lambda s, p: nn.Linear(s[0], p["out_features"], bias=p["bias"]),
    formula=_linear_formula, input_kind="flat", short="FC", role="classifier", cost=_linear_cost,
    classes_field="out_features",
))
