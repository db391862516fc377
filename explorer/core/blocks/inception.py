"""GoogLeNet's inception module (its registry entry), laid out as torchvision's (branch1..branch4
of conv+BN+ReLU).

Four parallel paths over the same input, concatenated along channels: 1x1; 1x1 reduce -> 3x3;
1x1 reduce -> 5x5; 3x3 max pool -> 1x1 projection. torchvision's GoogLeNet uses a 3x3 kernel in
the "5x5" branch (a known quirk kept for its weights); `branch3_kernel` chooses.
"""

from __future__ import annotations

import torch
from torch import nn

from explorer.core.blocks._common import f_norm, spatial
from explorer.core.registry import BlockCost, BlockDef, Branches, Field, Params, Shape, Warn, register


class ConvNormReLU(nn.Module):
    """torchvision's BasicConv2d: conv (no bias) -> BN (eps 0.001) -> ReLU; plain conv+ReLU if norm=False."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, padding: int = 0, norm: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=not norm)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001) if norm else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int, branch3_kernel: int = 5, norm: bool = True):
        super().__init__()
        k = branch3_kernel
        self.branch1 = ConvNormReLU(in_channels, ch1x1, 1, norm=norm)
        self.branch2 = nn.Sequential(ConvNormReLU(in_channels, ch3x3red, 1, norm=norm),
                                     ConvNormReLU(ch3x3red, ch3x3, 3, padding=1, norm=norm))
        self.branch3 = nn.Sequential(ConvNormReLU(in_channels, ch5x5red, 1, norm=norm),
                                     ConvNormReLU(ch5x5red, ch5x5, k, padding=k // 2, norm=norm))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     ConvNormReLU(in_channels, pool_proj, 1, norm=norm))

    def forward(self, x):
        # (N, C, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


_NAMES = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")


def _out(shape: Shape, p: Params, warn: Warn) -> Shape:
    c, h, w = spatial(shape, "inception")
    return (p["ch1x1"] + p["ch3x3"] + p["ch5x5"] + p["pool_proj"], h, w)


def _cost(c: int | None, p: Params) -> BlockCost:
    """Six conv (+ BN) + ReLU units and the pool (19 leaves: the units have a BN or an Identity)."""
    cin, k, extra = c or 0, p["branch3_kernel"], 2 if p["norm"] else 1  # BN: 2 per channel, else a bias

    def cnr(i: int, o: int, kernel: int) -> int:  # conv (+ BN) + ReLU
        return i * o * kernel * kernel + extra * o
    params = (cnr(cin, p["ch1x1"], 1) + cnr(cin, p["ch3x3red"], 1) + cnr(p["ch3x3red"], p["ch3x3"], 3)
              + cnr(cin, p["ch5x5red"], 1) + cnr(p["ch5x5red"], p["ch5x5"], k) + cnr(cin, p["pool_proj"], 1))
    return BlockCost(19, params)


def _formula(i: Shape, o: Shape, p: Params) -> str:
    k = p["branch3_kernel"]
    return (f"concat[1x1-{p['ch1x1']} | 1x1-{p['ch3x3red']} -> 3x3-{p['ch3x3']} | "
            f"1x1-{p['ch5x5red']} -> {k}x{k}-{p['ch5x5']} | pool3 -> 1x1-{p['pool_proj']}] = {o[0]} channels")


def _branches(i: Shape, o: Shape, p: Params) -> Branches:
    k = p["branch3_kernel"]
    return Branches(paths=((f"1x1 conv → {p['ch1x1']}",),
                           (f"1x1 conv → {p['ch3x3red']}", f"3x3 conv → {p['ch3x3']}"),
                           (f"1x1 conv → {p['ch5x5red']}", f"{k}x{k} conv → {p['ch5x5']}"),
                           ("3x3 max pool", f"1x1 conv → {p['pool_proj']}")), merge="concat")


register(BlockDef(
    type="inception", title="Inception", family="composite",
    description="GoogLeNet module: 1x1, 3x3 and 5x5 convolutions and a pooling path in parallel, "
                "concatenated. 1x1 'reduce' convolutions shrink the depth first, which cuts the "
                "cost of the big kernels about tenfold.",
    fields=(Field("ch1x1", "int", 64, "1x1 branch filters", min=1, max=8192, label="1x1 channels"),
            Field("ch3x3red", "int", 96, "1x1 reduction before the 3x3", min=1, max=8192, label="3x3 reduce"),
            Field("ch3x3", "int", 128, "3x3 branch filters", min=1, max=8192, label="3x3 channels"),
            Field("ch5x5red", "int", 16, "1x1 reduction before the 5x5", min=1, max=8192, label="5x5 reduce"),
            Field("ch5x5", "int", 32, "5x5 branch filters", min=1, max=8192, label="5x5 channels"),
            Field("pool_proj", "int", 32, "1x1 projection after the 3x3 max pool", min=1, max=8192,
                  label="Pool projection"),
            Field("branch3_kernel", "choice", 5, "kernel of the '5x5' branch: 5 as in the paper, 3 as "
                  "in torchvision's GoogLeNet", choices=(5, 3), label="Branch 3 kernel"),
            f_norm("batch norm after each conv (torchvision); off as in the 2014 paper")),
    output_shape=_out,
    build=lambda s, p: Inception(s[0], *(p[k] for k in _NAMES), branch3_kernel=p["branch3_kernel"], norm=p["norm"]),
    formula=_formula,
    memtable_label=lambda i, o, p: f"INCEPTION-{o[0]}",
    branches=_branches, short="INCEPTION", role="feature", cost=_cost,
    export=lambda i, p, m: (f"Inception({i[0]}, {', '.join(str(p[k]) for k in _NAMES)}, "
                            f"branch3_kernel={p['branch3_kernel']}, norm={p['norm']})"),
    export_support=(ConvNormReLU, Inception),
))
