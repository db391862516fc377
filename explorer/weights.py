"""Load torchvision's ImageNet weights into a preset built from a spec.

A preset that "mirrors" a torchvision model (explorer/presets/*.json) builds the same layers in
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
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def map_torchvision_state_dict(model: nn.Module, tv_state_dict: dict) -> "OrderedDict[str, torch.Tensor]":
    """Rename a torchvision state dict to `model`'s keys, pairing entries in order.

    Entry i of `tv_state_dict` (parameters and buffers, in registration order) becomes entry i of
    `model.state_dict()`. Raises ValueError when the counts differ, or naming the first pair whose
    kind (last key component), shape or dtype differ. The tensors are not copied.
    """
    ours = model.state_dict()
    if len(ours) != len(tv_state_dict):
        raise ValueError(f"the model has {len(ours)} state entries (parameters and buffers) but the "
                         f"torchvision state dict has {len(tv_state_dict)}; the preset does not mirror "
                         f"this torchvision model layer for layer")
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for i, ((key, mine), (tv_key, theirs)) in enumerate(zip(ours.items(), tv_state_dict.items())):
        if not isinstance(theirs, torch.Tensor):
            raise ValueError(f"entry {i} of the torchvision state dict ({tv_key!r}) is a "
                             f"{type(theirs).__name__}, not a tensor")
        problem = None
        if _leaf(key) != _leaf(tv_key):
            problem = f"it is a {_leaf(tv_key)!r} where the model has a {_leaf(key)!r}"
        elif mine.shape != theirs.shape:
            problem = f"shape {_shape(theirs)} where the model has {_shape(mine)}"
        elif mine.dtype != theirs.dtype:
            problem = f"dtype {theirs.dtype} where the model has {mine.dtype}"
        if problem:
            raise ValueError(f"entry {i}: torchvision's {tv_key!r} does not fit the model's {key!r}: "
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


__all__ = ["map_torchvision_state_dict", "load_torchvision_weights"]
