"""Shared by the block families: sliding-window arithmetic, channel checks, number formatting,
the fields several block types take (with their UI labels), source text for exported code and the
budget cost of a parameter-free one-module block (`one_free_leaf`).

The window formula is the one every course teaches (cs231n): W2 = (W1 - F + 2P)/S + 1, with
the effective kernel F = D*(K-1) + 1 under dilation D. PyTorch floors the division (or ceils
it with ceil_mode, never starting a window in the right padding).
"""

from __future__ import annotations

from explorer.core.registry import BlockCost, Field, Params, Shape, ShapeProblem, Warn


def spatial(shape: Shape, block: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeProblem(f"{block} needs a feature map (channels x height x width) but its input "
                           f"is a flat vector of {shape[0]} features; move it before the flatten "
                           f"(or gap) block")
    return shape  # type: ignore[return-value]


def flat(shape: Shape, block: str) -> int:
    if len(shape) != 1:
        c, h, w = shape
        raise ShapeProblem(f"{block} needs a flat vector but its input is {c}x{h}x{w}; add a "
                           f"'flatten' block (or 'gap' for global average pooling) before it")
    return shape[0]


def padding_value(padding: int | str, kernel: int, dilation: int, stride: int) -> int:
    """The symmetric padding in pixels; "same" means (D*(K-1))/2 and needs stride 1."""
    if padding != "same":
        return int(padding)
    if stride != 1:
        raise ShapeProblem(f"padding \"same\" needs stride 1 (PyTorch); with stride {stride} set "
                           f"padding to {dilation * (kernel - 1) // 2} instead", field="padding")
    total = dilation * (kernel - 1)
    return total // 2


def window(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
           ceil_mode: bool = False, what: str = "kernel", warn: Warn | None = None,
           same: bool = False) -> int:
    """Output length of a sliding window along one axis (formula above); warns when rows drop."""
    k_eff = dilation * (kernel - 1) + 1
    if same:  # PyTorch pads asymmetrically when D*(K-1) is odd; the size is kept exactly
        return size
    padded = size + 2 * padding
    if padding > 0 and 2 * padding > k_eff and what != "kernel":
        raise ShapeProblem(f"pool padding {padding} must be at most half the window "
                           f"({k_eff // 2}); lower the padding", field="padding")
    if k_eff > padded:
        detail = f" (dilated to {k_eff})" if dilation > 1 else ""
        raise ShapeProblem(f"the {kernel}x{kernel} {what}{detail} is larger than its padded input "
                           f"({size} + 2*{padding} = {padded}); use a smaller {what}, more padding, "
                           f"or fewer downsampling layers before this one", field="kernel")
    span = padded - k_eff
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:  # the last window may not start in the padding
            out -= 1
        return out
    out = span // stride + 1
    dropped = span % stride - padding  # rows of real input that no window covers
    if dropped > 0 and warn is not None:
        exact = span / stride + 1
        warn(f"({size} - {k_eff} + 2*{padding})/{stride} + 1 = {exact:.2f} does not fit: PyTorch "
             f"rounds down to {out}, so the last {dropped} row(s)/column(s) of the input are never "
             f"seen; change the stride or padding to make it an integer")
    return out


def window_formula(size: int, out: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> str:
    f = f"{dilation}*({kernel}-1)+1" if dilation > 1 else f"{kernel}"
    return f"({size} - {f} + 2*{padding})/{stride} + 1 = {out}"


def check_divisible(channels: int, groups: int, what: str) -> None:
    if channels % groups:
        raise ShapeProblem(f"{what} ({channels}) must be divisible by groups ({groups}); pick groups "
                           f"among {', '.join(str(g) for g in divisors(channels)[:8])}", field="groups")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def one_free_leaf(in_channels: int | None, p: Params) -> BlockCost:
    """BlockDef.cost of a block that builds one parameter-free leaf module (pooling, activations,
    dropout, noise, lrn, flatten): 1 layer, 0 parameters, 0 MACs, whatever the input."""
    return BlockCost(1, 0)


def n(value: int) -> str:
    """Thousands separators, as in the cs231n table."""
    return f"{value:,}"



# Field definitions reused by several block types --------------------------------------------
def f_out_channels(default: int = 64, help: str = "number of filters K (output depth)") -> Field:
    return Field("out_channels", "int", default, help, min=1, max=65536, label="Filters K", short="K")


def f_kernel(default: int = 3, help: str = "filter size F (square F x F)") -> Field:
    return Field("kernel", "int", default, help, min=1, max=64, label="Kernel size F", short="F")


def f_stride(default: int = 1, help: str = "step S between windows") -> Field:
    return Field("stride", "int", default, help, min=1, max=64, label="Stride S", short="S")


def f_padding(default: int | str = 0) -> Field:
    return Field("padding", "padding", default, "zero padding P on each side, or \"same\" to keep the size "
                 "(stride 1)", min=0, max=64, label="Padding P", short="P")


def f_bias(default: bool = True) -> Field:
    return Field("bias", "bool", default, "learn one bias per output (turn off before batch norm)",
                 label="Learn a bias")


def f_norm(help: str) -> Field:
    return Field("norm", "bool", True, help, label="Batch norm")


def conv_params_text(kernel: int, in_per_group: int, out: int, bias: bool) -> str:
    weights = kernel * kernel * in_per_group * out
    text = f"({kernel}*{kernel}*{in_per_group})*{out}"
    if bias:
        return f"{text} + {out} = {n(weights + out)}"
    return f"{text} = {n(weights)}"


def padding_source(padding: int | str) -> str:
    """A padding field as Python source: 1 or "same"."""
    return '"same"' if padding == "same" else str(padding)
