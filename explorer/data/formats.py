"""Safe readers of the dataset file formats a visitor's data folder can hold. No streamlit here.

Owns: checksum verification against torchvision's published MD5s, the restricted unpickler
for CIFAR batches, and the MNIST idx parser. Every reader raises DataError (explorer.errors)
for any bad input, never another exception.

Why: a CIFAR "python batch" is a pickle, and unpickling runs whatever the file says (a
`__reduce__` that calls os.system). So a pickle is read only when

1. its MD5 equals the one torchvision publishes for the official file
   (torchvision.datasets.CIFAR10.train_list / test_list / meta, CIFAR100 likewise; read from
   torchvision at run time, not copied), checked before a single byte is unpickled, and
2. even then with an unpickler that can build nothing but numpy arrays and builtins
   (defence in depth: a checksum table can be patched, an MD5 collision can be made).

SVHN's .mat files go through scipy.io.loadmat, which does not unpickle, but can inflate
zlib-compressed elements to any size; they are checksum-verified the same way. MNIST's idx
files are a 4-byte magic, big-endian uint32 sizes and raw bytes: read_idx checks that the sizes
the header claims match the file's length before anything is allocated (torchvision publishes
MD5s only for the .gz archives, not the raw files, so there is no checksum to check there).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import math
import pickle
import struct
from pathlib import Path

import numpy as np

from explorer.errors import DataError

# MNIST's largest raw file, train-images-idx3-ubyte, is 60,000 x 28 x 28 + 16 = 47,040,016 bytes;
# anything over 64 MiB is not an MNIST-style file (also caps unpacking a .gz: a gzip bomb).
MAX_IDX_BYTES = 64 * 2**20
# A CIFAR python batch is 10,000 x 3,072 bytes plus labels, about 31 MB (CIFAR-100's "train":
# 50,000 images, about 155 MB); refuse anything above 256 MiB before reading it.
MAX_PICKLE_BYTES = 256 * 2**20
IDX_UINT8 = 0x08               # the idx type code of unsigned bytes (http://yann.lecun.com/exdb/mnist/)
CIFAR_ROW = 3 * 32 * 32        # bytes per CIFAR image: 1024 red, then 1024 green, 1024 blue


def file_md5(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksums(root: Path, expected: dict[str, str], title: str, source: str) -> None:
    """DataError unless every file root/REL has the MD5 expected[REL]; reads nothing else."""
    for rel, md5 in expected.items():
        path = root / rel
        try:
            actual = file_md5(path)
        except OSError as e:
            raise DataError(f"{title} file {path} cannot be read ({e.strerror or e}). Replace it with "
                            f"the official file ({source}).") from None
        if actual != md5:
            raise DataError(f"{title} file {path} is not the official release (its MD5 is {actual}, the "
                            f"published one is {md5}), so it is not read: such files can run code when "
                            f"loaded. Delete it (it is then downloaded again) or replace it with the "
                            f"official file ({source}).")


# --- the restricted unpickler -------------------------------------------------------------------

def _latin1_encode(text, encoding="latin1"):
    """What protocol-2 pickles of bytes call (_codecs.encode(str, 'latin1')); nothing else."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("refused: _codecs.encode other than str -> latin1 bytes")
    return codecs.encode(text, "latin1")


# Element types an array in a dataset pickle may have: plain numbers (no objects, no records).
PLAIN_DTYPES = frozenset({"b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"})
MAX_NESTING = 32      # containers inside containers; a CIFAR batch is a dict of lists and one array


def _refuse(why: str):
    raise pickle.UnpicklingError(f"refused: {why}")


class _DtypeStub:
    """Stands in for numpy.dtype(name, align, copy) + its BUILD state; only byte order is kept."""

    def __init__(self, name=None, align=False, copy=True):
        if name not in PLAIN_DTYPES:
            _refuse(f"a numpy array of element type {str(name)[:20]!r}")
        self.name, self.order = name, "|"

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            _refuse("a malformed numpy dtype")
        self.order = state[1]

    def resolve(self) -> np.dtype:
        dtype = np.dtype(self.name)
        return dtype.newbyteorder(self.order) if self.order in "<>" else dtype


class _ArrayStub:
    """Stands in for numpy's _reconstruct(ndarray, ...) + BUILD; numpy's own __setstate__ never
    sees the state (malformed states can leave it with a broken array), np.frombuffer does."""

    def __init__(self, cls=None, shape=None, typecode=None):
        if cls is not _NDARRAY:
            _refuse("an array of a class other than numpy.ndarray")
        self.array: np.ndarray | None = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            _refuse("a malformed numpy array")
        shape, dtype, fortran, raw = state[-4:]
        if not (isinstance(shape, tuple) and len(shape) <= 8 and all(type(d) is int and 0 <= d < 2**40 for d in shape)
                and isinstance(dtype, _DtypeStub) and type(fortran) is bool and isinstance(raw, (str, bytes))):
            _refuse("a malformed numpy array")
        raw = raw.encode("latin1") if isinstance(raw, str) else raw    # Python 2 pickles hold str
        dtype = dtype.resolve()
        if len(raw) != math.prod(shape) * dtype.itemsize:
            _refuse(f"an array of shape {shape} with {len(raw):,} bytes of data")
        self.array = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")


_NDARRAY = object()          # what find_class gives for numpy.ndarray: only _ArrayStub accepts it


def _allowed() -> dict[tuple[str, str], object]:
    """(module, name) -> object for the only globals a CIFAR batch needs (numpy arrays)."""
    out: dict[tuple[str, str], object] = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _DtypeStub,
                                          ("_codecs", "encode"): _latin1_encode}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):   # numpy 1.x and 2.x names
        out[(module, "_reconstruct")] = _ArrayStub
    return out


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str):
        found = _allowed().get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refused to load the global {module}.{name}")
        return found

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused: persistent ids")


def _unstub(obj, depth: int = 0):
    """The unpickled object with every _ArrayStub replaced by its array."""
    if depth > MAX_NESTING:
        _refuse(f"containers nested more than {MAX_NESTING} deep")
    if isinstance(obj, _ArrayStub):
        return obj.array if obj.array is not None else _refuse("a numpy array without data")
    if isinstance(obj, _DtypeStub):
        _refuse("a bare numpy dtype")
    if isinstance(obj, dict):
        return {_unstub(k, depth + 1): _unstub(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unstub(v, depth + 1) for v in obj)
    return obj


def restricted_unpickle(data: bytes, what: str) -> object:
    """Unpickle `data` (Python 2 strings as latin-1) allowing only numpy arrays and builtins;
    DataError naming `what` for anything else, including a malformed pickle."""
    try:
        return _unstub(_NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load())
    except RecursionError:
        raise DataError(f"{what} is nested too deeply to be a dataset file.") from None
    except Exception as e:  # noqa: BLE001 - any malformed pickle is the same user error
        raise DataError(f"{what} is not a dataset pickle that can be read safely ({type(e).__name__}: "
                        f"{_short(e)}): it is not the official file.") from None


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _read_capped(path: Path, limit: int, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise DataError(f"{what} {path} is {size:,} bytes, more than the {limit:,} such a file can be.")
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{what} {path} cannot be read ({e.strerror or e}).") from None


def read_verified(path: Path, md5: str | None, limit: int, what: str) -> bytes:
    """The bytes of a file, read once; DataError unless their MD5 is `md5` (None: no check). Checking
    the bytes that are then parsed leaves no gap for the file to be swapped after verify_checksums."""
    data = _read_capped(path, limit, what)
    if md5 is not None and hashlib.md5(data, usedforsecurity=False).hexdigest() != md5:
        raise DataError(f"{what} {path} changed after its checksum was checked, or is not the official file.")
    return data


def read_cifar_batch(path: Path, label_key: str, md5: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x uint8 (N, 3, 32, 32), y int64 (N,)) of one CIFAR python batch file (parse_cifar_batch).

    label_key: "labels" (CIFAR-10) or "fine_labels" (CIFAR-100). md5: the published checksum,
    checked on the very bytes that are unpickled (call verify_checksums first to fail fast)."""
    data = read_verified(path, md5, MAX_PICKLE_BYTES, "CIFAR batch")
    return parse_cifar_batch(data, f"CIFAR batch {path}", label_key)


def parse_cifar_batch(data: bytes, what: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of a CIFAR python batch, restricted-unpickled and checked: a dict with 'data',
    uint8 rows of 3,072 bytes, and `label_key`, a list of as many whole numbers."""
    entry = restricted_unpickle(data, what)
    data = entry.get("data") if isinstance(entry, dict) else None
    labels = entry.get(label_key) if isinstance(entry, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR_ROW:
        raise DataError(f"{what} holds no 'data' array of uint8 rows of {CIFAR_ROW} bytes: not the official file.")
    if not isinstance(labels, list) or len(labels) != len(data) or \
            not all(type(v) is int and 0 <= v < 2**31 for v in labels):
        raise DataError(f"{what} holds no '{label_key}' list of {len(data)} whole numbers: not the official file.")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)   # rows are R, G, B planes


# --- MNIST idx -------------------------------------------------------------------------------------

def parse_idx(data: bytes, what: str) -> np.ndarray:
    """The uint8 array of an idx file's bytes: magic 00 00 08 NDIM, NDIM big-endian uint32 sizes,
    then exactly prod(sizes) bytes. DataError when the header and the length disagree (nothing is
    allocated from the header's claims: the array is a view of `data`)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{what} is not an idx file (it must start with two zero bytes).")
    if data[2] != IDX_UINT8:
        raise DataError(f"{what} holds idx type 0x{data[2]:02x}; only unsigned bytes (0x08) are MNIST-style.")
    ndim = data[3]
    if not 1 <= ndim <= 3:
        raise DataError(f"{what} claims {ndim} dimensions; MNIST-style files have 1 (labels) or 3 (images).")
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DataError(f"{what} is truncated inside its header.")
    dims = struct.unpack(f">{ndim}I", data[4:start])
    need = 1
    for d in dims:
        need *= d            # Python ints: no overflow however large the claim
    if need != len(data) - start:
        raise DataError(f"{what} claims {' x '.join(map(str, dims))} = {need:,} bytes of data but holds "
                        f"{len(data) - start:,}: it is truncated or not an idx file.")
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(dims)


def read_idx(path: Path) -> np.ndarray:
    """parse_idx of a file, refusing files over MAX_IDX_BYTES before reading them."""
    return parse_idx(_read_capped(path, MAX_IDX_BYTES, "idx file"), f"idx file {path}")


__all__ = ["MAX_IDX_BYTES", "MAX_PICKLE_BYTES", "file_md5", "verify_checksums", "restricted_unpickle",
           "read_verified", "read_cifar_batch", "parse_cifar_batch", "parse_idx", "read_idx"]
