"""Blocks of the small, efficient networks (their registry entries): SqueezeNet's fire,
MobileNetV2's inverted residual, and squeeze-and-excitation. Layouts and module names follow
torchvision's."""

from __future__ import annotations

import torch
from torch import nn

from explorer.core.blocks._common import f_out_channels, spatial, window
from explorer.core.registry import BlockCost, BlockDef, Branches, Field, Params, Shape, Warn, register


class Fire(nn.Module):
    """1x1 squeeze (+ReLU), then 1x1 and 3x3 expands (+ReLU) concatenated."""

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


def _fire_cost(c: int | None, p: Params) -> BlockCost:
    """3 convs with biases (1x1 squeeze, 1x1 and 3x3 expands) + 3 ReLU."""
    s, e1, e3 = p["squeeze"], p["expand1x1"], p["expand3x3"]
    return BlockCost(6, (c or 0) * s + s + s * e1 + e1 + 9 * s * e3 + e3)


register(BlockDef(
    type="fire", title="Fire (SqueezeNet)", family="composite",
    description="SqueezeNet: a 1x1 'squeeze' conv to few channels, then parallel 1x1 and 3x3 "
                "'expand' convs concatenated. AlexNet accuracy with 50x fewer parameters.",
    fields=(Field("squeeze", "int", 16, "1x1 squeeze filters", min=1, max=8192, label="Squeeze channels"),
            Field("expand1x1", "int", 64, "1x1 expand filters", min=1, max=8192, label="Expand 1x1"),
            Field("expand3x3", "int", 64, "3x3 expand filters", min=1, max=8192, label="Expand 3x3")),
    output_shape=lambda s, p, warn: (p["expand1x1"] + p["expand3x3"],) + spatial(s, "fire")[1:],
    build=lambda s, p: Fire(s[0], p["squeeze"], p["expand1x1"], p["expand3x3"]),
    branches=lambda i, o, p: Branches(stem=(f"1x1 squeeze → {p['squeeze']}", "ReLU"),
                                      paths=((f"1x1 expand → {p['expand1x1']}", "ReLU"),
                                             (f"3x3 expand → {p['expand3x3']}", "ReLU")), merge="concat"),
    formula=lambda i, o, p: (f"squeeze 1x1-{p['squeeze']}, expand [1x1-{p['expand1x1']} | "
                             f"3x3-{p['expand3x3']}] = {o[0]} channels"),
    memtable_label=lambda i, o, p: f"FIRE-{o[0]}", short="FIRE", role="feature", cost=_fire_cost,
    export=lambda i, p, m: f"Fire({i[0]}, {p['squeeze']}, {p['expand1x1']}, {p['expand3x3']})",
    export_support=(Fire,),
))


class ConvNormAct(nn.Sequential):
    """torchvision's Conv2dNormActivation: conv (no bias) -> BN -> ReLU6, named 0, 1, 2."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2,
                                   groups=groups, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expand (xt, ReLU6) -> 3x3 depthwise (stride, ReLU6) -> 1x1 linear projection; + x if shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormAct(in_channels, hidden, kernel=1))
        layers += [ConvNormAct(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def _invres_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    c, h, w = spatial(shape, "invres")
    args = dict(kernel=3, stride=p["stride"], padding=1, warn=warn)
    return (p["out_channels"], window(h, **args), window(w, **args))


def _invres_formula(i: Shape, o: Shape, p: Params) -> str:
    hidden = int(round(i[0] * p["expand_ratio"]))
    res = " + x" if p["stride"] == 1 and i[0] == p["out_channels"] else ""
    return f"1x1 {i[0]}->{hidden}, depthwise 3x3 /{p['stride']}, 1x1 {hidden}->{o[0]} (linear){res}"


def _invres_cost(c: int | None, p: Params) -> BlockCost:
    """[1x1 expand conv, BN, ReLU6 when t != 1] + 3x3 depthwise conv, BN, ReLU6 (9 hidden + 2 BN
    per hidden channel) + 1x1 projection conv, BN; every conv bias-free."""
    cin, out, t = c or 0, p["out_channels"], p["expand_ratio"]
    hidden = int(round(cin * t))
    expand = (3, cin * hidden + 2 * hidden) if t != 1 else (0, 0)
    return BlockCost(5 + expand[0], expand[1] + 11 * hidden + hidden * out + 2 * out)


register(BlockDef(
    type="invres", title="Inverted residual (MobileNetV2)", family="composite",
    description="MobileNetV2: expand the channels t-fold with a 1x1 conv, filter each channel with "
                "a 3x3 depthwise conv, project back down with a linear 1x1 conv; the shortcut joins "
                "the thin ends.",
    fields=(f_out_channels(32, "output channels"),
            Field("stride", "int", 1, "stride of the depthwise conv (1 or 2)", min=1, max=2,
                  label="Stride S", short="S"),
            Field("expand_ratio", "int", 6, "expansion factor t", min=1, max=16, label="Expansion ratio")),
    output_shape=_invres_out,
    build=lambda s, p: InvertedResidual(s[0], p["out_channels"], p["stride"], p["expand_ratio"]),
    formula=_invres_formula,
    memtable_label=lambda i, o, p: f"INVRES-{o[0]}", short="INVRES", role="feature", cost=_invres_cost,
    export=lambda i, p, m: f"InvertedResidual({i[0]}, {p['out_channels']}, {p['stride']}, {p['expand_ratio']})",
    export_support=(ConvNormAct, InvertedResidual),
    branches=lambda i, o, p: Branches(
        paths=((f"1x1 expand → {int(round(i[0] * p['expand_ratio']))}", "BN", "ReLU6",
                f"3x3 depthwise s{p['stride']}", "BN", "ReLU6", f"1x1 project → {o[0]}", "BN"),)
        + (((),) if p["stride"] == 1 and i[0] == o[0] else ()),
        merge="+" if p["stride"] == 1 and i[0] == o[0] else ""),
))


class SqueezeExcitation(nn.Module):
    """x * sigmoid(fc2(relu(fc1(avgpool(x))))), the FCs as 1x1 convs (torchvision.ops layout)."""

    def __init__(self, channels: int, squeeze_channels: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        scale = self.avgpool(x)                                  # (N, C, 1, 1)
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(scale))))
        return x * scale                                         # rescale each channel


def _squeeze(c: int, p: Params) -> int:
    return max(1, c // p["reduction"])


def _se_cost(c: int | None, p: Params) -> BlockCost:
    """Pool, 2 1x1 convs with biases (C -> squeeze -> C), ReLU, sigmoid: 5 leaves."""
    channels = c or 0
    squeeze = _squeeze(channels, p)
    return BlockCost(5, 2 * channels * squeeze + squeeze + channels)


register(BlockDef(
    type="se", title="Squeeze-excitation", family="composite",
    description="Squeeze-and-Excitation: global average pool, a small bottleneck MLP (ReLU, then "
                "sigmoid) and a per-channel rescaling of the input. Cheap channel attention.",
    fields=(Field("reduction", "int", 16, "bottleneck = channels / reduction", min=1, max=1024,
                  label="Reduction ratio"),),
    output_shape=lambda s, p, warn: spatial(s, "se"),
    build=lambda s, p: SqueezeExcitation(s[0], _squeeze(s[0], p)),
    formula=lambda i, o, p: (f"pool, FC {i[0]}->{_squeeze(i[0], p)}, ReLU, FC ->{i[0]}, sigmoid, scale; "
                             f"params 2*{i[0]}*{_squeeze(i[0], p)} + {i[0] + _squeeze(i[0], p)} = "
                             f"{2 * i[0] * _squeeze(i[0], p) + i[0] + _squeeze(i[0], p):,}"),
    memtable_label=lambda i, o, p: f"SE-{o[0]}", short="SE", role="feature", cost=_se_cost,
    export=lambda i, p, m: f"SqueezeExcitation({i[0]}, {_squeeze(i[0], p)})", export_support=(SqueezeExcitation,),
    branches=lambda i, o, p: Branches(paths=(("global avg pool", f"FC → {_squeeze(i[0], p)}", "ReLU",
                                              f"FC → {i[0]}", "sigmoid"), ()), merge="×"),
))
