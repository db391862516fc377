"""Why the network chose a class: Grad-CAM (captum) and CAM heat maps and the top-k predictions,
behind one function, `explain`, that the Inspect page and the CLI's `gradcam` both call. No
streamlit here.

explain(model, x, method, target, layer) picks the layer (the default: the last conv layer's
rectified output), runs captum's LayerGradCam or CAM, keeps the map at the layer's resolution,
normalises it to [0, 1] by its maximum, and finds its peak on the image; the Explanation it
returns blends itself over the image (`overlay`) and names its class (`title`).
The model passed in is never modified (explorer.interpret.layers.interpretable).

- Grad-CAM (Selvaraju et al. 2017): alpha_k^c = mean_xy d y_c / d A_k(x, y) and
  L^c = ReLU(sum_k alpha_k^c A_k), for any layer A whose output is a feature map.
- CAM (Zhou et al. 2016): for a network ending  features f -> global average pooling -> one
  linear layer,  M_c(x, y) = sum_k w_k^c f_k(x, y). There y_c = mean_xy M_c + b_c, so
  d y_c / d f_k(x, y) = w_k^c / (h w) and Grad-CAM at f is exactly ReLU(M_c) / (h w).
Maps are computed at the layer's resolution and upsampled bilinearly to the image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.errors import ConfigError, SpecError
from explorer.interpret.layers import (capture, default_layer, instances, interpretable, role,
                                       layer_choices, module)
from explorer.interpret.pictures import normalize_map, overlay, upsample

METHODS = ("gradcam", "cam")


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (N, classes) for normalised images x (N, C, H, W)."""
    model = model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(torch.softmax(model(x[i:i + batch_size]).float(), dim=1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def class_name(class_names: Sequence[str], i: int) -> str:
    return class_names[i] if 0 <= i < len(class_names) else str(i)


def top_k(probs: np.ndarray, class_names: Sequence[str], k: int = 5) -> list[tuple[int, str, float]]:
    """[(class index, name, probability)] for one image's probabilities, most likely first."""
    order = np.argsort(-probs, kind="stable")[:min(k, len(probs))]
    return [(int(i), class_name(class_names, int(i)), float(probs[i])) for i in order]


def resolve_target(text: str | None, class_names: Sequence[str], predicted: int) -> int:
    """The class to explain from what a person typed: None -> the predicted class; an index or a
    class name otherwise (ConfigError naming both forms when it is neither)."""
    if text is None:
        return predicted
    if text.isdigit() and int(text) < len(class_names):
        return int(text)
    if text in class_names:
        return list(class_names).index(text)
    raise ConfigError(f"--class {text!r} is neither a class index (0 to {len(class_names) - 1}) nor a class "
                      f"name ({', '.join(class_names)})", field="class")


def _targets(target: int | Sequence[int] | torch.Tensor, n: int) -> torch.Tensor:
    """One class index per image (a single index is repeated)."""
    t = torch.as_tensor(target, dtype=torch.long).reshape(-1).cpu()
    if t.numel() == 1:
        return t.expand(n)
    if t.numel() != n:
        raise ValueError(f"{t.numel()} targets for {n} images")
    return t


def gradcam(model: nn.Module, x: torch.Tensor, layer: str, target: int | Sequence[int] | torch.Tensor,
            *, relu: bool = True, size: tuple[int, int] | None = None) -> np.ndarray:
    """Grad-CAM of `layer` for class `target` (one per image) with captum's LayerGradCam.

    x: normalised images (N, C, H, W) (or one (C, H, W)). Returns float (N, h, w) at the layer's
    resolution, or (N, *size) upsampled bilinearly when size is given. relu=False keeps the
    negative evidence (the raw weighted sum)."""
    from captum.attr import LayerGradCam

    x = x if x.dim() == 4 else x[None]
    model = interpretable(model)
    attr = LayerGradCam(model, module(model, layer)).attribute(x, target=_targets(target, len(x)),
                                                               relu_attributions=relu)
    if attr.dim() != 4:
        raise ConfigError(f"{layer} gives a flat vector, not feature maps; Grad-CAM needs a convolutional layer",
                          field="layer")
    attr = attr.detach().float()
    if size is not None:
        attr = F.interpolate(attr, size=tuple(size), mode="bilinear", align_corners=False)
    return attr[:, 0].cpu().numpy()


@dataclass(frozen=True)
class CamInfo:
    applies: bool
    reason: str                 # why not, or what CAM weighs (a sentence for people)
    features: str | None = None  # the module whose output is f_k (the input of the pooling)
    pool: str | None = None      # the global average pooling module
    linear: str | None = None    # the classifier
    maps: int = 0                # K, the number of maps f_k the classifier weighs


def cam_info(model: nn.Module) -> CamInfo:
    """Does CAM apply? It needs the network to end  feature maps -> global average pooling ->
    (flatten/dropout) -> one linear layer, so each class score is a weighted mean of the maps."""
    found = [i for i in instances(model) if role(i) != "identity_in_eval"]
    if not found:
        return CamInfo(False, "CAM needs a network built from a spec (global average pooling, then one linear layer).")
    tail = " → ".join(i.type for i in found[-4:])
    last = found[-1]
    if role(last) != "classifier":
        return CamInfo(False, f"CAM does not apply: the network ends with {last.type} ({tail}); CAM needs "
                              f"global average pooling followed by one linear layer. Grad-CAM works for any "
                              f"convolutional layer.")
    pool = found[-2] if len(found) >= 2 else None
    is_gap = pool is not None and role(pool) == "adaptive_pool" and math.prod(pool.out_shape[1:]) == 1
    if not is_gap or len(found) < 3 or len(pool.in_shape) != 3:
        return CamInfo(False, f"CAM does not apply: it needs global average pooling right before a single linear "
                              f"layer, and this network ends {tail}. Grad-CAM, which generalises CAM, works for "
                              f"any convolutional layer.")
    k = pool.in_shape[0]
    return CamInfo(True, f"CAM: M_c(x, y) = Σ_k w_k^c f_k(x, y) over the {k} maps that {found[-3].name} "
                         f"passes to {pool.name}, weighted by {last.name}'s weights for class c.",
                   features=found[-3].name, pool=pool.name, linear=last.name, maps=k)


def cam(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor,
        *, size: tuple[int, int] | None = None) -> np.ndarray:
    """Class activation maps M_c = sum_k w_k^c f_k (no ReLU, bias left out) for images x (N, C, H, W).
    Returns (N, h, w) at the feature resolution, or upsampled to size. SpecError when CAM does not apply."""
    info = cam_info(model)
    if not info.applies:
        raise SpecError(info.reason)
    x = x if x.dim() == 4 else x[None]
    features, _ = capture(model.eval(), info.pool, x, inputs=True)      # (N, K, h, w): f_k
    weight = module(model, info.linear).weight.detach().float()          # (classes, K)
    maps = torch.einsum("nk,nkhw->nhw", weight[_targets(target, len(x))], features.float())
    if size is not None:
        maps = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return maps.cpu().numpy()


def peak(m: np.ndarray) -> tuple[int, int]:
    """(row, column) of a map's maximum."""
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(m)), m.shape))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (NaN when one is constant)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


@dataclass(frozen=True)
class Explanation:
    """One image's heat map for one class, and what the network predicted."""

    method: str                  # "gradcam" or "cam"
    layer: str                   # the module whose maps are weighed (CAM: the features before the pooling)
    target: int                  # the class explained
    probs: np.ndarray            # (classes,) softmax probabilities
    raw: np.ndarray              # (h, w) at the layer's resolution: Grad-CAM after its ReLU; CAM signed
    image_size: tuple[int, int]  # (H, W) of the image
    heat: np.ndarray             # (h, w) in [0, 1]: raw clipped at 0, divided by its maximum
    peak: tuple[int, int] | None  # (row, column) of the map's maximum on the image; None when it is zero

    @property
    def predicted(self) -> int:
        return int(self.probs.argmax())

    @property
    def zero(self) -> bool:
        """No positive evidence anywhere: the heat map is zero (CAM: negative everywhere)."""
        return self.peak is None

    def on_image(self) -> np.ndarray:
        """The map clipped at 0 and upsampled to the image, (H, W), not normalised."""
        return upsample(np.maximum(self.raw, 0), self.image_size)

    def overlay(self, image: torch.Tensor | np.ndarray, scale: int = 1) -> np.ndarray:
        """The heat map blended over the uint8 image at `scale` x its size: uint8 (H*s, W*s, 3)."""
        return overlay(image, self.heat, scale=scale)

    def title(self, class_names: Sequence[str], label: int | None = None) -> str:
        """'Grad-CAM relu4: cat (p=0.93; predicted cat, true dog)' for files and the CLI."""
        what = "Grad-CAM" if self.method == "gradcam" else "CAM"
        names = [class_name(class_names, i) for i in (self.target, self.predicted)]
        truth = "" if label is None else f", true {class_name(class_names, label)}"
        return f"{what} {self.layer}: {names[0]} (p={self.probs[self.target]:.2f}; predicted {names[1]}{truth})"


def choose_layer(model: nn.Module, layer: str | None) -> str:
    """The layer to explain: `layer` when it is one of layer_choices, else the default one."""
    choices = layer_choices(model)
    if layer is None:
        layer = default_layer(model)
        if layer is None:
            raise SpecError("the network has no convolutional layer for Grad-CAM")
    elif layer not in {c.name for c in choices}:
        known = ", ".join(c.name for c in choices)
        raise ConfigError(f"--layer {layer!r} is not a convolutional layer of this network; choose one of: {known}",
                          field="layer")
    return layer


def explain(model: nn.Module, x: torch.Tensor, method: str = "gradcam", target: int | None = None,
            layer: str | None = None) -> Explanation:
    """Grad-CAM (of `layer`, default: default_layer) or CAM for one normalised image x (1, C, H, W)
    or (C, H, W) and class `target` (default: the predicted one). ConfigError for a layer that is
    not a choice; SpecError when the network has no conv layer, or CAM does not apply to it."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}", field="method")
    x = (x if x.dim() == 4 else x[None])[:1]
    model = interpretable(model)
    probs = predict(model, x)[0]
    target = int(probs.argmax()) if target is None else int(target)
    if method == "cam":
        info = cam_info(model)
        raw, layer = cam(model, x, target)[0], info.features
    else:
        layer = choose_layer(model, layer)
        raw = gradcam(model, x, layer, target)[0]
    size = tuple(x.shape[-2:])
    positive = np.maximum(raw, 0)
    spot = peak(upsample(positive, size)) if positive.max() > 0 else None
    return Explanation(method, layer, target, probs, raw, size, normalize_map(positive), spot)


def agreement(a: Explanation, b: Explanation) -> float:
    """Pearson correlation of two explanations' maps on the image (negative values clipped, as
    Grad-CAM's ReLU does): 1 where Grad-CAM at CAM's feature layer equals ReLU(M_c)/(hw)."""
    return correlation(a.on_image(), b.on_image())


__all__ = ["METHODS", "Explanation", "CamInfo", "explain", "agreement", "choose_layer", "predict", "top_k",
           "class_name", "resolve_target", "gradcam", "cam_info", "cam", "peak", "correlation"]
