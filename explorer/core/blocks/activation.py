"""Element-wise non-linearities (each type's registry entry). None has parameters; each keeps the shape.

Not in place: a block may be first in the network, where an in-place op would overwrite an input
that needs gradients (saliency, Grad-CAM). Autograd saves the same tensors either way.
"""

from __future__ import annotations

from torch import nn

from explorer.core.blocks._common import one_free_leaf
from explorer.core.registry import BlockDef, Field, register

# (type, title, formula, builder, fields, description)
_ACTIVATIONS = [
    ("relu", "ReLU", "max(0, x)", lambda p: nn.ReLU(), (),
     "max(0, x): cheap, does not saturate for x > 0 (AlexNet made it standard)."),
    ("relu6", "ReLU6", "min(max(0, x), 6)", lambda p: nn.ReLU6(), (),
     "ReLU capped at 6 (MobileNet), friendly to low-precision arithmetic."),
    ("leakyrelu", "Leaky ReLU", "max(a*x, x)", lambda p: nn.LeakyReLU(p["negative_slope"]),
     (Field("negative_slope", "float", 0.01, "slope a for x < 0 (cs231n's example uses 0.1)",
            min=0.0, max=1.0, label="Slope (x < 0)"),),
     "max(a*x, x): a small slope for negative inputs so units never die."),
    ("elu", "ELU", "x if x > 0 else alpha*(exp(x) - 1)", lambda p: nn.ELU(p["alpha"]),
     (Field("alpha", "float", 1.0, "saturation value for large negative inputs", min=0.0, max=10.0),),
     "Exponential linear unit: smooth, negative outputs push mean activations toward zero."),
    ("gelu", "GELU", "x * Phi(x)", lambda p: nn.GELU(), (),
     "x times the normal CDF (transformers, ConvNeXt)."),
    ("silu", "SiLU / Swish", "x * sigmoid(x)", lambda p: nn.SiLU(), (),
     "x * sigmoid(x) (EfficientNet)."),
    ("sigmoid", "Sigmoid", "1 / (1 + exp(-x))", lambda p: nn.Sigmoid(), (),
     "Squashes to (0, 1); saturates, so gradients vanish in deep stacks."),
    ("tanh", "Tanh", "tanh(x)", lambda p: nn.Tanh(), (),
     "Squashes to (-1, 1), zero-centred (LeNet-5)."),
]

for _type, _title, _text, _builder, _fields, _desc in _ACTIVATIONS:
    register(BlockDef(
        type=_type, title=_title, family="activation", description=_desc, fields=_fields,
        output_shape=lambda s, p, warn: s,
        build=(lambda b: lambda s, p: b(p))(_builder),
        formula=(lambda t: lambda i, o, p: f"{t}; no params")(_text),
        input_kind="any", elementwise=True, short=_type.upper(), role="activation", cost=one_free_leaf,
    ))
