"""Scores over many images: the confusion matrix, per-class accuracy, the most confident
mistakes, the pointing game for heat maps, and how many validation images a CPU can afford.
No streamlit here; numpy arrays in and out.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[t, p]: images of true class t predicted as p."""
    idx = np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(cm: np.ndarray) -> float:
    """Top-1 accuracy in [0, 1] from a confusion matrix (0 when it is empty)."""
    return float(np.trace(cm) / max(1, cm.sum()))


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall per true class (NaN for a class with no images)."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


def misclassified(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Indices of wrong predictions, the most confident mistakes first."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != np.asarray(y_true))
    return wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")]


def pointing_hits(maps: np.ndarray, masks: np.ndarray, dilate: int = 0) -> np.ndarray:
    """The pointing game (Zhang et al. 2016): does each map's peak fall on the object's mask?
    maps (N, H, W) at the mask size; masks bool (N, H, W); dilate: grow masks by this many pixels
    (a square neighbourhood) first. Returns bool (N,)."""
    masks = torch.as_tensor(np.asarray(masks, dtype=bool))
    if dilate > 0:
        masks = F.max_pool2d(masks[:, None].float(), 2 * dilate + 1, stride=1, padding=dilate)[:, 0] > 0
    masks = masks.numpy()
    flat = np.asarray(maps).reshape(len(maps), -1).argmax(axis=1)
    return masks.reshape(len(masks), -1)[np.arange(len(masks)), flat]


def eval_count(n: int, macs_per_image: int, budget_macs: float = 3e10) -> int:
    """How many images to push through the network for dataset-wide views on a CPU: all of them
    when cheap, fewer for a big network (about budget_macs multiply-accumulates in all)."""
    if macs_per_image <= 0:
        return n
    return int(min(n, max(16, budget_macs // macs_per_image)))


__all__ = ["confusion_matrix", "accuracy", "per_class_accuracy", "misclassified", "pointing_hits", "eval_count"]
