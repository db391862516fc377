"""Decode an uploaded image safely and fit it to a network's input. No streamlit here.

Uploads are untrusted: the byte size is capped before decoding, only a few raster formats are
accepted, and the pixel count is checked from the header before any pixel is decoded (a
"decompression bomb" is a small file that expands to gigabytes: a 20,000 x 20,000 PNG of one
colour is a few kilobytes). PIL's own guard (Image.MAX_IMAGE_PIXELS: a DecompressionBombWarning
above it, a DecompressionBombError above twice it) is turned into the same clear error; our limit
is lower and is checked without touching PIL's process-wide setting.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch

from explorer.errors import DataError
from explorer.units import format_bytes

MAX_UPLOAD_BYTES = 10 * 2**20       # 10 MiB: larger files are refused before decoding
MAX_PIXELS = 36_000_000             # width x height, e.g. 6000 x 6000; checked from the header
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")   # what PIL may try (no EPS/PDF/exotic plugins)
EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "webp")


class ImageError(DataError):
    """An upload that cannot be used; the message says why and what to do."""


def check_size(n_bytes: int) -> None:
    if n_bytes > MAX_UPLOAD_BYTES:
        raise ImageError(f"the file is {format_bytes(n_bytes)}; images may be at most {format_bytes(MAX_UPLOAD_BYTES)}. "
                         f"Save a smaller copy (the network sees it at a few dozen pixels anyway)")
    if n_bytes == 0:
        raise ImageError("the file is empty")


def open_image(data: bytes):
    """A decoded PIL image (first frame), EXIF-rotated, after the size and pixel checks."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    check_size(len(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=FORMATS)   # reads the header only
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"the image is {w:,} x {h:,} = {w * h:,} pixels, more than the limit of "
                                 f"{MAX_PIXELS:,} (possibly a decompression bomb); use a smaller image")
            if im.format == "JPEG":
                im.draft(im.mode, (1024, 1024))    # decode big JPEGs at a reduced scale (cheap)
            im.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"the image has too many pixels to decode safely (a decompression bomb?): {e}") from None
    except UnidentifiedImageError:
        raise ImageError("this is not an image that can be read here; use a PNG, JPEG, GIF, BMP or WebP file") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:   # truncated or corrupt data
        raise ImageError(f"the image file is damaged or truncated ({e})") from None
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the rotation
        pass
    return im


def to_mode(im, channels: int):
    """RGB (3 channels) or grey (1): transparency is flattened onto white first."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB" if channels == 3 else "L")


def fit(im, size: tuple[int, int]):
    """Scale so the image covers `size` (H, W), then crop the centre (no distortion). Bilinear
    (a triangle filter widened when shrinking, like the training loop's antialiased resize):
    Lanczos would ring around hard edges, which a 32-pixel network notices."""
    from PIL import Image, ImageOps

    h, w = size
    return ImageOps.fit(im, (w, h), method=Image.Resampling.BILINEAR, centering=(0.5, 0.5))


def decode_image(data: bytes, channels: int, size: tuple[int, int], *, invert: bool = False) -> torch.Tensor:
    """Uploaded bytes -> uint8 (channels, H, W) at the network's input size.

    channels: 3 (RGB) or 1 (grey; other counts repeat the grey channel). invert: 255 - pixels
    (MNIST digits are white on black, most drawings black on white). Raises ImageError."""
    im = fit(to_mode(open_image(data), 3 if channels == 3 else 1), size)
    a = np.asarray(im, dtype=np.uint8)
    a = a.transpose(2, 0, 1) if a.ndim == 3 else np.repeat(a[None], channels, axis=0)
    if invert:
        a = 255 - a
    return torch.from_numpy(np.ascontiguousarray(a))


def should_invert(image: torch.Tensor, train_mean: float | None) -> bool:
    """True when a grey upload is dark on light (mean above half scale: a pen drawing on paper)
    but the network learned light on dark (its training images' mean, on 0..1, below 0.5, as
    MNIST's 0.13): fed as it is, every digit would be misread. image: uint8 (1, H, W)."""
    if train_mean is None or image.shape[0] != 1:
        return False
    return train_mean < 0.5 and float(image.float().mean()) > 127.5


__all__ = ["should_invert", "ImageError", "MAX_UPLOAD_BYTES", "MAX_PIXELS", "FORMATS", "EXTENSIONS", "check_size", "open_image",
           "to_mode", "fit", "decode_image"]
