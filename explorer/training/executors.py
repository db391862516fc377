"""Executors: where a queued run's training process lives. The queue (jobs.py) decides who runs and
when; an executor starts the run, says whether it is still alive, and stops it.

- `local` (the default): `python -m explorer train ...` as a child process of this machine, in its
  own process session, so a crash or an out-of-memory kill never takes the app down.
- `ray`: each run is a detached Ray actor (it outlives the app process, so runs survive an app
  restart) placed by Ray's scheduler with the run's resource request (num_cpus, num_gpus, and
  memory in bytes from the training-memory prediction). The actor trains in its own worker process
  and writes the run folder, which must be on storage every node shares (the runs folder; see the
  README). Curves are read from that folder as for local runs. Cancel asks the run to stop (RUN/CANCEL)
  and kills the actor after a grace period; an actor that is gone without a summary (node lost,
  worker killed) leaves the run interrupted.

Settings: CNN_EXPLORER_EXECUTOR=local|ray, CNN_EXPLORER_RAY_ADDRESS (empty: start a local Ray
instance on loopback). Ray is imported only when the `ray` executor is used.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from explorer.errors import ConfigError, QueueError

EXECUTORS = ("local", "ray")
RAY_NAMESPACE = "cnn-explorer"        # every actor of this app lives in this Ray namespace
CANCEL_GRACE_SECONDS = 20.0           # a cancelled Ray run gets this long to stop by itself
PLACEMENT_FILE = "placement.json"     # RUN/placement.json: where the run executes (node, GPU)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
_CHILDREN: dict[int, subprocess.Popen] = {}  # local processes this process started: polled to reap


@dataclass(frozen=True)
class Resources:
    """What one run asks of the machine or cluster."""

    num_cpus: float = 1.0       # CPU cores
    num_gpus: float = 0.0       # 1 for a CUDA run
    memory: int = 0             # bytes: the training-memory prediction (0: no reservation)


@dataclass(frozen=True)
class Placement:
    """Where a started run lives: enough to ask whether it is alive and to stop it."""

    executor: str               # "local" or "ray"
    handle: str                 # local: the process id; ray: the actor's name
    node: str = ""              # host name (local) or Ray node address
    gpu: str = ""               # GPU ids visible to the run ("" on the CPU)


def executor_name(name: str | None = None) -> str:
    """The executor to use: the argument, else $CNN_EXPLORER_EXECUTOR, else local."""
    value = (name or os.environ.get("CNN_EXPLORER_EXECUTOR") or "local").strip().lower()
    if value not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {value!r} (set by --executor "
                          f"or CNN_EXPLORER_EXECUTOR)", field="executor")
    return value


def ray_address(address: str | None = None) -> str:
    """The Ray cluster to join: the argument, else $CNN_EXPLORER_RAY_ADDRESS ('' = a local instance)."""
    return (address if address is not None else os.environ.get("CNN_EXPLORER_RAY_ADDRESS", "")).strip()


def train_argv(run_dir: Path, queue_db: Path | None = None) -> list[str]:
    """The training command for a prepared run folder (spec.json and config.json written)."""
    argv = ["train", "--spec", str(run_dir / "spec.json"), "--config", str(run_dir / "config.json"),
            "--run-dir", str(run_dir), "--format", "json"]
    return argv + (["--queue", str(queue_db)] if queue_db is not None else [])


def _child_env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    # runs share the server's cores: OpenMP threads sleep when they wait (explorer/__main__.py,
    # explorer.training.plan.CPU_THREAD_MIN_MACS)
    return {**os.environ, "PYTHONPATH": path, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def write_placement(run_dir: Path, placement: Placement) -> None:
    from explorer.training.runs import write_json_atomic

    write_json_atomic(Path(run_dir) / PLACEMENT_FILE, placement.__dict__)


def read_placement(run_dir: Path) -> Placement | None:
    """The run's placement, or None when it has none or the file is not a placement."""
    try:
        data = json.loads((Path(run_dir) / PLACEMENT_FILE).read_text(encoding="utf-8"))
        return Placement(**{k: str(data[k]) for k in ("executor", "handle", "node", "gpu")})
    except (OSError, ValueError, KeyError, TypeError):
        return None


class LocalExecutor:
    """Runs as child processes of this machine (today's behaviour)."""

    name = "local"

    def __init__(self, python: str = sys.executable):
        self.python = python

    def start(self, run_dir: Path, resources: Resources, queue_db: Path | None = None) -> Placement:
        with open(Path(run_dir) / "process.log", "ab") as log:
            process = subprocess.Popen([self.python, "-m", "explorer", *train_argv(Path(run_dir), queue_db)],
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, env=_child_env(), cwd=PROJECT_ROOT)
        _CHILDREN[process.pid] = process
        placement = Placement("local", str(process.pid), socket.gethostname(),
                              os.environ.get("CUDA_VISIBLE_DEVICES", "") if resources.num_gpus else "")
        write_placement(run_dir, placement)
        return placement

    @staticmethod
    def reap() -> None:
        for pid, process in list(_CHILDREN.items()):
            if process.poll() is not None:
                del _CHILDREN[pid]

    def alive(self, placement: Placement, run_dir: Path) -> bool:
        from explorer.training.runs import process_alive

        self.reap()
        # the command line must name the run: a reused process id is not the run
        return placement.handle.isdigit() and process_alive(int(placement.handle), needle=str(run_dir))

    def stop(self, placement: Placement, run_dir: Path) -> None:
        """The run stops at its next step (the loop watches RUN/CANCEL)."""
        (Path(run_dir) / "CANCEL").touch()


class _RunActor:
    """One run on a Ray worker: records where it landed, trains in this worker, then exits."""

    def train(self, argv: list[str], run_dir: str) -> int:
        import ray

        gpus = ",".join(str(g) for g in ray.get_gpu_ids())
        write_placement(Path(run_dir), Placement("ray", Path(run_dir).name, socket.gethostname(), gpus))
        from explorer.cli import main

        try:
            return main(argv)
        finally:
            ray.actor.exit_actor()  # the actor is detached: leave no idle worker behind


def _import_ray(address: str):
    if not address:  # a local instance listens on loopback only (a classroom server is not a cluster)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray executor needs the 'ray' package (pinned in requirements.txt); "
                          "run `make install` or choose --executor local", field="executor") from None
    return ray


class RayExecutor:
    """Runs as detached Ray actors on a cluster (or a local instance when no address is given)."""

    name = "ray"

    def __init__(self, address: str | None = None):
        self.address = ray_address(address)
        self._ray = None

    def connect(self):
        """Join the cluster once per process; QueueError with the address when it cannot be reached."""
        if self._ray is not None:
            return self._ray
        ray = _import_ray(self.address)
        if not ray.is_initialized():
            env = {"OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(PROJECT_ROOT),
                   **({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"} if not self.address else {})}
            try:
                if self.address:
                    ray.init(address=self.address, namespace=RAY_NAMESPACE, log_to_driver=False,
                             runtime_env={"env_vars": env})
                else:
                    ray.init(namespace=RAY_NAMESPACE, include_dashboard=False, log_to_driver=False,
                             _node_ip_address="127.0.0.1", runtime_env={"env_vars": env})
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = self.address or "a local instance"
                raise QueueError(f"cannot reach the Ray cluster at {where} ({e}); start it with `ray start "
                                 f"--head` or set CNN_EXPLORER_RAY_ADDRESS / --ray-address") from None
        self._ray = ray
        return ray

    def start(self, run_dir: Path, resources: Resources, queue_db: Path | None = None) -> Placement:
        """Place the run; returns at once (the actor may wait for resources). The queue database
        stays on the app's disk: remote runs do not write it (SQLite over shared storage is unsafe)."""
        ray = self.connect()
        name = Path(run_dir).name
        options = dict(name=name, namespace=RAY_NAMESPACE, lifetime="detached", max_restarts=0,
                       num_cpus=resources.num_cpus, num_gpus=resources.num_gpus)
        if resources.memory:
            options["memory"] = int(resources.memory)
        placement = Placement("ray", name, self.address or "local", "")
        write_placement(run_dir, placement)  # the actor rewrites it with its node and GPUs when it starts
        actor = ray.remote(_RunActor).options(**options).remote()
        actor.train.remote(train_argv(Path(run_dir)), str(run_dir))
        return placement

    def _actor(self, placement: Placement):
        ray = self.connect()
        try:
            return ray.get_actor(placement.handle, namespace=RAY_NAMESPACE)
        except ValueError:  # no such live actor: finished, killed, or its node was lost
            return None

    def alive(self, placement: Placement, run_dir: Path) -> bool:
        """True while the actor lives; a run cancelled longer than the grace period ago is killed."""
        actor = self._actor(placement)
        if actor is None:
            return False
        cancel = Path(run_dir) / "CANCEL"
        if cancel.exists() and time.time() - cancel.stat().st_mtime > CANCEL_GRACE_SECONDS:
            self._ray.kill(actor, no_restart=True)
            return False
        return True

    def stop(self, placement: Placement, run_dir: Path) -> None:
        (Path(run_dir) / "CANCEL").touch()


def get_executor(name: str | None = None, ray_address_: str | None = None):
    """The executor by name (see executor_name); Ray is connected on first use, not here."""
    return RayExecutor(ray_address_) if executor_name(name) == "ray" else LocalExecutor()


def executor_for(placement: Placement, ray_address_: str | None = None):
    """The executor that started `placement` (runs started by either stay manageable)."""
    return RayExecutor(ray_address_) if placement.executor == "ray" else LocalExecutor()


def follow(executor, placement: Placement, run_dir: Path, on_event=None, poll: float = 0.5) -> dict:
    """Stream a started run's events (metrics.jsonl, as the pages read them) to on_event until it
    ends; returns its summary, or an "interrupted" one when it is gone without a summary."""
    from explorer.training.runs import FINISHED, read_json, read_metrics, write_json_atomic

    offset = 0
    while True:
        alive = executor.alive(placement, run_dir)
        events, offset = read_metrics(run_dir, offset)
        for event in events:
            if on_event is not None:
                on_event(event)
        summary = read_json(Path(run_dir) / "summary.json")
        if isinstance(summary, dict) and summary.get("status") in FINISHED:
            return summary
        if not alive:
            summary = {"status": "interrupted", "best_val_acc": None,
                       "message": f"the {executor.name} run ended without a summary (its worker or node was lost)"}
            write_json_atomic(Path(run_dir) / "summary.json", summary)
            return summary
        time.sleep(poll)


def run_on(executor, spec, config, run_dir: Path, on_event=None) -> dict:
    """Write the run folder's inputs, start the run on `executor` and follow it to its end (the
    command line's `train --executor ray`). Returns the summary."""
    from explorer.training.jobs import run_resources
    from explorer.training.runs import write_json_atomic

    write_json_atomic(Path(run_dir) / "spec.json", spec.to_dict())
    write_json_atomic(Path(run_dir) / "config.json", config.to_dict())
    device = "cuda" if config.device == "cuda" else "cpu"
    placement = executor.start(Path(run_dir), run_resources(Path(run_dir), device))
    return follow(executor, placement, Path(run_dir), on_event)
