"""Sweep files: one JSON object that says everything about a search, read and written identically
by the CLI (`sweep --sweep FILE`) and the Sweep page.

Owns: SweepFile and its parts (Budget, Stages), their validation (every problem is a ConfigError
naming the field) and the JSON round trip.

    {"format": "cnn-explorer/sweep@1", "id": null, "base": {spec JSON}, "dataset": "mnist5k",
     "train": {TrainConfig fields the trials start from}, "space": [{"name": "lr", "kind": "float",
     "low": 0.001, "high": 0.3, "log": true}, ...], "objective": "score", "min_accuracy": 0.97,
     "pareto_cost": "params", "sampler": "tpe", "pruner": "halving", "prune_min_epochs": null, "seed": 0,
     "budget": {"trials": 30, "seconds": 600, "max_epochs": 12},
     "stages": {"coarse_fraction": 0.7, "coarse_epochs": 4}, "start_points": [{"lr": 0.1}]}
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from explorer.errors import ConfigError, SpecError
from explorer.search.space import Dim, check_space, default_space, space_from_list
from explorer.core.spec import MAX_SPEC_BYTES, NetworkSpec
from explorer.training.config import TrainConfig

SWEEP_FORMAT = "cnn-explorer/sweep@1"
OBJECTIVES = ("accuracy", "score", "pareto")
SAMPLERS = ("random", "tpe", "nsga2")
PRUNERS = ("none", "halving", "hyperband")
PARETO_COSTS = ("params", "macs")
MAX_TRIALS = 10_000
PRUNE_MIN_EPOCHS = 2      # automatic prune_min_epochs: never prune before epoch 2 ...
PRUNE_MIN_SHARE = 0.25    # ... nor before a quarter of the stage's epochs
MAX_SWEEP_BYTES = 4 * MAX_SPEC_BYTES


@dataclass(frozen=True)
class Budget:
    trials: int = 20                  # trials in all, both stages together
    seconds: float | None = None      # stop asking for new trials after this wall time (s) of one driver run
    max_epochs: int = 12              # the longest a trial trains (the fine stage's epochs range ends here)

    def validate(self) -> "Budget":
        if not _int(self.trials) or not 1 <= self.trials <= MAX_TRIALS:
            raise ConfigError(f"budget.trials must be from 1 to {MAX_TRIALS:,}, got {self.trials!r}", field="trials")
        if self.seconds is not None and (not _num(self.seconds) or self.seconds <= 0):
            raise ConfigError(f"budget.seconds must be a positive number, got {self.seconds!r}", field="seconds")
        if not _int(self.max_epochs) or not 1 <= self.max_epochs <= 1000:
            raise ConfigError(f"budget.max_epochs must be from 1 to 1000, got {self.max_epochs!r}",
                              field="max_epochs")
        return self


@dataclass(frozen=True)
class Stages:
    coarse_fraction: float = 0.7      # share of the trials in the coarse stage; the rest are the fine stage
    coarse_epochs: int = 4            # every coarse trial trains this many epochs (at most max_epochs)

    def validate(self) -> "Stages":
        if not _num(self.coarse_fraction) or not 0 < self.coarse_fraction <= 1:
            raise ConfigError(f"stages.coarse_fraction must be in (0, 1], got {self.coarse_fraction!r}",
                              field="coarse_fraction")
        if not _int(self.coarse_epochs) or not 1 <= self.coarse_epochs <= 1000:
            raise ConfigError(f"stages.coarse_epochs must be from 1 to 1000, got {self.coarse_epochs!r}",
                              field="coarse_epochs")
        return self


@dataclass(frozen=True)
class SweepFile:
    base: NetworkSpec                      # the network the space varies
    dataset: str = "mnist5k"               # a dataset name (explorer.data.list_datasets)
    train: TrainConfig = TrainConfig()     # the training settings trials start from (dataset/seed/device set here)
    space: tuple[Dim, ...] = ()            # what is searched (explorer.search.space)
    objective: str = "score"               # accuracy, score (course score) or pareto (accuracy vs cost)
    min_accuracy: float = 0.0              # score: trials below this accuracy rank below every trial above it
    pareto_cost: str = "params"            # pareto: the cost axis, params or macs
    sampler: str = "tpe"                   # random, tpe or nsga2 (Optuna samplers)
    pruner: str = "halving"                # none, halving (successive halving) or hyperband
    prune_min_epochs: int | None = None    # epochs every trial trains before the pruner may stop it (Optuna's
    #                                        min_resource); None: min_epochs_before_pruning() decides per stage
    seed: int = 0                          # seeds the sampler and every trial's training
    budget: Budget = Budget()
    stages: Stages = Stages()
    start_points: tuple[dict, ...] = ()    # points (dim name -> value) tried first, e.g. the base's own settings
    id: str | None = None                  # set when the sweep starts; a file with an id resumes that sweep

    def validate(self) -> "SweepFile":
        for name, value, allowed in (("objective", self.objective, OBJECTIVES), ("sampler", self.sampler, SAMPLERS),
                                     ("pruner", self.pruner, PRUNERS), ("pareto_cost", self.pareto_cost,
                                                                         PARETO_COSTS)):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}", field=name)
        if self.objective == "pareto" and self.pruner != "none":
            raise ConfigError("Optuna cannot prune a multi-objective (pareto) study: use --pruner none, or "
                              "--objective accuracy|score", field="pruner")
        if not _num(self.min_accuracy) or not 0 <= self.min_accuracy <= 1:
            raise ConfigError(f"min_accuracy must be a fraction from 0 to 1, got {self.min_accuracy!r}",
                              field="min_accuracy")
        if self.prune_min_epochs is not None and (not _int(self.prune_min_epochs)
                                                  or not 1 <= self.prune_min_epochs <= 1000):
            raise ConfigError(f"prune_min_epochs must be null (automatic) or from 1 to 1000, got "
                              f"{self.prune_min_epochs!r}", field="prune_min_epochs")
        if not _int(self.seed) or not 0 <= self.seed < 2**31:
            raise ConfigError(f"seed must be from 0 to 2**31 - 1, got {self.seed!r}", field="seed")
        if self.id is not None and (not isinstance(self.id, str) or not _safe_id(self.id)):
            raise ConfigError(f"id must be letters, digits, '-' and '_', got {str(self.id)[:60]!r}", field="id")
        self.budget.validate(), self.stages.validate(), self.train.validate()
        if not self.space:
            raise ConfigError("the space is empty: nothing to search", field="space")
        check_space(self.space, self.base)
        for point in self.start_points:
            _check_point(point, self.space)
        return self

    @property
    def coarse_trials(self) -> int:
        return max(1, min(self.budget.trials, math.ceil(self.budget.trials * self.stages.coarse_fraction)))

    @property
    def coarse_epochs(self) -> int:
        return min(self.stages.coarse_epochs, self.budget.max_epochs)

    def min_epochs_before_pruning(self, epochs: int) -> int:
        """Epochs a trial of a stage that trains up to `epochs` runs before any pruning decision:
        prune_min_epochs when set, else a quarter of the epochs and at least PRUNE_MIN_EPOCHS (small
        networks start slowly: at epoch 1 a good trial can still trail a worse one that starts fast);
        never more than the stage's epochs."""
        wanted = self.prune_min_epochs or max(PRUNE_MIN_EPOCHS, math.ceil(epochs * PRUNE_MIN_SHARE))
        return max(1, min(wanted, epochs))

    def to_dict(self) -> dict[str, Any]:
        train = {k: v for k, v in self.train.to_dict().items() if k not in ("dataset",)}
        return {"format": SWEEP_FORMAT, "id": self.id, "base": self.base.to_dict(), "dataset": self.dataset,
                "train": train, "space": [d.to_dict() for d in self.space], "objective": self.objective,
                "min_accuracy": self.min_accuracy, "pareto_cost": self.pareto_cost, "sampler": self.sampler,
                "pruner": self.pruner, "prune_min_epochs": self.prune_min_epochs, "seed": self.seed,
                "budget": asdict(self.budget),
                "stages": asdict(self.stages), "start_points": [dict(p) for p in self.start_points]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def with_changes(self, **changes: Any) -> "SweepFile":
        return replace(self, **changes).validate()


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _safe_id(text: str) -> bool:
    return 0 < len(text) <= 120 and all(c.isalnum() or c in "-_" for c in text)


def _check_point(point: Any, space: tuple[Dim, ...]) -> None:
    names = {d.name: d for d in space}
    if not isinstance(point, dict) or not set(point) <= set(names):
        raise ConfigError(f"start point {str(point)[:80]!r} must map space names ({', '.join(names)}) to values",
                          field="start_points")
    for name, value in point.items():
        dim = names[name]
        ok = value in dim.choices if dim.kind == "choice" else (_num(value) and dim.low <= value <= dim.high)
        if not ok:
            raise ConfigError(f"start point value {name}={value!r} lies outside the space", field="start_points")


_TOP_KEYS = {"format", "id", "base", "dataset", "train", "space", "objective", "min_accuracy", "pareto_cost",
             "sampler", "pruner", "prune_min_epochs", "seed", "budget", "stages", "start_points"}


def sweep_from_dict(data: Any) -> SweepFile:
    """A validated SweepFile from parsed JSON; ConfigError (or SpecError for the base) otherwise."""
    if not isinstance(data, dict):
        raise ConfigError(f"a sweep file must hold a JSON object, not {type(data).__name__}")
    if data.get("format") != SWEEP_FORMAT:
        raise ConfigError(f"format must be {SWEEP_FORMAT!r}, got {str(data.get('format'))[:40]!r}", field="format")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"unknown sweep setting(s) {', '.join(map(repr, unknown[:5]))}; known: "
                          f"{', '.join(sorted(_TOP_KEYS))}", field=str(unknown[0])[:40])
    base = NetworkSpec.from_dict(data.get("base"))
    dataset = data.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise ConfigError("dataset must name a dataset, e.g. mnist5k", field="dataset")
    train = TrainConfig.from_dict({**_obj(data.get("train", {}), "train"), "dataset": dataset})
    kwargs = {k: data[k] for k in ("objective", "min_accuracy", "pareto_cost", "sampler", "pruner",
                                   "prune_min_epochs", "seed", "id") if k in data}
    try:
        budget = Budget(**_obj(data.get("budget", {}), "budget"))
        stages = Stages(**_obj(data.get("stages", {}), "stages"))
    except TypeError as e:
        raise ConfigError(f"budget/stages: {e}", field="budget") from None
    points = data.get("start_points", [])
    if not isinstance(points, list):
        raise ConfigError("start_points must be a list of objects", field="start_points")
    return SweepFile(base=base, dataset=dataset, train=train, space=space_from_list(data.get("space")),
                     budget=budget, stages=stages, start_points=tuple(points), **kwargs).validate()


def _obj(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object", field=name)
    return value


def read_sweep(path: str | Path) -> SweepFile:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no sweep file at {path}", field="sweep")
    if path.stat().st_size > MAX_SWEEP_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_SWEEP_BYTES:,} bytes", field="sweep")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ConfigError(f"{path} is not valid JSON ({type(e).__name__})", field="sweep") from None
    try:
        return sweep_from_dict(data)
    except SpecError as e:
        raise ConfigError(f"the base network in {path.name}: {e}", field="base") from None


def new_sweep(base: NetworkSpec, dataset: str, *, objective: str = "score", sampler: str | None = None,
              pruner: str | None = None, trials: int = 20, seconds: float | None = None, max_epochs: int = 12,
              seed: int = 0, device: str = "auto", train: TrainConfig | None = None,
              min_accuracy: float = 0.0) -> SweepFile:
    """A sweep over the default space of `base`; sampler/pruner None: nsga2 and no pruning for
    pareto, else tpe and successive halving."""
    sampler = sampler or ("nsga2" if objective == "pareto" else "tpe")
    pruner = pruner or ("none" if objective == "pareto" else "halving")
    train = (train or TrainConfig()).with_changes(dataset=dataset, seed=seed, device=device)
    return SweepFile(base=base, dataset=dataset, train=train, space=default_space(base, max_epochs),
                     objective=objective, sampler=sampler, pruner=pruner, seed=seed, min_accuracy=min_accuracy,
                     budget=Budget(trials=trials, seconds=seconds, max_epochs=max_epochs)).validate()


__all__ = ["SweepFile", "Budget", "Stages", "sweep_from_dict", "read_sweep", "new_sweep", "SWEEP_FORMAT",
           "OBJECTIVES", "SAMPLERS", "PRUNERS"]
