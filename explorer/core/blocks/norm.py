"""Normalisation: batch norm (2-D on feature maps, 1-D on vectors) and AlexNet's local response norm
(each type's registry entry)."""

from __future__ import annotations

from torch import nn

from explorer.core.blocks._common import one_free_leaf, spatial
from explorer.core.registry import BlockCost, BlockDef, Field, Params, Shape, Warn, register


def _bn_build(shape: Shape, p: Params) -> nn.Module:
    cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    return cls(shape[0], eps=p["eps"], momentum=p["momentum"], affine=p["affine"])


register(BlockDef(
    type="batchnorm", title="Batch norm", family="normalization",
    description="Normalises each channel to zero mean and unit variance over the batch, then "
                "scales and shifts it (2 learned numbers per channel; running statistics are "
                "buffers, not parameters).",
    fields=(Field("eps", "float", 1e-5, "added to the variance for stability (GoogLeNet uses 0.001)",
                  min=0.0, max=1.0, label="Epsilon"),
            Field("momentum", "float", 0.1, "weight of the newest batch in the running statistics",
                  min=0.0, max=1.0),
            Field("affine", "bool", True, "learn a scale (gamma) and shift (beta) per channel",
                  label="Learn scale, shift")),
    output_shape=lambda s, p, warn: s, build=_bn_build,
    formula=lambda i, o, p: (f"params 2*{i[0]} = {2 * i[0]:,} (gamma, beta)" if p["affine"] else "no params")
    + f"; buffers 2*{i[0]} running mean/var",
    input_kind="any", elementwise=True, short="BATCHNORM", role="norm",
    cost=lambda c, p: BlockCost(1, 2 * (c or 0) if p["affine"] else 0),  # gamma, beta per channel
))


def _lrn_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    spatial(shape, "lrn")
    return shape


register(BlockDef(
    type="lrn", title="Local response norm", family="normalization",
    description="AlexNet's normalisation across neighbouring channels: "
                "b = a / (k + alpha/n * sum of a^2 over n channels)^beta. No parameters.",
    fields=(Field("size", "int", 5, "number of neighbouring channels n", min=1, max=64),
            Field("alpha", "float", 1e-4, "scale alpha", min=0.0, max=10.0),
            Field("beta", "float", 0.75, "exponent beta", min=0.0, max=10.0),
            Field("k", "float", 2.0, "additive constant k", min=0.0, max=100.0)),
    output_shape=_lrn_out,
    build=lambda s, p: nn.LocalResponseNorm(p["size"], alpha=p["alpha"], beta=p["beta"], k=p["k"]),
    formula=lambda i, o, p: f"across {p['size']} channels; no params",
    elementwise=True, short="LRN", role="norm", cost=one_free_leaf,
))
