"""The search space of a sweep, as data: what may change in a network and its training, and how.

Owns: Dim (one searched quantity and its range), the default space built from a network
(default_space), drawing a point with an Optuna trial (suggest), turning a point into a spec and
a TrainConfig (apply), and the coarse-to-fine narrowing rule (narrow).

Dim names and what they change (every name is a plain string, so a sweep file can list them):
    width          multiplier on out_channels of every block that has it and out_features of every
                   hidden linear layer (never the layer that produces the classes); rounded, >= 1
    repeat.I       the `repeat` of block I (how many times it is stacked)
    kernel.I       the kernel of conv block I; a "same" padding ((k-1)/2) follows the kernel
    activation     the type of every activation block (relu, tanh, gelu, ...)
    dropout        p of every dropout/dropout2d block; a network with none gets one dropout block
                   before its last linear layer (when p > 0)
    lr, weight_decay, batch_size, optimizer, schedule, crop_padding, label_smoothing, momentum, epochs
                   the TrainConfig fields of the same name (epochs: the fine stage only; the
                   coarse stage trains every trial for the same few epochs)
Index-based dims (repeat.I, kernel.I) refer to the base spec's blocks and are applied before a
dropout block is inserted, so indices stay valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from explorer.errors import ConfigError
from explorer.core.registry import block_types, get_block
from explorer.core.spec import BlockSpec, NetworkSpec
from explorer.training.config import OPTIMIZERS, SCHEDULES, TrainConfig

KINDS = ("float", "int", "choice")
ACTIVATIONS = tuple(t for t in block_types() if get_block(t).role == "activation")
TRAIN_DIMS = ("lr", "weight_decay", "batch_size", "optimizer", "schedule", "crop_padding", "label_smoothing",
              "momentum", "epochs")
NET_DIMS = ("width", "activation", "dropout")
WIDEN = 0.25          # narrow(): the kept range grows by this share of its width on each side
KEEP_SHARE = 0.25     # narrow(): the best quarter of the coarse trials (at least 2) set the ranges
MIN_SHARE = 0.25      # narrow(): a kept numeric range spans at least this share of the original


@dataclass(frozen=True)
class Dim:
    """One searched quantity."""

    name: str                          # see the module docstring (width, repeat.3, lr, ...)
    kind: str                          # float, int or choice
    low: float | None = None           # float/int: smallest value (inclusive)
    high: float | None = None          # float/int: largest value (inclusive)
    log: bool = False                  # float/int: sample uniformly in log space (lr, weight decay)
    choices: tuple = ()                # choice: the allowed values (JSON scalars)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"name": self.name, "kind": "choice", "choices": list(self.choices)}
        d = {"name": self.name, "kind": self.kind, "low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        return d

    @staticmethod
    def from_dict(data: Any) -> "Dim":
        if not isinstance(data, dict):
            raise ConfigError(f"a space entry must be a JSON object, not {type(data).__name__}", field="space")
        unknown = set(data) - {"name", "kind", "low", "high", "log", "choices"}
        if unknown:
            raise ConfigError(f"space entry {data.get('name')!r} has unknown key(s) {sorted(unknown)}", field="space")
        dim = Dim(name=data.get("name"), kind=data.get("kind"), low=data.get("low"), high=data.get("high"),
                  log=data.get("log", False), choices=tuple(data.get("choices") or ()))
        return dim.validate()

    def validate(self) -> "Dim":
        where = f"space entry {self.name!r}"
        if not isinstance(self.name, str) or not _known_name(self.name):
            raise ConfigError(f"{where}: unknown name; use {', '.join(NET_DIMS + TRAIN_DIMS)}, repeat.I or "
                              f"kernel.I (I a block index)", field="space")
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}", field="space")
        if self.kind == "choice":
            if not self.choices or not all(isinstance(c, (str, int, float, bool)) for c in self.choices):
                raise ConfigError(f"{where}: choices must be a non-empty list of numbers or names", field="space")
            return self
        nums = (self.low, self.high)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in nums):
            raise ConfigError(f"{where}: low and high must be finite numbers", field="space")
        if self.low > self.high or (self.log and self.low <= 0) or not isinstance(self.log, bool):
            raise ConfigError(f"{where}: needs low <= high (and low > 0 when log is true)", field="space")
        if self.kind == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ConfigError(f"{where}: an int range needs whole-number bounds", field="space")
        return self


def _known_name(name: str) -> bool:
    if name in NET_DIMS or name in TRAIN_DIMS:
        return True
    head, _, index = name.partition(".")
    return head in ("repeat", "kernel") and index.isdigit()


def _block_index(dim: Dim) -> int:
    return int(dim.name.split(".")[1])


def check_space(space: tuple[Dim, ...], spec: NetworkSpec) -> None:
    """ConfigError when two entries share a name or an index names a block the spec lacks."""
    names = [d.name for d in space]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"the space lists {', '.join(dupes)} more than once", field="space")
    for dim in space:
        if "." in dim.name:
            i = _block_index(dim)
            if i >= len(spec.blocks):
                raise ConfigError(f"space entry {dim.name!r}: the network has only {len(spec.blocks)} blocks",
                                  field="space")
            if dim.name.startswith("kernel") and spec.blocks[i].type != "conv":
                raise ConfigError(f"space entry {dim.name!r}: block {i} is a {spec.blocks[i].type}, not a conv",
                                  field="space")


# --- the default space for a network ---------------------------------------------------------------
def default_space(spec: NetworkSpec, max_epochs: int = 12) -> tuple[Dim, ...]:
    """Width, kernels of the odd-kernel convs (3 or 5), repeat of size-keeping convs (1-2),
    activation, dropout, and the training knobs (lr, weight decay log-uniform)."""
    dims = [Dim("width", "float", 0.25, 2.0, log=True)]
    for i, block in enumerate(spec.blocks):
        kernel = block.get("kernel")
        if block.type == "conv" and kernel in (3, 5):
            dims.append(Dim(f"kernel.{i}", "choice", choices=(3, 5)))
        if block.type == "conv" and block.get("stride", 1) == 1 and _same_padding(block):
            dims.append(Dim(f"repeat.{i}", "int", block.repeat, block.repeat + 1))
    acts = [b.type for b in spec.blocks if b.type in ACTIVATIONS]
    if acts:
        dims.append(Dim("activation", "choice", choices=tuple(dict.fromkeys([acts[0], "relu", "tanh", "silu"]))))
    if any(b.type == "linear" for b in spec.blocks):
        dims.append(Dim("dropout", "float", 0.0, 0.5))
    dims += [Dim("lr", "float", 1e-3, 0.3, log=True), Dim("weight_decay", "float", 1e-6, 1e-2, log=True),
             Dim("batch_size", "choice", choices=(32, 64, 128)), Dim("optimizer", "choice", choices=("sgd", "adamw")),
             Dim("schedule", "choice", choices=("cosine", "onecycle")), Dim("crop_padding", "choice", choices=(0, 2)),
             Dim("epochs", "int", max(1, max_epochs // 2), max_epochs)]
    return tuple(dims)


def _same_padding(block: BlockSpec) -> bool:
    kernel, padding = block.get("kernel", 3), block.get("padding", 0)
    return padding == "same" or (isinstance(kernel, int) and kernel % 2 == 1 and padding == (kernel - 1) // 2)


# --- sampling ---------------------------------------------------------------------------------------
def suggest(trial, space: tuple[Dim, ...], fine: bool) -> dict[str, Any]:
    """Draw one point with an Optuna trial (ask-and-tell). `epochs` is drawn in the fine stage only."""
    point = {}
    for dim in space:
        if dim.name == "epochs" and not fine:
            continue
        if dim.kind == "choice":
            point[dim.name] = trial.suggest_categorical(dim.name, list(dim.choices))
        elif dim.kind == "int":
            point[dim.name] = trial.suggest_int(dim.name, int(dim.low), int(dim.high), log=dim.log)
        else:
            point[dim.name] = trial.suggest_float(dim.name, float(dim.low), float(dim.high), log=dim.log)
    return point


def distributions(space: tuple[Dim, ...], fine: bool) -> dict:
    """Optuna distributions of the space (for enqueued points and reading studies back)."""
    import optuna.distributions as od

    out = {}
    for dim in space:
        if dim.name == "epochs" and not fine:
            continue
        if dim.kind == "choice":
            out[dim.name] = od.CategoricalDistribution(list(dim.choices))
        elif dim.kind == "int":
            out[dim.name] = od.IntDistribution(int(dim.low), int(dim.high), log=dim.log)
        else:
            out[dim.name] = od.FloatDistribution(float(dim.low), float(dim.high), log=dim.log)
    return out


# --- applying a point ------------------------------------------------------------------------------
def apply(spec: NetworkSpec, config: TrainConfig, point: dict[str, Any]) -> tuple[NetworkSpec, TrainConfig]:
    """The spec and TrainConfig of one trial. The spec is not shape-checked here (the driver does)."""
    blocks = list(spec.blocks)
    for name, value in point.items():
        if name.startswith("repeat."):
            i = int(name.split(".")[1])
            blocks[i] = replace(blocks[i], repeat=int(value))
        elif name.startswith("kernel."):
            i = int(name.split(".")[1])
            changes = {"kernel": int(value)}
            if _same_padding(blocks[i]) and blocks[i].get("padding", 0) != "same":
                changes["padding"] = (int(value) - 1) // 2
            blocks[i] = blocks[i].with_values(**changes)
    if "width" in point:
        blocks = _scale_width(blocks, spec.num_classes, float(point["width"]))
    if "activation" in point:
        blocks = [BlockSpec.make(point["activation"], repeat=b.repeat) if b.type in ACTIVATIONS else b for b in blocks]
    if "dropout" in point:
        blocks = _set_dropout(blocks, float(point["dropout"]))
    train = {k: v for k, v in point.items() if k in TRAIN_DIMS}
    if train.get("optimizer") not in (None, *OPTIMIZERS) or train.get("schedule") not in (None, *SCHEDULES):
        raise ConfigError(f"unknown optimizer or schedule in {train}", field="space")
    return spec.with_blocks(blocks), config.with_changes(**train)


def _classifier_index(blocks: list[BlockSpec], num_classes: int) -> int | None:
    """The last layer with out_features/out_channels: it produces the classes and keeps its width."""
    for i in range(len(blocks) - 1, -1, -1):
        if blocks[i].get("out_features") is not None or blocks[i].get("out_channels") is not None:
            return i
    return None


def _scale_width(blocks: list[BlockSpec], num_classes: int, width: float) -> list[BlockSpec]:
    last = _classifier_index(blocks, num_classes)
    out = []
    for i, b in enumerate(blocks):
        for key in ("out_channels", "out_features"):
            if i != last and b.get(key) is not None:
                b = b.with_values(**{key: max(1, round(b.get(key) * width))})
        out.append(b)
    return out


def _set_dropout(blocks: list[BlockSpec], p: float) -> list[BlockSpec]:
    if any(b.type in ("dropout", "dropout2d") for b in blocks):
        return [b.with_values(p=p) if b.type in ("dropout", "dropout2d") else b for b in blocks]
    linears = [i for i, b in enumerate(blocks) if b.type == "linear"]
    if p <= 0 or not linears:
        return blocks
    i = linears[-1]
    return blocks[:i] + [BlockSpec.make("dropout", p=round(p, 4))] + blocks[i:]


# --- coarse to fine ---------------------------------------------------------------------------------
def narrow(space: tuple[Dim, ...], best_points: list[dict[str, Any]]) -> tuple[Dim, ...]:
    """The fine stage's space: each numeric range shrinks to the span of the best coarse points,
    widened by WIDEN of that span on each side and to at least MIN_SHARE of the original range
    (in log space for log dims), clipped to the original range; a choice keeps the values the
    best points used. Dims the best points never drew (epochs) keep their range."""
    out = []
    for dim in space:
        values = [p[dim.name] for p in best_points if dim.name in p]
        if not values:
            out.append(dim)
        elif dim.kind == "choice":
            out.append(replace(dim, choices=tuple(c for c in dim.choices if c in values)))
        else:
            out.append(_narrow_range(dim, values))
    return tuple(out)


def _narrow_range(dim: Dim, values: list[float]) -> Dim:
    to = (lambda v: math.log(v)) if dim.log else (lambda v: float(v))
    back = (lambda v: math.exp(v)) if dim.log else (lambda v: v)
    lo, hi, full_lo, full_hi = to(min(values)), to(max(values)), to(dim.low), to(dim.high)
    pad = WIDEN * (hi - lo)
    pad = max(pad, (MIN_SHARE * (full_hi - full_lo) - (hi - lo)) / 2)  # never narrower than MIN_SHARE
    low, high = back(max(full_lo, lo - pad)), back(min(full_hi, hi + pad))
    low, high = max(dim.low, min(low, min(values))), min(dim.high, max(high, max(values)))  # exp/log round-off
    if dim.kind == "int":
        low, high = math.floor(low), math.ceil(high)
    return replace(dim, low=low, high=high)


def space_from_list(data: Any) -> tuple[Dim, ...]:
    if not isinstance(data, list):
        raise ConfigError("space must be a list of entries such as {\"name\": \"lr\", \"kind\": \"float\", "
                          "\"low\": 0.001, \"high\": 0.3, \"log\": true}", field="space")
    return tuple(Dim.from_dict(d) for d in data)


__all__ = ["Dim", "default_space", "suggest", "distributions", "apply", "narrow", "check_space", "space_from_list",
           "KEEP_SHARE"]
