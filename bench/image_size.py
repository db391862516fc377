"""Training-step time at the network's own input size against the automatic (smallest working) size.

For ImageNet presets on 28x28 MNIST, explorer.training.adapt used to resize the images to the
network's own 224x224; it now brings them to the smallest size the network works at (VGG: 32x32,
AlexNet: 63x63). This times SGD training steps (forward, backward, update; channels_last, float32,
random uint8-range data) of the same network at both sizes, side by side in one process, and
prints seconds per step, images/s and the ratio, next to the ratio of MACs per image.

    .venv/bin/python bench/image_size.py [--presets vgg11,alexnet] [--batch 16] [--steps 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from explorer.core.analysis import analyze  # noqa: E402
from explorer.core.build import build  # noqa: E402
from explorer.core.presets import load_preset  # noqa: E402
from explorer.training.adapt import adapt_spec  # noqa: E402


def step_seconds(spec, batch: int, steps: int, device: str) -> float:
    """Median seconds of one training step (after one warm-up step) of `spec` at its input size."""
    torch.manual_seed(0)
    model = build(spec).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, *spec.input, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, spec.num_classes, (batch,), device=device)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="vgg11,alexnet")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {args.device} ({torch.get_num_threads()} threads), batch {args.batch}, "
          f"median of {args.steps} steps; MNIST-shaped data (1x28x28, 10 classes)")
    for name in args.presets.split(","):
        own = adapt_spec(load_preset(name), 1, 28, 28, 10, size=(224, 224)).spec    # the old rule
        auto = adapt_spec(load_preset(name), 1, 28, 28, 10).spec                   # the new rule
        rows = []
        for label, spec in (("own 224x224", own), (f"automatic {auto.input[1]}x{auto.input[2]}", auto)):
            seconds = step_seconds(spec, args.batch, args.steps, args.device)
            rows.append((label, seconds, analyze(spec).totals.macs))
            print(f"{name:8s} {label:17s} {seconds:8.3f} s/step {args.batch / seconds:9.1f} img/s "
                  f"{rows[-1][2] / 1e6:10,.1f} MMACs/image", flush=True)
        print(f"{name:8s} ratio own/automatic: {rows[0][1] / rows[1][1]:.1f}x time, "
              f"{rows[0][2] / rows[1][2]:.1f}x MACs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
