"""Datasets read through torchvision: MNIST, Fashion-MNIST, CIFAR-10/100, SVHN, an image folder.

Files live under a data root in torchvision's own layout (FILE_LAYOUT below), are downloaded
there on demand when `download` is on and the network is reachable, and are read into uint8
tensors (N, C, H, W). When they are missing and cannot be downloaded, a SpecError says which
files to put where.

Integrity checks. torchvision checks the MD5 of every CIFAR batch file and SVHN .mat file
against the official release before reading it. We check only that the files are present (and
then that they parse): downloads are still verified, because torchvision checks the MD5 of the
downloaded archive, but a copy the user placed by hand, or a tiny file a test writes in the
same format, is read instead of being refused (or, worse, re-downloaded over). This is done by
small subclasses that override only the presence check (`_check_integrity`, `_load_meta`,
`download`); reading stays torchvision's. MNIST and Fashion-MNIST need nothing: torchvision
only checks that their raw idx files exist.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from explorer.spec import SpecError

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# Where each set's files must be, relative to the data root (torchvision's layout).
FILE_LAYOUT: dict[str, tuple[str, ...]] = {
    "mnist": tuple(f"MNIST/raw/{f}" for f in MNIST_FILES),
    "fashionmnist": tuple(f"FashionMNIST/raw/{f}" for f in MNIST_FILES),
    "cifar10": tuple(f"cifar-10-batches-py/{f}" for f in
                     ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                      "test_batch", "batches.meta")),
    "cifar100": tuple(f"cifar-100-python/{f}" for f in ("train", "test", "meta")),
    "svhn": ("train_32x32.mat", "test_32x32.mat"),
}

# What to fetch by hand (for the error message).
SOURCES: dict[str, str] = {
    "mnist": "the four idx-ubyte files from https://ossci-datasets.s3.amazonaws.com/mnist/ "
             "(gunzipped, or leave them as .gz and they are unpacked on first use)",
    "fashionmnist": "the four idx-ubyte files from https://github.com/zalandoresearch/fashion-mnist "
                    "(gunzipped, or leave them as .gz and they are unpacked on first use)",
    "cifar10": "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it in the "
               "data root",
    "cifar100": "cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it in the "
                "data root",
    "svhn": "train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/",
}

TITLES = {"mnist": "MNIST", "fashionmnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
          "cifar100": "CIFAR-100", "svhn": "SVHN"}

FASHION_NAMES: tuple[str, ...] = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                  "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_NAMES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                  "horse", "ship", "truck")
CIFAR100_NAMES: tuple[str, ...] = tuple("""
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly
camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup
dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower
leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid
otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray
road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar
sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle
wardrobe whale willow_tree wolf woman worm""".split())
assert len(CIFAR100_NAMES) == 100

PROBE_TIMEOUT_S = 5.0           # how long to wait for the download host before giving up
MAX_FOLDER_IMAGES = 20_000      # an image folder larger than this is subsampled (stratified)
FOLDER_IMAGE_SIZE = 64          # default side of the square RGB images a folder is resized to


def default_data_root() -> Path:
    """$CNN_EXPLORER_DATA if set, else ~/.cache/cnn-explorer/data."""
    env = os.environ.get("CNN_EXPLORER_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cnn-explorer" / "data"


# --- presence-only subclasses (see the module docstring) -------------------------------------

def _tv():
    import torchvision.datasets as tvd
    return tvd


def _lenient_classes():
    tvd = _tv()

    class _PresenceCheckedCifar:
        def _check_integrity(self) -> bool:
            return all(os.path.isfile(os.path.join(self.root, self.base_folder, f))
                       for f, _md5 in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            path = os.path.join(self.root, self.base_folder, self.meta["filename"])
            if not os.path.isfile(path):
                raise RuntimeError(f"Dataset metadata file {path} not found")
            with open(path, "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    class CIFAR10(_PresenceCheckedCifar, tvd.CIFAR10):
        pass

    class CIFAR100(_PresenceCheckedCifar, tvd.CIFAR100):
        pass

    class SVHN(tvd.SVHN):
        def _check_integrity(self) -> bool:
            return os.path.isfile(os.path.join(self.root, self.filename))

        def download(self) -> None:
            if not self._check_integrity():
                super().download()

    return {"mnist": tvd.MNIST, "fashionmnist": tvd.FashionMNIST, "cifar10": CIFAR10,
            "cifar100": CIFAR100, "svhn": SVHN}


# --- the torchvision sets ---------------------------------------------------------------------

def missing_files(name: str, root: Path) -> list[Path]:
    return [root / rel for rel in FILE_LAYOUT[name] if not (root / rel).is_file()]


def _unpack_gz(name: str, root: Path) -> None:
    """MNIST-style raw files left as .gz next to where torchvision expects them: gunzip them."""
    for path in missing_files(name, root):
        gz = path.with_name(path.name + ".gz")
        if gz.is_file():
            tmp = path.with_name(path.name + ".part")
            with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(path)


def _layout_text(name: str, root: Path) -> str:
    """e.g. "/data/cifar-10-batches-py/ holding data_batch_1, ..., batches.meta"."""
    groups: dict[Path, list[str]] = {}
    for rel in FILE_LAYOUT[name]:
        path = root / rel
        groups.setdefault(path.parent, []).append(path.name)
    return "; ".join(f"{folder}{os.sep} holding {', '.join(files)}" for folder, files in groups.items())


def _where_message(name: str, root: Path, missing: list[Path], cause: str | None) -> str:
    shown = ", ".join(str(p.relative_to(root)) for p in missing[:3]) + (" ..." if len(missing) > 3 else "")
    return (f"{TITLES[name]} was not found in the data root {root} (missing {shown}). "
            + (f"Downloading it failed: {cause}. " if cause else "Downloading is off. ")
            + f"To use it offline, fetch {SOURCES[name]}, so that there is {_layout_text(name, root)}. "
            f"Or pick another data root (--data-root, or the CNN_EXPLORER_DATA environment variable), "
            f"or an offline dataset (mnist5k, digits, shapes).")


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _download_url(name: str) -> str:
    tvd = _tv()
    return {"mnist": lambda: tvd.MNIST.mirrors[0], "fashionmnist": lambda: tvd.FashionMNIST.mirrors[0],
            "cifar10": lambda: tvd.CIFAR10.url, "cifar100": lambda: tvd.CIFAR100.url,
            "svhn": lambda: tvd.SVHN.split_list["train"][0]}[name]()


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None if a TCP connection to the URL's host opens within `timeout`, else why not.

    torchvision downloads with urllib and no timeout, so without network (packets dropped rather
    than refused) a download can hang for minutes; this probe turns that into a quick error.
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
        return None
    except OSError as e:
        return f"cannot reach {parts.hostname}:{port} ({_short(e)})"


def load_torchvision(name: str, root: Path, download: bool
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test) of a torchvision set: uint8 (N, C, H, W), int64 (N,).

    The official test split is returned as the second pair (the caller uses it as validation).
    """
    root = Path(root).expanduser()
    if name in ("mnist", "fashionmnist"):
        _unpack_gz(name, root)
    missing = missing_files(name, root)
    if missing and not download:
        raise SpecError(_where_message(name, root, missing, None), field="data_root")
    if missing:   # and download is on
        unreachable = probe(_download_url(name))
        if unreachable:
            raise SpecError(_where_message(name, root, missing, unreachable), field="data_root")
    classes = _lenient_classes()[name]
    split_kw = (lambda train: {"split": "train" if train else "test"}) if name == "svhn" else \
               (lambda train: {"train": train})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fetch = download and bool(missing)    # SVHN fetches one file per split; the others all at once
            train = classes(str(root), download=fetch, **split_kw(True))
            test = classes(str(root), download=fetch, **split_kw(False))
    except Exception as e:   # network errors, torchvision's "not found", unreadable files
        still_missing = missing_files(name, root)
        if still_missing:
            raise SpecError(_where_message(name, root, still_missing, _short(e)), field="data_root") from e
        raise SpecError(f"{TITLES[name]} files under {root} could not be read ({_short(e)}). Replace them with "
                        f"the official files ({SOURCES[name]}).", field="data_root") from e
    out = []
    for ds in (train, test):
        if name in ("mnist", "fashionmnist"):
            x = ds.data.unsqueeze(1)                                            # (N, 28, 28) -> (N, 1, 28, 28)
            y = ds.targets
        elif name == "svhn":
            x = torch.from_numpy(np.ascontiguousarray(ds.data))                 # already (N, 3, 32, 32)
            y = torch.from_numpy(np.asarray(ds.labels))
        else:
            x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))  # (N, 32, 32, 3) -> NCHW
            y = torch.as_tensor(ds.targets)
        out += [x.to(torch.uint8).contiguous(), y.to(torch.int64).reshape(-1)]
    k = 100 if name == "cifar100" else 10
    for y in (out[1], out[3]):
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
            raise SpecError(f"{TITLES[name]} files under {root} hold labels outside 0..{k - 1}: "
                            f"they are not the official files.", field="data_root")
    return out[0], out[1], out[2], out[3]


# --- an image folder ----------------------------------------------------------------------------

def _folder_class():
    tvd = _tv()

    class _ImageFolder(tvd.ImageFolder):
        """ImageFolder that ignores hidden folders (.git, .ipynb_checkpoints) as classes."""

        def find_classes(self, directory):
            names = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
            if not names:
                raise FileNotFoundError(f"no class sub-folders in {directory}")
            return names, {c: i for i, c in enumerate(names)}

    return _ImageFolder, tvd.folder.IMG_EXTENSIONS


def _read_image(path: str, size: int) -> np.ndarray | None:
    """RGB uint8 (size, size, 3): shorter side resized to `size`, centre-cropped; None if unreadable."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im = ImageOps.fit(im, (size, size), method=Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except Exception:
        return None


def scan_folder(root: Path) -> tuple[list[tuple[str, int]], tuple[str, ...], list[str]]:
    """(samples [(path, class index)], class names, notes) of an image folder; SpecError if unusable."""
    root = Path(root).expanduser()
    how = ("Put the images in one sub-folder per class, e.g. DIR/cat/001.jpg and DIR/dog/002.png, and pass "
           "DIR as the data root.")
    if not root.is_dir():
        raise SpecError(f"Image folder {root} does not exist or is not a folder. {how}", field="data_root")
    image_folder, exts = _folder_class()
    try:
        ds = image_folder(str(root), allow_empty=True)
    except FileNotFoundError:
        raise SpecError(f"Image folder {root} has no class sub-folders. {how}", field="data_root") from None
    counts = np.bincount([t for _, t in ds.samples], minlength=len(ds.classes))
    notes = []
    empty = [c for c, n in zip(ds.classes, counts) if n == 0]
    if empty:
        notes.append(f"ignored {len(empty)} sub-folder(s) with no images ({', '.join(empty[:5])}"
                     f"{' ...' if len(empty) > 5 else ''})")
    keep = [i for i, n in enumerate(counts) if n > 0]
    if len(keep) < 2:
        found = sum(counts)
        raise SpecError(f"Image folder {root} needs at least two class sub-folders with images "
                        f"({', '.join(exts)}); it has {len(keep)} with {found} image(s). {how}",
                        field="data_root")
    remap = {old: new for new, old in enumerate(keep)}
    samples = [(p, remap[t]) for p, t in ds.samples if t in remap]
    return samples, tuple(ds.classes[i] for i in keep), notes


def read_images(paths: list[str], size: int) -> tuple[np.ndarray, list[int]]:
    """uint8 (N_ok, 3, size, size) for the readable images, and the indices of the ones that were not."""
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:      # PIL decodes without holding the GIL
        arrays = list(pool.map(lambda p: _read_image(p, size), paths, chunksize=64))
    bad = [i for i, a in enumerate(arrays) if a is None]
    good = [a for a in arrays if a is not None]
    x = np.stack(good).transpose(0, 3, 1, 2) if good else np.zeros((0, 3, size, size), np.uint8)
    return np.ascontiguousarray(x), bad
