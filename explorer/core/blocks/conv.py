"""Convolutions: plain conv, depthwise-separable conv, NIN's mlpconv (each type's registry entry)."""

from __future__ import annotations

from torch import nn

from explorer.core.blocks._common import (check_divisible, conv_params_text, f_bias, f_kernel, f_norm,
                                          f_out_channels, f_padding, f_stride, padding_source, padding_value,
                                          spatial, window, window_formula)
from explorer.core.registry import (BlockCost, BlockDef, Branches, Field, Params, Shape, ShapeProblem, Warn,
                                    register)


# conv ----------------------------------------------------------------------------------------
def _conv_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    c, h, w = spatial(shape, "conv")
    check_divisible(c, p["groups"], "input channels")
    check_divisible(p["out_channels"], p["groups"], "out_channels")
    pad = padding_value(p["padding"], p["kernel"], p["dilation"], p["stride"])
    same = p["padding"] == "same"
    args = dict(kernel=p["kernel"], stride=p["stride"], padding=pad, dilation=p["dilation"], warn=warn, same=same)
    return (p["out_channels"], window(h, **args), window(w, **args))


def _conv_build(shape: Shape, p: Params) -> nn.Module:
    return nn.Conv2d(shape[0], p["out_channels"], p["kernel"], stride=p["stride"], padding=p["padding"],
                     dilation=p["dilation"], groups=p["groups"], bias=p["bias"])


def _conv_formula(i: Shape, o: Shape, p: Params) -> str:
    pad = padding_value(p["padding"], p["kernel"], p["dilation"], p["stride"])
    size = window_formula(i[1], o[1], p["kernel"], p["stride"], pad, p["dilation"])
    params = conv_params_text(p["kernel"], i[0] // p["groups"], p["out_channels"], p["bias"])
    extra = f", groups {p['groups']}" if p["groups"] > 1 else ""
    return f"size {size}; params {params}{extra}"


def _conv_cost(c: int | None, p: Params) -> BlockCost:
    """One Conv2d: (C_in/groups) x F^2 x K weights (each one MAC per position) + K biases."""
    weights = ((c or 0) // p["groups"]) * p["kernel"] ** 2 * p["out_channels"]
    return BlockCost(1, weights + p["out_channels"] * p["bias"], mac_weights=weights)


def _conv_label(i: Shape, o: Shape, p: Params) -> str:
    return f"CONV{p['kernel']}-{p['out_channels']}"


def _conv_source(i: Shape, p: Params, module: nn.Module) -> str:
    extra = "".join([f", dilation={p['dilation']}" if p["dilation"] != 1 else "",
                     f", groups={p['groups']}" if p["groups"] != 1 else "",
                     ", bias=False" if not p["bias"] else ""])
    return (f"nn.Conv2d({i[0]}, {p['out_channels']}, kernel_size={p['kernel']}, stride={p['stride']}, "
            f"padding={padding_source(p['padding'])}{extra})")


register(BlockDef(
    type="conv", title="Convolution", family="layers",
    description="K filters of size FxF slide over the input with stride S and zero padding P. "
                "Each output is a dot product over an FxFxD window plus a bias.",
    fields=(f_out_channels(), f_kernel(), f_stride(), f_padding(),
            Field("dilation", "int", 1, "gap D between kernel taps (effective size D*(F-1)+1)", min=1, max=16,
                  label="Dilation D"),
            Field("groups", "int", 1, "split channels into groups that do not mix (groups = "
                  "input channels makes a depthwise conv)", min=1, max=65536),
            f_bias()),
    output_shape=_conv_out, build=_conv_build, formula=_conv_formula, memtable_label=_conv_label,
    short="CONV", role="feature", export=_conv_source, cost=_conv_cost,
    classes_field="out_channels",  # a 1x1 conv as the classifier (NIN, SqueezeNet)
))


# sepconv: depthwise FxF (groups = channels) then pointwise 1x1, each with batch norm + ReLU ---
class SeparableConv(nn.Module):
    """MobileNet-v1 style: depthwise conv -> BN -> ReLU -> 1x1 conv -> BN -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, padding: int | str,
                 norm: bool):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel, stride=stride, padding=padding,
                                   groups=in_channels, bias=not norm)
        self.bn1 = nn.BatchNorm2d(in_channels) if norm else nn.Identity()
        self.relu1 = nn.ReLU(inplace=True)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=not norm)
        self.bn2 = nn.BatchNorm2d(out_channels) if norm else nn.Identity()
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.relu1(self.bn1(self.depthwise(x)))
        return self.relu2(self.bn2(self.pointwise(x)))


def _sep_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    c, h, w = spatial(shape, "sepconv")
    pad = padding_value(p["padding"], p["kernel"], 1, p["stride"])
    args = dict(kernel=p["kernel"], stride=p["stride"], padding=pad, warn=warn, same=p["padding"] == "same")
    return (p["out_channels"], window(h, **args), window(w, **args))


def _sep_cost(c: int | None, p: Params) -> BlockCost:
    """6 leaves (2 convs, 2 BN or Identity, 2 ReLU); depthwise F^2 x C + pointwise C x K weights,
    each conv with a bias without norm, else 2 BN parameters per channel."""
    cin, cout, norm = c or 0, p["out_channels"], p["norm"]
    depthwise = p["kernel"] ** 2 * cin + (0 if norm else cin)
    pointwise = cin * cout + (0 if norm else cout)
    return BlockCost(6, depthwise + pointwise + (2 * cin + 2 * cout if norm else 0))


def _sep_formula(i: Shape, o: Shape, p: Params) -> str:
    c, k, out = i[0], p["kernel"], p["out_channels"]
    dw, pw, full = k * k * c, c * out, k * k * c * out
    return (f"depthwise ({k}*{k})*{c} = {dw:,} + pointwise {c}*{out} = {pw:,} weights, "
            f"vs {full:,} for a full {k}x{k} conv ({full / (dw + pw):.1f}x fewer)")


register(BlockDef(
    type="sepconv", title="Depthwise-separable conv", family="layers",
    description="A depthwise FxF convolution (one filter per channel) followed by a 1x1 pointwise "
                "convolution that mixes channels (MobileNet). Batch norm and ReLU follow each.",
    fields=(f_out_channels(), f_kernel(), f_stride(), f_padding(1),
            f_norm("batch norm after each conv (convs then have no bias)")),
    output_shape=_sep_out,
    build=lambda s, p: SeparableConv(s[0], p["out_channels"], p["kernel"], p["stride"], p["padding"], p["norm"]),
    formula=_sep_formula, cost=_sep_cost,
    short="SEPCONV", role="feature", kind="conv",
    memtable_label=lambda i, o, p: f"SEPCONV{p['kernel']}-{p['out_channels']}",
    export=lambda i, p, m: (f"SeparableConv({i[0]}, {p['out_channels']}, {p['kernel']}, {p['stride']}, "
                            f"{padding_source(p['padding'])}, {p['norm']})"),
    export_support=(SeparableConv,),
    branches=lambda i, o, p: Branches(paths=((f"{p['kernel']}x{p['kernel']} depthwise s{p['stride']}",
                                              *(("BN",) if p["norm"] else ()), "ReLU",
                                              f"1x1 pointwise → {o[0]}", *(("BN",) if p["norm"] else ()),
                                              "ReLU"),), merge=""),
))


# mlpconv (Network in Network): an FxF conv followed by 1x1 convs, each with ReLU ---------------
class MLPConv(nn.Module):
    def __init__(self, in_channels: int, channels: list[int], kernel: int, stride: int, padding: int | str):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for i, c in enumerate(channels):
            k, s, pad = (kernel, stride, padding) if i == 0 else (1, 1, 0)
            layers += [nn.Conv2d(prev, c, k, stride=s, padding=pad), nn.ReLU(inplace=True)]
            prev = c
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def _mlp_out(shape: Shape, p: Params, warn: Warn) -> Shape:
    c, h, w = spatial(shape, "mlpconv")
    if len(p["channels"]) < 1:
        raise ShapeProblem("channels needs at least one width", field="channels")
    pad = padding_value(p["padding"], p["kernel"], 1, p["stride"])
    args = dict(kernel=p["kernel"], stride=p["stride"], padding=pad, warn=warn, same=p["padding"] == "same")
    return (p["channels"][-1], window(h, **args), window(w, **args))


def _mlp_cost(c: int | None, p: Params) -> BlockCost:
    """A conv + ReLU per width: the first FxF, the rest 1x1, each with a bias."""
    prev, total = c or 0, 0
    for i, width in enumerate(p["channels"]):
        k = p["kernel"] if i == 0 else 1
        total += prev * width * k * k + width
        prev = width
    return BlockCost(2 * len(p["channels"]), total)


def _mlp_formula(i: Shape, o: Shape, p: Params) -> str:
    chans = p["channels"]
    k = p["kernel"]
    parts = [f"conv{k}x{k}->{chans[0]}"] + [f"1x1->{c}" for c in chans[1:]]
    return " , ".join(parts) + " (each + ReLU): a small MLP slid over every position"


register(BlockDef(
    type="mlpconv", title="MLPConv (NIN)", family="composite",
    description="Network in Network: an FxF convolution followed by 1x1 convolutions, a tiny "
                "per-pixel MLP across channels. Widths are listed in 'channels'.",
    fields=(Field("channels", "ints", [192, 160, 96], "widths: the FxF conv, then each 1x1 conv",
                  min=1, max=65536, label="Channels per conv"), f_kernel(5), f_stride(), f_padding(2)),
    output_shape=_mlp_out,
    build=lambda s, p: MLPConv(s[0], p["channels"], p["kernel"], p["stride"], p["padding"]),
    formula=_mlp_formula, cost=_mlp_cost,
    short="MLPCONV", role="feature", kind="conv",
    classes_field="channels",  # its last 1x1 conv's width: NIN's classifier (then gap) gives the class scores
    memtable_label=lambda i, o, p: f"MLPCONV{p['kernel']}-{p['channels'][-1]}",
    export=lambda i, p, m: (f"MLPConv({i[0]}, {p['channels']}, {p['kernel']}, {p['stride']}, "
                            f"{padding_source(p['padding'])})"),
    export_support=(MLPConv,),
    branches=lambda i, o, p: Branches(paths=(tuple(
        x for j, c in enumerate(p["channels"])
        for x in ((f"{p['kernel']}x{p['kernel']} conv → {c}" if j == 0 else f"1x1 conv → {c}"), "ReLU")),),
        merge=""),
))
