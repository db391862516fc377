"""Which layers of a network can be looked inside, and reaching them: the block-role lists (which
block types give feature maps, which are activations, which are no-ops at inference), the layer
choices and the default layer for Grad-CAM and feature maps, eval mode without in-place ops, and
capturing one layer's output with a forward hook. No streamlit here.

Which block types count as feature layers, activations or no-ops at inference is each block's
`role` in the registry (explorer.core.registry.ROLES); `role()` reads it for an expanded block.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from explorer.core.registry import get_block
from explorer.errors import ConfigError


def role(inst) -> str:
    """What an expanded block is for (explorer.core.registry.ROLES: feature, activation, norm,
    identity_in_eval, pool, adaptive_pool, classifier)."""
    return get_block(inst.type).role


def interpretable(model: nn.Module) -> nn.Module:
    """The model in eval mode with every in-place op switched off: a copy when some module had
    `inplace=True` (captum's layer hooks keep a layer's output, which a following in-place ReLU
    would overwrite), else the model itself in eval mode."""
    if any(getattr(m, "inplace", False) for m in model.modules()):
        model = copy.deepcopy(model)
        for m in model.modules():
            if getattr(m, "inplace", False):
                m.inplace = False
    return model.eval()


def instances(model: nn.Module):
    """The spec's expanded blocks (explorer.core.build's plan), or () for a plain module."""
    plan = getattr(model, "plan", None)
    return plan.instances if plan is not None else ()


@dataclass(frozen=True)
class LayerChoice:
    name: str       # module name for model.get_submodule: "conv4", "relu4", "residual2.conv1"
    label: str      # for people: "relu4 · conv4 → batchnorm → relu · 128×8×8"
    kind: str       # "block" (a top-level conv or composite block), "activation" (the rectified
                    # output of one), "inner" (an nn.Conv2d inside a composite block)
    shape: tuple[int, ...] | None = None   # (C, h, w) per image for top-level layers


def layer_choices(model: nn.Module) -> list[LayerChoice]:
    """Layers Grad-CAM and the feature-map view can look at, in forward order: conv and composite
    blocks whose output is a feature map, the activation that rectifies each (what Grad-CAM
    usually takes: the last conv layer's ReLU output), and the nn.Conv2d layers inside composites."""
    out: list[LayerChoice] = []
    found = instances(model)
    if not found:  # a plain module: every Conv2d
        return [LayerChoice(n, n, "inner") for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    chain: list[str] = []   # the conv block and the element-wise blocks after it
    for inst in found:
        shape = "×".join(map(str, inst.out_shape))
        kind = role(inst)
        if kind == "feature" and len(inst.out_shape) == 3:
            out.append(LayerChoice(inst.name, f"{inst.name} · {shape}", "block", inst.out_shape))
            module = model.get_submodule(inst.name)
            if not isinstance(module, nn.Conv2d):
                out += [LayerChoice(f"{inst.name}.{n}", f"{inst.name}.{n} · inside {inst.name}", "inner")
                        for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
            chain = [inst.name]
        elif chain and kind in ("norm", "identity_in_eval") and len(inst.out_shape) == 3:
            chain.append(inst.type)
        elif chain and kind == "activation" and len(inst.out_shape) == 3:
            chain.append(inst.type)
            out.append(LayerChoice(inst.name, f"{inst.name} · {' → '.join(chain)} · {shape}", "activation",
                                   inst.out_shape))
        else:
            chain = []
    return out


def default_layer(model: nn.Module) -> str | None:
    """The last top-level feature-map layer larger than 1x1 (its rectified output when there is
    one): the Grad-CAM paper's choice, and where Grad-CAM equals CAM on a GAP network. (A 1x1 map,
    such as LeNet-5's conv3, can only give a constant heat map.)"""
    choices = layer_choices(model)
    top = [c for c in choices if c.shape is not None] or choices
    spatial = [c for c in top if c.shape is None or math.prod(c.shape[1:]) > 1] or top
    return spatial[-1].name if spatial else None


def first_feature_layer(choices: list[LayerChoice]) -> str | None:
    """Where the feature-map view starts: the first rectified output, else the first layer."""
    return next((c.name for c in choices if c.kind == "activation"), choices[0].name if choices else None)


def module(model: nn.Module, name: str) -> nn.Module:
    """model.get_submodule(name); ConfigError naming the choices when there is no such layer."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        known = ", ".join(c.name for c in layer_choices(model))
        raise ConfigError(f"the network has no layer named {name!r}; choose one of: {known}", field="layer") from None


def capture(model: nn.Module, layer: str, x: torch.Tensor, *,
            inputs: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(the layer's output (or input), the logits) for a batch x, without gradients."""
    seen: list[torch.Tensor] = []
    hook = module(model, layer).register_forward_hook(
        lambda m, i, o: seen.append((i[0] if inputs else o).detach()))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        hook.remove()
    return seen[-1], logits.detach()


__all__ = ["role", "LayerChoice", "interpretable", "instances",
           "layer_choices", "default_layer", "first_feature_layer", "module", "capture"]
