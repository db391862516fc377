"""The same short runs through the local executor and a local Ray instance, side by side.

    .venv/bin/python bench/executors.py [--runs 8] [--parallel 2] [--epochs 1]

Each executor gets a fresh runs folder and a queue with the same limit of `--parallel` runs at a
time; every run is LeNet-style `twoconv` on the offline digits set with the same seed. Printed:
the wall time from the first submit to the last finish, the mean per-run overhead (a job's wall
time from start to end minus the training time its summary reports: process or actor start,
imports, dataset load), and Ray's ratio to local. Ray's one-off start (ray.init) is timed apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local Ray instance on loopback only

from explorer import load_preset  # noqa: E402
from explorer.training.config import TrainConfig  # noqa: E402
from explorer.training.executors import RayExecutor  # noqa: E402
from explorer.training.jobs import JobQueue  # noqa: E402
from explorer.training.runs import read_json  # noqa: E402


def batch(executor: str, runs: int, parallel: int, epochs: int) -> tuple[float, list[float], list[str]]:
    """(wall seconds for all runs, per-run overhead seconds, statuses)."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-{executor}-"))
    queue = JobQueue(root, limits={"cpu": parallel, "cuda": parallel}, executor=executor)
    config = TrainConfig(dataset="digits", epochs=epochs, lr=0.05, device="cpu", seed=5)
    start = time.perf_counter()
    jobs = [queue.submit(load_preset("twoconv"), config, owner=f"bench{i}") for i in range(runs)]
    done = queue.wait([j.id for j in jobs], timeout=1800, poll=0.1)
    wall = time.perf_counter() - start
    overheads = []
    for job in done:
        summary = read_json(job.run_dir / "summary.json") or {}
        if job.started and job.finished and summary.get("seconds") is not None:
            overheads.append((job.finished - job.started) - float(summary["seconds"]))
    return wall, overheads, [j.status for j in done]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    t0 = time.perf_counter()
    RayExecutor().connect()
    ray_start = time.perf_counter() - t0
    results = {}
    for executor in ("local", "ray"):
        wall, overheads, statuses = batch(executor, args.runs, args.parallel, args.epochs)
        results[executor] = (wall, statistics.mean(overheads) if overheads else float("nan"))
        print(f"{executor:5s}: {args.runs} runs, {args.parallel} at a time: wall {wall:6.1f} s, mean per-run "
              f"overhead {results[executor][1]:5.2f} s, statuses {sorted(set(statuses))}")
    (lw, lo), (rw, ro) = results["local"], results["ray"]
    print(f"ray / local: wall {rw / lw:.2f}x, per-run overhead {ro / lo:.2f}x; ray.init (once per app) "
          f"{ray_start:.1f} s")


if __name__ == "__main__":
    main()
