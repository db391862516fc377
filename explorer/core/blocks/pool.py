"""Pooling: max, average, global average, adaptive average. No parameters, only downsampling.

Owns the rule that an adaptive pool keeping its input size is an identity (`keeps_size`), used
for these blocks and for torch's adaptive pools in module rows (explorer.core.describe)."""

from __future__ import annotations

from torch import nn

from explorer.core.blocks._common import f_kernel, one_free_leaf, spatial, window, window_formula
from explorer.core.registry import BlockCost, BlockDef, Field, Params, Shape, Warn, register

_POOL_FIELDS = (
    f_kernel(2, "window size F (F x F)"),
    Field("stride", "int", None, "step S between windows (empty: same as the kernel, as in PyTorch)", min=1,
          max=64, label="Stride S", short="S", unset=" = kernel"),
    Field("padding", "int", 0, "padding on each side (at most half the window)", min=0, max=32,
          label="Padding P", short="P"),
    Field("ceil_mode", "bool", False, "round the output size up instead of down (GoogLeNet, SqueezeNet)",
          label="Round up (ceil)"),
)


def _stride(p: Params) -> int:
    return p["stride"] or p["kernel"]


def _pool_out(name: str):
    def out(shape: Shape, p: Params, warn: Warn) -> Shape:
        c, h, w = spatial(shape, name)
        args = dict(kernel=p["kernel"], stride=_stride(p), padding=p["padding"], ceil_mode=p["ceil_mode"],
                    what="window", warn=warn)
        return (c, window(h, **args), window(w, **args))
    return out


def _pool_formula(i: Shape, o: Shape, p: Params) -> str:
    rounding = " (rounded up)" if p["ceil_mode"] else ""
    return f"size {window_formula(i[1], o[1], p['kernel'], _stride(p), p['padding'])}{rounding}; no params"


register(BlockDef(
    type="maxpool", title="Max pool", family="pooling",
    description="Keeps the largest value in each FxF window; no parameters. F=2, S=2 halves the size.",
    fields=_POOL_FIELDS, output_shape=_pool_out("maxpool"),
    build=lambda s, p: nn.MaxPool2d(p["kernel"], _stride(p), p["padding"], ceil_mode=p["ceil_mode"]),
    formula=_pool_formula, short="POOL", role="pool", cost=one_free_leaf,
    memtable_label=lambda i, o, p: f"POOL{p['kernel']}",
))

register(BlockDef(
    type="avgpool", title="Average pool", family="pooling",
    description="Averages each FxF window (LeNet's subsampling); no parameters.",
    fields=_POOL_FIELDS, output_shape=_pool_out("avgpool"),
    build=lambda s, p: nn.AvgPool2d(p["kernel"], _stride(p), p["padding"], ceil_mode=p["ceil_mode"]),
    formula=_pool_formula, short="AVGPOOL", role="pool", cost=one_free_leaf,
    memtable_label=lambda i, o, p: f"AVGPOOL{p['kernel']}",
    export=lambda i, p, m: (f"nn.AvgPool2d(kernel_size={m.kernel_size}, stride={m.stride}, "  # its repr leaves
                            f"padding={m.padding}, ceil_mode={m.ceil_mode})"),             # ceil_mode out
))


class GlobalAvgPool(nn.Module):
    """(N, C, H, W) -> (N, C): the mean of each feature map (NIN, GoogLeNet, ResNet heads)."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)

    def forward(self, x):
        return self.flatten(self.pool(x))


register(BlockDef(
    type="gap", title="Global average pool", family="pooling",
    description="Averages each feature map to one number and flattens: CxHxW -> C. Replaces big "
                "fully connected layers (NIN, GoogLeNet, ResNet) and makes CAM possible.",
    fields=(), output_shape=lambda s, p, warn: (spatial(s, "gap")[0],),
    build=lambda s, p: GlobalAvgPool(),
    formula=lambda i, o, p: f"mean over {i[1]}x{i[2]} per channel -> {o[0]} values; no params",
    short="GAP", role="adaptive_pool", export=lambda i, p, m: "GlobalAvgPool()", export_support=(GlobalAvgPool,),
    cost=lambda c, p: BlockCost(2, 0),  # AdaptiveAvgPool2d + Flatten, no parameters
))


def keeps_size(in_shape: Shape, out_shape: Shape, p: Params | None = None) -> bool:
    """An adaptive pool whose output is its input's size (VGG's 7x7 at 224x224) changes nothing:
    memory tables fold it like an element-wise layer."""
    return tuple(in_shape) == tuple(out_shape)


def _adaptive_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    c, h, w = spatial(shape, "adaptiveavgpool")
    return (c, p["output_size"], p["output_size"])


register(BlockDef(
    type="adaptiveavgpool", title="Adaptive average pool", family="pooling",
    description="Averages into a fixed output size whatever the input size (torchvision's VGG and "
                "AlexNet heads use 7x7 and 6x6). Windows overlap when the input is smaller.",
    fields=(Field("output_size", "int", 1, "output height and width", min=1, max=256),),
    output_shape=_adaptive_out,
    build=lambda s, p: nn.AdaptiveAvgPool2d(p["output_size"]),
    formula=lambda i, o, p: f"{i[1]}x{i[2]} -> {o[1]}x{o[2]} by averaging adaptive windows; no params",
    short="ADAPTIVEPOOL", role="adaptive_pool", elementwise=keeps_size, cost=one_free_leaf,
    memtable_label=lambda i, o, p: f"ADAPTIVEPOOL{p['output_size']}",
))
