"""torchvision classification models as analysis sources, built on the meta device (no weights).

The published figures come from torchvision's own weight metadata (offline): parameter count,
`_ops` (GMACs at the weights' input size, though the key says GFLOPS) and ImageNet top-1/top-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from explorer.core.spec import SpecError

# Built without auxiliary classifiers, as the published parameter counts are (the aux heads are
# dropped after training); init skipped since meta tensors hold no values.
# (torchvision's published count for inception_v3 includes its 3.3M-parameter aux head.)
_EXTRA_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False},
                 "inception_v3": {"aux_logits": False, "init_weights": False}}


def classification_models() -> list[str]:
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def torchvision_model(name: str, num_classes: int = 1000, device: str | torch.device = "meta") -> nn.Module:
    """torchvision.models.<name>(weights=None) built on `device` (meta by default)."""
    import torchvision.models as tvm

    known = classification_models()
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise SpecError(f"unknown torchvision model {name!r}.{hint} Known classification models: "
                        f"{', '.join(known)}")
    with torch.device(device):
        return tvm.get_model(name, weights=None, num_classes=num_classes, **_EXTRA_KWARGS.get(name, {}))


@dataclass(frozen=True)
class PublishedFigures:
    """What torchvision's default ImageNet weights publish for one architecture."""

    name: str
    params: int
    gmacs: float          # torchvision's `_ops` (GMACs per image at `input_size`)
    acc1: float
    acc5: float
    input_size: int       # crop size used for the figures
    weights: str


def published_figures(name: str) -> PublishedFigures | None:
    import torchvision.models as tvm

    try:
        weights = tvm.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):
        return None
    meta = weights.meta
    metrics = next(iter(meta["_metrics"].values()))
    crop = getattr(weights.transforms, "keywords", {}).get("crop_size", 224)
    return PublishedFigures(name=name, params=meta["num_params"], gmacs=meta["_ops"], acc1=metrics["acc@1"],
                            acc5=metrics["acc@5"], input_size=int(crop), weights=str(weights))


def default_input_size(name: str) -> int:
    figures = published_figures(name)
    return figures.input_size if figures else 224
