"""Training throughput: explorer's loop against a plain PyTorch DataLoader loop.

Same model (built from the same spec), same data, same device, same batch size and optimizer,
in the same process. The baseline is the textbook loop: a TensorDataset of normalised float
images on the CPU, DataLoader(shuffle=True), .to(device) per batch, fp32, default memory format.
explorer's loop keeps uint8 images on the device, normalises per batch there, and on CUDA adds
bf16 autocast, channels_last and cudnn.benchmark. Images/s are measured over training steps only
(after warm-up), evaluation excluded.

    .venv/bin/python bench/train_throughput.py [--device auto|cpu|cuda] [--steps 60]
Prints images/s of both and the ratio explorer / baseline for LeNet-5 on MNIST-sized data and
ResNet-18 on 32x32 RGB data.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import explorer  # noqa: E402
from explorer.data import load_dataset  # noqa: E402
from explorer.training.config import TrainConfig  # noqa: E402
from explorer.training.loop import resolve_device, train  # noqa: E402
from explorer.training.runs import read_metrics  # noqa: E402

CASES = [  # (preset, dataset, batch size)
    ("lenet5", "mnist5k", 128),
    ("resnet18", "shapes", 128),
]


def ours(preset: str, dataset: str, batch: int, device: str, steps: int) -> float:
    data = load_dataset(dataset)
    epochs = max(2, -(-steps * batch // len(data.x_train)))
    cfg = TrainConfig(dataset=dataset, epochs=epochs, batch_size=batch, lr=0.01, device=device, log_every=5,
                      schedule="constant")
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(explorer.load_preset(preset), cfg, Path(tmp) / "run")
        if summary["status"] != "completed":
            raise RuntimeError(summary)
        rates = [e["images_per_s"] for e in read_metrics(Path(tmp) / "run")[0] if e["event"] == "step"]
    return statistics.median(rates[2:])  # skip warm-up windows


def baseline(preset: str, dataset: str, batch: int, device: str, steps: int) -> float:
    from explorer.training.adapt import adapt_spec

    data = load_dataset(dataset)
    info = data.info
    adapted = adapt_spec(explorer.load_preset(preset), info.channels, info.height, info.width, info.num_classes)
    x = data.x_train.float() / 255
    if adapted.resize == "pad":
        dh = adapted.image_size[0] - x.shape[2]
        x = F.pad(x, (dh // 2, dh - dh // 2, dh // 2, dh - dh // 2))
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    loader = DataLoader(TensorDataset((x - mean) / std, data.y_train), batch_size=batch, shuffle=True,
                        drop_last=True)
    dev = resolve_device(device)
    model = explorer.build(adapted.spec).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    done, times = 0, []
    while done < steps:
        start = time.perf_counter()
        count = 0
        for xb, yb in loader:
            xb, yb = xb.to(dev), yb.to(dev)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            count += len(xb)
            if done % 5 == 0:
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                now = time.perf_counter()
                times.append(count / (now - start))
                start, count = now, 0
            if done >= steps:
                break
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    dev = resolve_device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}; median images/s over {args.steps} training steps")
    for preset, dataset, batch in CASES:
        b = baseline(preset, dataset, batch, args.device, args.steps)
        a = ours(preset, dataset, batch, args.device, args.steps)
        print(f"{preset:9s} on {dataset:8s} batch {batch}: DataLoader loop {b:9.1f} img/s | explorer loop "
              f"{a:9.1f} img/s | ratio {a / b:5.2f}x")


if __name__ == "__main__":
    main()
