"""A job queue for training runs, shared by every browser session (SQLite, stdlib).

Each job is one run directory and, once started, one `python -m explorer train` process, so a
crash or an out-of-memory error never takes the app down. A limit per device (cpu, cuda) caps
how many run at once; the rest wait as "queued". The queue survives app restarts: a job whose
process is gone without a summary is marked "interrupted". Any caller may advance the queue
(`refresh` + `schedule`); the training process itself does so when it finishes, so queued jobs
start even when no browser is open. Claims happen inside BEGIN IMMEDIATE transactions, so two
sessions never start the same job or exceed the limit.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from explorer.spec import NetworkSpec
from explorer.training.config import TrainConfig
from explorer.training.runs import FINISHED, new_run_dir, read_json, write_json_atomic

DEFAULT_LIMITS = {"cpu": 1, "cuda": 2}
_CHILDREN: dict[int, subprocess.Popen] = {}  # processes this process started: polled to reap them
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_dir TEXT NOT NULL UNIQUE,
    device TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    message TEXT DEFAULT ''
)"""


@dataclass(frozen=True)
class Job:
    id: int
    run_dir: Path
    device: str
    status: str
    pid: int | None
    created: float
    started: float | None
    finished: float | None
    message: str


def _device_kind(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _process_alive(pid: int | None, run_dir: str) -> bool:
    """True while the training process for run_dir runs (guards against pid reuse on Linux)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        if run_dir not in text:
            return False
        stat = Path(f"/proc/{pid}/stat").read_text().split()
        return stat[2] != "Z"  # a zombie has finished
    return True


class JobQueue:
    def __init__(self, runs_dir: Path, limits: dict[str, int] | None = None, db_path: Path | None = None,
                 python: str | None = None):
        # absolute: the training processes run from the project root, not the caller's directory
        self.runs_dir = Path(runs_dir).resolve()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = Path(db_path or self.runs_dir / "queue.sqlite").resolve()
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.python = python or sys.executable
        with self._tx() as db:
            db.execute(SCHEMA)

    @contextmanager
    def _tx(self):
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    # ------------------------------------------------------------------------------------------
    def submit(self, spec: NetworkSpec, config: TrainConfig) -> Job:
        config.validate()
        run_dir = new_run_dir(self.runs_dir, spec.name)
        write_json_atomic(run_dir / "spec.json", spec.to_dict())
        write_json_atomic(run_dir / "config.json", config.to_dict())
        with self._tx() as db:
            cur = db.execute("INSERT INTO jobs (run_dir, device, status, created) VALUES (?, ?, 'queued', ?)",
                             (str(run_dir), _device_kind(config.device), time.time()))
            job_id = cur.lastrowid
        self.schedule()
        return self.get(job_id)

    def get(self, job_id: int) -> Job:
        db = sqlite3.connect(self.db_path, timeout=30)
        try:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        finally:
            db.close()
        if row is None:
            raise KeyError(f"no job {job_id}")
        return _job(row)

    def jobs(self) -> list[Job]:
        db = sqlite3.connect(self.db_path, timeout=30)
        try:
            rows = db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        finally:
            db.close()
        return [_job(r) for r in rows]

    def refresh(self) -> None:
        """Mark jobs whose process has ended: the status from summary.json, else interrupted."""
        for pid, process in list(_CHILDREN.items()):
            if process.poll() is not None:  # reaps the finished child
                del _CHILDREN[pid]
        with self._tx() as db:
            for row in db.execute("SELECT * FROM jobs WHERE status = 'running'").fetchall():
                job = _job(row)
                if _process_alive(job.pid, str(job.run_dir)):
                    continue
                summary = read_json(job.run_dir / "summary.json") or {}
                status = summary.get("status", "interrupted")
                message = summary.get("message", "the training process ended without a summary "
                                                 "(killed, or the machine restarted)")
                if status == "interrupted" and not (job.run_dir / "summary.json").exists():
                    write_json_atomic(job.run_dir / "summary.json",
                                      {"status": "interrupted", "message": message, "best_val_acc": None})
                db.execute("UPDATE jobs SET status = ?, finished = ?, message = ? WHERE id = ?",
                           (status, time.time(), message, job.id))

    def schedule(self) -> list[Job]:
        """Start queued jobs while their device is under its limit; returns the jobs started."""
        started = []
        with self._tx() as db:
            for device, limit in self.limits.items():
                running = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'running' AND device = ?",
                                     (device,)).fetchone()[0]
                free = limit - running
                if free <= 0:
                    continue
                rows = db.execute("SELECT * FROM jobs WHERE status = 'queued' AND device = ? ORDER BY id LIMIT ?",
                                  (device, free)).fetchall()
                for row in rows:
                    job = _job(row)
                    pid = self._start(job)
                    db.execute("UPDATE jobs SET status = 'running', pid = ?, started = ? WHERE id = ?",
                               (pid, time.time(), job.id))
                    started.append(job.id)
        return [self.get(i) for i in started]

    def _start(self, job: Job) -> int:
        log = open(job.run_dir / "process.log", "ab")
        cmd = [self.python, "-m", "explorer", "train", "--spec", str(job.run_dir / "spec.json"),
               "--config", str(job.run_dir / "config.json"), "--run-dir", str(job.run_dir),
               "--queue", str(self.db_path), "--format", "json"]
        project_root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(project_root),
                                                                          os.environ.get("PYTHONPATH")])),
               "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}  # see explorer/__main__.py
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env=env, cwd=project_root)
        log.close()
        _CHILDREN[process.pid] = process
        return process.pid

    def cancel(self, job_id: int) -> Job:
        """A queued job is dropped; a running one is asked to stop at its next step."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job {job_id}")
            job = _job(row)
            if job.status == "queued":
                db.execute("UPDATE jobs SET status = 'cancelled', finished = ?, message = ? WHERE id = ?",
                           (time.time(), "cancelled before it started", job_id))
                write_json_atomic(job.run_dir / "summary.json",
                                  {"status": "cancelled", "message": "cancelled before it started",
                                   "best_val_acc": None})
            elif job.status == "running":
                (job.run_dir / "CANCEL").touch()
        return self.get(job_id)

    def finish(self, run_dir: Path, summary: dict) -> None:
        """Called by the training process itself when it ends, before it schedules the next jobs."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET status = ?, finished = ?, message = ? WHERE run_dir = ?",
                       (summary.get("status", "failed"), time.time(), summary.get("message", ""), str(run_dir)))

    def job_for_run(self, run_dir: Path) -> Job | None:
        for job in self.jobs():
            if job.run_dir == Path(run_dir):
                return job
        return None

    def wait(self, job_ids: list[int], timeout: float = 600, poll: float = 0.2) -> list[Job]:
        """Advance the queue until these jobs have finished (for scripts and tests)."""
        deadline = time.time() + timeout
        while True:
            self.refresh()
            self.schedule()
            jobs = [self.get(i) for i in job_ids]
            if all(j.status in FINISHED for j in jobs):
                return jobs
            if time.time() > deadline:
                raise TimeoutError(f"jobs {job_ids} still running after {timeout:g} s")
            time.sleep(poll)


def _job(row) -> Job:
    return Job(id=row[0], run_dir=Path(row[1]), device=row[2], status=row[3], pid=row[4], created=row[5],
               started=row[6], finished=row[7], message=row[8] or "")
