"""Datasets read from a data root: MNIST, Fashion-MNIST, CIFAR-10/100, SVHN, an image folder.

Owns: where each torchvision set's files go (FILE_LAYOUT), downloading them with torchvision,
reading them safely into uint8 tensors (N, C, H, W), and reading an image folder.

Files live under a data root in torchvision's own layout, are downloaded there on demand when
`download` is on and the network is reachable (torchvision checks the MD5 of each download),
and are then read by this project's own readers (explorer.data.formats), never by
torchvision's, which unpickle CIFAR batches with pickle.load:
- CIFAR-10/100 (pickles) and SVHN (.mat) files are read only after their MD5s equal the ones
  torchvision publishes (expected_checksums); any other file is refused with a DataError before
  a byte of it is unpickled or inflated, and CIFAR pickles then go through an unpickler that
  builds only numpy arrays and builtins.
- MNIST and Fashion-MNIST idx files are parsed with their header checked against their length.
When files are missing and cannot be downloaded, a DataError says which files to put where.

An image folder is scanned by explorer.data.roots.scan_image_folder (no links out of the
folder, entry and time limits); images are decoded with a pixel limit from the header.
"""

from __future__ import annotations

import gzip
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from explorer.data.formats import (MAX_IDX_BYTES, MAX_PICKLE_BYTES, read_cifar_batch, read_idx, read_verified,
                                   verify_checksums)
from explorer.data.roots import scan_image_folder
from explorer.errors import DataError

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


# Image files an image folder may hold (torchvision.datasets.folder.IMG_EXTENSIONS) and the PIL
# decoders allowed to open them (no EPS/PDF/exotic plugins).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
IMAGE_FORMATS = ("JPEG", "PNG", "PPM", "BMP", "TIFF", "WEBP")
MAX_FOLDER_PIXELS = 36_000_000   # width x height of one folder image, from its header (6000 x 6000)


def _tv():
    import torchvision.datasets as tvd
    return tvd


def expected_checksums(name: str) -> dict[str, str]:
    """{path relative to the data root: published MD5} of the files of a set that must be
    checksum-verified before reading (CIFAR pickles, SVHN .mat files); {} for MNIST-style sets.
    Read from torchvision's dataset classes (train_list, test_list, meta, split_list)."""
    tvd = _tv()
    if name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        files = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
        return {f"{cls.base_folder}/{f}": md5 for f, md5 in files}
    if name == "svhn":
        return {tvd.SVHN.split_list[s][1]: tvd.SVHN.split_list[s][2] for s in ("train", "test")}
    return {}


# --- downloading --------------------------------------------------------------------------------

def missing_files(name: str, root: Path) -> list[Path]:
    return [root / rel for rel in FILE_LAYOUT[name] if not (root / rel).is_file()]


def _unpack_gz(name: str, root: Path) -> None:
    """MNIST-style raw files left as .gz next to where torchvision expects them: gunzip them,
    stopping at MAX_IDX_BYTES (a small .gz can inflate to fill the disk)."""
    for path in missing_files(name, root):
        gz = path.with_name(path.name + ".gz")
        if not gz.is_file():
            continue
        tmp = path.with_name(path.name + ".part")
        try:
            with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(2**20):
                    if dst.tell() + len(chunk) > MAX_IDX_BYTES:
                        raise DataError(f"{gz} unpacks to more than {MAX_IDX_BYTES:,} bytes: it is not an "
                                        f"MNIST-style file. Replace it with the official one.")
                    dst.write(chunk)
            tmp.replace(path)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise DataError(f"{gz} cannot be unpacked ({e}). Replace it with the official file.") from None
        finally:
            tmp.unlink(missing_ok=True)


def _download(name: str, root: Path) -> None:
    """Fetch the missing files with torchvision's own download code (it checks each archive's
    MD5), without letting torchvision read them."""
    tvd = _tv()
    cls = {"mnist": tvd.MNIST, "fashionmnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10,
           "cifar100": tvd.CIFAR100, "svhn": tvd.SVHN}[name]
    root.mkdir(parents=True, exist_ok=True)
    splits = [s for s in ("train", "test") if not (root / cls.split_list[s][1]).is_file()] \
        if name == "svhn" else [None]
    for split in splits:
        loader = cls.__new__(cls)           # download() needs only these fields, not __init__'s reading
        loader.root = str(root)
        if split:
            loader.split = split
            loader.url, loader.filename, loader.file_md5 = cls.split_list[split]
        loader.download()


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


# --- reading ------------------------------------------------------------------------------------

def _read_mnist(root: Path, folder: str) -> list[np.ndarray]:
    """[x_train (N, 1, 28, 28), y_train, x_test, y_test] of MNIST-style idx files."""
    out = []
    for part in ("train", "t10k"):
        x = read_idx(root / folder / "raw" / f"{part}-images-idx3-ubyte")
        y = read_idx(root / folder / "raw" / f"{part}-labels-idx1-ubyte")
        if x.ndim != 3 or x.shape[1:] != (28, 28) or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{folder} {part} files under {root} hold images {x.shape} and labels {y.shape}; "
                            f"MNIST-style files hold N x 28 x 28 images and N labels.")
        out += [x[:, None], y.astype(np.int64)]
    return out


def _read_svhn(root: Path, md5s: dict[str, str]) -> list[np.ndarray]:
    """[x_train (N, 3, 32, 32), y_train, x_test, y_test]; the bytes parsed are the bytes whose MD5
    is checked (SVHN's train file is 182 MB, so it is briefly in memory twice)."""
    import io

    import scipy.io

    out = []
    for split in ("train", "test"):
        name = f"{split}_32x32.mat"
        blob = read_verified(root / name, md5s.get(name), 2 * MAX_PICKLE_BYTES, "SVHN file")   # 512 MiB cap
        mat = scipy.io.loadmat(io.BytesIO(blob))
        x, y = mat.get("X"), mat.get("y")
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or \
                not isinstance(y, np.ndarray) or y.size != x.shape[3]:
            raise DataError(f"SVHN {split}_32x32.mat under {root} holds no 32x32x3xN 'X' and N labels 'y'.")
        labels = y.astype(np.int64).reshape(-1)
        labels[labels == 10] = 0                                  # SVHN's label 10 is the digit 0
        out += [x.transpose(3, 2, 0, 1), labels]                  # (H, W, C, N) -> (N, C, H, W)
    return out


def _read_cifar(name: str, root: Path, md5s: dict[str, str]) -> list[np.ndarray]:
    """[x_train (N, 3, 32, 32), y_train, x_test, y_test]; each batch's bytes checked against md5s."""
    folder, key = ("cifar-10-batches-py", "labels") if name == "cifar10" else ("cifar-100-python", "fine_labels")
    train_files = [f"data_batch_{i}" for i in range(1, 6)] if name == "cifar10" else ["train"]
    test_files = ["test_batch"] if name == "cifar10" else ["test"]
    out = []
    for files in (train_files, test_files):
        parts = [read_cifar_batch(root / folder / f, key, md5s.get(f"{folder}/{f}")) for f in files]
        out += [np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])]
    return out


def _read_set(name: str, root: Path) -> list[np.ndarray]:
    """The four arrays of a set whose files are all present; DataError for anything unusable."""
    expected = expected_checksums(name)
    verify_checksums(root, expected, TITLES[name], SOURCES[name])   # before any byte is unpickled
    try:
        if name in ("mnist", "fashionmnist"):
            return _read_mnist(root, "MNIST" if name == "mnist" else "FashionMNIST")
        return _read_svhn(root, expected) if name == "svhn" else _read_cifar(name, root, expected)
    except DataError as e:
        raise DataError(f"{e} Replace the {TITLES[name]} files with the official files ({SOURCES[name]}).") from None
    except Exception as e:  # noqa: BLE001 - a damaged file of any kind is the same user error
        raise DataError(f"{TITLES[name]} files under {root} could not be read ({_short(e)}). Replace them with "
                        f"the official files ({SOURCES[name]}).") from None


def load_torchvision(name: str, root: Path, download: bool
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test) of a torchvision set: uint8 (N, C, H, W), int64 (N,).

    The official test split is returned as the second pair (the caller uses it as validation).
    DataError when files are missing (and cannot be downloaded), not the official ones, or damaged.
    """
    root = Path(root).expanduser()
    if name in ("mnist", "fashionmnist"):
        _unpack_gz(name, root)
    missing = missing_files(name, root)
    if missing and not download:
        raise DataError(_where_message(name, root, missing, None))
    if missing:   # and download is on
        unreachable = probe(_download_url(name))
        if unreachable:
            raise DataError(_where_message(name, root, missing, unreachable))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _download(name, root)
        except Exception as e:   # noqa: BLE001 - network errors, a bad archive
            raise DataError(_where_message(name, root, missing_files(name, root) or missing, _short(e))) from None
        still = missing_files(name, root)
        if still:
            raise DataError(_where_message(name, root, still, "the download did not produce these files"))
    arrays = _read_set(name, root)
    k = 100 if name == "cifar100" else 10
    for y in (arrays[1], arrays[3]):
        if y.size and (int(y.min()) < 0 or int(y.max()) >= k):
            raise DataError(f"{TITLES[name]} files under {root} hold labels outside 0..{k - 1}: "
                            f"they are not the official files.")
    x_tr, y_tr, x_te, y_te = (torch.from_numpy(np.array(a, copy=True)) for a in arrays)   # own, writable
    return (x_tr.to(torch.uint8).contiguous(), y_tr.to(torch.int64), x_te.to(torch.uint8).contiguous(),
            y_te.to(torch.int64))


# --- an image folder ----------------------------------------------------------------------------

def _read_image(path: str, size: int) -> np.ndarray | None:
    """RGB uint8 (size, size, 3): shorter side resized to `size`, centre-cropped; None if unreadable
    or over MAX_FOLDER_PIXELS (checked from the header, before decoding: a decompression bomb)."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as im:
                w, h = im.size
                if w * h > MAX_FOLDER_PIXELS:
                    return None
                if im.format == "JPEG":
                    im.draft("RGB", (4 * size, 4 * size))     # decode big JPEGs at a reduced scale
                im = im.convert("RGB")
                im = ImageOps.fit(im, (size, size), method=Image.Resampling.BILINEAR)
                return np.asarray(im, dtype=np.uint8)
    except Exception:  # noqa: BLE001 - any undecodable file is skipped with a note
        return None


def scan_folder(root: Path) -> tuple[list[tuple[str, int]], tuple[str, ...], list[str]]:
    """(samples [(path, class index)], class names, notes) of an image folder; DataError if unusable."""

    root = Path(root).expanduser()
    how = ("Put the images in one sub-folder per class, e.g. DIR/cat/001.jpg and DIR/dog/002.png, and pass "
           "DIR as the data root.")
    if not root.is_dir():
        raise DataError(f"Image folder {root} does not exist or is not a folder. {how}")
    classes, files = scan_image_folder(root, IMAGE_EXTENSIONS)
    if not classes:
        raise DataError(f"Image folder {root} has no class sub-folders. {how}")
    notes = []
    empty = [c for c, f in zip(classes, files) if not f]
    if empty:
        notes.append(f"ignored {len(empty)} sub-folder(s) with no images ({', '.join(empty[:5])}"
                     f"{' ...' if len(empty) > 5 else ''})")
    keep = [i for i, f in enumerate(files) if f]
    if len(keep) < 2:
        found = sum(len(f) for f in files)
        raise DataError(f"Image folder {root} needs at least two class sub-folders with images "
                        f"({', '.join(IMAGE_EXTENSIONS)}); it has {len(keep)} with {found} image(s). {how}")
    samples = [(path, new) for new, old in enumerate(keep) for path in files[old]]
    return samples, tuple(classes[i] for i in keep), notes


def read_images(paths: list[str], size: int) -> tuple[np.ndarray, list[int]]:
    """uint8 (N_ok, 3, size, size) for the readable images, and the indices of the ones that were not."""
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:      # PIL decodes without holding the GIL
        arrays = list(pool.map(lambda p: _read_image(p, size), paths, chunksize=64))
    bad = [i for i, a in enumerate(arrays) if a is None]
    good = [a for a in arrays if a is not None]
    x = np.stack(good).transpose(0, 3, 1, 2) if good else np.zeros((0, 3, size, size), np.uint8)
    return np.ascontiguousarray(x), bad
