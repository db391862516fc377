"""The shared server's data side (issue 9): nothing a visitor supplies is unpickled, data is read
only under the allowed roots, folder scans stay inside their folder, and every loader a visitor
can reach raises a UserError subclass for any bad input (fuzzed, and a committed corpus of
hostile files in tests/corpus/data, written by its make_corpus.py).

Payloads in these tests only create the file named by $CNN_EXPLORER_TEST_MARKER, so each test
checks that it never appears; each also checks that the payload does run when unpickled plainly.
"""

import io
import json
import os
import pickle
import re
import shutil
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import explorer.data as data
import explorer.data.roots as roots
import explorer.data.torchvision_sets as tvs
from explorer.data.formats import (file_md5, parse_cifar_batch, parse_idx, read_cifar_batch, read_idx,
                                   restricted_unpickle)
from explorer.data.roots import resolve_data_root, scan_image_folder
from explorer.errors import DataError, RunError, UserError
from explorer.interpret.images import ImageError, decode_image
from explorer.training.checkpoint import load_state_dict_file

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "corpus" / "data"
HOSTILE = sorted(p for p in CORPUS.iterdir() if p.suffix != ".py")

# Hypothesis cases per fuzzed loader (the CI profile in conftest.py derandomises them).
FUZZ_CASES = {
    "decode_random_bytes": 1500,
    "decode_mutated_image": 1200,       # per format: PNG, JPEG, GIF
    "idx_header": 2500,
    "unpickle_mutated": 1500,
    "checkpoint_mutated": 800,          # per format: torch zip, safetensors
    "safetensors_header": 500,
    "image_folder_names": 60,
}


@pytest.fixture(autouse=True)
def marker(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "PAYLOAD_RAN"
    monkeypatch.setenv("CNN_EXPLORER_TEST_MARKER", str(path))
    data.clear_cache()
    yield path
    data.clear_cache()


class Payload:
    def __reduce__(self):
        return (exec, ("import os; open(os.environ['CNN_EXPLORER_TEST_MARKER'], 'w').close()",))


def test_the_payload_is_real(marker):
    pickle.loads((CORPUS / "malicious.pkl").read_bytes())
    assert marker.exists()        # so "the marker never appears" below means the loaders refused it


# --- CIFAR pickles: checksums first, then a restricted unpickler --------------------------------------

CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta")


def _benign_batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return pickle.dumps({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         "labels": [int(v) for v in rng.integers(0, 10, n)]}, protocol=2)


def _fake_cifar10(root: Path, poisoned: str = "data_batch_1") -> None:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for i, f in enumerate(CIFAR10_FILES):
        d.joinpath(f).write_bytes(pickle.dumps({"data": Payload(), "labels": [0]}, protocol=2) if f == poisoned
                                  else _benign_batch(3, i))


def _trust_own_files(monkeypatch, name: str, root: Path) -> None:
    own = {rel: file_md5(root / rel) for rel in tvs.expected_checksums(name)}
    monkeypatch.setattr(tvs, "expected_checksums", lambda n: own)


def test_fake_cifar_batches_are_refused_before_unpickling(tmp_path, marker, monkeypatch):
    _fake_cifar10(tmp_path)
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("pickle.load was called"))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("pickle.loads was called"))
    with pytest.raises(DataError, match=r"data_batch_1 is not the official release.*published one is c99cafc1"):
        data.load_dataset("cifar10", data_root=tmp_path, download=False)
    assert not marker.exists()


def test_restricted_unpickler_refuses_a_payload_even_when_checksums_match(tmp_path, marker, monkeypatch):
    _fake_cifar10(tmp_path, poisoned="test_batch")
    _trust_own_files(monkeypatch, "cifar10", tmp_path)       # as if an MD5 collision had been made
    with pytest.raises(DataError, match=r"test_batch is not a dataset pickle.*refused to load the global "
                                        r"(__builtin__|builtins)\.exec"):
        data.load_dataset("cifar10", data_root=tmp_path, download=False)
    assert not marker.exists()


def test_correctly_checksummed_cifar_loads(tmp_path, monkeypatch):
    _fake_cifar10(tmp_path, poisoned="")
    _trust_own_files(monkeypatch, "cifar10", tmp_path)
    ds = data.load_dataset("cifar10", data_root=tmp_path, download=False)
    first = pickle.loads(_benign_batch(3, 0))                   # our own benign file: plain pickle is fine
    assert ds.num_train == 15 and ds.num_val == 3
    assert np.array_equal(ds.x_train[:3].numpy().reshape(3, 3072), first["data"])
    assert ds.y_train[:3].tolist() == first["labels"]
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    with pytest.raises(DataError, match="changed after its checksum was checked"):   # the bytes read are checked
        read_cifar_batch(batch, "labels", md5="0" * 32)
    assert read_cifar_batch(batch, "labels", md5=file_md5(batch))[1].tolist() == first["labels"]


def test_batches_meta_is_checksummed_but_never_unpickled(tmp_path, marker, monkeypatch):
    _fake_cifar10(tmp_path, poisoned="batches.meta")
    _trust_own_files(monkeypatch, "cifar10", tmp_path)
    assert data.load_dataset("cifar10", data_root=tmp_path, download=False).num_train == 15
    assert not marker.exists()


def test_svhn_mat_is_checksummed_before_loadmat(tmp_path, monkeypatch):
    import scipy.io

    for split in ("train", "test"):
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8),
                                                           "y": np.array([[1], [10]], np.uint8)})
    monkeypatch.setattr(scipy.io, "loadmat", lambda *a, **k: pytest.fail("loadmat read an unverified file"))
    with pytest.raises(DataError, match="train_32x32.mat is not the official release"):
        data.load_dataset("svhn", data_root=tmp_path, download=False)


def test_unpickler_allows_numpy_arrays_from_python2_style_pickles():
    arr = np.arange(3072 * 2, dtype=np.uint8).reshape(2, 3072) % 251
    for protocol in (0, 2, 4):
        out = restricted_unpickle(pickle.dumps({"data": arr, "labels": [1, 2], "name": "x"}, protocol), "t")
        assert np.array_equal(out["data"], arr) and out["labels"] == [1, 2] and out["name"] == "x"


@pytest.mark.parametrize("obj", [Payload(), {"a": [Payload()]}, os.system, np.array([1, "x"], dtype=object),
                                 io.BytesIO(b"x")])
def test_unpickler_refuses_everything_else(obj, marker):
    with pytest.raises(DataError, match="not a dataset pickle"):
        restricted_unpickle(pickle.dumps(obj, protocol=2), "t")
    assert not marker.exists()


# --- weights files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("zip_format", [True, False])
def test_malicious_pt_is_refused_and_never_runs(tmp_path, marker, zip_format):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.ones(2), "evil": Payload()}, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(RunError, match="cannot be loaded safely"):
        load_state_dict_file(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)                          # what an unsafe loader would have done
    assert marker.exists()


def test_a_poisoned_torch_hub_cache_file_is_refused(tmp_path, marker, monkeypatch):
    import torchvision.models as tvm

    from explorer.core.weights import torchvision_state_dict

    weights = tvm.ResNet18_Weights.IMAGENET1K_V1
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cached = tmp_path / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    torch.save({"fc.weight": torch.zeros(1), "evil": Payload()}, cached)     # found in the cache: no download
    with pytest.raises(RunError, match="could not be loaded"):
        torchvision_state_dict(weights)
    assert not marker.exists()


def test_state_dicts_load_from_pt_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    state = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.randn(4)}
    torch.save(state, tmp_path / "a.pt")
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "b.pth")
    save_file(state, str(tmp_path / "c.safetensors"))
    for name in ("a.pt", "b.pth", "c.safetensors"):
        loaded = load_state_dict_file(tmp_path / name)
        assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(RunError, match="not a state dict"):
        load_state_dict_file(tmp_path / "list.pt")


def test_no_unsafe_loading_anywhere_in_the_app():
    """Every torch.load says weights_only=True; nothing calls pickle.load(s) or np.load with pickles."""
    offenders = []
    for folder in ("explorer", "ui", "pages"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            for call in re.finditer(r"torch\.load\((.*?)\)\n", text, flags=re.S):
                if "weights_only=True" not in call.group(1):
                    offenders.append(f"{path}: torch.load without weights_only=True")
            for bad in ("pickle.load(", "pickle.loads(", "allow_pickle=True", "dill.", "joblib.load("):
                if bad in text:
                    offenders.append(f"{path}: {bad}")
    assert not offenders, offenders


# --- data roots ----------------------------------------------------------------------------------------

def test_typed_folders_must_resolve_under_an_allowed_root(tmp_path):
    allowed = tmp_path / "data"
    (allowed / "cifar").mkdir(parents=True)
    (allowed / "to_etc").symlink_to("/etc")
    (tmp_path / "outside").mkdir()
    assert resolve_data_root(str(allowed / "cifar"), [allowed]) == allowed / "cifar"
    assert resolve_data_root(f"  {allowed}/new/../cifar  ", [allowed]) == allowed / "cifar"
    assert resolve_data_root(str(allowed / "not-yet"), [allowed]) == allowed / "not-yet"     # a download target
    for typed in ("/etc", str(allowed / ".." / "outside"), str(allowed / "to_etc"), str(allowed / "to_etc" / "ssl"),
                  "relative/path", "~"):
        with pytest.raises(DataError, match=re.escape(str(allowed)) + ".*CNN_EXPLORER_DATA_ROOTS"):
            resolve_data_root(typed, [allowed])
    for typed in ("", "   ", "a\x00b", "x" * 5000):
        with pytest.raises(DataError):
            resolve_data_root(typed, [allowed])


def test_allowed_roots_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_EXPLORER_DATA", str(tmp_path / "default"))
    monkeypatch.delenv(roots.ENV_ROOTS, raising=False)
    assert roots.allowed_roots() == [tmp_path / "default", roots.PROJECT_DATA,
                                     Path.home().resolve() / ".cache" / "cnn-explorer" / "data"]
    monkeypatch.setenv(roots.ENV_ROOTS, os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")]))
    assert roots.allowed_roots() == [tmp_path / "default", tmp_path / "a", tmp_path / "b"]
    assert resolve_data_root(str(tmp_path / "b" / "imgs")) == tmp_path / "b" / "imgs"
    with pytest.raises(DataError, match="outside"):
        resolve_data_root(str(roots.PROJECT_DATA))


# --- folder scans ----------------------------------------------------------------------------------------

def _png(colour=(200, 30, 30), size=(12, 10)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_scans_do_not_follow_links_out_of_the_folder_or_loop(tmp_path):
    root = tmp_path / "imgs"
    for cls in ("cat", "dog"):
        (root / cls / "sub").mkdir(parents=True)
        (root / cls / "sub" / f"{cls}.png").write_bytes(_png())
    (root / "cat" / "loop").symlink_to(root)                        # a folder link loop
    (root / "cat" / "sub" / "self").symlink_to(root / "cat" / "sub")
    (root / "dog" / "passwd.png").symlink_to("/etc/passwd")          # a file link out of the root
    (root / "etc").symlink_to("/etc")                                # a class link out of the root
    (root / "dog" / "twin.png").symlink_to(root / "cat" / "sub" / "cat.png")   # a file link inside: kept
    names, files = scan_image_folder(root, tvs.IMAGE_EXTENSIONS)
    assert names == ["cat", "dog"]
    assert files == [[str(root / "cat" / "sub" / "cat.png")],
                     [str(root / "cat" / "sub" / "cat.png"), str(root / "dog" / "sub" / "dog.png")]]
    assert data.load_dataset("folder", data_root=root, val_fraction=0.34).info.class_names == ("cat", "dog")


def test_scans_stop_at_the_entry_and_time_limits(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(150):
            (root / cls / f"{i}.png").write_bytes(b"")
    monkeypatch.setattr(roots, "MAX_SCAN_ENTRIES", 100)
    with pytest.raises(DataError, match="more than 100 files and folders.*smaller folder"):
        data.load_dataset("folder", data_root=root)
    monkeypatch.setattr(roots, "MAX_SCAN_ENTRIES", 1000)
    monkeypatch.setattr(roots, "MAX_SCAN_SECONDS", 0.0)              # every clock reading is past it
    with pytest.raises(DataError, match="took more than 0 s.*smaller folder"):
        data.load_dataset("folder", data_root=root)


def test_folder_images_over_the_pixel_limit_are_skipped(tmp_path):
    root = tmp_path / "imgs"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        (root / cls / "ok.png").write_bytes(_png())
        shutil.copy(CORPUS / "png_bomb.png", root / cls / "bomb.png")
    with pytest.warns(UserWarning, match="skipped 2 unreadable file"):
        ds = data.load_dataset("folder", data_root=root, val_fraction=0.5)
    assert ds.num_train + ds.num_val == 2


def test_a_gzip_bomb_next_to_mnist_is_not_unpacked(tmp_path, monkeypatch):
    import gzip

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00" * 5000)
    monkeypatch.setattr(tvs, "MAX_IDX_BYTES", 1000)
    with pytest.raises(DataError, match="unpacks to more than 1,000 bytes"):
        data.load_dataset("mnist", data_root=tmp_path, download=False)
    assert sorted(p.name for p in raw.iterdir()) == ["train-images-idx3-ubyte.gz"]   # no .part left


def test_mnist_with_a_huge_claim_in_a_tiny_file_is_refused(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in tvs.MNIST_FILES:
        shutil.copy(CORPUS / "idx_claims_2e31_items.idx", raw / name)
    with pytest.raises(DataError, match="claims 2147483648 x 28 x 28"):
        data.load_dataset("mnist", data_root=tmp_path, download=False)


# --- the hostile corpus -------------------------------------------------------------------------------

def test_corpus_is_small():
    assert len(HOSTILE) >= 15 and sum(p.stat().st_size for p in HOSTILE) < 100_000


def _loaders(path: Path, work: Path):
    yield "decode_image", lambda: decode_image(path.read_bytes(), 3, (16, 16))
    yield "read_idx", lambda: read_idx(path)
    yield "read_cifar_batch", lambda: read_cifar_batch(path, "labels")
    for suffix in (".pt", ".safetensors"):
        target = work / f"weights{suffix}"
        yield f"weights{suffix}", lambda t=target: (shutil.copy(path, t), load_state_dict_file(t))
    folder = work / "folder"

    def image_folder():
        for cls in ("a", "b"):
            (folder / cls).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / cls / "x.png")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data.load_dataset("folder", data_root=folder)
    yield "image folder", image_folder


@pytest.mark.parametrize("path", HOSTILE, ids=[p.name for p in HOSTILE])
def test_every_loader_refuses_every_hostile_file(path, tmp_path, marker):
    for name, load in _loaders(path, tmp_path):
        with pytest.raises(UserError):
            load()
        assert not marker.exists(), f"{name} ran the payload of {path.name}"


def test_cifar_loader_refuses_every_hostile_file_even_with_its_checksum(tmp_path, marker, monkeypatch):
    _fake_cifar10(tmp_path, poisoned="")
    for path in HOSTILE:
        shutil.copy(path, tmp_path / "cifar-10-batches-py" / "data_batch_2")
        _trust_own_files(monkeypatch, "cifar10", tmp_path)
        data.clear_cache()
        with pytest.raises(DataError):
            data.load_dataset("cifar10", data_root=tmp_path, download=False)
    assert not marker.exists()


# --- fuzzing ---------------------------------------------------------------------------------------

@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """seed with 1-8 random edits: overwrite, insert, delete or truncate."""
    out = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(("set", "insert", "delete", "truncate")))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "set" and out:
            out[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del out[at:at + draw(st.integers(1, 16))]
        else:
            del out[at:]
    return bytes(out)


def _image(fmt: str) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


SEEDS = {fmt: _image(fmt) for fmt in ("PNG", "JPEG", "GIF")}


def _decodes_or_refuses(blob: bytes) -> None:
    try:
        x = decode_image(blob, 3, (16, 16))
    except ImageError:
        return
    assert x.shape == (3, 16, 16) and x.dtype == torch.uint8


@settings(max_examples=FUZZ_CASES["decode_random_bytes"])
@given(st.one_of(st.binary(max_size=512), st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a",
                                                          b"BM", b"RIFF"]).flatmap(
    lambda magic: st.binary(max_size=256).map(lambda tail: magic + tail))))
def test_fuzz_decode_image_random_bytes(blob):
    _decodes_or_refuses(blob)


@pytest.mark.parametrize("fmt", list(SEEDS))
@settings(max_examples=FUZZ_CASES["decode_mutated_image"])
@given(source=st.data())
def test_fuzz_decode_image_mutated(fmt, source):
    _decodes_or_refuses(source.draw(mutated(SEEDS[fmt])))


@settings(max_examples=FUZZ_CASES["idx_header"])
@given(magic=st.one_of(st.just(b"\x00\x00\x08"), st.binary(min_size=0, max_size=3)),
       ndim=st.integers(0, 255), dims=st.lists(st.one_of(st.integers(0, 8), st.integers(0, 2**32 - 1)), max_size=6),
       payload=st.binary(max_size=64), cut=st.integers(0, 40))
def test_fuzz_idx_headers(magic, ndim, dims, payload, cut):
    header = magic + bytes([ndim]) + b"".join(struct.pack(">I", d) for d in dims)
    blob = header[:len(header) - cut % (len(header) + 1)] + payload
    try:
        arr = parse_idx(blob, "fuzz")
    except DataError:
        return
    assert arr.dtype == np.uint8 and arr.nbytes == len(blob) - 4 - 4 * arr.ndim   # a view: nothing allocated
    assert int(np.prod(arr.shape, dtype=object)) == arr.nbytes


@settings(max_examples=FUZZ_CASES["idx_header"] // 3)
@given(dims=st.lists(st.integers(0, 5), min_size=1, max_size=3))
def test_fuzz_consistent_idx_files_parse(dims):
    n = int(np.prod(dims))
    blob = bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) \
        + bytes(i % 256 for i in range(n))
    arr = parse_idx(blob, "fuzz")
    assert arr.shape == tuple(dims) and arr.reshape(-1).tolist() == [i % 256 for i in range(n)]


CIFAR_SEED = pickle.dumps({"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), "labels": [3, 7],
                           "batch_label": "fuzz", "filenames": ["a.png", "b.png"]}, protocol=2)


@settings(max_examples=FUZZ_CASES["unpickle_mutated"])
@given(mutated(CIFAR_SEED))
def test_fuzz_restricted_unpickler(blob):
    # Before arrays were built with np.frombuffer from checked states, numpy's own __setstate__
    # on mutated states printed "get_clear_loop not set" (a half-built array) and once crashed.
    try:
        x, y = parse_cifar_batch(blob, "fuzz", "labels")
    except DataError:
        return
    assert x.dtype == np.uint8 and x.shape[1:] == (3, 32, 32) and len(x) == len(y)


def _state_dict_bytes(kind: str) -> bytes:
    state = {"conv.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2), "conv.bias": torch.ones(2)}
    if kind == ".safetensors":
        from safetensors.torch import save
        return save(state)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


WEIGHT_SEEDS = {suffix: _state_dict_bytes(suffix) for suffix in (".pt", ".safetensors")}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One folder for the fuzzed files (rewritten in place: a new folder per case is slow)."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("suffix", list(WEIGHT_SEEDS))
@settings(max_examples=FUZZ_CASES["checkpoint_mutated"])
@given(source=st.data())
def test_fuzz_weights_files(suffix, source, scratch):
    path = scratch / f"w{suffix}"
    path.write_bytes(source.draw(mutated(WEIGHT_SEEDS[suffix])))
    try:
        state = load_state_dict_file(path)
    except RunError:
        return
    assert all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())


@settings(max_examples=FUZZ_CASES["safetensors_header"])
@given(header=st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64) | st.text(max_size=8),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids,
                                                                                     max_size=4), max_leaves=12),
       claimed=st.one_of(st.none(), st.integers(0, 2**64 - 1)), tail=st.binary(max_size=32))
def test_fuzz_safetensors_headers(header, claimed, tail, scratch):
    text = json.dumps(header).encode()
    path = scratch / "h.safetensors"
    path.write_bytes(struct.pack("<Q", len(text) if claimed is None else claimed) + text + tail)
    try:
        state = load_state_dict_file(path)
    except RunError:
        return
    assert all(isinstance(v, torch.Tensor) for v in state.values())


NAME = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1,
               max_size=30).filter(lambda s: s not in (".", "..") and len(s.encode()) < 200)


@settings(max_examples=FUZZ_CASES["image_folder_names"])
@given(classes=st.lists(st.tuples(NAME, st.lists(st.tuples(NAME, st.sampled_from(("png", "jpg", "PNG", "txt", "")),
                                                           st.sampled_from(("png", "garbage", "empty"))),
                                                 max_size=3)), max_size=4, unique_by=lambda c: c[0]))
def test_fuzz_image_folders_with_odd_names(classes):
    blobs = {"png": _png(), "garbage": b"\x89PNG\r\n\x1a\nnot really", "empty": b""}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "imgs"
        root.mkdir()
        for cls, entries in classes:
            (root / cls).mkdir(exist_ok=True)
            for stem, ext, kind in entries:
                (root / cls / (f"{stem}.{ext}" if ext else stem)).write_bytes(blobs[kind])
        data.clear_cache()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = data.load_dataset("folder", data_root=root, val_fraction=0.5)
        except DataError:
            return
        assert ds.info.num_classes >= 2 and ds.x_train.shape[1:] == (3, 64, 64)
