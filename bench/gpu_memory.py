"""Predicted training memory against what CUDA measured, for a few presets (needs a CUDA GPU).

Each case is a real one-epoch run of explorer's loop (bf16 autocast, channels_last, cudnn
benchmark) on the GPU, in this process, one after another. The prediction is the run plan's
training memory (weights, gradients, optimizer state and the activations kept for the backward
pass at the batch size: explorer.core.analysis, the Build page's breakdown); the measurement is
torch.cuda.max_memory_allocated over the run, which the loop writes into summary.json. The
measurement also holds what the prediction leaves out: the dataset itself (uint8 images kept on
the GPU, printed beside), cuDNN workspaces and the allocator's rounding.

    .venv/bin/python bench/gpu_memory.py [--epochs 1] [--max-seconds 60]
Prints one row per case: predicted, measured, measured / predicted. Exits 2 without a CUDA GPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

CASES = [  # (preset, dataset, batch size): small to large activations, with and without batch norm
    ("lenet5", "mnist5k", 128),
    ("resnet18", "shapes", 128),
    ("mobilenet_v2", "shapes", 128),
    ("densenet121", "shapes", 64),
    ("resnet50", "shapes", 64),
    ("vgg16", "mnist5k", 64),
]


def measure(preset: str, dataset: str, batch: int, epochs: int, max_seconds: float) -> dict:
    """The run's summary (predicted_train_memory_bytes, peak_memory_bytes, ...) and the bytes of
    its images on the GPU."""
    from explorer.core.presets import load_preset
    from explorer.data import load_dataset
    from explorer.search.recipes import recipe_config
    from explorer.training.loop import train

    cfg = recipe_config(preset, dataset).with_changes(epochs=epochs, batch_size=batch, device="cuda",
                                                      max_seconds=max_seconds)
    torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(load_preset(preset), cfg, Path(tmp) / "run")
    data = load_dataset(dataset)
    summary["dataset_bytes"] = data.x_train.numel() + data.x_val.numel()   # uint8: one byte per value
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench/gpu_memory.py needs a CUDA GPU (torch.cuda.is_available() is False here)", file=sys.stderr)
        return 2
    from explorer.units import format_bytes

    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}; one run per case, {args.epochs} epoch(s)")
    print(f"{'case':34s} {'predicted':>11s} {'measured':>11s} {'ratio':>6s} {'images':>10s}  status")
    for preset, dataset, batch in CASES:
        s = measure(preset, dataset, batch, args.epochs, args.max_seconds)
        predicted, peak = s.get("predicted_train_memory_bytes"), s.get("peak_memory_bytes")
        ratio = f"{peak / predicted:6.2f}" if predicted and peak else "     -"
        print(f"{preset + ' on ' + dataset + f' batch {batch}':34s} {format_bytes(predicted or 0):>11s} "
              f"{format_bytes(peak or 0):>11s} {ratio} {format_bytes(s['dataset_bytes']):>10s}  {s['status']}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
