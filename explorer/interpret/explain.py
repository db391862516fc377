"""Looking inside a network: first-layer filters, feature maps, Grad-CAM (captum) and CAM,
top-k predictions, the confusion matrix and per-class accuracy. No streamlit here.

Functions are pure: tensors in, numpy arrays (or PIL images) out; the model passed in is never
modified (hooks are removed again; in-place ops are switched off on a copy, see `interpretable`).
Images are uint8 (C, H, W) as in explorer.training.checkpoint.RunData; the network sees them
normalised (RunData.normalize).

- Grad-CAM (Selvaraju et al. 2017): alpha_k^c = mean_xy d y_c / d A_k(x, y) and
  L^c = ReLU(sum_k alpha_k^c A_k), for any layer A whose output is a feature map.
- CAM (Zhou et al. 2016): for a network ending  features f -> global average pooling -> one
  linear layer,  M_c(x, y) = sum_k w_k^c f_k(x, y). There y_c = mean_xy M_c + b_c, so
  d y_c / d f_k(x, y) = w_k^c / (h w) and Grad-CAM at f is exactly ReLU(M_c) / (h w).
Maps are computed at the layer's resolution and upsampled bilinearly to the image size.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.core.spec import NetworkSpec, SpecError

# block types whose output is a computed feature map (pools, norms and dropout are not "layers" here)
FEATURE_BLOCKS = ("conv", "sepconv", "mlpconv", "residual", "bottleneck", "inception", "denseblock",
                  "transition", "fire", "invres", "se")
ACTIVATIONS = ("relu", "relu6", "leakyrelu", "elu", "gelu", "silu", "sigmoid", "tanh")
IDENTITY_IN_EVAL = ("flatten", "dropout", "dropout2d", "noise")   # no-ops at inference
HEAT_COLORSCALE = "turbo"     # Grad-CAM/CAM overlays and their colour bar (plotly's name)
FEATURE_COLORSCALE = "viridis"
OVERLAY_ALPHA = 0.5           # heat map weight in the blend: out = (1 - a) image + a colour(heat)


# --- the model ------------------------------------------------------------------------------------
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


def _instances(model: nn.Module):
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
    instances = _instances(model)
    if not instances:  # a plain module: every Conv2d
        return [LayerChoice(n, n, "inner") for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    chain: list[str] = []   # the conv block and the element-wise blocks after it
    for inst in instances:
        shape = "×".join(map(str, inst.out_shape))
        if inst.type in FEATURE_BLOCKS and len(inst.out_shape) == 3:
            out.append(LayerChoice(inst.name, f"{inst.name} · {shape}", "block", inst.out_shape))
            module = model.get_submodule(inst.name)
            if not isinstance(module, nn.Conv2d):
                out += [LayerChoice(f"{inst.name}.{n}", f"{inst.name}.{n} · inside {inst.name}", "inner")
                        for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
            chain = [inst.name]
        elif chain and inst.type in ("batchnorm", *IDENTITY_IN_EVAL) and len(inst.out_shape) == 3:
            chain.append(inst.type)
        elif chain and inst.type in ACTIVATIONS and len(inst.out_shape) == 3:
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


def _module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        known = ", ".join(c.name for c in layer_choices(model))
        raise SpecError(f"the network has no layer named {name!r}; choose one of: {known}", field="layer") from None


def first_conv(model: nn.Module) -> tuple[str, torch.Tensor] | None:
    """(name, weight (K, C, kh, kw)) of the first nn.Conv2d, or None."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m.weight.detach().float().cpu()
    return None


def _capture(model: nn.Module, layer: str, x: torch.Tensor, *,
             inputs: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(the layer's output (or input), the logits) for a batch x, without gradients."""
    seen: list[torch.Tensor] = []
    hook = _module(model, layer).register_forward_hook(
        lambda m, i, o: seen.append((i[0] if inputs else o).detach()))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        hook.remove()
    return seen[-1], logits.detach()


# --- pictures ------------------------------------------------------------------------------------
def to_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 (C, H, W) tensor -> uint8 (H, W, 3) array (grey images repeated to RGB)."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return a.astype(np.uint8)


def colorscale_stops(name: str = HEAT_COLORSCALE) -> tuple[np.ndarray, np.ndarray]:
    """(positions in [0, 1], RGB 0..255 (n, 3)) of a plotly colour scale."""
    from plotly.colors import get_colorscale, hex_to_rgb, unlabel_rgb

    stops = get_colorscale(name)
    pos = np.array([p for p, _ in stops], dtype=np.float64)
    rgb = np.array([hex_to_rgb(c) if c.startswith("#") else unlabel_rgb(c) for _, c in stops], dtype=np.float64)
    return pos, rgb


def colorize(values: np.ndarray, name: str = HEAT_COLORSCALE) -> np.ndarray:
    """Values in [0, 1] (any shape) -> uint8 RGB (..., 3) through a plotly colour scale (no matplotlib)."""
    pos, rgb = colorscale_stops(name)
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0, 1)
    out = np.stack([np.interp(v, pos, rgb[:, i]) for i in range(3)], axis=-1)
    return out.round().astype(np.uint8)


def normalize_map(m: np.ndarray) -> np.ndarray:
    """Scale a map to [0, 1] by its maximum (Grad-CAM maps are >= 0); all zeros stay zeros."""
    m = np.asarray(m, dtype=np.float64)
    top = float(m.max()) if m.size else 0.0
    return m / top if top > 0 else np.zeros_like(m)


def upsample(m: np.ndarray | torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) map resized bilinearly to size (H, W) (align_corners=False, as captum's interpolate)."""
    t = torch.as_tensor(np.asarray(m, dtype=np.float32))[None, None]
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[0, 0].numpy()


def display_scale(height: int, width: int, target: int = 256) -> int:
    """Integer enlargement that brings a small image to about `target` pixels (at least 1)."""
    return max(1, target // max(height, width))


def overlay(image: torch.Tensor | np.ndarray, heat: np.ndarray, *, scale: int = 1,
            alpha: float = OVERLAY_ALPHA, colorscale: str = HEAT_COLORSCALE) -> np.ndarray:
    """Blend a heat map in [0, 1] (any size) over the image, both brought to `scale` x the image
    size (image: nearest, so pixels stay sharp; heat: bilinear). Returns uint8 (H*s, W*s, 3)."""
    img = to_hwc(image)
    h, w = img.shape[0] * scale, img.shape[1] * scale
    big = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1).astype(np.float64)
    heat = np.asarray(heat, dtype=np.float64)
    if heat.shape != (h, w):
        heat = upsample(heat, (h, w))
    colour = colorize(np.clip(heat, 0, 1), colorscale).astype(np.float64)
    return ((1 - alpha) * big + alpha * colour).round().clip(0, 255).astype(np.uint8)


def enlarge(image: torch.Tensor | np.ndarray, scale: int) -> np.ndarray:
    """uint8 (C, H, W) or (H, W, 3) -> (H*s, W*s, 3), nearest neighbour."""
    img = to_hwc(image)
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def overlay_figure_png(image: torch.Tensor | np.ndarray, heat: np.ndarray, *, title: str = "",
                       target: int = 256, colorscale: str = HEAT_COLORSCALE):
    """A PIL image for files: [the image | the overlay | a colour bar 0..max], with a title line."""
    from PIL import Image, ImageDraw

    img = to_hwc(image)
    s = display_scale(img.shape[0], img.shape[1], target)
    left, right = enlarge(img, s), overlay(img, heat, scale=s, colorscale=colorscale)
    h, w = left.shape[:2]
    gap, bar_w, label_w, top = 8, 16, 34, 22 if title else 6
    canvas = Image.new("RGB", (2 * w + 3 * gap + bar_w + label_w, h + top + 6), "white")
    canvas.paste(Image.fromarray(left), (gap, top))
    canvas.paste(Image.fromarray(right), (2 * gap + w, top))
    ramp = colorize(np.linspace(1, 0, h)[:, None].repeat(bar_w, axis=1), colorscale)
    bar_x = 3 * gap + 2 * w
    canvas.paste(Image.fromarray(ramp), (bar_x, top))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((bar_x - 1, top - 1, bar_x + bar_w, top + h), outline="black")
    for frac, text in ((0.0, "max"), (0.5, "0.5"), (1.0, "0")):
        y = top + frac * (h - 1)
        draw.line((bar_x + bar_w, y, bar_x + bar_w + 3, y), fill="black")
        draw.text((bar_x + bar_w + 5, min(max(y - 5, top - 4), top + h - 10)), text, fill="black")
    if title:
        draw.text((gap, 5), title, fill="black")
    return canvas


def filter_mosaic(weight: torch.Tensor, *, columns: int = 16, scale: int = 8, pad: int = 1,
                  ) -> tuple[np.ndarray, np.ndarray, bool]:
    """First-layer filters as one picture: (uint8 mosaic (H, W, 3), max|w| per filter (K,), rgb).

    Each filter is normalised by its own largest |weight|: grey (128) is 0 and 0/255 are -/+ max|w|
    of that filter, so the mosaic shows each filter's pattern and the scale array its size.
    RGB when the filter has 3 input channels, grey otherwise (the mean over channels when there
    are neither 1 nor 3). Pixels are enlarged `scale` times (nearest) with `pad` grid lines between.
    """
    w = weight.detach().float().cpu()
    k, c, kh, kw = w.shape
    rgb = c == 3
    if not rgb:
        w = w.mean(dim=1, keepdim=True)
    scales = w.abs().amax(dim=(1, 2, 3)).numpy()
    unit = w / torch.as_tensor(scales).clamp_min(1e-12).view(-1, 1, 1, 1)    # in [-1, 1]
    tiles = ((unit * 0.5 + 0.5) * 255).round().clamp(0, 255).to(torch.uint8).numpy()  # (K, c, kh, kw)
    tiles = tiles.transpose(0, 2, 3, 1)
    if not rgb:
        tiles = np.repeat(tiles, 3, axis=3)
    tiles = np.repeat(np.repeat(tiles, scale, axis=1), scale, axis=2)
    cols = min(columns, k)
    rows = math.ceil(k / cols)
    th, tw = kh * scale, kw * scale
    mosaic = np.full((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(k):
        r, q = divmod(i, cols)
        y, x = pad + r * (th + pad), pad + q * (tw + pad)
        mosaic[y:y + th, x:x + tw] = tiles[i]
    return mosaic, scales, rgb


def mosaic_maps(maps: np.ndarray, *, columns: int = 8, pad: int = 1) -> np.ndarray:
    """(n, h, w) maps, each scaled to its own [min, max] -> [0, 1], tiled in a grid with NaN gaps."""
    n, h, w = maps.shape
    cols = max(1, min(columns, n))
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
    for i in range(n):
        m = maps[i].astype(np.float64)
        lo, hi = m.min(), m.max()
        m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
        r, q = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = m
    return out


# --- what a layer computes ------------------------------------------------------------------------
def feature_maps(model: nn.Module, x: torch.Tensor, layer: str) -> np.ndarray:
    """The layer's output for one normalised image x (1, C, H, W) or (C, H, W): (channels, h, w)."""
    x = x if x.dim() == 4 else x[None]
    out, _ = _capture(interpretable(model), layer, x[:1])
    if out.dim() != 4:
        raise SpecError(f"{layer} gives a flat vector of {out.shape[-1]} values, not feature maps", field="layer")
    return out[0].float().cpu().numpy()


def strongest(maps: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n channels with the largest mean activation, strongest first."""
    return np.argsort(-maps.reshape(len(maps), -1).mean(axis=1), kind="stable")[:n]


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (N, classes) for normalised images x (N, C, H, W)."""
    model = model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(torch.softmax(model(x[i:i + batch_size]).float(), dim=1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def top_k(probs: np.ndarray, class_names: Sequence[str], k: int = 5) -> list[tuple[int, str, float]]:
    """[(class index, name, probability)] for one image's probabilities, most likely first."""
    order = np.argsort(-probs, kind="stable")[:min(k, len(probs))]
    return [(int(i), _name(class_names, int(i)), float(probs[i])) for i in order]


def _name(class_names: Sequence[str], i: int) -> str:
    return class_names[i] if 0 <= i < len(class_names) else str(i)


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
    module = _module(model, layer)
    target_t = _targets(target, len(x))
    attr = LayerGradCam(model, module).attribute(x, target=target_t, relu_attributions=relu)
    if attr.dim() != 4:
        raise SpecError(f"{layer} gives a flat vector, not feature maps; Grad-CAM needs a convolutional layer",
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


def cam_info(model: nn.Module) -> CamInfo:
    """Does CAM apply? It needs the network to end  feature maps -> global average pooling ->
    (flatten/dropout) -> one linear layer, so each class score is a weighted mean of the maps."""
    instances = [i for i in _instances(model) if i.type not in IDENTITY_IN_EVAL]
    if not instances:
        return CamInfo(False, "CAM needs a network built from a spec (global average pooling, then one linear layer).")
    tail = " → ".join(i.type for i in instances[-4:])
    last = instances[-1]
    if last.type != "linear":
        return CamInfo(False, f"CAM does not apply: the network ends with {last.type} ({tail}); CAM needs "
                              f"global average pooling followed by one linear layer. Grad-CAM works for any "
                              f"convolutional layer.")
    pool = instances[-2] if len(instances) >= 2 else None
    is_gap = pool is not None and (pool.type == "gap" or (
        pool.type == "adaptiveavgpool" and math.prod(pool.out_shape[1:]) == 1))
    if not is_gap or len(instances) < 3 or len(pool.in_shape) != 3:
        return CamInfo(False, f"CAM does not apply: it needs global average pooling right before a single linear "
                              f"layer, and this network ends {tail}. Grad-CAM, which generalises CAM, works for "
                              f"any convolutional layer.")
    k = pool.in_shape[0]
    return CamInfo(True, f"CAM: M_c(x, y) = Σ_k w_k^c f_k(x, y) over the {k} maps that {instances[-3].name} "
                         f"passes to {pool.name}, weighted by {last.name}'s weights for class c.",
                   features=instances[-3].name, pool=pool.name, linear=last.name)


def cam(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor,
        *, size: tuple[int, int] | None = None) -> np.ndarray:
    """Class activation maps M_c = sum_k w_k^c f_k (no ReLU, bias left out) for images x (N, C, H, W).
    Returns (N, h, w) at the feature resolution, or upsampled to size. SpecError when CAM does not apply."""
    info = cam_info(model)
    if not info.applies:
        raise SpecError(info.reason)
    x = x if x.dim() == 4 else x[None]
    features, _ = _capture(model.eval(), info.pool, x, inputs=True)      # (N, K, h, w): f_k
    weight = _module(model, info.linear).weight.detach().float()          # (classes, K)
    target_t = _targets(target, len(x))
    maps = torch.einsum("nk,nkhw->nhw", weight[target_t], features.float())
    if size is not None:
        maps = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return maps.cpu().numpy()


# --- scores --------------------------------------------------------------------------------------
def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[t, p]: images of true class t predicted as p."""
    idx = np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


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


def peak(m: np.ndarray) -> tuple[int, int]:
    """(row, column) of a map's maximum."""
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(m)), m.shape))


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


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (NaN when one is constant)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def eval_count(n: int, macs_per_image: int, budget_macs: float = 3e10) -> int:
    """How many images to push through the network for dataset-wide views on a CPU: all of them
    when cheap, fewer for a big network (about budget_macs multiply-accumulates in all)."""
    if macs_per_image <= 0:
        return n
    return int(min(n, max(16, budget_macs // macs_per_image)))


# --- an untrained network, with a dataset's validation images --------------------------------------
def load_untrained(spec: NetworkSpec, dataset: str, seed: int = 0):
    """(adapted spec, freshly initialised model in eval mode, RunData, notices) for looking at a
    network before training: the spec is fitted to the dataset as training would fit it, the
    weights come from PyTorch's default initialisation under `seed`."""
    from explorer.core.budget import check_weights
    from explorer.core.build import build
    from explorer.data import load_dataset
    from explorer.training.adapt import adapt_spec
    from explorer.training.checkpoint import RunData
    from explorer.training.prepare import fit_images as _fit_images

    ds = load_dataset(dataset, download=False, seed=seed)
    info = ds.info
    adapted = adapt_spec(spec, info.channels, info.height, info.width, info.num_classes)
    check_weights(adapted.spec)  # real weights in this process: the smaller budget (BudgetError)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(adapted.spec).eval()
    masks = ds.masks_val
    if masks is not None:
        masks = _fit_images(masks[:, None].to(torch.uint8) * 255, adapted.image_size, adapted.resize)[:, 0] > 127
    data = RunData(x_val=_fit_images(ds.x_val, adapted.image_size, adapted.resize), y_val=ds.y_val,
                   masks_val=masks, mean=torch.tensor(ds.mean).view(1, -1, 1, 1),
                   std=torch.tensor(ds.std).view(1, -1, 1, 1), class_names=tuple(info.class_names))
    return adapted.spec, model, data, adapted.notices


__all__ = ["LayerChoice", "CamInfo", "interpretable", "layer_choices", "default_layer", "first_conv",
           "feature_maps", "strongest", "predict", "top_k", "gradcam", "cam_info", "cam", "confusion_matrix",
           "per_class_accuracy", "misclassified", "peak", "pointing_hits", "correlation", "eval_count",
           "to_hwc", "colorize", "colorscale_stops", "normalize_map", "upsample", "overlay", "enlarge",
           "display_scale", "overlay_figure_png", "filter_mosaic", "mosaic_maps", "load_untrained"]
