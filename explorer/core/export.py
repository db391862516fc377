"""Export a spec: readable standalone PyTorch source, the spec JSON, or ONNX.

The PyTorch source needs only torch: the composite block classes it uses are copied in from
explorer.core.blocks, and every layer line carries its output shape as a comment. The network's name
is a visitor's text: it reaches the source only through explorer.text (an escaped docstring, a
string literal in NETWORK_NAME, an ASCII class name), so every name JSON allows compiles.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import nn

from explorer.core.blocks import conv, densenet, inception, mobile, pool, regularize, residual
from explorer.core.budget import check_weights, spec_cost
from explorer.core.build import build
from explorer.core.registry import Params, Shape
from explorer.core.spec import NetworkSpec, SpecError
from explorer.errors import ConfigError
from explorer.text import class_name, docstring_text, python_literal

# Source objects each composite block type needs, in dependency order.
_SUPPORT = {
    "residual": [residual._shortcut, residual.BasicResidual],
    "bottleneck": [residual._shortcut, residual.BottleneckResidual],
    "inception": [inception.ConvNormReLU, inception.Inception],
    "denseblock": [densenet.DenseLayer, densenet.DenseBlock],
    "transition": [densenet.Transition],
    "fire": [mobile.Fire],
    "invres": [mobile.ConvNormAct, mobile.InvertedResidual],
    "se": [mobile.SqueezeExcitation],
    "sepconv": [conv.SeparableConv],
    "mlpconv": [conv.MLPConv],
    "gap": [pool.GlobalAvgPool],
    "noise": [regularize.GaussianNoise],
}


def _constructor(type_name: str, module: nn.Module, in_shape: Shape, p: Params) -> str:
    """Python code that constructs this block's module."""
    c = in_shape[0]
    if type_name == "conv":
        pad = '"same"' if p["padding"] == "same" else p["padding"]
        extra = "".join([f", dilation={p['dilation']}" if p["dilation"] != 1 else "",
                         f", groups={p['groups']}" if p["groups"] != 1 else "",
                         ", bias=False" if not p["bias"] else ""])
        return (f"nn.Conv2d({c}, {p['out_channels']}, kernel_size={p['kernel']}, stride={p['stride']}, "
                f"padding={pad}{extra})")
    if type_name == "residual":
        return f"BasicResidual({c}, {p['out_channels']}, stride={p['stride']})"
    if type_name == "bottleneck":
        mid = module.conv1.out_channels
        return f"BottleneckResidual({c}, {p['out_channels']}, {mid}, stride={p['stride']}, groups={p['groups']})"
    if type_name == "inception":
        args = ", ".join(str(p[k]) for k in inception._NAMES)
        return f"Inception({c}, {args}, branch3_kernel={p['branch3_kernel']}, norm={p['norm']})"
    if type_name == "denseblock":
        return (f"DenseBlock({c}, {p['num_layers']}, {p['growth_rate']}, {p['bn_size']}, "
                f"{p['drop_rate']})")
    if type_name == "transition":
        return f"Transition({c}, {module.conv.out_channels})"
    if type_name == "fire":
        return f"Fire({c}, {p['squeeze']}, {p['expand1x1']}, {p['expand3x3']})"
    if type_name == "invres":
        return f"InvertedResidual({c}, {p['out_channels']}, {p['stride']}, {p['expand_ratio']})"
    if type_name == "se":
        return f"SqueezeExcitation({c}, {module.fc1.out_channels})"
    if type_name == "sepconv":
        pad = '"same"' if p["padding"] == "same" else p["padding"]
        return f"SeparableConv({c}, {p['out_channels']}, {p['kernel']}, {p['stride']}, {pad}, {p['norm']})"
    if type_name == "mlpconv":
        pad = '"same"' if p["padding"] == "same" else p["padding"]
        return f"MLPConv({c}, {p['channels']}, {p['kernel']}, {p['stride']}, {pad})"
    if type_name == "avgpool":  # AvgPool2d's repr leaves ceil_mode out
        return (f"nn.AvgPool2d(kernel_size={module.kernel_size}, stride={module.stride}, "
                f"padding={module.padding}, ceil_mode={module.ceil_mode})")
    if type_name == "gap":
        return "GlobalAvgPool()"
    if type_name == "noise":
        return f"GaussianNoise({p['std']})"
    # Plain torch layers: their repr is their constructor call.
    return "nn." + repr(module)


def to_pytorch_source(spec: NetworkSpec) -> str:
    """Standalone PyTorch source for `spec`: class definitions, __init__ and forward."""
    plan = spec_cost(spec)[1]  # the budget bounds the modules built below (BudgetError)
    with torch.device("meta"):  # only module attributes are read: allocate no weights
        model = build(spec, plan) if plan.instances else None
    needed: list = []
    for inst in plan.instances:
        for obj in _SUPPORT.get(inst.type, []):
            if obj not in needed:
                needed.append(obj)
    name = class_name(spec.name)
    shape = lambda s: "x".join(map(str, s))  # noqa: E731
    # The name is the visitor's text: escaped in the docstring, a literal in NETWORK_NAME.
    lines = [f'"""{docstring_text(spec.name)}: generated by CNN Architecture Explorer (python -m explorer export).',
             "",
             f"Input {shape(spec.input)} per image, {spec.num_classes} classes. Shapes in comments are per image.",
             '"""', "", "from __future__ import annotations", "", "import torch", "from torch import nn", "",
             f"NETWORK_NAME = {python_literal(spec.name)}", ""]
    for obj in needed:
        lines += ["", inspect.getsource(obj).rstrip(), ""]
    lines += ["", f"class {name}(nn.Module):",
              "    name = NETWORK_NAME", "",
              "    def __init__(self):",
              "        super().__init__()"]
    if not plan.instances:
        lines.append("        pass")
    for inst in plan.instances:
        module = model.get_submodule(inst.name)
        code = _constructor(inst.type, module, inst.in_shape, inst.params)
        lines.append(f"        self.{inst.name} = {code}  # -> {shape(inst.out_shape)}")
    lines += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
              f"        # x: (N, {', '.join(map(str, spec.input))})"]
    for inst in plan.instances:
        lines.append(f"        x = self.{inst.name}(x)  # (N, {', '.join(map(str, inst.out_shape))})")
    lines += ["        return x", "", "",
              'if __name__ == "__main__":',
              f"    model = {name}()",
              f"    out = model(torch.randn(2, {', '.join(map(str, spec.input))}))",
              '    print(model)',
              '    print("output", tuple(out.shape), "params", sum(p.numel() for p in model.parameters()))',
              ""]
    return "\n".join(lines)


def to_onnx(spec: NetworkSpec, path: str | Path) -> Path:
    """Write an ONNX graph of the network (random weights) with a dynamic batch dimension."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs the 'onnx' and 'onnxscript' packages: "
                          "pip install onnx onnxscript") from None
    check_weights(spec)  # real weights in this process: the smaller budget (BudgetError)
    model = build(spec).eval()
    example = torch.randn(2, *spec.input)
    path = Path(path)
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: batch},), verbose=False,
                                input_names=["image"], output_names=["logits"])
    program.save(str(path))
    return path
