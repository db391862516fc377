"""A job queue for training runs, shared by every browser session (SQLite, stdlib).

Owns: the queue database (its schema and migrations), who may wait (a limit per session and
one for everyone), who may cancel (a session its own jobs; the server's owner, with the code
in $CNN_EXPLORER_OWNER_CODE, every job), and when a job starts. Where it runs is the
executor's business (explorer/training/executors.py: local processes, or a Ray cluster); the
queue records which executor holds each running job and asks it whether the job still lives.

Each job is one run directory and, once started, one training process, so a crash or an
out-of-memory error never takes the app down. A limit per device (cpu, cuda) caps how many run
at once; the rest wait as "queued". The queue survives app restarts: a job whose process is gone
without a summary is marked "interrupted". Any caller may advance the queue (`refresh` +
`schedule`); the training process itself does so when it finishes, so queued jobs start even
when no browser is open. Claims happen inside BEGIN IMMEDIATE transactions, so two sessions
never start the same job or exceed a limit. A lock is waited for LOCK_TIMEOUT_SECONDS at most;
a locked or damaged database raises QueueError naming its path; a malformed row is skipped and
reported in `problems`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from explorer.access import code_matches
from explorer.errors import QueueError
from explorer.core.spec import NetworkSpec
from explorer.training.config import TrainConfig
from explorer.training.executors import (LocalExecutor, Placement, Resources, executor_for, executor_name,
                                         get_executor)
from explorer.training.runs import FINISHED, load_json, new_run_dir, read_json, write_json_atomic

DEFAULT_LIMITS = {"cpu": 1, "cuda": 2}  # training processes running at once, per device (local executor)
RAY_LIMITS = {"cpu": 8, "cuda": 8}      # runs handed to Ray at once; Ray itself waits for free resources
LOCK_TIMEOUT_SECONDS = 3.0              # longest wait for another writer's lock (s)
MAX_QUEUED_PER_SESSION_ENV = "CNN_EXPLORER_MAX_QUEUED_PER_SESSION"
MAX_QUEUED_ENV = "CNN_EXPLORER_MAX_QUEUED"
OWNER_CODE_ENV = "CNN_EXPLORER_OWNER_CODE"
DEFAULT_MAX_QUEUED_PER_SESSION = 3      # waiting jobs one session may have
DEFAULT_MAX_QUEUED = 30                 # waiting jobs of all sessions together
COLUMNS = ("id", "run_dir", "device", "status", "pid", "created", "started", "finished", "message", "owner",
           "executor")
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
    message TEXT DEFAULT '',
    owner TEXT DEFAULT '',
    executor TEXT DEFAULT 'local'
)"""
MIGRATIONS = {"owner": "ALTER TABLE jobs ADD COLUMN owner TEXT DEFAULT ''",  # columns added since v1
              "executor": "ALTER TABLE jobs ADD COLUMN executor TEXT DEFAULT 'local'"}
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM jobs"
JOB_STATUSES = ("queued", "running", *FINISHED)


def _env_int(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, default)))
    except ValueError:
        return default


def max_queued_per_session() -> int:
    return _env_int(MAX_QUEUED_PER_SESSION_ENV, DEFAULT_MAX_QUEUED_PER_SESSION)


def max_queued() -> int:
    return _env_int(MAX_QUEUED_ENV, DEFAULT_MAX_QUEUED)


def owner_code_ok(code: str | None) -> bool:
    """True when `code` equals the server owner's code ($CNN_EXPLORER_OWNER_CODE; unset: never)."""
    return code_matches(OWNER_CODE_ENV, code)


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
    owner: str = ""     # the session that submitted it ('' for jobs from before owners were recorded)
    executor: str = "local"  # where it runs once started: "local" or "ray"

    @property
    def placement(self) -> Placement:
        """What the executor needs to find the run: the process id (local) or the actor name (ray)."""
        handle = self.run_dir.name if self.executor == "ray" else str(self.pid or "")
        return Placement(self.executor, handle)


def _device_kind(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def run_resources(run_dir: Path, device: str) -> Resources:
    """What a prepared run asks of a cluster: one CPU core, a GPU for CUDA runs, and the training
    plan's predicted memory on that device (parameters, gradients, optimizer state, saved
    activations in the plan's precision; bytes)."""
    from explorer.errors import UserError
    from explorer.training.plan import plan_run

    memory = 0
    try:
        spec = NetworkSpec.from_dict(load_json(run_dir / "spec.json"))
        config = TrainConfig.from_dict(load_json(run_dir / "config.json"))
        memory = plan_run(spec, config, device=device, check_transfer=False).memory_bytes or 0
    except (UserError, OSError, ValueError):
        pass  # the run itself will fail with the message; ask for no memory reservation
    return Resources(num_cpus=1.0, num_gpus=1.0 if device == "cuda" else 0.0, memory=memory)


def _number(value, kinds=(int, float)) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def _job(row) -> Job:
    """A row as a Job; ValueError saying what is wrong with a malformed row."""
    values = dict(zip(COLUMNS, row))
    if not _number(values["id"], (int,)):
        raise ValueError(f"a row has a bad id {values['id']!r}")
    where = f"job {values['id']}"
    if not isinstance(values["run_dir"], str) or not values["run_dir"]:
        raise ValueError(f"{where} has no run folder")
    if values["status"] not in JOB_STATUSES:
        raise ValueError(f"{where} has an unknown status {str(values['status'])[:40]!r}")
    if not isinstance(values["device"], str):
        raise ValueError(f"{where} has a bad device {str(values['device'])[:40]!r}")
    if values["executor"] not in (None, "local", "ray"):
        raise ValueError(f"{where} has an unknown executor {str(values['executor'])[:40]!r}")
    if values["pid"] is not None and not _number(values["pid"], (int,)):
        raise ValueError(f"{where} has a bad process id {str(values['pid'])[:40]!r}")
    for key in ("created", "started", "finished"):
        if values[key] is not None and not _number(values[key]):
            raise ValueError(f"{where} has a bad {key} time {str(values[key])[:40]!r}")
    return Job(id=values["id"], run_dir=Path(values["run_dir"]), device=values["device"], status=values["status"],
               pid=values["pid"], created=float(values["created"] or 0.0), started=values["started"],
               finished=values["finished"], message=str(values["message"] or ""), owner=str(values["owner"] or ""),
               executor=values["executor"] or "local")


class JobQueue:
    def __init__(self, runs_dir: Path, limits: dict[str, int] | None = None, db_path: Path | None = None,
                 python: str | None = None, executor: str | None = None, ray_address: str | None = None):
        # absolute: the training processes run from the project root, not the caller's directory
        self.runs_dir = Path(runs_dir).resolve()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = Path(db_path or self.runs_dir / "queue.sqlite").resolve()
        self.executor = executor_name(executor)   # for new starts ($CNN_EXPLORER_EXECUTOR by default)
        self.ray_address = ray_address             # None: $CNN_EXPLORER_RAY_ADDRESS
        self.limits = {**(RAY_LIMITS if self.executor == "ray" else DEFAULT_LIMITS), **(limits or {})}
        self.python = python or sys.executable
        self.problems: list[str] = []   # malformed rows met by the last read (skipped), one sentence each
        with self._tx() as db:
            db.execute(SCHEMA)
            have = {r[1] for r in db.execute("PRAGMA table_info(jobs)").fetchall()}
            for column, sql in MIGRATIONS.items():
                if column not in have:
                    db.execute(sql)

    def _error(self, e: sqlite3.Error) -> QueueError:
        text = str(e).lower()
        if "locked" in text or "busy" in text:
            return QueueError(f"the job queue {self.db_path} is locked by another process for more than "
                              f"{LOCK_TIMEOUT_SECONDS:g} s; try again in a moment")
        if "not a database" in text or "malformed" in text or "corrupt" in text or "no such" in text \
                or "file is" in text:
            return QueueError(f"the job queue {self.db_path} is damaged ({e}); move the file away (a new "
                              f"queue is made) and reload")
        return QueueError(f"the job queue {self.db_path} cannot be used ({type(e).__name__}: {e})")

    @contextmanager
    def _connect(self):
        try:
            db = sqlite3.connect(self.db_path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)
        except sqlite3.Error as e:
            raise self._error(e) from None
        try:
            yield db
        except sqlite3.Error as e:
            raise self._error(e) from None
        finally:
            db.close()

    @contextmanager
    def _tx(self):
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the original error is the one to report
                raise

    def _valid(self, rows) -> list[Job]:
        """The well-formed rows as Jobs; the others are skipped and described in self.problems."""
        jobs = []
        for row in rows:
            try:
                job = _job(row)
                if job.status in ("queued", "running") and job.run_dir.resolve().parent != self.runs_dir:
                    raise ValueError(f"job {job.id}'s run folder {str(job.run_dir)[:80]} is not in {self.runs_dir}")
                if job.status in ("queued", "running") and not job.run_dir.is_dir():
                    raise ValueError(f"job {job.id}'s run folder {job.run_dir.name[:80]} is gone")
            except (ValueError, OSError, TypeError) as e:
                self.problems.append(f"Skipped a malformed job in {self.db_path.name}: {e}.")
                continue
            jobs.append(job)
        return jobs

    # ------------------------------------------------------------------------------------------
    def submit(self, spec: NetworkSpec, config: TrainConfig, owner: str = "") -> Job:
        """Queue a run for session `owner`; QueueError when that session or everyone already has
        the most waiting jobs allowed."""
        config.validate()
        with self._tx() as db:
            waiting = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
            mine = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND owner = ?",
                              (owner,)).fetchone()[0]
            if owner and mine >= max_queued_per_session():
                raise QueueError(f"this session already has {mine} runs waiting (at most "
                                 f"{max_queued_per_session()}); wait for one to start or cancel one")
            if waiting >= max_queued():
                raise QueueError(f"the queue is full ({waiting} runs waiting, at most {max_queued()}); "
                                 f"try again when some have started")
            run_dir = new_run_dir(self.runs_dir, spec.name)
            try:
                write_json_atomic(run_dir / "spec.json", spec.to_dict())
                write_json_atomic(run_dir / "config.json", config.to_dict())
                cur = db.execute("INSERT INTO jobs (run_dir, device, status, created, owner) "
                                 "VALUES (?, ?, 'queued', ?, ?)",
                                 (str(run_dir), _device_kind(config.device), time.time(), owner))
            except BaseException:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
            job_id = cur.lastrowid
        self.schedule()
        return self.get(job_id)

    def get(self, job_id: int) -> Job:
        with self._connect() as db:
            row = db.execute(f"{_SELECT} WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise QueueError(f"there is no job {job_id} in the queue")
        try:
            return _job(row)
        except ValueError as e:
            raise QueueError(f"job {job_id} in {self.db_path} is malformed: {e}") from None

    def jobs(self) -> list[Job]:
        """Every well-formed job, oldest first (malformed rows are skipped: see self.problems)."""
        self.problems = []
        with self._connect() as db:
            rows = db.execute(f"{_SELECT} ORDER BY id").fetchall()
        return self._valid(rows)

    def refresh(self) -> None:
        """Mark jobs whose process has ended: the status from summary.json, else interrupted."""
        LocalExecutor.reap()
        self.problems = []
        with self._tx() as db:
            for job in self._valid(db.execute(f"{_SELECT} WHERE status = 'running'").fetchall()):
                if executor_for(job.placement, self.ray_address).alive(job.placement, job.run_dir):
                    continue
                summary = read_json(job.run_dir / "summary.json")
                summary = summary if isinstance(summary, dict) else {}
                status = summary.get("status") if summary.get("status") in FINISHED else "interrupted"
                message = summary.get("message") if isinstance(summary.get("message"), str) else \
                    "the training process ended without a summary (killed, or the machine restarted)"
                if status == "interrupted" and not summary:
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
                rows = db.execute(f"{_SELECT} WHERE status = 'queued' AND device = ? ORDER BY id",
                                  (device,)).fetchall()
                for job in self._valid(rows)[:free]:
                    pid = self._start(job)
                    db.execute("UPDATE jobs SET status = 'running', pid = ?, started = ?, executor = ? WHERE id = ?",
                               (pid, time.time(), self.executor, job.id))
                    started.append(job.id)
        return [self.get(i) for i in started]

    def _start(self, job: Job) -> int | None:
        """Hand the job to the executor; the local process id, or None for a Ray actor."""
        if self.executor == "local":
            placement = LocalExecutor(self.python).start(job.run_dir, Resources(), self.db_path)
            return int(placement.handle)
        get_executor("ray", self.ray_address).start(job.run_dir, run_resources(job.run_dir, job.device))
        return None

    def may_cancel(self, job: Job, owner: str | None = None, owner_code: str | None = None) -> bool:
        """A session cancels its own jobs; the owner's code unlocks every job."""
        return owner_code_ok(owner_code) or (bool(owner) and job.owner == owner)

    def cancel(self, job_id: int, owner: str | None = None, owner_code: str | None = None) -> Job:
        """A queued job is dropped; a running one is asked to stop at its next step. Only the
        session that submitted it (`owner`), or whoever gives the owner's code, may cancel;
        owner=None is the server side itself (scripts, tests, the CLI)."""
        with self._tx() as db:
            row = db.execute(f"{_SELECT} WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise QueueError(f"there is no job {job_id} in the queue")
            try:
                job = _job(row)
            except ValueError as e:
                raise QueueError(f"job {job_id} in {self.db_path} is malformed: {e}") from None
            if owner is not None and not self.may_cancel(job, owner, owner_code):
                raise QueueError(f"job {job_id} belongs to another session; only that session, or the "
                                 f"server's owner with the owner code, can cancel it")
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
