"""Load torchvision's ImageNet weights into a preset built from a spec.

A preset that "mirrors" a torchvision model (explorer/core/presets/*.json) builds the same layers in
the same order, but under different module names: torchvision's `features.0.weight` is the
preset's `conv1.weight`, `layer1.0.bn1.running_mean` is `residual1.bn1.running_mean`. The
composite blocks (residual, bottleneck, inception, denseblock, transition, fire, invres)
register their sub-modules in torchvision's order, so both state dicts list the same tensors
in the same order. The mapping therefore walks the two state dicts side by side:

    tv:     features.0.weight (64, 3, 11, 11)  ->  preset: conv1.weight (64, 3, 11, 11)
    tv:     features.0.bias   (64,)            ->  preset: conv1.bias   (64,)
    ...

Why this is safe: the entry counts must be equal, and every pair must agree on the last name
component (weight, bias, running_mean, running_var, num_batches_tracked) and on the exact shape
and dtype; the first pair that does not is reported with both keys. A layer missing, added or
moved therefore fails loudly instead of loading weights into the wrong place. (Two layers of
identical shape swapped inside a block would not be caught by shapes alone; the tests compare
the logits of both models on a real image for that.)

Owns: the mapping, loading it, and fetching torchvision's published weights safely
(torchvision_state_dict: hash-checked download, torch.load with weights_only=True; torch.hub's
own default is weights_only=False). Mismatches raise WeightsMismatch, a RunError that is also
a ValueError.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from explorer.errors import RunError


class WeightsMismatch(RunError, ValueError):
    """A state dict that does not fit the model entry for entry (the message names the first pair)."""


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def map_torchvision_state_dict(model: nn.Module, tv_state_dict: dict) -> "OrderedDict[str, torch.Tensor]":
    """Rename a torchvision state dict to `model`'s keys, pairing entries in order.

    Entry i of `tv_state_dict` (parameters and buffers, in registration order) becomes entry i of
    `model.state_dict()`. Raises WeightsMismatch (a ValueError) when the counts differ, or naming
    the first pair whose kind (last key component), shape or dtype differ. The tensors are not copied.
    """
    ours = model.state_dict()
    if len(ours) != len(tv_state_dict):
        raise WeightsMismatch(f"the model has {len(ours)} state entries (parameters and buffers) but the "
                         f"torchvision state dict has {len(tv_state_dict)}; the preset does not mirror "
                         f"this torchvision model layer for layer")
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for i, ((key, mine), (tv_key, theirs)) in enumerate(zip(ours.items(), tv_state_dict.items())):
        if not isinstance(theirs, torch.Tensor):
            raise WeightsMismatch(f"entry {i} of the torchvision state dict ({tv_key!r}) is a "
                             f"{type(theirs).__name__}, not a tensor")
        problem = None
        if _leaf(key) != _leaf(tv_key):
            problem = f"it is a {_leaf(tv_key)!r} where the model has a {_leaf(key)!r}"
        elif mine.shape != theirs.shape:
            problem = f"shape {_shape(theirs)} where the model has {_shape(mine)}"
        elif mine.dtype != theirs.dtype:
            problem = f"dtype {theirs.dtype} where the model has {mine.dtype}"
        if problem:
            raise WeightsMismatch(f"entry {i}: torchvision's {tv_key!r} does not fit the model's {key!r}: "
                             f"{problem}; the preset does not mirror this torchvision model here")
        mapped[key] = theirs
    return mapped


def load_torchvision_weights(model: nn.Module, tv_state_dict: dict) -> nn.Module:
    """Load a torchvision state dict into `model` (strict=True) via map_torchvision_state_dict.

    A model built on the meta device (`with torch.device("meta"): build(spec)`) takes the given
    tensors as they are (load_state_dict(assign=True)), so nothing is allocated twice; a real
    model gets them copied in. Returns the model.
    """
    mapped = map_torchvision_state_dict(model, tv_state_dict)
    on_meta = any(t.is_meta for t in model.state_dict().values())
    model.load_state_dict(mapped, strict=True, assign=on_meta)
    return model


def torchvision_state_dict(weights) -> dict:
    """The state dict of a torchvision weights enum (e.g. ResNet18_Weights.IMAGENET1K_V1):
    downloaded once into torch.hub's cache with its published hash checked, and unpickled with
    weights_only=True (WeightsEnum.get_state_dict would use torch.hub's default, False).
    RunError when it cannot be fetched or read."""
    from torch.hub import load_state_dict_from_url

    try:
        return load_state_dict_from_url(weights.url, map_location="cpu", progress=False, check_hash=True,
                                        weights_only=True)
    except Exception as e:  # noqa: BLE001 - network, hash mismatch, a refused payload
        raise RunError(f"torchvision's weights {weights} could not be loaded ({type(e).__name__}: "
                       f"{' '.join(str(e).split())[:300]}). Check the network, or delete the file in "
                       f"torch.hub's cache (torch.hub.get_dir()) so that it is downloaded again.") from None


__all__ = ["WeightsMismatch", "map_torchvision_state_dict", "load_torchvision_weights", "torchvision_state_dict"]
