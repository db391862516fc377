"""Runs on a local Ray instance (issue 14): the same results as local runs with the same seed,
the queue hands runs to Ray, cancel works, and a worker killed mid-run leaves the run interrupted
and the queue healthy. Ray listens on loopback only; no GPU is needed."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from explorer import load_preset
from explorer.training.config import TrainConfig
from explorer.training.executors import RayExecutor, read_placement, run_on
from explorer.training.jobs import JobQueue
from explorer.training.loop import train
from explorer.training.runs import load_run, new_run_dir, read_metrics

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")
CONFIG = dict(dataset="digits", epochs=2, lr=0.05, device="cpu", seed=11)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
    RayExecutor().connect()  # starts a local instance: no address given
    yield
    ray.shutdown()


def _wait_for_steps(run_dir: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        events, _ = read_metrics(run_dir)
        if any(e["event"] == "step" for e in events):
            return
        time.sleep(0.2)
    raise AssertionError(f"{run_dir} made no training step in {timeout} s")


def test_a_ray_run_equals_a_local_run_with_the_same_seed(tmp_path):
    spec, config = load_preset("twoconv"), TrainConfig(**CONFIG)
    local = train(spec, config, new_run_dir(tmp_path, "local"))
    events = []
    remote_dir = new_run_dir(tmp_path, "ray")
    remote = run_on(RayExecutor(), spec, config, remote_dir, on_event=events.append)
    assert local["status"] == remote["status"] == "completed"
    assert remote["best_val_acc"] == pytest.approx(local["best_val_acc"], abs=1e-9)
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]  # the curves streamed back
    placement = read_placement(remote_dir)
    assert placement.executor == "ray" and placement.node


def test_the_queue_hands_runs_to_ray_and_cancel_stops_one(tmp_path):
    queue = JobQueue(tmp_path, executor="ray")
    short = queue.submit(load_preset("twoconv"), TrainConfig(**CONFIG))
    long = queue.submit(load_preset("twoconv"), TrainConfig(**{**CONFIG, "epochs": 200}))
    assert {queue.get(short.id).executor, queue.get(long.id).executor} == {"ray"}
    _wait_for_steps(long.run_dir)
    queue.cancel(long.id)
    done = {j.id: j for j in queue.wait([short.id, long.id], timeout=240)}
    assert done[short.id].status == "completed" and done[long.id].status == "cancelled"
    assert load_run(long.run_dir).status == "cancelled"


def test_a_killed_worker_leaves_the_run_interrupted_and_the_queue_healthy(tmp_path):
    queue = JobQueue(tmp_path, executor="ray")
    doomed = queue.submit(load_preset("twoconv"), TrainConfig(**{**CONFIG, "epochs": 200}))
    _wait_for_steps(doomed.run_dir)
    pid = json.loads((doomed.run_dir / "heartbeat.json").read_text())["pid"]  # the actor's worker process
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 60
    while queue.get(doomed.id).status == "running" and time.time() < deadline:
        queue.refresh()
        time.sleep(0.5)
    assert queue.get(doomed.id).status == "interrupted"
    assert load_run(doomed.run_dir).status == "interrupted"
    after = queue.submit(load_preset("twoconv"), TrainConfig(**CONFIG))
    assert queue.wait([after.id], timeout=240)[0].status == "completed"


def test_a_small_sweep_fans_out_over_ray_with_the_same_trials_as_local(tmp_path):
    from explorer.search.driver import run_sweep
    from tests.test_search import tiny_sweep

    local = run_sweep(tiny_sweep(), tmp_path / "local", executor="local")
    remote = run_sweep(tiny_sweep(), tmp_path / "ray", executor="ray")
    key = lambda report: [(t["number"], t["state"], t["values"], t["best_val_acc"]) for t in report["trials"]]  # noqa: E731
    assert key(remote) == key(local) and all(t["state"] == "complete" for t in remote["trials"])
    assert all(read_placement(Path(t["run_dir"])).executor == "ray" for t in remote["trials"])
