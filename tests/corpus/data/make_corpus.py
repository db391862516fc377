"""Writes the hostile files in this folder (run once; the files are committed, < 100 KB in all).

    .venv/bin/python tests/corpus/data/make_corpus.py

Each file is refused by every data, upload and weights loader (tests/test_data_safety.py).
The code payloads only create the file named by $CNN_EXPLORER_TEST_MARKER, so a test can see
whether one ran; nothing else.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PAYLOAD = "import os; open(os.environ['CNN_EXPLORER_TEST_MARKER'], 'w').close()"


class Payload:
    """Unpickling this calls exec(PAYLOAD)."""

    def __reduce__(self):
        return (exec, (PAYLOAD,))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb() -> bytes:
    """A valid PNG header claiming 100,000 x 100,000 RGB pixels (30 GB decoded), with CRCs."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * 100_000) * 4, 9)     # the first 4 rows, all black
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")


def small_image(fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (24, 24), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


def gif_huge_screen() -> bytes:
    """GIF89a whose logical screen and only frame claim 65,535 x 65,535 pixels (4.3 G)."""
    header = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x08\x02\x4c\x01\x00"
    return header + frame + b"\x3b"


def bmp_huge() -> bytes:
    """A BMP header claiming 50,000 x 50,000 24-bit pixels, with 16 bytes of data."""
    info = struct.pack("<IiiHHIIiiII", 40, 50_000, 50_000, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 14 + 40) + info + b"\x00" * 16


def torch_payload(zip_format: bool) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "bias": Payload()}, buf, _use_new_zipfile_serialization=zip_format)
    return buf.getvalue()


def safetensors_header(header: dict | None, claimed: int | None = None, tail: bytes = b"") -> bytes:
    text = json.dumps(header).encode() if header is not None else b"{"
    return struct.pack("<Q", claimed if claimed is not None else len(text)) + text + tail


def idx(magic: bytes, dims: tuple[int, ...], payload: bytes) -> bytes:
    return magic + struct.pack(f">{len(dims)}I", *dims) + payload


def files() -> dict[str, bytes]:
    png, jpg = small_image("PNG"), small_image("JPEG")
    return {
        "malicious.pkl": pickle.dumps({"data": Payload(), "labels": [0]}, protocol=2),
        "malicious_zip.pt": torch_payload(True),
        "malicious_legacy.pt": torch_payload(False),
        "cifar_float_data.pkl": pickle.dumps({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, 2),
        "cifar_object_array.pkl": pickle.dumps({"data": np.array([1, "x"], dtype=object), "labels": [0]}, 2),
        "png_bomb.png": png_bomb(),
        "gif_huge_screen.gif": gif_huge_screen(),
        "bmp_huge.bmp": bmp_huge(),
        "truncated.png": png[:60],
        "truncated.jpg": jpg[: len(jpg) // 3],
        "polyglot.gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00" + torch_payload(True),
        "idx_claims_2e31_items.idx": idx(b"\x00\x00\x08\x03", (2**31, 28, 28), b"\x00" * 16),
        "idx_float_type.idx": idx(b"\x00\x00\x0d\x01", (2,), b"\x00" * 8),
        "idx_truncated_header.idx": b"\x00\x00\x08\x03\x00\x00\x00\x01",
        "safetensors_huge_header.safetensors": safetensors_header({}, claimed=2**40),
        "safetensors_bad_offsets.safetensors": safetensors_header(
            {"w": {"dtype": "F32", "shape": [100_000, 1_000], "data_offsets": [0, 400_000_000]}}, tail=b"\x00" * 8),
        "safetensors_broken_json.safetensors": safetensors_header(None),
        "empty.bin": b"",
        "text.txt": b"hello, this is not a dataset\n",
    }


if __name__ == "__main__":
    for name, data in files().items():
        (HERE / name).write_bytes(data)
    print(f"{len(files())} files, {sum(map(len, files().values())):,} bytes")
