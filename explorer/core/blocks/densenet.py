"""DenseNet's dense block and transition (their registry entries), laid out as torchvision's
(same module names).

In a dense block every layer sees the concatenation of all earlier feature maps and adds
`growth_rate` new ones: C_out = C_in + num_layers * growth_rate.
"""

from __future__ import annotations

import torch
from torch import nn

from explorer.core.blocks._common import spatial, window
from explorer.core.registry import BlockCost, BlockDef, Branches, Field, Params, Shape, Warn, register


class DenseLayer(nn.Module):
    """BN -> ReLU -> 1x1 conv (bn_size*k) -> BN -> ReLU -> 3x3 conv (k); input is the list so far."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.dropout(self.conv2(self.relu2(self.norm2(x))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, in_channels: int, num_layers: int, growth_rate: int, bn_size: int, drop_rate: float):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}",
                            DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate))

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)  # (N, C_in + L*k, H, W)


class Transition(nn.Sequential):
    """BN -> ReLU -> 1x1 conv (compress channels) -> 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


def _dense_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    c, h, w = spatial(shape, "denseblock")
    return (c + p["num_layers"] * p["growth_rate"], h, w)


def _transition_channels(c: int, p: Params) -> int:
    return max(1, int(c * p["compression"]))


def _transition_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    c, h, w = spatial(shape, "transition")
    return (_transition_channels(c, p), window(h, 2, 2, 0, what="window", warn=warn),
            window(w, 2, 2, 0, what="window", warn=warn))


def _dense_cost(c: int | None, p: Params) -> BlockCost:
    """7 leaves a layer (BN, ReLU, 1x1 conv, BN, ReLU, 3x3 conv, dropout or Identity); layer j
    sees C_in + j*k channels."""
    cin, layers, k, wide = c or 0, p["num_layers"], p["growth_rate"], p["bn_size"] * p["growth_rate"]
    seen = layers * cin + k * layers * (layers - 1) // 2  # sum of each layer's input channels
    # per layer: BN (2 x its input) + 1x1 conv (input x wide) + BN (2 x wide) + 3x3 conv (9 x wide x k)
    return BlockCost(7 * layers, seen * (2 + wide) + layers * (2 * wide + 9 * wide * k))


def _transition_cost(c: int | None, p: Params) -> BlockCost:
    """BN (2 per input channel), ReLU, a bias-free 1x1 conv, the 2x2 pool: 4 leaves."""
    cin = c or 0
    return BlockCost(4, 2 * cin + cin * _transition_channels(cin, p))


def _dense_branches(i: Shape, o: Shape, p: Params) -> Branches:
    k, n = p["growth_rate"], p["num_layers"]
    layers = tuple(f"layer {j + 1}: BN-ReLU-1x1-BN-ReLU-3x3 → +{k}" for j in range(min(n, 4)))
    if n > 4:
        layers = layers[:3] + (f"... {n - 3} more layers, +{k} each",)
    return Branches(paths=(layers, ()), merge="concat")


register(BlockDef(
    type="denseblock", title="Dense block", family="composite",
    description="DenseNet: each layer (BN-ReLU-1x1 conv-BN-ReLU-3x3 conv) receives all earlier "
                "feature maps concatenated and adds growth_rate new ones.",
    fields=(Field("num_layers", "int", 6, "layers in the block", min=1, max=128, label="Layers"),
            Field("growth_rate", "int", 32, "new channels per layer (k)", min=1, max=1024, label="Growth rate k"),
            Field("bn_size", "int", 4, "the 1x1 bottleneck has bn_size * k channels", min=1, max=16,
                  label="Bottleneck factor"),
            Field("drop_rate", "float", 0.0, "dropout after each layer", min=0.0, max=0.99)),
    output_shape=_dense_out,
    build=lambda s, p: DenseBlock(s[0], p["num_layers"], p["growth_rate"], p["bn_size"], p["drop_rate"]),
    formula=lambda i, o, p: f"{i[0]} + {p['num_layers']}*{p['growth_rate']} = {o[0]} channels",
    memtable_label=lambda i, o, p: f"DENSE{p['num_layers']}-{o[0]}",
    branches=_dense_branches, short="DENSE", role="feature", cost=_dense_cost,
    export=lambda i, p, m: (f"DenseBlock({i[0]}, {p['num_layers']}, {p['growth_rate']}, {p['bn_size']}, "
                            f"{p['drop_rate']})"),
    export_support=(DenseLayer, DenseBlock),
))

register(BlockDef(
    type="transition", title="Dense transition", family="composite",
    description="Between dense blocks: BN, ReLU, a 1x1 conv that compresses the channels, and 2x2 "
                "average pooling that halves the size.",
    fields=(Field("compression", "float", 0.5, "output channels = compression * input channels",
                  min=0.01, max=1.0),),
    output_shape=_transition_out,
    build=lambda s, p: Transition(s[0], _transition_channels(s[0], p)),
    formula=lambda i, o, p: f"1x1 conv {i[0]} -> {o[0]}, avgpool 2: {i[1]} -> {o[1]}",
    memtable_label=lambda i, o, p: f"TRANSITION-{o[0]}", short="TRANSITION", role="feature",
    cost=_transition_cost,
    export=lambda i, p, m: f"Transition({i[0]}, {_transition_channels(i[0], p)})", export_support=(Transition,),
    branches=lambda i, o, p: Branches(paths=(("BN", "ReLU", f"1x1 conv → {o[0]}", "2x2 avg pool"),), merge=""),
))
