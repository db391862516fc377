"""Regularisers active only in training: dropout, channel dropout, additive Gaussian noise (each
type's registry entry; all are identities at inference)."""

from __future__ import annotations

import torch
from torch import nn

from explorer.core.blocks._common import one_free_leaf, spatial
from explorer.core.registry import BlockDef, Field, Params, Shape, Warn, register

_P = Field("p", "float", 0.5, "probability of zeroing each unit in training (0.5 is common)", min=0.0, max=0.99,
           label="Drop probability p")

register(BlockDef(
    type="dropout", title="Dropout", family="regularization",
    description="Zeroes each value with probability p during training and scales the rest by "
                "1/(1-p); does nothing at test time.",
    fields=(_P,), output_shape=lambda s, p, warn: s, build=lambda s, p: nn.Dropout(p["p"]),
    formula=lambda i, o, p: f"p = {p['p']:g}; no params", input_kind="any", elementwise=True,
    short="DROPOUT", role="identity_in_eval", cost=one_free_leaf,
))


def _d2_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    spatial(shape, "dropout2d")
    return shape


register(BlockDef(
    type="dropout2d", title="Channel dropout", family="regularization",
    description="Zeroes whole feature maps with probability p during training (neighbouring pixels "
                "are correlated, so dropping single pixels does little).",
    fields=(_P,), output_shape=_d2_out, build=lambda s, p: nn.Dropout2d(p["p"]),
    formula=lambda i, o, p: f"p = {p['p']:g} per channel; no params", elementwise=True,
    short="DROPOUT2D", role="identity_in_eval", cost=one_free_leaf,
))


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise in training mode only: x + std * randn_like(x)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.std > 0:
            return x + self.std * torch.randn_like(x)
        return x

    def extra_repr(self) -> str:
        return f"std={self.std}"


register(BlockDef(
    type="noise", title="Gaussian noise", family="regularization",
    description="Adds random normal noise with standard deviation std during training only.",
    fields=(Field("std", "float", 0.1, "standard deviation of the added noise", min=0.0, max=10.0,
                  label="Noise std"),),
    output_shape=lambda s, p, warn: s, build=lambda s, p: GaussianNoise(p["std"]),
    formula=lambda i, o, p: f"x + N(0, {p['std']:g}^2); no params", input_kind="any", elementwise=True,
    short="NOISE", role="identity_in_eval", cost=one_free_leaf,
    export=lambda i, p, m: f"GaussianNoise({p['std']})", export_support=(GaussianNoise,),
))
