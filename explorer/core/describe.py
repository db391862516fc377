"""Formula text and labels for plain torch modules (rows of torchvision models and block internals).

Block types describe themselves in their registry entries; this is the same for torch's classes."""

from __future__ import annotations

from torch import nn

from explorer.core.blocks._common import conv_params_text, window_formula
from explorer.core.blocks.pool import keeps_size

_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish,
                nn.Hardsigmoid, nn.Dropout, nn.Dropout2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm,
                nn.GroupNorm, nn.Identity, nn.Flatten, nn.LocalResponseNorm, nn.Mish)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def describe_module(module: nn.Module, input_shapes, output_shapes) -> str:
    """One line in the cs231n style for the common layer classes (shapes include the batch)."""
    i = input_shapes[0][1:] if input_shapes else ()
    o = output_shapes[0][1:] if output_shapes else ()
    if isinstance(module, nn.Conv2d) and len(i) == 3:
        k, s, d = _pair(module.kernel_size)[0], _pair(module.stride)[0], _pair(module.dilation)[0]
        pad = module.padding if isinstance(module.padding, str) else _pair(module.padding)[0]
        size = (f"({i[1]} same)" if isinstance(pad, str) else window_formula(i[1], o[1], k, s, pad, d))
        groups = f", groups {module.groups}" if module.groups > 1 else ""
        params = conv_params_text(k, module.in_channels // module.groups, module.out_channels,
                                  module.bias is not None)
        return f"size {size}; params {params}{groups}"
    if isinstance(module, nn.Linear):
        w = module.in_features * module.out_features
        b = f" + {module.out_features:,} = {w + module.out_features:,}" if module.bias is not None else f" = {w:,}"
        return f"params {module.in_features:,}*{module.out_features:,}{b}"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and len(i) == 3:
        k, s, p = _pair(module.kernel_size)[0], _pair(module.stride)[0], _pair(module.padding)[0]
        return f"size {window_formula(i[1], o[1], k, s, p)}; no params"
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and len(i) == 3 and len(o) == 3:
        return f"{i[1]}x{i[2]} -> {o[1]}x{o[2]}; no params"
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return f"params 2*{module.num_features} = {2 * module.num_features:,} (gamma, beta)" \
            if module.affine else "no params"
    params = sum(p.numel() for p in module.parameters())
    return f"{type(module).__name__}; " + (f"params {params:,}" if params else "no params")


def is_elementwise_module(module: nn.Module, input_shapes, output_shapes) -> bool:
    """True for layers a memory table folds into the previous row (same-shape, cheap)."""
    if isinstance(module, _ELEMENTWISE):
        return True
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return bool(input_shapes and output_shapes and keeps_size(input_shapes[0], output_shapes[0]))
    return False


def memtable_label_for_module(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        return f"CONV{_pair(module.kernel_size)[0]}-{module.out_channels}"
    if isinstance(module, nn.MaxPool2d):
        return f"POOL{_pair(module.kernel_size)[0]}"
    if isinstance(module, nn.AvgPool2d):
        return f"AVGPOOL{_pair(module.kernel_size)[0]}"
    if isinstance(module, nn.Linear):
        return "FC"
    return type(module).__name__.upper()
