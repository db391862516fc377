"""Batched augmentation on tensors that already sit on the training device (no PIL, no DataLoader).

Small datasets live on the GPU as one uint8 tensor; each step slices a batch and calls these.
Every function works on a whole (N, C, H, W) batch at once, with no Python loop over images.
Random numbers come from `generator` when given (seeded runs repeat exactly), drawn on the
generator's own device and then moved to the batch's device, so a CPU generator can drive a
CUDA batch; without a generator the global RNG of the batch's device is used.

Order matters for padding: torchvision's CIFAR recipe crops the raw image (black padding), then
normalises; `Augment` on the uint8 batch followed by `normalize` does the same. Cropping after
normalising pads with 0, i.e. with the mean colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _uniform(n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """n floats in [0, 1) drawn from `generator` (on its device), returned on `device`."""
    if generator is None:
        return torch.rand(n, device=device)
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def _randint(high: int, n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """n ints in [0, high) drawn from `generator` (on its device), returned on `device`."""
    if generator is None:
        return torch.randint(high, (n,), device=device)
    return torch.randint(high, (n,), generator=generator, device=generator.device).to(device)


def normalize(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """float32 (x / 255 - mean) / std per channel; x is (N, C, H, W) with values 0..255.

    mean/std are per channel (length C), as TensorDataset.mean/.std give them for x / 255.
    """
    if len(mean) != x_uint8.shape[1] or len(std) != x_uint8.shape[1]:
        raise ValueError(f"mean/std have {len(mean)}/{len(std)} values but the batch has "
                         f"{x_uint8.shape[1]} channels")
    m = torch.tensor(mean, dtype=torch.float32, device=x_uint8.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x_uint8.device).view(1, -1, 1, 1)
    return (x_uint8.to(torch.float32) / 255.0 - m) / s


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad each side with `padding` zeros and crop back to H x W at a random offset per image.

    Offsets are uniform in 0..2*padding for rows and columns independently (as torchvision's
    RandomCrop(size, padding)); an offset of `padding` gives the image back unchanged. Works for
    any dtype; (N, C, H, W) in, same shape out.
    """
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if padding == 0 or x.shape[0] == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))              # (N, C, H+2p, W+2p), zeros
    oy = _randint(2 * padding + 1, n, x.device, generator)               # (N,) top row of each crop
    ox = _randint(2 * padding + 1, n, x.device, generator)               # (N,) left column
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)                     # view (N, C, 2p+1, 2p+1, H, W)
    # one (C, H, W) block per image: 4x faster than indexing every pixel (0.1 against 0.44 ms for
    # 64 images of 32x32 on one CPU thread, a tenth of a LeNet-5 training step)
    return windows[torch.arange(n, device=x.device), :, oy, ox]          # (N, C, H, W), contiguous


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability 0.5 (one independent draw per image)."""
    if x.shape[0] == 0:
        return x
    flip = (_uniform(x.shape[0], x.device, generator) < 0.5).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)


@dataclass(frozen=True)
class Augment:
    """The training-time augmentation: random crop with zero padding, then horizontal flip.

    Augment() does nothing. Augment(crop_padding=4, flip=True) is the classic CIFAR recipe.
    Flip suits natural images; on digits it turns e.g. a 2 into a mirrored 2 the test set never
    shows.
    """

    crop_padding: int = 0   # pixels of zero padding on each side before the random crop; 0 = off
    flip: bool = False      # mirror left-right with probability 0.5 per image

    def __post_init__(self) -> None:
        if isinstance(self.crop_padding, bool) or not isinstance(self.crop_padding, int) or self.crop_padding < 0:
            raise ValueError(f"crop_padding must be an integer >= 0, got {self.crop_padding!r}")

    @property
    def enabled(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, generator)
        if self.flip:
            x = random_flip(x, generator)
        return x
