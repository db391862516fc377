"""Run directories: what a training run leaves behind, where runs live, and how to read them safely.

Owns: the runs-folder resolver (runs_root), atomic JSON writes, the run-folder name, the
metrics writer/reader, the heartbeat of a live run and the verdict "running or interrupted",
and RunRecord (one run as every list shows it, "unreadable" with a reason when its files are bad).

    RUN/spec.json            the (adapted) network spec that was trained
    RUN/config.json          the TrainConfig
    RUN/metrics.jsonl        one JSON object per event, appended while the run goes:
                             {"event": "start"|"step"|"epoch"|"warning"|"done"|"error", "time": unix s, ...}
    RUN/heartbeat.json       {"pid", "host", "proc_start", "started", "time"}: rewritten every
                             HEARTBEAT_SECONDS by the training process while it lives
    RUN/checkpoint.safetensors  weights of the best validation epoch (safetensors, no pickle)
    RUN/summary.json         {"status": completed|diverged|cancelled|failed|interrupted, "best_val_acc",
                              "params", "macs", "seconds", ...}
    RUN/CANCEL               created to ask the run to stop at its next step

JSON files are written to a temporary file and renamed (atomic on POSIX; the temporary file is
removed on any failure, a full disk included); metrics lines are appended one at a time, and
readers skip a last line that is not complete yet. Visitors control what their runs write, so
every reader here accepts any bytes: a bad file makes that run "unreadable", never an exception.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.errors import UserError
from explorer.text import slug as text_slug
from explorer.training.config import TrainConfig
from explorer.training.lineage import start_label  # [transfer]

DEFAULT_RUNS_DIR = Path("runs")   # where runs live when $CNN_EXPLORER_RUNS is not set
RUNS_ENV = "CNN_EXPLORER_RUNS"
STATUSES = ("queued", "running", "completed", "diverged", "cancelled", "failed", "interrupted", "unreadable")
FINISHED = ("completed", "diverged", "cancelled", "failed", "interrupted")
HEARTBEAT_SECONDS = 5.0           # a live run rewrites heartbeat.json this often (s)
STALE_SECONDS = 60.0              # no heartbeat (or metrics line) for this long (s): the run is interrupted
CREATING_SECONDS = 10.0           # a folder younger than this (s) without spec/config is still being made
MAX_JSON_BYTES = 4 * 2**20        # spec/config/summary/heartbeat larger than this are not read (bytes)
NAME_ATTEMPTS = 20                # new_run_dir tries this many random suffixes before giving up


def runs_root(override: str | os.PathLike | None = None) -> Path:
    """Where runs live: `override` (a --runs-dir flag, a page's setting) when given, else
    $CNN_EXPLORER_RUNS read now (not at import, so tests and servers can point it elsewhere),
    else ./runs. The one place every command and page asks."""
    if override:
        return Path(override).expanduser()
    return Path(os.environ.get(RUNS_ENV) or DEFAULT_RUNS_DIR).expanduser()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file beside `path`, then rename it over `path`. On any failure
    (a full disk, a value json cannot encode) the temporary file is removed and the error raised."""
    write_text_atomic(path, json.dumps(data, indent=2))


def write_text_atomic(path: Path, text: str) -> None:
    """write_json_atomic for any text: a temporary file beside `path`, renamed over `path`; on any
    failure (a full disk) the temporary file is removed and the error raised."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    """The JSON in `path`, or None when it is missing, too large, not UTF-8 or not JSON."""
    try:
        return load_json(path)
    except ValueError:
        return None


def load_json(path: Path) -> Any:
    """The JSON in `path`; ValueError saying why when it cannot be read (any bytes are accepted)."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():  # a FIFO or a device would block or never end
            raise ValueError(f"{path.name} is not a regular file")
        with open(path, "rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise ValueError(f"{path.name} is missing") from None
    except OSError as e:
        raise ValueError(f"{path.name} cannot be read ({e.strerror or e})") from None
    if len(data) > MAX_JSON_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_JSON_BYTES:,} bytes")
    if not data.strip():
        raise ValueError(f"{path.name} is empty")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path.name} is not valid JSON ({type(e).__name__})") from None


def new_run_dir(runs_dir: Path, name: str) -> Path:
    """A fresh, sortable, unique directory: 20261122-031502-lenet5-1f3a2c1d (8 hex digits: the
    millisecond in 3, so runs started within one second still sort by start, then 5 random; on
    the rare clash another suffix is tried, so concurrent launches never collide)."""
    slug = text_slug(str(name), default="run")
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(NAME_ATTEMPTS):
        now = time.time()
        stamp, millis = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)), int(now % 1 * 1000)
        path = runs_dir / f"{stamp}-{slug}-{millis:03x}{secrets.token_hex(3)[:5]}"
        try:
            path.mkdir(exist_ok=False)
            return path
        except FileExistsError:
            continue
    raise OSError(f"could not make a new run folder in {runs_dir} after {NAME_ATTEMPTS} tries")


class MetricsWriter:
    """Appends events to metrics.jsonl, one unbuffered line each (a failed write raises OSError
    and leaves at most a partial last line, which readers skip)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics.jsonl"
        self._file = open(self.path, "ab", buffering=0)

    def write(self, event: str, **fields: Any) -> dict:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        self._file.write((json.dumps(record) + "\n").encode())
        return record

    def close(self) -> None:
        self._file.close()


# metrics events: the fields each kind must carry, and their types (readers drop other events)
_NUMBER = (int, float)
EVENT_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "start": {"train_size": (int,), "val_size": (int,)},
    "step": {"step": (int,), "epoch": (int,), "loss": _NUMBER, "acc": _NUMBER, "lr": _NUMBER,
             "images_per_s": _NUMBER, "progress": _NUMBER},
    "epoch": {"epoch": (int,), "step": (int,), "train_loss": _NUMBER, "train_acc": _NUMBER,
              "val_loss": _NUMBER, "val_acc": _NUMBER, "val_top5": _NUMBER},
    "warning": {"message": (str,)},
    "done": {"status": (str,)},
    "error": {"status": (str,)},
}
_OPTIONAL = {"message": (str,), "device": (str,), "dataset": (str,), "eta_s": _NUMBER, "elapsed_s": _NUMBER,
             "progress": _NUMBER, "total_steps": (int,), "steps_per_epoch": (int,),
             "expected_initial_loss": _NUMBER, "params": (int,), "macs": (int,), "best_val_acc": _NUMBER,
             "notices": (list,), "time": _NUMBER}


def _typed(value: Any, types: tuple[type, ...]) -> bool:
    """isinstance without bools, and floats finite (NaN and infinity are no measurement)."""
    if not isinstance(value, types) or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -2**63 <= value < 2**63  # what a float can divide without overflow
    return not isinstance(value, float) or math.isfinite(value)


def valid_event(event: Any) -> bool:
    """True when `event` is a dict with a known kind and the fields that kind needs, well typed."""
    if not isinstance(event, dict) or not isinstance(event.get("event"), str) or event["event"] not in EVENT_FIELDS:
        return False
    for key, types in EVENT_FIELDS[event["event"]].items():
        if not _typed(event.get(key), types):
            return False
    for key, types in _OPTIONAL.items():
        if key in event and event[key] is not None and not _typed(event[key], types):
            return False
    loss0 = event.get("expected_initial_loss")
    if loss0 is not None and not 0 <= loss0 <= 50:  # ln(classes): pages take exp() of it
        return False
    notices = event.get("notices")
    return not isinstance(notices, list) or all(isinstance(n, str) for n in notices)


def read_metrics(run_dir: Path, start: int = 0) -> tuple[list[dict], int]:
    """Valid events from byte offset `start`; returns (events, next offset). A trailing partial
    line (the writer is mid-way) is left for the next read; lines that are not a valid event
    (not JSON, wrong kind, wrongly typed fields) are skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():  # missing, or a FIFO/device that would block
        return [], start
    try:
        with open(path, "rb") as f:
            f.seek(max(0, int(start)))
            data = f.read()
    except OSError:
        return [], start
    events, consumed = [], 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        consumed += len(line)
        try:
            event = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            continue
        if valid_event(event):
            events.append(event)
    return events, start + consumed


# --- liveness: a heartbeat while the process lives; readers decide running or interrupted ------------
def _proc_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (Linux /proc), or None elsewhere.
    A pid reused by a later process has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])  # field 22, counted after the "(comm)" field
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: Any, proc_start: Any = None, needle: str | None = None) -> bool:
    """True while process `pid` runs on this machine and is the same process: its start time
    equals `proc_start` and its command line contains `needle`, when given (guards against pid reuse)."""
    if not _typed(pid, (int,)) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    except (OverflowError, OSError):
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc (not Linux): the signal check is all there is
    try:
        stat = (proc / "stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):  # a zombie has finished
            return False
        if needle is not None and needle not in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace"):
            return False
    except (OSError, IndexError):
        return False
    return proc_start is None or _proc_start(pid) == proc_start


def heartbeat_record(started: float) -> dict:
    pid = os.getpid()
    # both times rounded alike (rounding is monotonic, so started <= time holds in the file too)
    return {"pid": pid, "host": socket.gethostname(), "proc_start": _proc_start(pid), "started": round(started, 3),
            "time": round(time.time(), 3)}


class Heartbeat:
    """Rewrites RUN/heartbeat.json every HEARTBEAT_SECONDS from a daemon thread while the run lives
    (a long evaluation does not make the run look dead). A failed write (a full disk) is skipped."""

    def __init__(self, run_dir: Path, interval: float = HEARTBEAT_SECONDS):
        self.path = Path(run_dir) / "heartbeat.json"
        self.interval = interval
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def beat(self) -> None:
        try:
            write_json_atomic(self.path, heartbeat_record(self.started))
        except OSError:
            pass  # the disk is full: the run's own writes report that

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def __enter__(self) -> "Heartbeat":
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)


def liveness(run_dir: Path, now: float | None = None) -> tuple[bool, str]:
    """(alive, why) for a run without a summary: alive while its heartbeat is fresh and, on this
    host, its process (same pid and start time) still runs. Runs from before heartbeats existed
    are judged by the age of their metrics file."""
    run_dir, now = Path(run_dir), time.time() if now is None else now
    beat = read_json(run_dir / "heartbeat.json")
    if not isinstance(beat, dict) or not _typed(beat.get("time"), _NUMBER):
        try:
            age = now - (run_dir / "metrics.jsonl").stat().st_mtime
        except OSError:
            return False, "the training process never started"
        if age > STALE_SECONDS:
            return False, f"no news from the training process for {age:.0f} s (killed, or the machine restarted)"
        return True, ""
    age = now - float(beat["time"])
    if beat.get("host") == socket.gethostname() and not process_alive(beat.get("pid"), beat.get("proc_start")):
        return False, "the training process ended without a summary (killed, or the machine restarted)"
    if not math.isfinite(age) or age > STALE_SECONDS:
        return False, f"no heartbeat from the training process for {age:.0f} s (killed, hung, or its machine is down)"
    return True, ""


# --- the runs list ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRecord:
    """One run as the runs list and the compare page see it. status "unreadable": `message`
    says which file is bad and why; the numbers are then None."""

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
    start: str = "scratch"            # [transfer] what the run started from (explorer.training.lineage)

    @property
    def readable(self) -> bool:
        return self.status != "unreadable"

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.path.name, "path": str(self.path), "name": self.name, "status": self.status,
                "dataset": self.dataset, "params": self.params, "macs": self.macs,
                "best_val_acc": self.best_val_acc, "seconds": self.seconds, "images_per_s": self.images_per_s,
                "epochs_done": self.epochs_done, "started": self.started, "message": self.message,
                "start": self.start}


class _Unreadable(Exception):
    """A run file that cannot be used; str() is the reason."""


def _object(run_dir: Path, name: str) -> dict:
    try:
        data = load_json(run_dir / name)
    except ValueError as e:
        raise _Unreadable(str(e)) from None
    if not isinstance(data, dict):
        raise _Unreadable(f"{name} holds a {type(data).__name__}, not a JSON object")
    return data


def _field(data: dict, file: str, key: str, types: tuple[type, ...], check=lambda v: True) -> Any:
    """data[key] when it is missing/None or of `types` and passes `check`; else the run is unreadable."""
    value = data.get(key)
    if value is None:
        return None
    if not _typed(value, types) or (isinstance(value, float) and not math.isfinite(value)) or not check(value):
        raise _Unreadable(f"{file} has a bad {key}: {str(value)[:40]!r}")
    return value


def _summary_fields(summary: dict) -> dict[str, Any]:
    f = "summary.json"
    status = summary.get("status")
    if status not in FINISHED:
        raise _Unreadable(f"{f} has an unknown status {str(status)[:40]!r}")
    return {"status": status,
            "params": _field(summary, f, "params", (int,), lambda v: v >= 0),
            "macs": _field(summary, f, "macs", (int,), lambda v: v >= 0),
            "best_val_acc": _field(summary, f, "best_val_acc", _NUMBER, lambda v: 0 <= v <= 1),
            "seconds": _field(summary, f, "seconds", _NUMBER, lambda v: v >= 0),
            "images_per_s": _field(summary, f, "images_per_s", _NUMBER, lambda v: v >= 0),
            "epochs_done": _field(summary, f, "epochs_done", (int,), lambda v: v >= 0),
            "started": _field(summary, f, "started", _NUMBER),
            "message": _field(summary, f, "message", (str,)) or ""}


def _is_run(run_dir: Path) -> bool:
    """A folder is a run when it holds any run file (other folders under runs/ are not listed)."""
    return any((run_dir / n).exists() for n in ("spec.json", "config.json", "summary.json", "metrics.jsonl"))


def _check_checkpoint(path: Path) -> None:
    """A safetensors file starts with an 8-byte little-endian header length and a JSON object
    header of that length; anything else (empty, truncated, binary junk) makes the run unreadable."""
    try:
        if not path.is_file():
            if path.exists():
                raise _Unreadable(f"{path.name} is not a regular file")
            return
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 2 <= n <= min(size - 8, MAX_JSON_BYTES):  # real headers are a few KiB
                raise _Unreadable(f"{path.name} is truncated or not a safetensors file")
            header = json.loads(f.read(n).decode("utf-8"))
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _Unreadable(f"{path.name} is truncated or not a safetensors file") from None
    if not isinstance(header, dict):
        raise _Unreadable(f"{path.name} has a damaged header")


def _read_run(run_dir: Path) -> RunRecord:
    spec, config = _object(run_dir, "spec.json"), _object(run_dir, "config.json")
    _check_checkpoint(run_dir / "checkpoint.safetensors")
    name = _field(spec, "spec.json", "name", (str,)) or run_dir.name
    try:
        train_config = TrainConfig.from_dict(config)
    except UserError as e:
        raise _Unreadable(f"config.json: {e}") from None
    dataset = train_config.dataset
    start = start_label(train_config.freeze, train_config.init_from, train_config.pretrained_lr_scale)  # [transfer]
    if (run_dir / "summary.json").exists():
        fields = _summary_fields(_object(run_dir, "summary.json"))
    else:
        none = dict.fromkeys(("params", "macs", "best_val_acc", "seconds", "images_per_s", "epochs_done",
                              "started"))
        if not (run_dir / "metrics.jsonl").exists() and not (run_dir / "heartbeat.json").exists():
            fields = {"status": "queued", "message": "", **none}
        else:
            alive, why = liveness(run_dir)
            fields = {"status": "running" if alive else "interrupted", "message": why, **none}
    return RunRecord(path=run_dir, name=name[:200], dataset=dataset[:100], start=start[:200], **fields)


def unreadable(run_dir: Path, reason: str) -> RunRecord:
    return RunRecord(path=Path(run_dir), name=Path(run_dir).name, status="unreadable", dataset="?", params=None,
                     macs=None, best_val_acc=None, seconds=None, images_per_s=None, epochs_done=None,
                     started=None, message=reason)


def load_run(run_dir: Path) -> RunRecord | None:
    """The run in `run_dir`; status "unreadable" with the reason when a file in it is missing,
    empty, binary, truncated or wrongly typed; None when the folder is no run, or one still
    being created (younger than CREATING_SECONDS without its spec and config)."""
    run_dir = Path(run_dir)
    try:
        if not run_dir.is_dir() or not _is_run(run_dir):
            return None
        return _read_run(run_dir)
    except _Unreadable as e:
        reason = str(e)
    except OSError as e:
        reason = f"the folder cannot be read ({e.strerror or e})"
    try:
        young = time.time() - run_dir.stat().st_mtime < CREATING_SECONDS
    except OSError:
        young = False
    if young and "missing" in reason and not (run_dir / "summary.json").exists():
        return None
    return unreadable(run_dir, reason)


def list_runs(runs_dir: Path | None = None) -> list[RunRecord]:
    """Every run under `runs_dir` (default: runs_root()), sorted by folder name; a corrupt run is
    listed as unreadable and never hides the others."""
    runs_dir = runs_root(runs_dir)
    try:
        folders = sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []
    records = [load_run(p) for p in folders]
    return [r for r in records if r is not None]
