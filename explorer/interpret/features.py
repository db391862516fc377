"""What a layer computes and what the first layer learned: feature maps for one image, the
strongest channels, first-layer filters, and both tiled into one picture with torchvision's
make_grid. No streamlit here; tensors in, numpy arrays out.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.utils import make_grid

from explorer.errors import ConfigError
from explorer.interpret.layers import capture, interpretable


def first_conv(model: nn.Module) -> tuple[str, torch.Tensor] | None:
    """(name, weight (K, C, kh, kw)) of the first nn.Conv2d, or None."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m.weight.detach().float().cpu()
    return None


def feature_maps(model: nn.Module, x: torch.Tensor, layer: str) -> np.ndarray:
    """The layer's output for one normalised image x (1, C, H, W) or (C, H, W): (channels, h, w)."""
    x = x if x.dim() == 4 else x[None]
    out, _ = capture(interpretable(model), layer, x[:1])
    if out.dim() != 4:
        raise ConfigError(f"{layer} gives a flat vector of {out.shape[-1]} values, not feature maps", field="layer")
    return out[0].float().cpu().numpy()


def strongest(maps: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n channels with the largest mean activation, strongest first."""
    return np.argsort(-maps.reshape(len(maps), -1).mean(axis=1), kind="stable")[:n]


def tile(tiles: torch.Tensor, columns: int, pad: int, value: float, border: bool = True) -> torch.Tensor:
    """(n, C, h, w) tiles in rows of `columns`, `pad` pixels of `value` between them (and around
    them when border) -> (C, H, W). torchvision's make_grid, which returns a single tile bare."""
    if len(tiles) == 1:
        grid = F.pad(tiles[0], (pad,) * 4, value=value) if pad else tiles[0]
    else:
        grid = make_grid(tiles, nrow=columns, padding=pad, pad_value=value)[:tiles.shape[1]]  # grey: 1 channel back
    return grid if border or not pad else grid[:, pad:-pad, pad:-pad]


def filter_mosaic(weight: torch.Tensor, *, columns: int = 16, scale: int = 8, pad: int = 1,
                  ) -> tuple[np.ndarray, np.ndarray, bool]:
    """First-layer filters as one picture: (uint8 mosaic (H, W, 3), max|w| per filter (K,), rgb).

    Each filter is normalised by its own largest |weight|: grey (128) is 0 and 0/255 are -/+ max|w|
    of that filter, so the mosaic shows each filter's pattern and the scale array its size.
    RGB when the filter has 3 input channels, grey otherwise (the mean over channels when there
    are neither 1 nor 3). Pixels are enlarged `scale` times (nearest) with `pad` white grid lines
    between and around the filters.
    """
    w = weight.detach().float().cpu()
    rgb = w.shape[1] == 3
    if not rgb:
        w = w.mean(dim=1, keepdim=True)
    scales = w.abs().amax(dim=(1, 2, 3)).numpy()
    unit = w / torch.as_tensor(scales).clamp_min(1e-12).view(-1, 1, 1, 1)    # in [-1, 1]
    tiles = ((unit * 0.5 + 0.5) * 255).round().clamp(0, 255).to(torch.uint8)  # (K, c, kh, kw)
    tiles = tiles.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    if not rgb:
        tiles = tiles.expand(-1, 3, -1, -1)
    mosaic = tile(tiles, min(columns, len(tiles)), pad, 255)                    # (3, H, W)
    return mosaic.permute(1, 2, 0).contiguous().numpy(), scales, rgb


def mosaic_maps(maps: np.ndarray, *, columns: int = 8, pad: int = 1) -> np.ndarray:
    """(n, h, w) maps, each scaled to its own [min, max] -> [0, 1], tiled in a grid with NaN gaps
    (no border): (rows * (h + pad) - pad, cols * (w + pad) - pad)."""
    m = torch.as_tensor(np.asarray(maps, dtype=np.float64))
    lo = m.amin(dim=(1, 2), keepdim=True)
    hi = m.amax(dim=(1, 2), keepdim=True)
    unit = torch.where(hi > lo, (m - lo) / (hi - lo).clamp_min(1e-300), torch.zeros_like(m))
    return tile(unit[:, None], max(1, min(columns, len(m))), pad, float("nan"), border=False)[0].numpy()


def map_grid(maps: np.ndarray, order: np.ndarray, columns: int = 8, pad: int = 1,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The feature-map picture and what each of its pixels is: (mosaic in [0, 1] with NaN gaps,
    channel index (-1 in gaps), raw value (NaN in gaps)), all of the mosaic's shape, for
    maps (C, h, w) and the channels `order` to show, in that order."""
    sel = np.asarray(maps)[order]
    mosaic = mosaic_maps(sel, columns=columns, pad=pad)
    cols = max(1, min(columns, len(sel)))
    channel = tile(torch.as_tensor(np.asarray(order, dtype=np.float64))[:, None, None, None]
                   .expand(-1, 1, *sel.shape[1:]), cols, pad, -1.0, border=False)[0].numpy().astype(int)
    value = tile(torch.as_tensor(sel, dtype=torch.float64)[:, None], cols, pad, float("nan"), border=False)[0]
    return mosaic, channel, value.numpy()


__all__ = ["first_conv", "feature_maps", "strongest", "tile", "filter_mosaic", "mosaic_maps", "map_grid"]
