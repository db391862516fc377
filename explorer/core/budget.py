"""The server's cost budget: what a network may cost before anything is traced or built.

Owns: `Budget` (the limits, read from environment variables the server's owner sets), the
closed-form cost of every registered block type (leaf modules, parameters, an upper bound on
MACs, output elements) and the checks `check_spec`, `check_module` and `check_weights`.

Nothing here traces or builds a module: costs come from the block's fields and the pure shape
formulas (`explorer.core.shapes.infer_shapes`), so a check takes milliseconds for any spec the loader
accepts (at most MAX_BLOCKS=500 blocks x MAX_REPEAT=64 copies).

Why this bounds the analysis time: the meta-device trace (explorer.core.trace) runs every module's
forward once, so its time is linear in the number of aten ops, and each leaf-module call issues a
few (a dense layer's concatenation takes up to 128 tensors: the most work per leaf of any block);
memory is also linear in the leaf calls (one Call record and a few meta tensors each, no element
storage; tensor sizes cost nothing on the meta device). `max_layers` therefore bounds the time and
memory of `explorer.core.analysis.analyze`. Measured worst case (bench/budget_worst_case.py, cold
cache, two cores shared with other jobs): about 1.25 ms per leaf call (inception modules of
distinct widths), so the default of 1,200 keeps any accepted spec near 1.5 s; it still admits
every preset (densenet121: 427) and every torchvision classification model that builds on the
meta device (the largest, efficientnet_v2_l, has 963 leaf modules).

Counting conventions (the same as explorer.core.analysis unless noted):
- layers: leaf-module calls in one forward pass (conv, BN, ReLU, Identity placeholders...; a ReLU
  a block runs twice counts twice), after `repeat` (= the analysis's detail rows);
- params: every parameter element, bias included (exact);
- macs: per image; exact for conv and linear blocks; for composite blocks an upper bound,
  params x max(input positions, output positions), because every conv/linear weight inside a
  registered block is applied at most once per position of the larger of its block's input or
  output map (their inner maps never exceed both);
- activations: elements of every block instance's output, per image (exact, = analysis totals);
- weight bytes: float32 parameters plus one image's block outputs (what building real weights and
  one forward pass in the app process hold).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

from explorer.errors import BudgetError, ConfigError
from explorer.core.registry import Params, get_block, resolve_params
from explorer.core.spec import NetworkSpec

ENV_PREFIX = "CNN_EXPLORER_"


@dataclass(frozen=True)
class Budget:
    """Limits on one network (set by the server's owner with CNN_EXPLORER_<FIELD IN CAPITALS>)."""

    max_layers: int = 1_200                   # leaf-module calls after `repeat` (bounds trace time and memory)
    max_params: int = 20_000_000_000          # parameter elements (vit_h_14 has 632M; meta costs nothing per
                                              # element, and a 10-billion one is a documented example)
    max_macs: int = 2_000_000_000_000         # multiply-accumulates per image (upper bound, see above)
    max_activations: int = 2_000_000_000      # block output elements per image (8 GB at float32)
    max_weight_params: int = 200_000_000      # parameters when real weights are built in the app process
    max_weight_bytes: int = 2 * 2**30         # bytes: float32 weights + one image's outputs, same case

    @staticmethod
    def env_name(field_name: str) -> str:
        return ENV_PREFIX + field_name.upper()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Budget":
        """The defaults, overridden by any CNN_EXPLORER_MAX_* variable (ConfigError when one is bad)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = cls.env_name(f.name)
            if name in environ:
                values[f.name] = _positive_int(name, environ[name])
        return cls(**values)


def _positive_int(name: str, text: str) -> int:
    """'2000000', '2_000_000' or '2e6' -> 2000000; ConfigError naming the variable otherwise."""
    text = text.strip()
    value: Any = None
    if 0 < len(text) <= 40:
        try:
            value = int(text)
        except ValueError:
            try:
                number = float(text)
                value = int(number) if math.isfinite(number) and number.is_integer() else None
            except ValueError:
                value = None
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"the environment variable {name} must be a positive whole number such as "
                          f"1000000 or 1e6, got {text[:40]!r}; fix or unset it and restart the server",
                          field=name)
    return value


def current() -> Budget:
    """The budget in force now (read from the environment on every call: cheap, and tests can set it)."""
    return Budget.from_env()


# --- closed-form costs per block type -----------------------------------------------------------
# Each returns (leaf layers, parameter elements) for one instance on a (C, H, W) or (F,) input;
# in_channels None gives a lower bound of the leaves over every input (used before the shapes are
# walked; it is exact except for the residual shortcut, which is then left out).
Cost = Callable[[int | None, Params], tuple[int, int]]


def _conv(c: int | None, p: Params) -> tuple[int, int]:
    cin = c or 0
    return 1, (cin // p["groups"]) * p["kernel"] ** 2 * p["out_channels"] + p["out_channels"] * p["bias"]


def _linear(c: int | None, p: Params) -> tuple[int, int]:
    return 1, (c or 0) * p["out_features"] + p["out_features"] * p["bias"]


def _sepconv(c: int | None, p: Params) -> tuple[int, int]:
    cin, cout, norm = c or 0, p["out_channels"], p["norm"]
    depthwise = p["kernel"] ** 2 * cin + (0 if norm else cin)
    pointwise = cin * cout + (0 if norm else cout)
    return 6, depthwise + pointwise + (2 * cin + 2 * cout if norm else 0)


def _mlpconv(c: int | None, p: Params) -> tuple[int, int]:
    prev, total = c or 0, 0
    for i, width in enumerate(p["channels"]):
        k = p["kernel"] if i == 0 else 1
        total += prev * width * k * k + width
        prev = width
    return 2 * len(p["channels"]), total


def _shortcut(c: int | None, out: int, stride: int) -> tuple[int, int]:
    """The 1x1 conv + BN shortcut of residual blocks (absent when the shape is kept)."""
    if c is None or (stride == 1 and c == out):
        return 0, 0
    return 2, (c or 0) * out + 2 * out


def _residual(c: int | None, p: Params) -> tuple[int, int]:
    cin, out = c or 0, p["out_channels"]
    leaves, params = _shortcut(c, out, p["stride"])
    return 6 + leaves, params + 9 * cin * out + 9 * out * out + 4 * out  # its ReLU runs twice


def _bottleneck(c: int | None, p: Params) -> tuple[int, int]:
    cin, out = c or 0, p["out_channels"]
    mid = p["mid_channels"] or max(1, out // 4)
    leaves, params = _shortcut(c, out, p["stride"])
    convs = cin * mid + 9 * mid * (mid // p["groups"]) + mid * out
    return 9 + leaves, params + convs + 4 * mid + 2 * out  # its ReLU runs three times


def _inception(c: int | None, p: Params) -> tuple[int, int]:
    cin, k, extra = c or 0, p["branch3_kernel"], 2 if p["norm"] else 1  # BN: 2 per channel, else a bias

    def cnr(i: int, o: int, kernel: int) -> int:  # conv (+ BN) + ReLU
        return i * o * kernel * kernel + extra * o
    params = (cnr(cin, p["ch1x1"], 1) + cnr(cin, p["ch3x3red"], 1) + cnr(p["ch3x3red"], p["ch3x3"], 3)
              + cnr(cin, p["ch5x5red"], 1) + cnr(p["ch5x5red"], p["ch5x5"], k) + cnr(cin, p["pool_proj"], 1))
    return 19, params


def _denseblock(c: int | None, p: Params) -> tuple[int, int]:
    cin, layers, k, wide = c or 0, p["num_layers"], p["growth_rate"], p["bn_size"] * p["growth_rate"]
    seen = layers * cin + k * layers * (layers - 1) // 2  # sum of each layer's input channels
    # per layer: BN (2 x its input) + 1x1 conv (input x wide) + BN (2 x wide) + 3x3 conv (9 x wide x k)
    return 7 * layers, seen * (2 + wide) + layers * (2 * wide + 9 * wide * k)


def _transition(c: int | None, p: Params) -> tuple[int, int]:
    cin = c or 0
    return 4, 2 * cin + cin * max(1, int(cin * p["compression"]))


def _fire(c: int | None, p: Params) -> tuple[int, int]:
    s, e1, e3 = p["squeeze"], p["expand1x1"], p["expand3x3"]
    return 6, (c or 0) * s + s + s * e1 + e1 + 9 * s * e3 + e3


def _invres(c: int | None, p: Params) -> tuple[int, int]:
    cin, out, t = c or 0, p["out_channels"], p["expand_ratio"]
    hidden = int(round(cin * t))
    expand = (3, cin * hidden + 2 * hidden) if t != 1 else (0, 0)
    return 5 + expand[0], expand[1] + 11 * hidden + hidden * out + 2 * out


def _se(c: int | None, p: Params) -> tuple[int, int]:
    channels = c or 0
    squeeze = max(1, channels // p["reduction"])
    return 5, 2 * channels * squeeze + squeeze + channels


def _batchnorm(c: int | None, p: Params) -> tuple[int, int]:
    return 1, 2 * (c or 0) if p["affine"] else 0


COSTS: dict[str, Cost] = {
    "conv": _conv, "linear": _linear, "sepconv": _sepconv, "mlpconv": _mlpconv, "residual": _residual,
    "bottleneck": _bottleneck, "inception": _inception, "denseblock": _denseblock,
    "transition": _transition, "fire": _fire, "invres": _invres, "se": _se, "batchnorm": _batchnorm,
    "gap": lambda c, p: (2, 0),
}
# Every other registered type is one parameter-free module (pooling, activations, dropout, noise,
# lrn, flatten); tests/test_budget.py checks each formula against a block built on the meta device.
_EXACT_MACS = {"conv", "linear"}  # the others' MACs are the upper bound described above


def block_cost(type_name: str, in_channels: int | None, params: Params) -> tuple[int, int]:
    """(leaf layers, parameter elements) of one instance; in_channels None: a lower bound of the leaves.
    A block type's registry entry may carry its own formula (`cost`); else the table above."""
    own = get_block(type_name).cost
    return (own or COSTS.get(type_name, lambda c, p: (1, 0)))(in_channels, params)


# --- the checks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpecCost:
    """What a spec costs by the formulas above (per image)."""

    layers: int         # leaf-module calls after repeat
    params: int         # parameter elements (exact)
    macs: int           # upper bound (exact when every block is conv/linear/parameter-free)
    activations: int    # block output elements (exact)

    @property
    def weight_bytes(self) -> int:
        return 4 * (self.params + self.activations)  # float32 weights + one image's outputs


_LIMITS = (  # (field of SpecCost, field of Budget, what it is, what to change)
    ("layers", "max_layers", "leaf layers (after repeat)", "lower 'repeat' or num_layers, or remove blocks"),
    ("params", "max_params", "parameters", "use fewer channels, features or layers"),
    ("macs", "max_macs", "multiply-accumulates per image (MACs; an upper bound for composite blocks)",
     "use fewer channels, a smaller input or downsample earlier"),
    ("activations", "max_activations", "output elements per image",
     "use a smaller input, fewer channels or downsample earlier"),
)


def _refuse(what: str, limit: str, value: int, maximum: int, fix: str, block: tuple[int, str] | None,
            scope: str = "the server's budget", qualifier: str = "") -> BudgetError:
    where = dict(block_index=block[0], block_type=block[1]) if block else {}
    at = "; this block takes it over the limit" if block else ""
    return BudgetError(f"the network has {qualifier}{value:,} {what}, more than {scope} of {maximum:,} "
                       f"({Budget.env_name(limit)}){at}; {fix}", limit=limit, value=value,
                       maximum=maximum, **where)


def _layers_lower_bound(spec: NetworkSpec, budget: Budget) -> None:
    """Refuse before walking shapes when even a lower bound of the leaf count is over (O(blocks)).
    Every instance has at least one leaf, so afterwards the shape walk sees <= max_layers instances."""
    total = 0
    for index, block in enumerate(spec.blocks):
        leaves, _ = block_cost(block.type, None, resolve_params(block))
        total += leaves * block.repeat
        if total > budget.max_layers:
            raise _refuse("leaf layers (after repeat)", "max_layers", total, budget.max_layers,
                          "lower 'repeat' or num_layers, or remove blocks", (index, block.type),
                          qualifier="at least ")


def spec_cost(spec: NetworkSpec, budget: Budget | None = None):
    """(SpecCost, ShapePlan) of a spec, refusing with BudgetError as soon as a running total passes a
    limit (the block that did it is named). Shape problems raise SpecError (from infer_shapes)."""
    from explorer.core.shapes import infer_shapes

    budget = budget or current()
    _layers_lower_bound(spec, budget)  # bounds the walk below by max_layers instances
    plan = infer_shapes(spec)
    totals = dict(layers=0, params=0, macs=0, activations=0)
    for inst in plan.instances:
        leaves, params = block_cost(inst.type, inst.in_shape[0], inst.params)
        positions = max(math.prod(inst.in_shape[1:]), math.prod(inst.out_shape[1:]))  # 1 for flat
        if inst.type == "conv":
            macs = (params - inst.params["out_channels"] * inst.params["bias"]) * positions
        elif inst.type == "linear":
            macs = params - inst.params["out_features"] * inst.params["bias"]
        else:
            macs = params * positions
        for key, value in (("layers", leaves), ("params", params), ("macs", macs),
                           ("activations", math.prod(inst.out_shape))):
            totals[key] += value
        _check_totals(totals, budget, (inst.block_index, inst.type))
    return SpecCost(**totals), plan


def _check_totals(totals: Mapping[str, int], budget: Budget, block: tuple[int, str] | None) -> None:
    for key, limit, what, fix in _LIMITS:
        if key in totals and totals[key] > getattr(budget, limit):
            raise _refuse(what, limit, totals[key], getattr(budget, limit), fix, block)


def check_spec(spec: NetworkSpec, budget: Budget | None = None) -> SpecCost:
    """Refuse (BudgetError) a spec over the budget; no tracing, no building. Returns its cost."""
    return spec_cost(spec, budget)[0]


def check_module(model: Any, budget: Budget | None = None) -> None:
    """Leaf modules and parameters of an nn.Module (e.g. a torchvision model on meta) before tracing."""
    budget = budget or current()
    leaves = sum(1 for m in model.modules() if next(m.children(), None) is None)
    params = sum(p.numel() for p in model.parameters())
    _check_totals({"layers": leaves, "params": params}, budget, None)


def check_weights(spec: NetworkSpec, budget: Budget | None = None) -> SpecCost:
    """Refuse a spec whose real weights are too large to build in the app process (the smaller budget)."""
    budget = budget or current()
    cost = check_spec(spec, budget)
    scope = "the budget for networks with real weights in the app"
    if cost.params > budget.max_weight_params:
        raise _refuse("parameters", "max_weight_params", cost.params, budget.max_weight_params,
                      "train it (training runs in its own process) or use fewer channels", None, scope)
    if cost.weight_bytes > budget.max_weight_bytes:
        raise _refuse("bytes of float32 weights and one image's outputs", "max_weight_bytes",
                      cost.weight_bytes, budget.max_weight_bytes,
                      "use fewer channels or a smaller input", None, scope)
    return cost


__all__ = ["Budget", "SpecCost", "COSTS", "block_cost", "current", "spec_cost", "check_spec",
           "check_module", "check_weights"]
