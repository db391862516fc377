"""Pictures as arrays: uint8 images to (H, W, 3), colour scales without matplotlib, heat maps
normalised, upsampled and blended over an image, enlargement for display, and the PNG the CLI's
`gradcam` writes. No streamlit, no Plotly figures (those are in explorer.charts.inspect).

Images are uint8 (C, H, W) as in explorer.training.checkpoint.RunData, or (H, W, 3) arrays.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

HEAT_COLORSCALE = "turbo"     # Grad-CAM/CAM overlays and their colour bar (plotly's name)
FEATURE_COLORSCALE = "viridis"
OVERLAY_ALPHA = 0.5           # heat map weight in the blend: out = (1 - a) image + a colour(heat)


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


def enlarge(image: torch.Tensor | np.ndarray, scale: int) -> np.ndarray:
    """uint8 (C, H, W) or (H, W, 3) -> (H*s, W*s, 3), nearest neighbour."""
    img = to_hwc(image)
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def overlay(image: torch.Tensor | np.ndarray, heat: np.ndarray, *, scale: int = 1,
            alpha: float = OVERLAY_ALPHA, colorscale: str = HEAT_COLORSCALE) -> np.ndarray:
    """Blend a heat map in [0, 1] (any size) over the image, both brought to `scale` x the image
    size (image: nearest, so pixels stay sharp; heat: bilinear). Returns uint8 (H*s, W*s, 3)."""
    big = enlarge(image, scale).astype(np.float64)
    h, w = big.shape[:2]
    heat = np.asarray(heat, dtype=np.float64)
    if heat.shape != (h, w):
        heat = upsample(heat, (h, w))
    colour = colorize(np.clip(heat, 0, 1), colorscale).astype(np.float64)
    return ((1 - alpha) * big + alpha * colour).round().clip(0, 255).astype(np.uint8)


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


__all__ = ["HEAT_COLORSCALE", "FEATURE_COLORSCALE", "OVERLAY_ALPHA", "to_hwc", "colorscale_stops", "colorize",
           "normalize_map", "upsample", "display_scale", "enlarge", "overlay", "overlay_figure_png"]
