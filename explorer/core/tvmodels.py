"""torchvision classification models as analysis sources, built on the meta device (no weights).

Owns: building a torchvision model for analysis (`analysis_model`: on the meta device, for the
input size of its weights, on the CPU within the server's budget for real weights when its
constructor needs real tensors) and the published figures, from torchvision's own weight metadata
(offline): parameter count, `_ops` (GMACs at the weights' input size, though the key says GFLOPS)
and ImageNet top-1/top-5.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from explorer.core.budget import Budget, current
from explorer.errors import BudgetError, SpecError

# Built without auxiliary classifiers (training-only heads, which torchvision's builders also drop
# when they load the weights); init skipped since meta tensors hold no values. The published
# parameter count of inception_v3 includes its AuxLogits head (27,161,264 = 23,834,568 + 3,326,696),
# googlenet's leaves its aux1/aux2 heads out (6,624,904); the README and the zoo's notes say so.
_EXTRA_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False},
                 "inception_v3": {"aux_logits": False, "init_weights": False}}
# Constructor arguments that fix the input size, and their value for an S x S input: ViT's
# image_size (an int: its position embedding has (S / patch)^2 + 1 rows), MaxViT's input_size
# (an (H, W) pair: its partitions). torchvision's builders set them from weights.meta["min_size"].
_SIZE_ARGUMENTS: dict[str, Callable[[int], object]] = {"image_size": lambda s: s, "input_size": lambda s: (s, s)}


def classification_models() -> list[str]:
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def _check_name(name: str) -> None:
    known = classification_models()
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise SpecError(f"unknown torchvision model {name!r}.{hint} Known classification models: "
                        f"{', '.join(known)}")


def size_argument(name: str) -> str | None:
    """The constructor argument of `name` that fixes its input size (image_size for the ViTs,
    input_size for MaxViT), or None for models that take any size (read from the class that the
    builder's return annotation names)."""
    import torchvision.models as tvm

    try:
        cls = typing.get_type_hints(tvm.get_model_builder(name)).get("return")
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError, NameError, AttributeError):
        return None
    return next((a for a in _SIZE_ARGUMENTS if a in parameters), None)


def torchvision_model(name: str, num_classes: int = 1000, device: str | torch.device = "meta",
                      image_size: int | None = None) -> nn.Module:
    """torchvision.models.<name>(weights=None) built on `device` (meta by default); image_size
    builds a model whose constructor fixes the input size (ViT, MaxViT) for that size, and is
    ignored by the others. Raises what the constructor raises (the RegNets compute their widths
    with tensors and cannot run on meta: analysis_model handles that)."""
    import torchvision.models as tvm

    _check_name(name)
    kwargs = dict(_EXTRA_KWARGS.get(name, {}))
    argument = size_argument(name) if image_size is not None else None
    if argument:
        kwargs[argument] = _SIZE_ARGUMENTS[argument](image_size)
    with torch.device(device):
        return tvm.get_model(name, weights=None, num_classes=num_classes, **kwargs)


def _needs_real_tensors(error: Exception) -> bool:
    """A constructor that read values from a tensor it made (RegNet: .tolist() of its widths)."""
    return isinstance(error, (NotImplementedError, RuntimeError)) and "meta" in str(error)


def analysis_model(name: str, num_classes: int = 1000, image_size: int | None = None,
                   budget: Budget | None = None) -> nn.Module:
    """The model to analyse: built on the meta device (no weights); when its constructor needs real
    tensors (the 15 RegNets), built on the CPU instead, but only when its published parameter
    count (an upper bound for num_classes over 1,000) fits the server's budget for real weights
    (Budget.max_weight_params, max_weight_bytes at 4 bytes a float32 parameter), checked before
    anything is allocated. BudgetError (exit 2 on the CLI) when it does not; SpecError for an
    unknown name."""
    try:
        return torchvision_model(name, num_classes, "meta", image_size)
    except Exception as e:  # noqa: BLE001 - only a constructor that needs real tensors is retried
        if not _needs_real_tensors(e):
            raise
    _check_cpu_build(name, num_classes, budget or current())
    return torchvision_model(name, num_classes, "cpu", image_size)


def _check_cpu_build(name: str, num_classes: int, budget: Budget) -> None:
    figures = published_figures(name)
    why = f"{name}'s constructor computes with real tensors, so it cannot be built on the meta device"
    if figures is None:
        raise SpecError(f"{why}, and without published weights its size is unknown before building it; "
                        f"analyse a spec of it instead")
    # The head, (features + 1) x classes, is part of the published count at 1,000 classes, so the
    # published count x classes / 1000 bounds the model's count from above for more classes.
    params = -(-figures.params * num_classes // 1000) if num_classes > 1000 else figures.params
    scope = "the budget for networks with real weights"
    for limit, value, what in (("max_weight_params", params, "parameters"),
                               ("max_weight_bytes", 4 * params, "bytes of float32 weights")):
        maximum = getattr(budget, limit)
        if value > maximum:
            published = "" if value == figures.params else f" (torchvision publishes {figures.params:,} parameters)"
            raise BudgetError(f"{why}; building it on the CPU would allocate {value:,} {what}{published}, "
                              f"more than {scope} of {maximum:,} "
                              f"({Budget.env_name(limit)}); pick a smaller model or ask the server's owner to "
                              f"raise the limit", limit=limit, value=value, maximum=maximum)


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
