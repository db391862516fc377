"""Run directories: what a training run leaves behind, written so that readers never see half a file.

    RUN/spec.json            the (adapted) network spec that was trained
    RUN/config.json          the TrainConfig
    RUN/metrics.jsonl        one JSON object per event, appended while the run goes:
                             {"event": "start"|"step"|"epoch"|"warning"|"done"|"error", "time": unix s, ...}
    RUN/checkpoint.safetensors  weights of the best validation epoch (safetensors, no pickle)
    RUN/summary.json         {"status": completed|diverged|cancelled|failed|interrupted, "best_val_acc",
                              "params", "macs", "seconds", ...}
    RUN/CANCEL               created to ask the run to stop at its next step

JSON files are written to a temporary file and renamed (atomic on POSIX); metrics lines are
appended and flushed one at a time, and readers skip a last line that is not complete yet.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_RUNS_DIR = Path(os.environ.get("CNN_EXPLORER_RUNS", "runs"))
STATUSES = ("queued", "running", "completed", "diverged", "cancelled", "failed", "interrupted")
FINISHED = ("completed", "diverged", "cancelled", "failed", "interrupted")


def write_json_atomic(path: Path, data: Any) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def new_run_dir(runs_dir: Path, name: str) -> Path:
    """A fresh, sortable, unique directory: 20261122-031502-lenet5-3fa2."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "run"
    path = Path(runs_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(2)}"
    path.mkdir(parents=True, exist_ok=False)
    return path


class MetricsWriter:
    """Appends events to metrics.jsonl, one flushed line each."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics.jsonl"
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> dict:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        return record

    def close(self) -> None:
        self._file.close()


def read_metrics(run_dir: Path, start: int = 0) -> tuple[list[dict], int]:
    """Events from byte offset `start`; returns (events, next offset). A trailing partial line
    (the writer is mid-way) is left for the next read."""
    path = Path(run_dir) / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start
    events, consumed = [], 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        consumed += len(line)
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events, start + consumed


@dataclass(frozen=True)
class RunRecord:
    """One run as the runs list and the compare page see it."""

    path: Path
    name: str
    status: str
    dataset: str
    params: int | None
    macs: int | None
    best_val_acc: float | None
    seconds: float | None
    images_per_s: float | None
    epochs_done: int | None
    started: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.path.name, "path": str(self.path), "name": self.name, "status": self.status,
                "dataset": self.dataset, "params": self.params, "macs": self.macs,
                "best_val_acc": self.best_val_acc, "seconds": self.seconds, "images_per_s": self.images_per_s,
                "epochs_done": self.epochs_done, "started": self.started, "message": self.message}


def load_run(run_dir: Path) -> RunRecord | None:
    run_dir = Path(run_dir)
    spec = read_json(run_dir / "spec.json")
    config = read_json(run_dir / "config.json")
    if spec is None or config is None:
        return None
    summary = read_json(run_dir / "summary.json") or {}
    status = summary.get("status")
    if status is None:
        status = "running" if (run_dir / "metrics.jsonl").exists() else "queued"
    return RunRecord(path=run_dir, name=spec.get("name", run_dir.name), status=status,
                     dataset=config.get("dataset", "?"), params=summary.get("params"), macs=summary.get("macs"),
                     best_val_acc=summary.get("best_val_acc"), seconds=summary.get("seconds"),
                     images_per_s=summary.get("images_per_s"), epochs_done=summary.get("epochs_done"),
                     started=summary.get("started"), message=summary.get("message", ""))


def list_runs(runs_dir: Path = DEFAULT_RUNS_DIR) -> list[RunRecord]:
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    records = [load_run(p) for p in sorted(runs_dir.iterdir()) if p.is_dir()]
    return [r for r in records if r is not None]
