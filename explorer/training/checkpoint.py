"""Reload what a run produced: its network with the best weights, and its validation images
prepared exactly as the loop saw them (same split, same padding/resizing, same normalisation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from explorer.build import build
from explorer.spec import NetworkSpec, SpecError
from explorer.training.config import TrainConfig
from explorer.training.runs import read_json


@dataclass(frozen=True)
class RunData:
    """Validation split of a run. Images uint8 (N, C, H, W) at the network's input size."""

    x_val: torch.Tensor
    y_val: torch.Tensor
    masks_val: torch.Tensor | None    # bool (N, H, W) at the network's input size (shapes only)
    mean: torch.Tensor                # (1, C, 1, 1)
    std: torch.Tensor
    class_names: tuple[str, ...]

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return (x_uint8.float() / 255 - self.mean.to(x_uint8.device)) / self.std.to(x_uint8.device)


def load_run_spec_config(run_dir: Path) -> tuple[NetworkSpec, TrainConfig]:
    run_dir = Path(run_dir)
    spec_data, config_data = read_json(run_dir / "spec.json"), read_json(run_dir / "config.json")
    if spec_data is None or config_data is None:
        raise SpecError(f"{run_dir} is not a run directory (spec.json and config.json are missing)")
    return NetworkSpec.from_dict(spec_data), TrainConfig.from_dict(config_data)


def load_run_model(run_dir: Path, device: str | torch.device = "cpu") -> tuple[NetworkSpec, nn.Module]:
    """The trained network (best validation epoch) in eval mode."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    spec, _ = load_run_spec_config(run_dir)
    path = run_dir / "checkpoint.safetensors"
    if not path.exists():
        raise SpecError(f"{run_dir.name} has no checkpoint yet (it saves one after its first epoch)")
    model = build(spec)
    model.load_state_dict(load_file(str(path), device="cpu"))
    return spec, model.to(device).eval()


def load_run_data(run_dir: Path) -> RunData:
    """The run's validation images, fitted to its network input as during training."""
    from explorer.data import load_dataset
    from explorer.training.adapt import adapt_spec
    from explorer.training.loop import _fit_images

    spec, cfg = load_run_spec_config(run_dir)
    dataset = load_dataset(cfg.dataset, data_root=cfg.data_root, val_fraction=cfg.val_fraction, seed=cfg.seed,
                           max_train=cfg.overfit or None, download=False)
    info = dataset.info
    adapted = adapt_spec(spec, info.channels, info.height, info.width, info.num_classes)
    x_val, y_val, masks = dataset.x_val, dataset.y_val, dataset.masks_val
    if cfg.overfit:
        x_val, y_val, masks = dataset.x_train, dataset.y_train, None
    x_val = _fit_images(x_val, adapted.image_size, adapted.resize)
    if masks is not None:
        masks = _fit_images(masks[:, None].to(torch.uint8) * 255, adapted.image_size, adapted.resize)[:, 0] > 127
    return RunData(x_val=x_val, y_val=y_val, masks_val=masks,
                   mean=torch.tensor(dataset.mean).view(1, -1, 1, 1),
                   std=torch.tensor(dataset.std).view(1, -1, 1, 1), class_names=tuple(info.class_names))
