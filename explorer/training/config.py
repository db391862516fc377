"""TrainConfig: every knob of a short training run, with its meaning, unit and allowed range.

Owns: the validation of a training configuration (from the page, a config file or CLI flags);
every bad value raises ConfigError naming the field. NaN, infinity and negative numbers never pass.
Also owns the optimizer table (OPTIMIZER_TABLE): each optimizer's name, label, state kept per
parameter (for the memory prediction) and constructor; every page, the CLI and the loop read it.
(explorer.core.analysis keeps its own name -> state count, OPTIMIZER_STATE, because the core never
imports training; tests/test_training.py checks that the two agree.)"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable

from explorer.errors import ConfigError
from explorer.training.initialise import INIT_NAMES  # the weight initialisation schemes (that module's table)


@dataclass(frozen=True)
class Optimizer:
    """One row of the optimizer table."""

    name: str                         # TrainConfig.optimizer / --optimizer / analyze(optimizer=) value
    label: str                        # how pages name it
    state: int                        # state tensors kept per trainable parameter (memory prediction)
    make: Callable[[list, "TrainConfig"], Any] | None  # (params, config) -> torch.optim.Optimizer;
    #                                   None: a memory-only choice (the Build page's plain SGD)


def _sgd(params: list, cfg: "TrainConfig"):
    import torch

    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                           weight_decay=cfg.weight_decay)


def _adam(params: list, cfg: "TrainConfig"):
    import torch

    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _adamw(params: list, cfg: "TrainConfig"):
    import torch

    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


# SGD with momentum keeps one velocity buffer, Adam/AdamW two moments, plain SGD none
OPTIMIZER_TABLE: tuple[Optimizer, ...] = (
    Optimizer("sgd", "SGD with momentum", 1, _sgd),
    Optimizer("sgd-plain", "Plain SGD", 0, None),
    Optimizer("adam", "Adam", 2, _adam),
    Optimizer("adamw", "AdamW", 2, _adamw),
)
OPTIMIZER_ROWS: dict[str, Optimizer] = {o.name: o for o in OPTIMIZER_TABLE}
OPTIMIZERS = tuple(o.name for o in OPTIMIZER_TABLE if o.make is not None)   # what a run can train with
OPTIMIZER_LABELS: dict[str, str] = {o.name: o.label for o in OPTIMIZER_TABLE}
SCHEDULES = ("constant", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda")
MAX_SEED = 2**63 - 1                 # torch.manual_seed takes at most a 64-bit value
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 4, 1024  # pixels: TrainConfig.image_size when not 0 (automatic)
FREEZE_MODES = ("none", "features")  # besides a block number "N" (transfer.py)


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "mnist5k"          # a name from explorer.data.list_datasets()
    data_root: str | None = None      # where torchvision sets / image folders live
    epochs: int = 5                   # passes over the training split
    batch_size: int = 64              # images per optimizer step
    lr: float = 0.01                  # peak learning rate
    optimizer: str = "sgd"            # sgd (with momentum), adam, adamw
    momentum: float = 0.9             # SGD only
    nesterov: bool = False            # SGD only
    weight_decay: float = 5e-4        # L2 (SGD, Adam) or decoupled (AdamW)
    schedule: str = "cosine"          # constant, step (x gamma every step_epochs), cosine, onecycle
    step_epochs: int = 0              # step schedule period in epochs (0: a third of the epochs)
    gamma: float = 0.1                # step schedule factor
    label_smoothing: float = 0.0      # cross-entropy target smoothing (0 = one-hot)
    crop_padding: int = 0             # random crop after zero padding by this many pixels (CIFAR: 4)
    flip: bool = False                # random horizontal flips (not for digits!)
    init: str = "default"             # weight initialisation: default (PyTorch's), he, xavier (explorer.training.initialise)
    image_size: int = 0               # side (px) of the square images the network trains on; 0: automatic
                                      # (explorer.training.adapt: the dataset's size, else the smallest the
                                      # network works at; starting from weights, the size they were trained at)
    val_fraction: float = 0.2         # share of the data held out (built-in sets)
    seed: int = 0                     # seeds data split, init, shuffling, augmentation
    device: str = "auto"              # auto (cuda if available), cpu, cuda
    max_seconds: float | None = None  # stop after this wall time (the run still completes)
    overfit: int = 0                  # > 0: train and validate on this many training images only, unaugmented
    log_every: int = 10               # optimizer steps between "step" events
    # --- transfer learning (explorer/training/transfer.py) ---
    init_from: str | None = None      # start from: a run folder (its best checkpoint) or a weights file; None: random
    freeze: str = "none"              # "none", "features" (only the classifier head trains) or "N": blocks 1..N
                                      # (numbered from 1, as on the Build page) keep their weights
    pretrained_lr_scale: float = 1.0  # learning rate of loaded layers = lr x this, in (0, 1] (discriminative rates)
    freeze_bn: bool = False           # every batch norm keeps its running statistics (eval mode) while training
    train_per_class: int = 0          # > 0: keep this many training images per class (stratified, seeded); 0: all

    def validate(self) -> "TrainConfig":
        def bad(field: str, message: str):
            raise ConfigError(f"{field} {message}", field=field)

        for f in fields(self):  # NaN and infinity compare false: refuse them before the range checks
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                bad(f.name, f"must be a finite number, got {value}")
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            bad("dataset", "must name a dataset, e.g. mnist5k")

        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            bad("schedule", f"must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.init not in INIT_NAMES:
            bad("init", f"must be one of {', '.join(INIT_NAMES)}, got {str(self.init)[:40]!r}")
        if self.device not in DEVICES:
            bad("device", f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if not 1 <= self.epochs <= 1000:
            bad("epochs", f"must be from 1 to 1000, got {self.epochs}")
        if not 1 <= self.batch_size <= 65536:
            bad("batch_size", f"must be from 1 to 65536, got {self.batch_size}")
        if not 0 < self.lr <= 100:
            bad("lr", f"must be positive (and at most 100), got {self.lr}")
        if not 0 <= self.momentum < 1:
            bad("momentum", f"must be in [0, 1), got {self.momentum}")
        if not 0 <= self.weight_decay <= 1:
            bad("weight_decay", f"must be in [0, 1], got {self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:
            bad("label_smoothing", f"must be in [0, 1), got {self.label_smoothing}")
        if not (self.image_size == 0 or MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE):
            bad("image_size", f"must be 0 (automatic) or from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels, "
                              f"got {self.image_size}")
        if not 0 <= self.crop_padding <= 16:
            bad("crop_padding", f"must be from 0 to 16 pixels, got {self.crop_padding}")
        if not 0 < self.val_fraction < 1:
            bad("val_fraction", f"must be between 0 and 1, got {self.val_fraction}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            bad("max_seconds", f"must be positive, got {self.max_seconds}")
        if self.overfit < 0:
            bad("overfit", f"must be 0 (off) or a number of images, got {self.overfit}")
        if not 0 <= self.seed <= MAX_SEED:
            bad("seed", f"must be from 0 to {MAX_SEED}, got {self.seed}")
        if not 0 <= self.step_epochs <= 1000:
            bad("step_epochs", f"must be from 0 to 1000 epochs, got {self.step_epochs}")
        if self.overfit > 1_000_000:
            bad("overfit", f"must be at most 1,000,000 images, got {self.overfit}")
        if not 1 <= self.log_every <= 10000:
            bad("log_every", f"must be from 1 to 10000, got {self.log_every}")
        if not 0 < self.gamma <= 1:
            bad("gamma", f"must be in (0, 1], got {self.gamma}")
        self._validate_transfer(bad)
        return self

    def _validate_transfer(self, bad) -> None:
        """The transfer-learning fields (their fit to a network is checked by transfer.check_init)."""
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from.strip()
                                           or len(self.init_from) > 4096 or "\0" in self.init_from):
            bad("init_from", "must be a run folder or a weights file path (or empty for random weights)")
        if not isinstance(self.freeze, str) or not (self.freeze in FREEZE_MODES or (
                self.freeze.isascii() and self.freeze.isdigit() and 1 <= int(self.freeze) <= 10_000)):
            bad("freeze", f"must be none, features or a block number from 1, got {str(self.freeze)[:40]!r}")
        if not 0 < self.pretrained_lr_scale <= 1:
            bad("pretrained_lr_scale", f"must be in (0, 1] (a fraction of lr), got {self.pretrained_lr_scale}")
        if not 0 <= self.train_per_class <= 1_000_000:
            bad("train_per_class", f"must be 0 (all) or a number of images per class, got {self.train_per_class}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "TrainConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a training config must be a JSON object, not {type(data).__name__}")
        known = {f.name: f for f in fields(TrainConfig)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            names = ", ".join(repr(str(u)[:40]) for u in unknown[:5])
            raise ConfigError(f"unknown training setting(s) {names}; known: {', '.join(known)}",
                              field=str(unknown[0])[:40])
        values = {}
        for name, value in data.items():
            default = getattr(TrainConfig, name)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int) and not isinstance(default, bool):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float) or name == "max_seconds":
                ok = (value is None and name == "max_seconds") or _as_float(value) is not None
                value = value if value is None or not ok else _as_float(value)
            else:
                ok = value is None or isinstance(value, str)
            if not ok:
                raise ConfigError(f"{name} has the wrong type: {str(value)[:40]!r}", field=name)
            values[name] = value
        return TrainConfig(**values).validate()

    def with_changes(self, **changes: Any) -> "TrainConfig":
        return replace(self, **changes).validate()

    @property
    def memory_optimizer(self) -> str:
        """The optimizer table's row whose state this run keeps: SGD without momentum keeps none."""
        return "sgd-plain" if self.optimizer == "sgd" and self.momentum == 0 else self.optimizer

    def make_optimizer(self, params: list):
        """The torch optimizer for `params` (the trainable parameters), from the optimizer table."""
        return OPTIMIZER_ROWS[self.optimizer].make(params, self)


def _as_float(value: Any) -> float | None:
    """An int or float as a float (None for bools, strings, and ints too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None
