"""The server's cost budget: what a network may cost before anything is traced or built.

Owns: `Budget` (the limits, read from environment variables the server's owner sets), the walk
over a spec that adds up its cost (leaf modules, parameters, an upper bound on MACs, output
elements) and the checks `check_spec`, `check_module` and `check_weights`. Each block's cost is
its registry entry's closed-form formula (`BlockDef.cost`, returning a `BlockCost`, in the block's
own file in explorer.core.blocks): nothing here knows a block type.

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
- macs: per image, mac_weights x max(input positions, output positions) per instance (see
  `instance_macs`). A conv's or a linear layer's mac_weights are its weights without the bias:
  exact for linear layers and for convs that keep the map size, an upper bound for the others
  (a strided or unpadded conv is counted at its input's positions). Composite blocks count every
  parameter, an upper bound because every conv/linear weight inside a registered block is applied
  at most once per position of the larger of its block's input or output map (their inner maps
  never exceed both);
- activations: elements of every block instance's output, per image (exact, = analysis totals);
- weight bytes: float32 parameters plus one image's block outputs (what building real weights and
  one forward pass in the app process hold).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

from explorer.errors import BudgetError, ConfigError
from explorer.core.registry import BlockCost, Params, Shape, get_block, resolve_params
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
    max_train_memory_percent: int = 80        # % of the device's memory (RAM on the CPU, the GPU's own on
                                              # CUDA) a run's predicted training memory may take

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


# --- one block's cost: its registry entry's formula ---------------------------------------------
def block_cost(type_name: str, in_channels: int | None, params: Params) -> BlockCost:
    """One instance's BlockCost from the block type's own formula (BlockDef.cost, in its file in
    explorer.core.blocks); in_channels None: a lower bound of the layers (the rest then undercount)."""
    cost = get_block(type_name).cost(in_channels, params)
    return cost if isinstance(cost, BlockCost) else BlockCost(*cost)  # a plain (layers, params) tuple


def instance_macs(cost: BlockCost, in_shape: Shape, out_shape: Shape) -> int:
    """MACs per image: mac_weights (all parameters if unset) x max(input, output positions), a
    position being one (h, w) of a (C, H, W) map; a flat (F,) vector is one position."""
    positions = max(math.prod(in_shape[1:]), math.prod(out_shape[1:]))
    return (cost.params if cost.mac_weights is None else cost.mac_weights) * positions


# --- the checks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpecCost:
    """What a spec costs by its blocks' formulas (per image)."""

    layers: int         # leaf-module calls after repeat
    params: int         # parameter elements (exact)
    macs: int           # upper bound (exact when every block is linear, parameter-free or a
                        # conv that keeps its map size)
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
        total += block_cost(block.type, None, resolve_params(block)).layers * block.repeat
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
        cost = block_cost(inst.type, inst.in_shape[0], inst.params)
        for key, value in (("layers", cost.layers), ("params", cost.params),
                           ("macs", instance_macs(cost, inst.in_shape, inst.out_shape)),
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


__all__ = ["Budget", "SpecCost", "block_cost", "instance_macs", "current", "spec_cost", "check_spec",
           "check_module", "check_weights"]
