"""Run preparation, written once: a run's dataset loaded with its settings, and its images fitted
to the network's input (zero padding or resizing, explorer.training.adapt decides which).

Owns: which images a run trains and validates on (overfit mode validates on its handful of
training images), and how uint8 images and masks are brought to the network's input size. The
loop (on the device), checkpoint.load_run_data and interpret.explain.load_untrained (on the CPU)
all prepare data here, so Inspect sees the validation images exactly as training saw them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

import torch
import torch.nn.functional as F

from explorer.training.adapt import Adapted
from explorer.training.config import TrainConfig


@dataclass
class PreparedData:
    """A run's images on its device, fitted to the network's input size."""

    x_train: torch.Tensor   # uint8 (N, C, H, W) on the device
    y_train: torch.Tensor   # int64 (N,)
    x_val: torch.Tensor     # uint8 (M, C, H, W); the training images themselves in overfit mode
    y_val: torch.Tensor     # int64 (M,)
    mean: torch.Tensor      # (1, C, 1, 1) float32: per-channel mean of x_train / 255
    std: torch.Tensor       # (1, C, 1, 1) float32: per-channel std of x_train / 255


def load_run_dataset(cfg: TrainConfig, download: bool = True):
    """The dataset a run with `cfg` trains on (explorer.data.TensorDataset): same split (seed,
    validation share), in overfit mode the same stratified handful of training images, and with
    train_per_class the same N training images per class (transfer learning's small-data regime)."""
    from explorer.data import load_dataset

    dataset = load_dataset(cfg.dataset, data_root=cfg.data_root, val_fraction=cfg.val_fraction, seed=cfg.seed,
                           max_train=cfg.overfit or None, download=download)
    return limit_per_class(dataset, cfg.train_per_class, cfg.seed)


def fit_images(x: torch.Tensor, size: tuple[int, int], how: str) -> torch.Tensor:
    """uint8 (N, C, h, w) -> uint8 (N, C, H, W): zero padding around ("pad"), bilinear resizing
    ("resize") or unchanged ("none")."""
    if how == "pad":
        dh, dw = size[0] - x.shape[2], size[1] - x.shape[3]
        return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
    if how == "resize":
        out = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
        return out.round().clamp(0, 255).to(torch.uint8)
    return x


def fit_masks(masks: torch.Tensor, size: tuple[int, int], how: str) -> torch.Tensor:
    """bool (N, h, w) -> bool (N, H, W), fitted like the images (a pixel stays in when over half in)."""
    return fit_images(masks[:, None].to(torch.uint8) * 255, size, how)[:, 0] > 127


def validation_images(dataset, adapted: Adapted, overfit: int = 0, with_masks: bool = True
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(x_val uint8 at the network's size, y_val, masks or None) on the CPU; in overfit mode the
    training images (which have no masks). with_masks False: skip fitting the masks (None)."""
    x, y, masks = dataset.x_val, dataset.y_val, dataset.masks_val if with_masks else None
    if overfit:
        x, y, masks = dataset.x_train, dataset.y_train, None
    x = fit_images(x, adapted.image_size, adapted.resize)
    if masks is not None:
        masks = fit_masks(masks, adapted.image_size, adapted.resize)
    return x, y, masks


def channel_tensors(dataset, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of the dataset as (1, C, 1, 1) float32 tensors for normalising x / 255."""
    mean = torch.tensor(dataset.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(dataset.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return mean, std


def prepare_data(dataset, adapted: Adapted, cfg: TrainConfig, device: torch.device) -> PreparedData:
    """The training and validation images of a run on `device`, at the network's input size."""
    x_val, y_val, _ = validation_images(dataset, adapted, cfg.overfit, with_masks=False)
    mean, std = channel_tensors(dataset, device)
    return PreparedData(x_train=fit_images(dataset.x_train, adapted.image_size, adapted.resize).to(device),
                        y_train=dataset.y_train.to(device), x_val=x_val.to(device), y_val=y_val.to(device),
                        mean=mean, std=std)


# --- fewer training images (transfer learning's small-data regime) -----------------------------
def per_class_indices(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of at most n images of each class of labels y (all of a smaller class), chosen
    at random by seed, shuffled."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[:n] for c in np.unique(y)]
    return rng.permutation(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def limit_per_class(dataset, n: int, seed: int):
    """The dataset with at most n training images per class (n = 0: unchanged). The validation
    split and the normalisation (mean, std of the whole training split) stay as they are, so a
    reloaded run (Inspect) sees its images exactly as training did."""
    if not n:
        return dataset
    idx = torch.from_numpy(per_class_indices(dataset.y_train.numpy(), n, seed))
    return replace(dataset, x_train=dataset.x_train[idx], y_train=dataset.y_train[idx])


__all__ = ["PreparedData", "load_run_dataset", "fit_images", "fit_masks", "validation_images", "channel_tensors",
           "prepare_data", "per_class_indices", "limit_per_class"]
