"""Transfer learning, measured: does a LeNet-5 trained on MNIST help on scikit-learn's 8x8 digits
when only 10, 30 or 100 training images per class are kept? And what does freezing save in
training memory, measured beside the analysis's prediction?

1. Pretrain lenet5 on mnist5k (the recipe's settings, --pretrain-epochs epochs, seed 0).
2. On digits with --train-per-class N (N = 10, 30, 100; seeds 0, 1, 2), the same budget for each
   (--epochs epochs, batch 16, SGD lr 0.05 with momentum, cosine, no augmentation):
   scratch (random weights), linear probe (--freeze features: only the head trains) and
   fine-tune (everything trains, the loaded layers at lr x 0.1). Validation accuracy is on the
   whole validation split (360 images), the best epoch's.
3. Training memory of ResNet-18 at 3x64x64, batch 8, SGD with momentum, on the CPU: every block
   trainable against only the head ("features"). Measured: torch.profiler(profile_memory=True)
   over two training steps; the live bytes (allocations minus frees, in time order) at their
   peak, i.e. what a step adds on top of the weights: gradients + optimizer state + saved
   activations + workspace. Predicted: the same parts of explorer.training.transfer.frozen_cost.

    nice -n 5 .venv/bin/python bench/transfer.py [--seeds 3] [--epochs 20] [--pretrain-epochs 4]
Takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.core.presets import load_preset  # noqa: E402
from explorer.training.config import TrainConfig  # noqa: E402
from explorer.training.loop import train  # noqa: E402

PER_CLASS = (10, 30, 100)
MODES = {"scratch": {}, "linear probe": {"freeze": "features"},
         "fine-tune (lr x0.1)": {"pretrained_lr_scale": 0.1}}


def pretrain(runs: Path, epochs: int) -> Path:
    from explorer.search.recipes import recipe_values

    values = {**recipe_values("lenet5", "mnist5k"), "epochs": epochs, "device": "cpu", "seed": 0}
    run_dir = runs / "pretrain-lenet5-mnist5k"
    summary = train(load_preset("lenet5"), TrainConfig.from_dict(values), run_dir)
    print(f"pretrained lenet5 on mnist5k: {epochs} epochs, best val acc {summary['best_val_acc']:.4f}", flush=True)
    return run_dir


def transfer_table(runs: Path, source: Path, seeds: int, epochs: int) -> dict:
    results: dict[tuple[int, str], list[float]] = {}
    for n in PER_CLASS:
        for mode, extra in MODES.items():
            for seed in range(seeds):
                init = {"init_from": str(source)} if mode != "scratch" else {}
                cfg = TrainConfig(dataset="digits", epochs=epochs, batch_size=16, lr=0.05, schedule="cosine",
                                  device="cpu", seed=seed, train_per_class=n, log_every=1000, **init, **extra)
                summary = train(load_preset("lenet5"), cfg.validate(), runs / f"digits-{n}-{mode[:5]}-{seed}")
                if summary["status"] != "completed":
                    raise SystemExit(f"{mode} n={n} seed={seed}: {summary['status']}: {summary.get('message')}")
                results.setdefault((n, mode), []).append(summary["best_val_acc"])
            accs = results[(n, mode)]
            print(f"  {n:3d}/class  {mode:20s} {', '.join(f'{a:.3f}' for a in accs)}", flush=True)
    return results


def measured_step_bytes(freeze: str) -> tuple[int, object]:
    """(peak live bytes over two training steps, FrozenCost) for ResNet-18 at 3x64x64, batch 8."""
    from torch.profiler import ProfilerActivity, profile

    from explorer.core.build import build
    from explorer.training import transfer

    spec = load_preset("resnet18").with_input((3, 64, 64)).with_num_classes(10)
    cfg = TrainConfig(freeze=freeze, batch_size=8, optimizer="sgd", momentum=0.9)
    torch.manual_seed(0)
    model = build(spec)
    transfer.apply_freeze(model, cfg)
    model.train()
    opt = torch.optim.SGD(transfer.param_groups(model, cfg), lr=0.01, momentum=0.9)
    x, y = torch.randn(8, 3, 64, 64), torch.randint(0, 10, (8,))
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for _ in range(2):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            del loss
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage      # bytes allocated minus freed by this op itself
        peak = max(peak, live)
    return peak, transfer.frozen_cost(spec, cfg)


def memory_table() -> None:
    mib = 2**20
    print("\nResNet-18, 3x64x64, batch 8, SGD momentum, CPU: memory a training step adds to the weights (MiB)")
    print(f"{'setting':24s} {'trainable params':>17s} {'measured':>9s} {'predicted':>10s}  predicted parts")
    for freeze, label in (("none", "everything trains"), ("features", "linear probe (features)")):
        peak, cost = measured_step_bytes(freeze)
        m = cost.frozen
        predicted = m.gradients + m.optimizer_state + m.saved_activations + m.workspace
        print(f"{label:24s} {cost.trainable_params:>17,} {peak / mib:9.2f} {predicted / mib:10.2f}  gradients "
              f"{m.gradients / mib:.2f} + optimizer {m.optimizer_state / mib:.2f} + saved activations "
              f"{m.saved_activations / mib:.2f} + workspace {m.workspace / mib:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of every digits run (the same budget)")
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, torch {torch.__version__}")
    start = time.perf_counter()
    if not args.skip_accuracy:
        with tempfile.TemporaryDirectory() as tmp:
            source = pretrain(Path(tmp), args.pretrain_epochs)
            results = transfer_table(Path(tmp), source, args.seeds, args.epochs)
        print(f"\nlenet5 on digits, best validation accuracy (%), mean (min-max) of {args.seeds} seeds, "
              f"{args.epochs} epochs each")
        print(f"{'images/class':>12s} | " + " | ".join(f"{m:>20s}" for m in MODES))
        for n in PER_CLASS:
            cells = []
            for mode in MODES:
                accs = [100 * a for a in results[(n, mode)]]
                cells.append(f"{statistics.mean(accs):5.1f} ({min(accs):.1f}-{max(accs):.1f})".rjust(20))
            print(f"{n:>12d} | " + " | ".join(cells))
    memory_table()
    print(f"\n{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
