"""ResNet blocks (their registry entries), laid out as torchvision's BasicBlock and Bottleneck
(same module names, so torchvision's weights load): y = relu(F(x) + shortcut(x)), the shortcut a
1x1 conv + BN when the shape changes."""

from __future__ import annotations

from torch import nn

from explorer.core.blocks._common import check_divisible, f_out_channels, spatial, window
from explorer.core.registry import BlockCost, BlockDef, Branches, Field, Params, Shape, Warn, register


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_channels == out_channels:
        return None  # identity
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class BasicResidual(nn.Module):
    """conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class BottleneckResidual(nn.Module):
    """1x1 reduce -> 3x3 (stride, groups) -> 1x1 expand, each with BN, plus the shortcut."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _res_out(name: str):
    def out(shape: Shape, p: Params, warn: Warn) -> Shape:
        c, h, w = spatial(shape, name)
        if name == "bottleneck":
            check_divisible(_mid(p), p["groups"], "mid_channels")
        args = dict(kernel=3, stride=p["stride"], padding=1, warn=warn)
        return (p["out_channels"], window(h, **args), window(w, **args))
    return out


def _mid(p: Params) -> int:
    return p["mid_channels"] or max(1, p["out_channels"] // 4)


def _shortcut_cost(c: int | None, out: int, stride: int) -> tuple[int, int]:
    """(leaves, params) of the 1x1 conv + BN shortcut: none when the shape is kept, and left out
    when the input channels are unknown (c None: the lower bound of the leaves)."""
    if c is None or (stride == 1 and c == out):
        return 0, 0
    return 2, c * out + 2 * out


def _residual_cost(c: int | None, p: Params) -> BlockCost:
    """2 bias-free 3x3 convs + 2 BN + a ReLU run twice (6 leaves), plus the shortcut."""
    cin, out = c or 0, p["out_channels"]
    leaves, params = _shortcut_cost(c, out, p["stride"])
    return BlockCost(6 + leaves, params + 9 * cin * out + 9 * out * out + 4 * out)


def _bottleneck_cost(c: int | None, p: Params) -> BlockCost:
    """1x1, grouped 3x3, 1x1 bias-free convs + 3 BN + a ReLU run three times (9 leaves), plus the shortcut."""
    cin, out, mid = c or 0, p["out_channels"], _mid(p)
    leaves, params = _shortcut_cost(c, out, p["stride"])
    convs = cin * mid + 9 * mid * (mid // p["groups"]) + mid * out
    return BlockCost(9 + leaves, params + convs + 4 * mid + 2 * out)


def _shortcut_path(i: Shape, p: Params) -> tuple[str, ...]:
    """The shortcut as drawn: the identity (an empty path) or its 1x1 projection."""
    if p["stride"] == 1 and i[0] == p["out_channels"]:
        return ()
    return (f"1x1 conv s{p['stride']} → {p['out_channels']}", "BN")


def _residual_branches(i: Shape, o: Shape, p: Params) -> Branches:
    s = f" s{p['stride']}" if p["stride"] > 1 else ""
    main = (f"3x3 conv{s} → {o[0]}", "BN", "ReLU", f"3x3 conv → {o[0]}", "BN")
    return Branches(paths=(main, _shortcut_path(i, p)), merge="+", after=("ReLU",))


def _bottleneck_branches(i: Shape, o: Shape, p: Params) -> Branches:
    s = f" s{p['stride']}" if p["stride"] > 1 else ""
    g = f" g{p['groups']}" if p["groups"] > 1 else ""
    mid = _mid(p)
    main = (f"1x1 conv → {mid}", "BN", "ReLU", f"3x3 conv{s}{g} → {mid}", "BN", "ReLU", f"1x1 conv → {o[0]}", "BN")
    return Branches(paths=(main, _shortcut_path(i, p)), merge="+", after=("ReLU",))


def _shortcut_text(i: Shape, p: Params) -> str:
    if p["stride"] == 1 and i[0] == p["out_channels"]:
        return "identity shortcut"
    return f"1x1 conv shortcut {i[0]}->{p['out_channels']} stride {p['stride']}"


register(BlockDef(
    type="residual", title="Residual (basic)", family="composite",
    description="ResNet-18/34 block: two 3x3 conv + batch norm layers whose output is added to the "
                "input, y = F(x) + x. The shortcut lets gradients skip layers, so deep nets train.",
    fields=(f_out_channels(64, "output channels"),
            Field("stride", "int", 1, "2 halves the size (the shortcut then uses a 1x1 conv)", min=1, max=4,
                  label="Stride S", short="S")),
    output_shape=_res_out("residual"),
    build=lambda s, p: BasicResidual(s[0], p["out_channels"], p["stride"]),
    formula=lambda i, o, p: f"relu(F(x) + x), F = 2x conv3x3-{p['out_channels']} + BN; {_shortcut_text(i, p)}",
    memtable_label=lambda i, o, p: f"RES-{p['out_channels']}",
    branches=_residual_branches, short="RES", role="feature", cost=_residual_cost,
    export=lambda i, p, m: f"BasicResidual({i[0]}, {p['out_channels']}, stride={p['stride']})",
    export_support=(_shortcut, BasicResidual),
))

register(BlockDef(
    type="bottleneck", title="Residual (bottleneck)", family="composite",
    description="ResNet-50+ block: a 1x1 conv shrinks the channels, a 3x3 conv works on the thin "
                "tensor, a 1x1 conv expands again; added to the input. groups > 1 gives ResNeXt.",
    fields=(f_out_channels(256, "output channels (4x the bottleneck width in ResNet)"),
            Field("mid_channels", "int", 0, "bottleneck width (0: out_channels / 4)", min=0, max=65536,
                  label="Middle channels"),
            Field("stride", "int", 1, "stride of the 3x3 conv (2 halves the size)", min=1, max=4,
                  label="Stride S", short="S"),
            Field("groups", "int", 1, "groups of the 3x3 conv (ResNeXt cardinality)", min=1, max=1024)),
    output_shape=_res_out("bottleneck"),
    build=lambda s, p: BottleneckResidual(s[0], p["out_channels"], _mid(p), p["stride"], p["groups"]),
    formula=lambda i, o, p: (f"relu(F(x) + x), F = 1x1-{_mid(p)}, 3x3-{_mid(p)}"
                             f"{'/g' + str(p['groups']) if p['groups'] > 1 else ''}, 1x1-{p['out_channels']} "
                             f"+ BN; {_shortcut_text(i, p)}"),
    memtable_label=lambda i, o, p: f"BOTTLENECK-{p['out_channels']}",
    branches=_bottleneck_branches, short="BOTTLENECK", role="feature", cost=_bottleneck_cost,
    export=lambda i, p, m: (f"BottleneckResidual({i[0]}, {p['out_channels']}, {_mid(p)}, stride={p['stride']}, "
                            f"groups={p['groups']})"),
    export_support=(_shortcut, BottleneckResidual),
))
