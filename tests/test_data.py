"""Datasets and augmentation: the offline sets for real, the torchvision sets and image folders from
tiny files written here in the real formats (never a download), and the batched augmentations."""

import gzip
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import explorer.data as data
from explorer.data import (DEFAULT_DATASET, Augment, dataset_info, list_datasets, load_dataset,
                           normalize, random_crop, random_flip)
from explorer.data.shapes import SHAPE_CLASSES, generate_shapes
from explorer.errors import ConfigError, DataError

OFFLINE = {"mnist5k": (5000, (1, 28, 28), 10), "digits": (1797, (1, 8, 8), 10),
           "shapes": (3000, (3, 32, 32), len(SHAPE_CLASSES))}


@pytest.fixture(autouse=True)
def _fresh_cache():
    data.clear_cache()
    yield
    data.clear_cache()


def _hashes(x: torch.Tensor) -> set[bytes]:
    return {bytes(img.numpy().tobytes()) for img in x}


# --- registry ----------------------------------------------------------------------------------

def test_registry_names_and_default():
    names = [i.name for i in list_datasets()]
    assert names == ["mnist5k", "digits", "shapes", "mnist", "fashionmnist", "cifar10", "cifar100", "svhn", "folder"]
    assert dataset_info(DEFAULT_DATASET).offline
    assert {i.name for i in list_datasets() if i.offline} == set(OFFLINE)
    for info in list_datasets():
        assert len(info.class_names) == info.num_classes and info.title and info.description
    assert dataset_info("CIFAR-10").name == "cifar10" and dataset_info("Fashion_MNIST").name == "fashionmnist"
    assert dataset_info("cifar100").num_classes == 100 and len(set(dataset_info("cifar100").class_names)) == 100


def test_unknown_name_lists_known_names():
    with pytest.raises(DataError) as e:
        dataset_info("imagenet")
    assert "mnist5k" in str(e.value) and "cifar10" in str(e.value) and e.value.field == "dataset"
    with pytest.raises(DataError, match="Did you mean 'cifar10'"):
        load_dataset("cifar")


@pytest.mark.parametrize("kw, field", [({"val_fraction": 0}, "val_fraction"), ({"val_fraction": 1.0}, "val_fraction"),
                                       ({"max_train": 0}, "max_train"), ({"max_train": 2.5}, "max_train")])
def test_bad_arguments_are_config_errors(kw, field):
    with pytest.raises(ConfigError) as e:
        load_dataset("digits", **kw)
    assert e.value.field == field


# --- offline sets ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(OFFLINE))
def test_offline_sets_load(name):
    total, shape, k = OFFLINE[name]
    ds = load_dataset(name)
    assert ds.info == dataset_info(name) and ds.info.input_shape == shape and ds.info.num_classes == k
    assert ds.num_train + ds.num_val == total and ds.num_val == round(total * 0.2)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val)):
        assert x.dtype == torch.uint8 and tuple(x.shape[1:]) == shape and x.is_contiguous()
        assert y.dtype == torch.int64 and y.shape == (x.shape[0],)
        assert set(y.unique().tolist()) == set(range(k))
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0
    assert len(ds.mean) == len(ds.std) == shape[0]
    ref = ds.x_train.double() / 255
    assert np.allclose(ds.mean, ref.mean(dim=(0, 2, 3)), atol=1e-5)
    assert np.allclose(ds.std, ref.permute(1, 0, 2, 3).reshape(shape[0], -1).std(dim=1, unbiased=False), atol=1e-5)
    assert (ds.masks_val is not None) == (name == "shapes")
    assert load_dataset(name) is ds                          # cached


def test_mnist5k_split_is_stratified_and_deterministic():
    ds = load_dataset("mnist5k", seed=0)
    assert torch.bincount(ds.y_val).tolist() == [100] * 10    # sorted by label on disk: split per class
    assert torch.bincount(ds.y_train).tolist() == [400] * 10
    assert not _hashes(ds.x_train) & _hashes(ds.x_val)        # no image in both
    assert ds.y_train[:20].unique().numel() > 3                # shuffled, not grouped by label
    again = data._load_cached.__wrapped__("mnist5k", None, 0.2, 0, True, None, 64)  # bypass the cache
    assert torch.equal(again.x_val, ds.x_val) and torch.equal(again.y_train, ds.y_train)
    other = load_dataset("mnist5k", seed=1)
    assert not torch.equal(other.y_val, ds.y_val)
    odd = load_dataset("mnist5k", val_fraction=0.123)          # 615 in val: counts equal within one
    counts = torch.bincount(odd.y_val)
    assert counts.sum() == 615 and counts.max() - counts.min() <= 1


def test_digits_scaled_to_0_255():
    ds = load_dataset("digits")
    allowed = {int(round(v * 255 / 16)) for v in range(17)}
    assert set(torch.cat([ds.x_train, ds.x_val]).unique().tolist()) <= allowed
    counts = torch.bincount(ds.y_val)
    assert counts.sum() == 359 and counts.max() - counts.min() <= 2   # classes hold 174..183 images


def test_max_train_is_a_stratified_deterministic_subset():
    full = load_dataset("mnist5k")
    tiny = load_dataset("mnist5k", max_train=20)
    assert tiny.num_train == 20 and torch.bincount(tiny.y_train).tolist() == [2] * 10
    assert _hashes(tiny.x_train) <= _hashes(full.x_train)
    assert torch.equal(tiny.x_val, full.x_val)
    again = data._load_cached.__wrapped__("mnist5k", None, 0.2, 0, True, 20, 64)
    assert torch.equal(again.x_train, tiny.x_train)
    assert tiny.mean != full.mean                              # stats of the subset
    assert load_dataset("mnist5k", max_train=10**6).num_train == full.num_train


# --- shapes ---------------------------------------------------------------------------------------

def _luma(x: torch.Tensor | np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64) / 255                  # (N, 3, H, W)
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def test_shapes_generation_is_deterministic_and_balanced():
    x1, y1, m1 = generate_shapes(300, seed=3)
    x2, y2, m2 = generate_shapes(300, seed=3)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2) and np.array_equal(m1, m2)
    x3, _, _ = generate_shapes(300, seed=4)
    assert not np.array_equal(x1, x3)
    assert x1.dtype == np.uint8 and x1.shape == (300, 3, 32, 32) and m1.dtype == bool and m1.shape == (300, 32, 32)
    assert np.bincount(y1).tolist() == [50] * 6
    assert len(np.unique(y1[:30])) > 3                          # shuffled


def test_shape_masks_cover_the_shapes():
    ds = load_dataset("shapes")
    x, m, y = ds.x_val.numpy(), ds.masks_val.numpy(), ds.y_val.numpy()
    assert m.shape == (len(x), 32, 32)
    area = m.mean(axis=(1, 2))
    assert area.min() > 0.03 and area.max() < 0.45               # a shape, never the whole image
    luma = _luma(x)
    inside = (luma * m).sum(axis=(1, 2)) / m.sum(axis=(1, 2))
    ring = np.zeros_like(m)                                    # background right around the shape
    for dy in (-2, 0, 2):
        for dx in (-2, 0, 2):
            ring |= np.roll(m, (dy, dx), axis=(1, 2))
    ring &= ~m
    outside = (luma * ring).sum(axis=(1, 2)) / np.maximum(ring.sum(axis=(1, 2)), 1)
    assert np.mean(np.abs(inside - outside) > 0.2) > 0.95      # the mask sits on the contrasting shape
    # Inside the mask the colour is one flat colour plus noise; the clutter outside varies more,
    # and so does the region under another image's mask (the alignment is real, not an accident).
    xf = x.astype(np.float64) / 255
    wrong = np.roll(m, 1, axis=0)

    def spread(i, mask):                                       # mean per-channel std over the region
        return xf[i][:, mask].std(axis=1).mean()

    std_in = np.median([spread(i, m[i]) for i in range(100)])
    std_out = np.median([spread(i, ~m[i]) for i in range(100)])
    std_wrong = np.median([spread(i, wrong[i]) for i in range(100)])
    assert std_in < 0.08 and std_out > 1.5 * std_in and std_wrong > 1.5 * std_in


def test_shape_classes_differ_in_geometry():
    _, y, m = generate_shapes(600, seed=0)
    fill = {c: m[y == i].mean(axis=(1, 2)).mean() for i, c in enumerate(SHAPE_CLASSES)}
    assert fill["circle"] > fill["ring"] and fill["square"] > fill["cross"]
    # A ring has a hole: the centre pixel of the shape's bounding box is off.
    ring = m[y == SHAPE_CLASSES.index("ring")]
    for mk in ring[:20]:
        rows, cols = np.nonzero(mk)
        assert not mk[(rows.min() + rows.max()) // 2, (cols.min() + cols.max()) // 2]


# --- torchvision sets from tiny real-format files -------------------------------------------------

def _write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    """The idx format of MNIST: magic (0, 0, 0x08 = uint8, ndim), big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    blob += array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        blob = gzip.compress(blob)
    path.write_bytes(blob)


def _write_mnist(root: Path, folder: str, n_train: int, n_test: int, gz: bool = False):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        _write_idx(root / folder / "raw" / f"{split}-images-idx3-ubyte", x, gz)
        _write_idx(root / folder / "raw" / f"{split}-labels-idx1-ubyte", y, gz)
        arrays[split] = (x, y)
    return arrays


@pytest.mark.parametrize("name, folder, gz", [("mnist", "MNIST", False), ("fashionmnist", "FashionMNIST", True)])
def test_mnist_format_read_by_torchvision(tmp_path, name, folder, gz):
    arrays = _write_mnist(tmp_path, folder, 12, 5, gz)
    ds = load_dataset(name, data_root=tmp_path, download=False, val_fraction=0.5)   # val_fraction ignored
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_val.shape == (5, 1, 28, 28)
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64
    assert np.array_equal(ds.x_train[:, 0].numpy(), arrays["train"][0])
    assert np.array_equal(ds.x_val[:, 0].numpy(), arrays["t10k"][0])
    assert ds.y_val.tolist() == [0, 1, 2, 3, 4]
    assert ds.info.name == name and ds.info.num_classes == 10
    assert load_dataset(name, data_root=tmp_path, download=False, max_train=5).num_train == 5


def _cifar_images(n: int, seed: int) -> np.ndarray:
    """n images (n, 32, 32, 3) whose red, green and blue planes are told apart by value."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    x[:, 0, 0] = [250, 120, 5]                                  # top-left pixel: R, G, B
    return x


def _cifar_rows(x: np.ndarray) -> np.ndarray:
    """The CIFAR row layout: 3072 bytes per image, the 1024 red values first, then green, blue."""
    return x.transpose(0, 3, 1, 2).reshape(len(x), 3072)


def _pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _write_cifar10(root: Path):
    d = root / "cifar-10-batches-py"
    train = _cifar_images(10, 0)
    for b in range(5):
        part = train[2 * b: 2 * b + 2]
        _pickle(d / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5",
                                            "labels": [2 * b, 2 * b + 1], "data": _cifar_rows(part),
                                            "filenames": [f"img{2 * b + i}.png" for i in range(2)]})
    test = _cifar_images(4, 1)
    _pickle(d / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": [3, 1, 4, 1],
                               "data": _cifar_rows(test), "filenames": ["t0", "t1", "t2", "t3"]})
    _pickle(d / "batches.meta", {"label_names": list(dataset_info("cifar10").class_names),
                                 "num_cases_per_batch": 10000, "num_vis": 3072})
    return train, list(range(10)), test, [3, 1, 4, 1]


def _write_cifar100(root: Path):
    d = root / "cifar-100-python"
    train, test = _cifar_images(6, 0), _cifar_images(3, 1)
    ytr, yte = [0, 99, 5, 42, 7, 1], [99, 0, 50]
    _pickle(d / "train", {"fine_labels": ytr, "coarse_labels": [0] * 6, "data": _cifar_rows(train)})
    _pickle(d / "test", {"fine_labels": yte, "coarse_labels": [0] * 3, "data": _cifar_rows(test)})
    _pickle(d / "meta", {"fine_label_names": list(dataset_info("cifar100").class_names),
                         "coarse_label_names": [f"super{i}" for i in range(20)]})
    return train, ytr, test, yte


def _write_svhn(root: Path):
    import scipy.io

    root.mkdir(parents=True, exist_ok=True)
    out = []
    for split, n, seed in (("train", 7, 0), ("test", 3, 1)):
        x = _cifar_images(n, seed)
        y = np.array([10, 1, 2, 3, 4, 5, 6][:n], dtype=np.uint8)      # SVHN's label 10 is the digit 0
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x.transpose(1, 2, 3, 0), "y": y[:, None]})
        out += [x, [int(v) % 10 for v in y]]
    return tuple(out)


def trust(monkeypatch, name: str, root: Path) -> None:
    """Make the test's own files the "published" ones: expected_checksums returns their MD5s (the
    real CIFAR/SVHN files are not available offline). Reading them is then the real code path."""
    import explorer.data.torchvision_sets as tvs
    from explorer.data.formats import file_md5

    real = tvs.expected_checksums(name)
    own = {rel: file_md5(root / rel) for rel in real}
    monkeypatch.setattr(tvs, "expected_checksums", lambda n: own if n == name else real)


def test_checksum_table_comes_from_torchvision():
    import torchvision.datasets as tvd

    import explorer.data.torchvision_sets as tvs

    cifar = tvs.expected_checksums("cifar10")
    assert cifar["cifar-10-batches-py/data_batch_1"] == dict(tvd.CIFAR10.train_list)["data_batch_1"]
    assert set(cifar) == set(tvs.FILE_LAYOUT["cifar10"])
    assert set(tvs.expected_checksums("cifar100")) == set(tvs.FILE_LAYOUT["cifar100"])
    assert tvs.expected_checksums("svhn")["test_32x32.mat"] == tvd.SVHN.split_list["test"][2]
    assert tvs.expected_checksums("mnist") == {}


@pytest.mark.parametrize("name, writer", [("cifar10", _write_cifar10), ("cifar100", _write_cifar100),
                                          ("svhn", _write_svhn)])
def test_colour_sets_from_real_format_files(tmp_path, monkeypatch, name, writer):
    x_tr, y_tr, x_te, y_te = writer(tmp_path)
    with pytest.raises(DataError, match="not the official release"):    # before their checksums are trusted
        load_dataset(name, data_root=str(tmp_path), download=False)
    trust(monkeypatch, name, tmp_path)
    ds = load_dataset(name, data_root=str(tmp_path), download=False)
    assert ds.x_train.shape == (len(x_tr), 3, 32, 32) and ds.x_val.shape == (len(x_te), 3, 32, 32)
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64
    assert ds.x_train[0, :, 0, 0].tolist() == [250, 120, 5]       # channels first, in RGB order
    assert np.array_equal(ds.x_train.permute(0, 2, 3, 1).numpy(), x_tr)
    assert np.array_equal(ds.x_val.permute(0, 2, 3, 1).numpy(), x_te)
    assert ds.y_train.tolist() == list(y_tr) and ds.y_val.tolist() == list(y_te)
    assert len(ds.mean) == 3


@pytest.mark.parametrize("name, where", [("mnist", "MNIST/raw"), ("fashionmnist", "FashionMNIST/raw"),
                                         ("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"),
                                         ("svhn", "train_32x32.mat")])
def test_missing_files_say_where_to_put_them(tmp_path, name, where):
    root = tmp_path / "nothing-here"
    with pytest.raises(DataError) as e:
        load_dataset(name, data_root=root, download=False)
    msg = str(e.value)
    assert str(root) in msg and where in msg and "Downloading is off" in msg and "mnist5k" in msg


def test_failed_download_says_where_to_put_the_files(tmp_path, monkeypatch):
    from urllib.error import URLError

    import torchvision.datasets.cifar as tv_cifar
    import torchvision.datasets.mnist as tv_mnist

    import explorer.data.torchvision_sets as tvs

    def offline(*args, **kwargs):
        raise URLError("no network (simulated)")

    monkeypatch.setattr(tvs, "probe", lambda url: None)                   # pretend the host answers
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    for name, where in (("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py")):
        with pytest.raises(DataError) as e:
            load_dataset(name, data_root=tmp_path, download=True)
        assert "Downloading it failed" in str(e.value) and "simulated" in str(e.value)
        assert str(tmp_path / where) in str(e.value)


def test_download_fetches_only_what_is_missing(tmp_path, monkeypatch):
    import torchvision.datasets.svhn as tv_svhn

    import explorer.data.torchvision_sets as tvs

    _write_svhn(tmp_path)
    trust(monkeypatch, "svhn", tmp_path)
    test_file = tmp_path / "test_32x32.mat"
    saved = test_file.read_bytes()
    test_file.unlink()
    fetched = []

    def fake_download(url, root, filename, md5):                          # stands in for the network
        fetched.append(filename)
        (Path(root) / filename).write_bytes(saved)

    monkeypatch.setattr(tvs, "probe", lambda url: None)
    monkeypatch.setattr(tv_svhn, "download_url", fake_download)
    ds = load_dataset("svhn", data_root=tmp_path, download=True)
    assert fetched == ["test_32x32.mat"] and ds.num_train == 7 and ds.num_val == 3


def test_unreachable_host_fails_fast(tmp_path, monkeypatch):
    import socket

    import explorer.data.torchvision_sets as tvs

    def refuse(address, timeout=None):
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", refuse)               # no packet leaves this test
    with pytest.raises(DataError) as e:
        load_dataset("svhn", data_root=tmp_path, download=True)
    assert "cannot reach ufldl.stanford.edu:80" in str(e.value) and "train_32x32.mat" in str(e.value)
    assert tvs.probe("https://example.invalid/x") is not None


def test_default_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_EXPLORER_DATA", str(tmp_path / "env-root"))
    assert data.default_data_root() == tmp_path / "env-root"
    with pytest.raises(DataError, match="env-root"):
        load_dataset("cifar10", download=False)


def test_unreadable_files_are_a_clear_error(tmp_path, monkeypatch):
    _write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    trust(monkeypatch, "cifar10", tmp_path)
    with pytest.raises(DataError, match="data_batch_3 is not a dataset pickle.*official files"):
        load_dataset("cifar10", data_root=tmp_path, download=False)


def test_labels_out_of_range_are_refused(tmp_path, monkeypatch):
    d = tmp_path / "cifar-100-python"
    _write_cifar100(tmp_path)
    _pickle(d / "test", {"fine_labels": [100], "coarse_labels": [0], "data": _cifar_rows(_cifar_images(1, 0))})
    trust(monkeypatch, "cifar100", tmp_path)
    with pytest.raises(DataError, match="labels outside 0..99"):
        load_dataset("cifar100", data_root=tmp_path, download=False)


# --- image folder --------------------------------------------------------------------------------

def _write_folder(root: Path, per_class: dict[str, int]) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, n in per_class.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = rng.integers(20, 90, size=2)
            colour = (200, 30, 30) if cls == "red" else (30, 30, 200)
            img = Image.new("RGB" if i % 3 else "L", (int(w), int(h)), colour if i % 3 else 128)
            img.save(root / cls / f"{i}.{'png' if i % 2 else 'jpg'}")


def test_image_folder(tmp_path):
    _write_folder(tmp_path, {"red": 6, "blue": 5})
    (tmp_path / "red" / "notes.txt").write_text("not an image")             # skipped: no image extension
    (tmp_path / "blue" / "broken.png").write_bytes(b"\x89PNG garbage")       # skipped with a note
    (tmp_path / "empty").mkdir()                                             # no images: not a class
    (tmp_path / ".ipynb_checkpoints").mkdir()                                # hidden: not a class
    _write_folder(tmp_path / ".ipynb_checkpoints", {"x": 1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset("folder", data_root=tmp_path, val_fraction=0.3)
    said = " ".join(str(w.message) for w in caught)
    assert "skipped 1 unreadable file(s) (broken.png)" in said and "ignored 1 sub-folder(s) with no images" in said
    assert all(w.filename == __file__ for w in caught)                    # reported at the caller
    assert ds.info.class_names == ("blue", "red") and ds.info.num_classes == 2
    assert ds.info.input_shape == (3, 64, 64) and "skipped 1 unreadable" in ds.info.description
    assert ds.num_train + ds.num_val == 11 and ds.num_val == 3
    assert ds.x_train.dtype == torch.uint8 and ds.x_train.shape[1:] == (3, 64, 64)
    x = torch.cat([ds.x_train, ds.x_val]).double()
    y = torch.cat([ds.y_train, ds.y_val])
    colourful = x[:, 0].mean(dim=(1, 2)) != x[:, 1].mean(dim=(1, 2))
    red = x[:, 0].mean(dim=(1, 2)) > x[:, 2].mean(dim=(1, 2))
    assert torch.equal(red[colourful], (y == 1)[colourful])                # colours stayed with their class
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = load_dataset("folder", data_root=tmp_path, image_size=16)
    assert small.info.input_shape == (3, 16, 16) and small.x_train.shape[1:] == (3, 16, 16)


def test_image_folder_cap(tmp_path, monkeypatch):
    _write_folder(tmp_path, {"red": 9, "blue": 9})
    monkeypatch.setattr(data, "MAX_FOLDER_IMAGES", 10)
    with pytest.warns(UserWarning, match="used 10 of 18 images"):
        ds = load_dataset("folder", data_root=tmp_path)
    assert ds.num_train + ds.num_val == 10
    assert torch.bincount(torch.cat([ds.y_train, ds.y_val])).tolist() == [5, 5]


@pytest.mark.parametrize("setup, words", [
    (lambda root: None, "does not exist"),
    (lambda root: root.mkdir(), "no class sub-folders"),
    (lambda root: _write_folder(root, {"red": 3}), "at least two class sub-folders"),
    (lambda root: (_write_folder(root, {"red": 3}), (root / "blue").mkdir(),
                   (root / "blue" / "a.txt").write_text("x")), "at least two class sub-folders"),
])
def test_unusable_folders_are_data_errors(tmp_path, setup, words):
    root = tmp_path / "imgs"
    setup(root)
    with pytest.raises(DataError, match=words) as e:
        load_dataset("folder", data_root=root)
    assert "one sub-folder per class" in str(e.value)


def test_folder_needs_a_root():
    with pytest.raises(DataError, match="needs a data root"):
        load_dataset("folder")


# --- augmentation ---------------------------------------------------------------------------------

def test_normalize():
    x = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)       # (1, 2, 1, 2)
    out = normalize(x, (0.5, 0.2), (0.5, 0.2))
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.tensor([[[[-1.0, 1.0]], [[0.0, 1.0]]]]))
    ds = load_dataset("shapes")
    z = normalize(ds.x_train, ds.mean, ds.std)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-3)
    assert torch.allclose(z.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    with pytest.raises(ValueError, match="channels"):
        normalize(x, (0.5,), (0.5,))


def test_random_crop_shifts_content_with_zero_padding():
    base = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4)        # 1..16, no zeros
    x = base.repeat(300, 2, 1, 1)                                           # (300, 2, 4, 4)
    g = torch.Generator().manual_seed(0)
    out = random_crop(x, 1, generator=g)
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = torch.nn.functional.pad(base, (1, 1, 1, 1))[0, 0]             # (6, 6)
    windows = {(oy, ox): padded[oy:oy + 4, ox:ox + 4] for oy in range(3) for ox in range(3)}
    seen = set()
    for img in out:
        match = [k for k, w in windows.items() if torch.equal(img[0], w)]
        assert len(match) == 1 and torch.equal(img[0], img[1])             # one shift, same for all channels
        seen.add(match[0])
    assert seen == set(windows)                                             # every offset 0..2p occurs
    # Offset (0, 0) moves the picture down and right by one: zero top row and left column.
    assert torch.equal(windows[(0, 0)], torch.tensor([[0, 0, 0, 0], [0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11.]]))
    again = random_crop(x, 1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert random_crop(x, 0) is x
    u8 = torch.randint(0, 256, (5, 3, 7, 9), dtype=torch.uint8)             # any dtype, non-square
    assert random_crop(u8, 3).shape == u8.shape and random_crop(u8, 3).dtype == torch.uint8
    with pytest.raises(ValueError):
        random_crop(x, -1)


def test_random_flip_flips_exactly_the_drawn_images():
    x = torch.randn(1000, 3, 5, 6)
    out = random_flip(x, generator=torch.Generator().manual_seed(7))
    chosen = torch.rand(1000, generator=torch.Generator().manual_seed(7)) < 0.5   # the same draws
    assert torch.equal(out[chosen], x[chosen].flip(-1)) and torch.equal(out[~chosen], x[~chosen])
    assert 400 < int(chosen.sum()) < 600
    assert torch.equal(out, random_flip(x, generator=torch.Generator().manual_seed(7)))


def test_augment_pipeline():
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    assert Augment()(x) is x and not Augment().enabled
    aug = Augment(crop_padding=2, flip=True)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)
    with pytest.raises(ValueError):
        Augment(crop_padding=-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_generator_drives_a_cuda_batch():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4).repeat(50, 1, 1, 1)
    aug = Augment(crop_padding=1, flip=True)
    on_gpu = aug(x.cuda(), torch.Generator().manual_seed(3))
    on_cpu = aug(x, torch.Generator().manual_seed(3))
    assert on_gpu.device.type == "cuda" and torch.equal(on_gpu.cpu(), on_cpu)
    z = normalize(x.to(torch.uint8).cuda(), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert z.device.type == "cuda"


# --- the mnist5k CSV parser (explorer.data.builtin.parse_small_ints) -----------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402

from explorer.data.builtin import parse_small_ints  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6).flatmap(lambda cols: st.lists(
    st.lists(st.integers(0, 999), min_size=cols, max_size=cols), min_size=1, max_size=6)), st.booleans())
def test_parse_small_ints_reads_what_loadtxt_reads(rows, trailing_newline):
    text = "\n".join(",".join(map(str, row)) for row in rows) + ("\n" if trailing_newline else "")
    got = parse_small_ints(text.encode(), (len(rows), len(rows[0])))
    assert got is not None and got.tolist() == rows


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(1, 4), st.integers(1, 4))
def test_parse_small_ints_declines_anything_else_without_raising(raw, n_rows, n_cols):
    got = parse_small_ints(raw, (n_rows, n_cols))
    if got is not None:  # then it is exactly such a table
        rows = raw.rstrip(b"\n").split(b"\n")
        assert [[int(v) for v in row.split(b",")] for row in rows] == got.tolist()
