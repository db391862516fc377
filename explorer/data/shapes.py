"""The generated "shapes" set: coloured shapes on clutter, with each shape's ground-truth mask.

Every image holds exactly one shape (the label) drawn over a cluttered background: a colour
gradient, soft blobs and thin straight lines that cross the whole image, then pixel noise over
everything. Colours are drawn independently of the class, so colour says next to nothing about
the label (a random forest on colour statistics scores ~25%, chance is 17%); size, position
(around the centre) and rotation vary too. The shape's luminance differs from the background
under it by at least 0.4, so every shape is visible; the two-conv teaching net reaches ~60-70%
validation accuracy in 4-5 CPU epochs (Adam, lr 1e-3, batch 64), a compact five-conv net with
batch norm (the cifar_compact preset's layout) above 90% within 10 epochs. The mask marks the shape's
pixels, so a Grad-CAM map can be scored (does its peak fall on the shape? the "pointing game").

Generation is vectorised over the whole batch with numpy (no Python loop over images) and is
deterministic for a given seed: 3,000 images take well under a second.
"""

from __future__ import annotations

import numpy as np

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring", "star")
DEFAULT_SIZE = 32         # images are DEFAULT_SIZE x DEFAULT_SIZE RGB
DEFAULT_COUNT = 3000      # images generated for load_dataset("shapes")

_R_MIN, _R_MAX = 7.0, 11.0   # shape "radius" in pixels at 32x32 (circumradius; squares 0.8 of it)
_SHIFT = 0.5                 # centre offset from the image centre: this fraction of the room left
_LUMA = 0.4                  # minimum luminance difference between shape and background under it


def _shape_masks(labels: np.ndarray, dx: np.ndarray, dy: np.ndarray, r: np.ndarray,
                 theta: np.ndarray) -> np.ndarray:
    """Boolean (N, H, W) membership for each image's shape.

    dx: (N, 1, W) and dy: (N, H, 1) pixel-centre offsets from each shape's centre;
    r, theta: (N, 1, 1). Each class's formula runs only on that class's images.
    """
    dx, dy = np.broadcast_arrays(dx, dy)
    out = np.zeros(dx.shape, dtype=bool)
    for c, name in enumerate(SHAPE_CLASSES):
        sel = np.flatnonzero(labels == c)
        if sel.size:
            out[sel] = _one_shape(name, dx[sel], dy[sel], r[sel], theta[sel])
    return out


def _one_shape(name: str, dx: np.ndarray, dy: np.ndarray, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
    d2 = dx * dx + dy * dy
    if name == "circle":
        return d2 <= r * r
    if name == "ring":
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    cos, sin = np.cos(theta), np.sin(theta)
    u = dx * cos + dy * sin          # coordinates in the shape's rotated frame, (n, H, W)
    v = -dx * sin + dy * cos
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8 * r
    if name == "triangle":
        # Equilateral triangle: inside all three edges' half-planes (edge distance 0.55 r).
        e = [np.cos(phi) * u + np.sin(phi) * v for phi in (np.pi / 2, np.pi * 7 / 6, np.pi * 11 / 6)]
        return np.maximum(np.maximum(e[0], e[1]), e[2]) <= 0.55 * r
    if name == "cross":
        au, av, arm = np.abs(u), np.abs(v), 0.28 * r
        return ((au <= r) & (av <= arm)) | ((av <= r) & (au <= arm))
    if name == "star":
        # Five points: the allowed radius swings between 0.45 r (notches) and r (points).
        tri = np.abs(((np.arctan2(v, u) * (5 / (2 * np.pi))) % 1.0) - 0.5) * 2   # 1 at a point
        return d2 <= (r * (0.45 + 0.55 * tri ** 1.5)) ** 2
    raise ValueError(f"unknown shape {name!r}")


def generate_shapes(n: int = DEFAULT_COUNT, seed: int = 0, size: int = DEFAULT_SIZE,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Make n images, the classes balanced (counts differ by at most one), shuffled.

    Returns x: uint8 (n, 3, size, size); y: int64 (n,) indices into SHAPE_CLASSES;
    masks: bool (n, size, size), True on the shape's pixels. The random draws happen in a fixed
    order (background, clutter, shape, noise), so a seed always gives the same images.
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(SHAPE_CLASSES)).astype(np.int64)
    grid = np.arange(size, dtype=np.float32) + 0.5
    g = _Grid(rng, n, size, float(size) / DEFAULT_SIZE, grid[None, None, :], grid[None, :, None])
    img = _clutter(g, _background(g))
    masks = _place_shapes(g, y)
    img = np.where(masks[:, None], _visible_colour(g, img, masks), img)
    img += 0.06 * rng.standard_normal(img.shape, dtype=np.float32)
    x = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return x, y, masks


class _Grid:
    """What every drawing step shares: the generator, the batch and the pixel grid."""

    def __init__(self, rng: np.random.Generator, n: int, size: int, s: float,
                 gx: np.ndarray, gy: np.ndarray):
        self.rng, self.n, self.size = rng, n, size
        self.s = s                  # geometry scale: image size / 32
        self.gx, self.gy = gx, gy   # pixel centres, (1, 1, W) and (1, H, 1)

    def col(self, *shape: int) -> np.ndarray:
        """Uniform [0, 1) float32 draws of the given shape."""
        return self.rng.random(shape, dtype=np.float32)


def _background(g: _Grid) -> np.ndarray:
    """A linear gradient between two random colours, (n, 3, H, W) floats in [0, 1]."""
    c0, c1 = g.col(g.n, 3, 1, 1), g.col(g.n, 3, 1, 1)
    g_ang = g.col(g.n, 1, 1) * 2 * np.pi
    t = (np.cos(g_ang) * g.gx + np.sin(g_ang) * g.gy) / g.size                  # (n, H, W)
    t = (t - t.min(axis=(1, 2), keepdims=True)) / (np.ptp(t, axis=(1, 2), keepdims=True) + 1e-6)
    return c0 + (c1 - c0) * t[:, None]


def _clutter(g: _Grid, img: np.ndarray) -> np.ndarray:
    """Soft Gaussian blobs (no hard edge) and 0 to 3 thin straight lines: clutter, not shapes."""
    for _ in range(3):
        bx, by = g.col(g.n, 1, 1) * g.size, g.col(g.n, 1, 1) * g.size
        sigma = (1.5 + 3.0 * g.col(g.n, 1, 1)) * g.s
        alpha = 0.8 * g.col(g.n, 1, 1) * np.exp(-((g.gx - bx) ** 2 + (g.gy - by) ** 2) / (2 * sigma ** 2))
        img = img + alpha[:, None] * (g.col(g.n, 3, 1, 1) - img)
    n_lines = g.rng.integers(0, 4, size=g.n)
    for j in range(3):
        px, py = g.col(g.n, 1, 1) * g.size, g.col(g.n, 1, 1) * g.size
        l_ang = g.col(g.n, 1, 1) * np.pi
        dist = np.abs((g.gx - px) * np.sin(l_ang) - (g.gy - py) * np.cos(l_ang))
        on = (dist <= 0.6 * g.s) & (n_lines > j)[:, None, None]
        img = np.where(on[:, None], g.col(g.n, 3, 1, 1), img)
    return img


def _place_shapes(g: _Grid, y: np.ndarray) -> np.ndarray:
    """Each image's shape: random radius, centre (fully inside the image) and rotation; (n, H, W) masks."""
    r = (_R_MIN + (_R_MAX - _R_MIN) * g.col(g.n, 1, 1)) * g.s
    room = g.size / 2 - r - 1                           # how far the centre may move and stay inside
    cx = g.size / 2 + _SHIFT * room * (2 * g.col(g.n, 1, 1) - 1)
    cy = g.size / 2 + _SHIFT * room * (2 * g.col(g.n, 1, 1) - 1)
    theta = g.col(g.n, 1, 1) * 2 * np.pi
    return _shape_masks(y, g.gx - cx, g.gy - cy, r, theta)


def _visible_colour(g: _Grid, img: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """A random hue whose luminance differs from the background under the shape by at least
    _LUMA (mixed towards white or black as needed), so every shape is visible; (n, 3, 1, 1)."""
    shape_col = g.col(g.n, 3, 1, 1)
    m = masks[:, None].astype(np.float32)
    local_bg = (img * m).sum(axis=(2, 3), keepdims=True) / np.maximum(m.sum(axis=(2, 3), keepdims=True), 1)
    luma = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 3, 1, 1)  # ITU-R BT.601
    l_bg = (local_bg * luma).sum(axis=1, keepdims=True)                  # (n, 1, 1, 1)
    l_sh = (shape_col * luma).sum(axis=1, keepdims=True)
    weak = np.abs(l_sh - l_bg) < _LUMA
    up = weak & (l_bg < 0.5)                                             # lighten to l_bg + _LUMA
    down = weak & ~up                                                    # darken to l_bg - _LUMA
    t_up = np.clip((l_bg + _LUMA - l_sh) / np.maximum(1 - l_sh, 1e-6), 0, 1)
    t_down = np.clip(1 - (l_bg - _LUMA) / np.maximum(l_sh, 1e-6), 0, 1)
    shape_col = np.where(up, shape_col + t_up * (1 - shape_col), shape_col)
    return np.where(down, shape_col * (1 - t_down), shape_col)
