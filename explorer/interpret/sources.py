"""What the Inspect page and the CLI look at: a run's best checkpoint with its validation split,
or a network with PyTorch's default initialisation and an offline dataset's validation images;
which runs can be inspected and how they are named. No streamlit here (the page caches these).

Images are uint8 (C, H, W); RunData.normalize turns them into what the network sees.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from explorer.core.spec import NetworkSpec
from explorer.errors import UserError
from explorer.interpret.layers import interpretable
from explorer.training.checkpoint import RunData
from explorer.training.runs import RunRecord
from explorer.training.status import parse_run_name
from explorer.units import format_percent

OFFLINE_SETS = ("shapes", "mnist5k", "digits")   # datasets an untrained network can be shown, offline
CHECKPOINT = "checkpoint.safetensors"


@dataclass(frozen=True)
class Subject:
    """What the page looks at: a network in eval mode (in-place ops off) and where images come from."""

    key: str                      # cache key (run path + checkpoint time, or spec + dataset)
    title: str
    caption: str
    spec: NetworkSpec             # as the network was built (adapted to its dataset)
    model: nn.Module
    data: RunData | None          # validation images, None when they cannot be loaded
    data_error: str | None
    notices: tuple[str, ...]
    macs: int                     # multiply-accumulates per image (0 when unknown)
    lock: threading.Lock          # captum hooks the shared model while it works

    @property
    def untrained(self) -> bool:
        return self.key.startswith("untrained:")

    def class_names(self) -> tuple[str, ...]:
        if self.data is not None:
            return self.data.class_names
        return tuple(str(i) for i in range(self.spec.num_classes))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> what the network sees; without dataset statistics a neutral guess."""
        if self.data is not None:
            return self.data.normalize(images)
        return (images.float() / 255 - 0.5) / 0.25


@dataclass(frozen=True)
class Picture:
    """The image being explained: uint8 (C, H, W), and what is known about it."""

    image: torch.Tensor
    label: int | None             # true class (validation images)
    mask: np.ndarray | None       # bool (H, W): the shape's pixels (shapes dataset)
    title: str


def inspectable_runs(records: list[RunRecord]) -> list[RunRecord]:
    """Readable runs with a checkpoint, newest first."""
    runs = [r for r in records if r.readable and (r.path / CHECKPOINT).exists()]
    return sorted(runs, key=lambda r: r.path.name, reverse=True)


def unreadable_text(records: list[RunRecord], shown: int = 5) -> str | None:
    """One sentence naming the run folders that cannot be read, or None when all can."""
    bad = [r for r in records if not r.readable]
    if not bad:
        return None
    return (f"{len(bad)} run folder{'s' * (len(bad) != 1)} cannot be read and {'are' if len(bad) != 1 else 'is'} "
            f"left out: " + "; ".join(f"{r.path.name}: unreadable: {r.message}" for r in bad[:shown]))


def run_label(r: RunRecord) -> str:
    acc = "" if r.best_val_acc is None else f" · {format_percent(r.best_val_acc)} val"
    status = "" if r.status == "completed" else f" · {r.status}"
    return f"{r.name} on {r.dataset}{acc}{status} ({parse_run_name(r.path.name).started or r.path.name})"


def default_dataset(spec: NetworkSpec) -> str:
    """Colour networks look at coloured shapes; everything else at MNIST digits."""
    return "shapes" if len(spec.input) == 3 and spec.input[0] == 3 else "mnist5k"


def macs(spec: NetworkSpec) -> int:
    """MACs per image, only to size the validation pass (0 when the analysis fails)."""
    from explorer.core.analysis import analyze

    try:
        return int(analyze(spec).totals.macs)
    except Exception:  # noqa: BLE001 - only used to size the validation pass
        return 0


def run_subject(path: str | Path, mtime: float) -> Subject:
    """A run's best checkpoint; its validation images when they can be loaded (else why not)."""
    from explorer.training.checkpoint import load_run_data, load_run_model
    from explorer.training.runs import load_run

    path = Path(path)
    spec, model = load_run_model(path)
    data, error = None, None
    try:
        data = load_run_data(path)
    except UserError as e:
        error = str(e)
    record = load_run(path)
    acc = "" if record is None or record.best_val_acc is None else \
        f" · best validation accuracy {format_percent(record.best_val_acc)}"
    dataset = record.dataset if record else "?"
    return Subject(key=f"{path}@{mtime}", title=spec.name, notices=(),
                   caption=f"Run {path.name} · trained on {dataset}{acc} · best checkpoint",
                   spec=spec, model=interpretable(model), data=data, data_error=error, macs=macs(spec),
                   lock=threading.Lock())


def untrained_subject(spec: NetworkSpec, dataset: str, init: str = "default") -> Subject:
    """`spec` fitted to `dataset`, its weights drawn by scheme `init` (explorer.training.initialise;
    seed 0)."""
    from explorer.training.initialise import INIT_LABELS

    adapted, model, data, notices = load_untrained(spec, dataset, init=init)
    digest = hashlib.sha1(spec.to_json(indent=None).encode()).hexdigest()[:10]
    how = "PyTorch's default random initialisation" if init == "default" else f"{INIT_LABELS[init]} initialisation"
    return Subject(key=f"untrained:{digest}:{dataset}:{init}", title=adapted.name, notices=notices,
                   caption=f"Current network, untrained · {how}, seed 0 · images from {dataset}", spec=adapted,
                   model=interpretable(model), data=data, data_error=None, macs=macs(adapted), lock=threading.Lock())


def load_untrained(spec: NetworkSpec, dataset: str, seed: int = 0, init: str = "default"):
    """(adapted spec, freshly initialised model in eval mode, RunData, notices) for looking at a
    network before training: the spec is fitted to the dataset as training would fit it, the
    weights drawn by scheme `init` under `seed`, as a run with that seed and init starts."""
    from explorer.core.budget import check_weights
    from explorer.core.build import build
    from explorer.data import load_dataset
    from explorer.training.adapt import adapt_spec
    from explorer.training.initialise import apply_init
    from explorer.training.prepare import channel_tensors, validation_images

    ds = load_dataset(dataset, download=False, seed=seed)
    info = ds.info
    adapted = adapt_spec(spec, info.channels, info.height, info.width, info.num_classes)
    check_weights(adapted.spec)  # real weights in this process: the smaller budget (BudgetError)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = apply_init(build(adapted.spec), init).eval()
    x_val, y_val, masks = validation_images(ds, adapted)
    mean, std = channel_tensors(ds)
    data = RunData(x_val=x_val, y_val=y_val, masks_val=masks, mean=mean, std=std,
                   class_names=tuple(info.class_names))
    return adapted.spec, model, data, adapted.notices


__all__ = ["OFFLINE_SETS", "Subject", "Picture", "inspectable_runs", "unreadable_text", "run_label",
           "default_dataset", "macs", "run_subject", "untrained_subject", "load_untrained"]
