"""The job queue on a shared server: short lock waits and a clear QueueError (with the path) for
a locked or damaged database, malformed rows skipped and reported, old databases migrated, a
limit on waiting jobs per session and for everyone, and cancelling only one's own jobs unless
the server owner's code is given. No training process starts here (the cpu limit is 0)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from explorer import load_preset
from explorer.errors import QueueError
from explorer.training import jobs as jobs_module
from explorer.training.config import TrainConfig
from explorer.training.jobs import LOCK_TIMEOUT_SECONDS, JobQueue

CFG = TrainConfig(dataset="digits", epochs=1, device="cpu")
V1_SCHEMA = """CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, run_dir TEXT NOT NULL UNIQUE,
    device TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER, created REAL NOT NULL, started REAL, finished REAL,
    message TEXT DEFAULT '')"""
LOOSE_SCHEMA = V1_SCHEMA.replace(" NOT NULL", "")  # a hand-edited database: anything may be in a row


def idle_queue(root: Path) -> JobQueue:
    """A queue that never starts a process: no place on the cpu."""
    return JobQueue(root, limits={"cpu": 0, "cuda": 0})


def test_lock_waits_are_short():
    assert LOCK_TIMEOUT_SECONDS <= 5


def test_a_locked_database_raises_queue_error_naming_the_path(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs_module, "LOCK_TIMEOUT_SECONDS", 0.2)
    queue = idle_queue(tmp_path)
    other = sqlite3.connect(queue.db_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        for call in (lambda: queue.submit(load_preset("lenet5"), CFG, owner="a"), queue.jobs, queue.refresh,
                     queue.schedule, lambda: queue.cancel(1)):
            with pytest.raises(QueueError, match="locked") as info:
                call()
            assert str(queue.db_path) in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []  # the refused submit left no run folder
    queue.submit(load_preset("lenet5"), CFG, owner="a")
    assert len(queue.jobs()) == 1


def test_a_corrupt_database_raises_queue_error_naming_the_path(tmp_path):
    (tmp_path / "queue.sqlite").write_bytes(os.urandom(4096))
    with pytest.raises(QueueError, match="damaged") as info:
        JobQueue(tmp_path)
    assert str(tmp_path / "queue.sqlite") in str(info.value)


def test_malformed_rows_are_skipped_and_reported(tmp_path):
    db = sqlite3.connect(tmp_path / "queue.sqlite")
    db.execute(LOOSE_SCHEMA)
    good = tmp_path / "20260101-000000-good-aaaaaaaa"
    good.mkdir()
    rows = [(str(good), "cpu", "queued", None, 1.0),
            (str(tmp_path / "x1"), "cpu", None, None, 1.0),                           # status NULL
            (str(tmp_path / "20260101-000000-gone-bbbbbbbb"), "cpu", "queued", None, 1.0),  # folder gone
            (str(tmp_path / "x3"), "cpu", "running", "12ab", 1.0),                    # pid text
            ("/etc", "cpu", "queued", None, 1.0),                                      # outside the runs folder
            (str(tmp_path / "x5"), "cpu", "completed", None, "yesterday")]            # created text
    db.executemany("INSERT INTO jobs (run_dir, device, status, pid, created) VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    queue = JobQueue(tmp_path, limits={"cpu": 0})
    assert [j.run_dir for j in queue.jobs()] == [good]
    assert len(queue.problems) == 5 and all("malformed" in p for p in queue.problems)
    assert any("status" in p for p in queue.problems) and any("process id" in p for p in queue.problems)
    queue.refresh()
    assert queue.schedule() == []
    with pytest.raises(QueueError, match="malformed"):
        queue.get(2)


def test_an_old_database_gains_the_owner_column(tmp_path):
    run = tmp_path / "20260101-000000-old-aaaaaaaa"
    run.mkdir()
    db = sqlite3.connect(tmp_path / "queue.sqlite")
    db.execute(V1_SCHEMA)
    db.execute("INSERT INTO jobs (run_dir, device, status, created) VALUES (?, 'cpu', 'queued', 1.0)", (str(run),))
    db.commit()
    db.close()
    queue = idle_queue(tmp_path)
    assert [(j.run_dir, j.owner) for j in queue.jobs()] == [(run, "")]
    queue.submit(load_preset("lenet5"), CFG, owner="s1")
    assert [j.owner for j in queue.jobs()] == ["", "s1"]
    with pytest.raises(QueueError, match="another session"):  # a job without an owner: only the owner code
        queue.cancel(1, owner="s1")


def test_waiting_jobs_are_limited_per_session_and_in_all(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_EXPLORER_MAX_QUEUED_PER_SESSION", "2")
    monkeypatch.setenv("CNN_EXPLORER_MAX_QUEUED", "3")
    queue, spec = idle_queue(tmp_path), load_preset("lenet5")
    queue.submit(spec, CFG, owner="a")
    queue.submit(spec, CFG, owner="a")
    with pytest.raises(QueueError, match="this session already has 2 runs waiting"):
        queue.submit(spec, CFG, owner="a")
    queue.submit(spec, CFG, owner="b")
    with pytest.raises(QueueError, match="the queue is full"):
        queue.submit(spec, CFG, owner="c")
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3  # refused jobs leave no run folder
    queue.cancel(queue.jobs()[0].id, owner="a")  # a cancelled job no longer waits
    queue.submit(spec, CFG, owner="a")


def test_a_session_cancels_only_its_own_jobs_unless_the_owner_code_is_given(tmp_path, monkeypatch):
    queue, spec = idle_queue(tmp_path), load_preset("lenet5")
    a1, a2, b1 = (queue.submit(spec, CFG, owner=o) for o in ("a", "a", "b"))
    with pytest.raises(QueueError, match="another session"):
        queue.cancel(b1.id, owner="a")
    with pytest.raises(QueueError, match="another session"):  # no owner code is set on this server
        queue.cancel(b1.id, owner="a", owner_code="")
    assert queue.cancel(a1.id, owner="a").status == "cancelled"
    monkeypatch.setenv("CNN_EXPLORER_OWNER_CODE", "s3cret")
    with pytest.raises(QueueError, match="another session"):
        queue.cancel(b1.id, owner="a", owner_code="guess")
    assert queue.cancel(b1.id, owner="a", owner_code="s3cret").status == "cancelled"
    assert queue.cancel(a2.id).status == "cancelled"  # the server itself (scripts, tests)
    with pytest.raises(QueueError, match="no job 99"):
        queue.cancel(99, owner="a")
