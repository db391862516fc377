"""Pretrained models in the zoo: torchvision's ImageNet weights, when they are already on disk,
opened on an uploaded image with their class names, top-5 and Grad-CAM. No streamlit here.

Owns: where weights files are looked for and the classification of one image by a pretrained
preset. Nothing is downloaded: a file counts when it lies, under the name torchvision's URL gives
it (e.g. resnet18-f37072fd.pth), in $CNN_EXPLORER_WEIGHTS_DIR (folders separated by os.pathsep) or
in torch's own cache, torch.hub.get_dir()/checkpoints (where torchvision saves what it downloads).
Only presets that mirror a torchvision model layer for layer are offered, so Grad-CAM and the
layer names are the explorer's own; the weights go through explorer.core.weights' checked mapping
and load with torch.load(weights_only=True) (explorer.training.checkpoint). The model must fit the
server's budget for real weights (explorer.core.budget.check_weights) before it is built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from explorer.core.budget import check_weights
from explorer.core.build import build
from explorer.core.presets import load_preset
from explorer.core.spec import NetworkSpec
from explorer.core.weights import load_torchvision_weights
from explorer.errors import RunError

WEIGHTS_DIR_ENV = "CNN_EXPLORER_WEIGHTS_DIR"


def weights_dirs() -> list[Path]:
    """Folders searched for weights files, in order: $CNN_EXPLORER_WEIGHTS_DIR, then torch's cache."""
    folders = [Path(p).expanduser() for p in os.environ.get(WEIGHTS_DIR_ENV, "").split(os.pathsep) if p]
    return folders + [Path(torch.hub.get_dir()) / "checkpoints"]


def _weights(name: str):
    import torchvision.models as tvm

    return tvm.get_model_weights(name).DEFAULT


def weights_file_name(name: str) -> str:
    """The file name torchvision saves `name`'s default weights under (the last part of the URL)."""
    return _weights(name).url.rsplit("/", 1)[-1]


def find_weights(name: str) -> Path | None:
    """The weights file of torchvision model `name` on disk, or None."""
    file_name = weights_file_name(name)
    for folder in weights_dirs():
        path = folder / file_name
        if path.is_file():
            return path
    return None


def available() -> dict[str, Path]:
    """torchvision name -> weights file, for the mirrored presets whose weights are on disk."""
    from explorer.compare.zoo import preset_mirrors

    found = {}
    for name in sorted(preset_mirrors()):
        path = find_weights(name)
        if path is not None:
            found[name] = path
    return found


def start_sources(runs_dir: Path, preset: str) -> dict[str, str]:
    """What a run of the network `preset` can start from (transfer learning), label -> init_from:
    finished runs with a checkpoint in runs_dir (newest first), then torchvision's ImageNet
    weights on disk when a torchvision model mirrors the preset."""
    from explorer.compare.zoo import preset_mirrors
    from explorer.training.runs import list_runs
    from explorer.units import format_percent

    found = {}
    for r in reversed(list_runs(Path(runs_dir))):
        if r.status == "completed" and (r.path / "checkpoint.safetensors").is_file():
            acc = "" if r.best_val_acc is None else f", {format_percent(r.best_val_acc)}"
            found[f"{r.path.name} ({r.name} on {r.dataset}{acc})"] = str(r.path)
    try:
        mirrors = preset_mirrors()
    except Exception:  # noqa: BLE001 - no torchvision metadata: runs only
        mirrors = {}
    for tv_name, mirrored in mirrors.items():
        path = find_weights(tv_name) if mirrored == preset else None
        if path is not None:
            found[f"torchvision ImageNet weights ({path.name})"] = str(path)
    return found


@dataclass(frozen=True)
class Pretrained:
    """A preset with torchvision's ImageNet weights loaded, ready to classify images."""

    name: str                       # torchvision model name, e.g. resnet18
    preset: str                     # the preset that mirrors it
    spec: NetworkSpec
    model: nn.Module                # eval mode, CPU, float32
    path: Path                      # the weights file it was loaded from
    categories: tuple[str, ...]     # class index -> name (the weights' metadata, 1,000 for ImageNet)
    mean: tuple[float, ...]         # per-channel normalisation on 0..1 pixels (ImageNet's)
    std: tuple[float, ...]
    resize: int                     # the image is scaled to cover resize x resize ...
    crop: int                       # ... and the centre crop x crop is classified (torchvision's eval transform)


def load_pretrained(name: str) -> Pretrained:
    """Build the preset that mirrors `name` and load its weights file from disk (RunError when the
    file is missing, damaged or does not fit; BudgetError when the model is over the budget)."""
    from explorer.compare.zoo import preset_mirrors
    from explorer.training.checkpoint import load_state_dict_file

    preset = preset_mirrors().get(name)
    if preset is None:
        raise RunError(f"{name} has no preset that mirrors it, so its weights cannot be opened here")
    path = find_weights(name)
    if path is None:
        raise RunError(f"the weights file {weights_file_name(name)} is not in {', '.join(map(str, weights_dirs()))}; "
                       f"copy it there (or set {WEIGHTS_DIR_ENV})")
    spec = load_preset(preset)
    check_weights(spec)                              # before anything is built or read
    model = build(spec)
    load_torchvision_weights(model, load_state_dict_file(path))
    weights = _weights(name)
    transform = weights.transforms()
    return Pretrained(name=name, preset=preset, spec=spec, model=model.eval(), path=path,
                      categories=tuple(weights.meta["categories"]), mean=tuple(transform.mean),
                      std=tuple(transform.std), resize=int(transform.resize_size[0]), crop=int(transform.crop_size[0]))


@dataclass(frozen=True)
class Classified:
    """One uploaded image through a pretrained model."""

    image: torch.Tensor                       # uint8 (3, crop, crop): what the network saw
    top5: list[tuple[int, str, float]]        # (class index, name, probability), most likely first
    layer: str                                # the Grad-CAM layer
    heat: np.ndarray                          # float (crop, crop) Grad-CAM of the top class, max 1 (0 if none)


def classify(pretrained: Pretrained, data: bytes, k: int = 5) -> Classified:
    """Top-k classes and the Grad-CAM map of the most likely one for an uploaded image (bytes;
    ImageError from explorer.interpret.images when it is not an image)."""
    from explorer.interpret.explain import explain, top_k
    from explorer.interpret.images import decode_image
    from explorer.interpret.pictures import normalize_map

    p = pretrained
    image = decode_image(data, 3, (p.resize, p.resize))                  # uint8 (3, resize, resize)
    top = (p.resize - p.crop) // 2
    image = image[:, top:top + p.crop, top:top + p.crop].contiguous()   # uint8 (3, crop, crop)
    mean = torch.tensor(p.mean).view(1, 3, 1, 1)
    std = torch.tensor(p.std).view(1, 3, 1, 1)
    x = (image[None].float() / 255 - mean) / std                         # (1, 3, crop, crop)
    seen = explain(p.model, x)                                           # Grad-CAM of the top class
    top5 = top_k(seen.probs, p.categories, k)
    return Classified(image=image, top5=top5, layer=seen.layer, heat=normalize_map(seen.on_image()))
