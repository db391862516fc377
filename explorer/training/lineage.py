"""What a run started from, in words: its lineage for the runs list, `runs` and the Compare page.

Owns: turning a run's transfer settings (TrainConfig.init_from, freeze, pretrained_lr_scale) into one
short label. Imports nothing heavy, so explorer.training.runs can use it without a cycle.

    scratch                                random initial weights
    linear probe <- RUN                    weights from RUN (a run folder or a weights file), only
                                           the classifier head trains
    frozen 1-4 <- RUN                      blocks 1..4 keep their weights, the rest trains
    fine-tuned (lr x0.1) <- RUN            everything trains, loaded layers at lr x 0.1
"""

from __future__ import annotations

from pathlib import PurePath

SCRATCH = "scratch"


def start_mode(freeze: str, init_from: str | None, pretrained_lr_scale: float = 1.0) -> str:
    """'scratch', 'linear probe', 'frozen 1-N' or 'fine-tuned' (with its learning-rate scale)."""
    if freeze == "features":
        mode = "linear probe"
    elif freeze not in ("none", "", None):
        mode = f"frozen 1-{freeze}"
    elif init_from:
        mode = "fine-tuned" + (f" (lr x{pretrained_lr_scale:g})" if pretrained_lr_scale != 1 else "")
    else:
        return SCRATCH
    return mode if init_from else f"{mode} (random weights)"


def start_label(freeze: str, init_from: str | None, pretrained_lr_scale: float = 1.0) -> str:
    """start_mode plus where the weights came from (the run folder's or the file's name)."""
    mode = start_mode(freeze, init_from, pretrained_lr_scale)
    if not init_from:
        return mode
    return f"{mode} <- {PurePath(init_from).name or init_from}"


def lineage(cfg) -> dict:
    """The record a run keeps in summary.json: {"start": label, "init_from", "freeze", ...}."""
    return {"start": start_label(cfg.freeze, cfg.init_from, cfg.pretrained_lr_scale), "init_from": cfg.init_from,
            "freeze": cfg.freeze, "pretrained_lr_scale": cfg.pretrained_lr_scale, "freeze_bn": cfg.freeze_bn,
            "train_per_class": cfg.train_per_class}
