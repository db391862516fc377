"""CPU training steps on one thread against all cores, and in channels_last against contiguous
memory, per network: where intra-op threads and the channels_last layout pay on a CPU.

For each preset fitted to a dataset (the run's own plan), times training steps (forward, backward,
SGD step) at the recipe's batch size with torch.set_num_threads(1) and with every core, each in
both memory formats, alternating in this one process so all see the same load, and prints
images/s and the ratios (above 1, the threads or channels_last pay). OMP_WAIT_POLICY=PASSIVE is set before
torch loads, as for every run the job queue starts (explorer/training/executors.py).
explorer.training.plan's CPU_THREAD_MIN_MACS (one thread below it) and its channels_last choice
on the CPU are read off this table.

    .venv/bin/python bench/cpu_threads.py [--presets lenet5 twoconv gapnet ...] [--dataset mnist5k]
        [--steps 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from explorer.core.build import build  # noqa: E402
from explorer.core.presets import load_preset  # noqa: E402
from explorer.search.recipes import recipe_config  # noqa: E402
from explorer.training.plan import plan_run  # noqa: E402

PRESETS = ("lenet5", "twoconv", "gapnet", "cifar_compact", "resnet_cifar", "mobilenet_v2", "resnet18")


def steps_per_second(model, x, y, steps: int, threads: int) -> float:
    """Training steps per second at `threads` intra-op threads (after one warm-up step)."""
    torch.set_num_threads(threads)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def measure(name: str, dataset: str, steps: int, repeats: int, cores: int) -> dict:
    """Median images/s per (threads, channels_last) for one preset."""
    cfg = recipe_config(name, dataset)
    plan = plan_run(load_preset(name), cfg, device="cpu")
    rates = {}
    for _ in range(repeats):  # alternating: all see the same load
        for threads in (1, cores):
            for channels_last in (False, True):
                torch.manual_seed(0)
                model = build(plan.spec).train()
                x = torch.randn(cfg.batch_size, *plan.spec.input)
                if channels_last:
                    model, x = model.to(memory_format=torch.channels_last), x.contiguous(
                        memory_format=torch.channels_last)
                y = torch.randint(0, plan.spec.num_classes, (cfg.batch_size,))
                rate = steps_per_second(model, x, y, steps, threads) * cfg.batch_size
                rates.setdefault((threads, channels_last), []).append(rate)
    return {"macs": plan.macs, "batch": cfg.batch_size,
            **{key: statistics.median(values) for key, values in rates.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"{cores} cores, load average {os.getloadavg()[0]:.2f}; OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; "
          f"images/s (median of {args.repeats}), cl = channels_last")
    print(f"{'preset':14s} {'MACs/img':>12s} {'batch':>5s} {'1 thr':>7s} {'1 thr cl':>8s} {'all':>7s} "
          f"{'all cl':>7s} {'all/1':>6s} {'cl/not (1 thr)':>14s} {'best':>10s}")
    for name in args.presets:
        r = measure(name, args.dataset, args.steps, args.repeats, cores)
        best = max(((t, c) for t in (1, cores) for c in (False, True)), key=lambda k: r[k])
        print(f"{name:14s} {r['macs']:>12,} {r['batch']:>5d} {r[(1, False)]:>7,.0f} {r[(1, True)]:>8,.0f} "
              f"{r[(cores, False)]:>7,.0f} {r[(cores, True)]:>7,.0f} {r[(cores, False)] / r[(1, False)]:>6.2f} "
              f"{r[(1, True)] / r[(1, False)]:>14.2f} {f'{best[0]} thr' + (' cl' if best[1] else ''):>10s}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
