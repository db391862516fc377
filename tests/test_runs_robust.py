"""Run folders on a shared server: readers survive any bytes in any run file (fuzzed), a dead or
silent run is "interrupted" wherever it was started, a full disk ends a run as failed without
leaving temporary files, and run-folder names stay unique when many runs start at once."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.compare import results as cmp
from explorer import load_preset
from explorer.cli import main
from explorer.training import loop as loop_module
from explorer.training import runs as runs_module
from explorer.training.config import TrainConfig
from explorer.training.loop import DISK_FULL, train
from explorer.training.runs import (STALE_SECONDS, STATUSES, list_runs, load_run, new_run_dir, read_metrics,
                                    write_json_atomic)
from explorer.charts.training import RunCurves

FUZZ_CASES = 400          # hypothesis examples per run file (6 files: 2,400 cases) and per shape test
RUN_FILES = ("summary.json", "spec.json", "config.json", "metrics.jsonl", "checkpoint.safetensors",
             "heartbeat.json")
PROJECT = Path(__file__).resolve().parents[1]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)
KEYS = ("status", "params", "macs", "best_val_acc", "seconds", "images_per_s", "epochs_done", "started", "message",
        "name", "dataset", "lr", "epochs", "event", "step", "epoch", "loss", "acc", "val_acc", "pid", "host", "time",
        "proc_start", "blocks", "input", "progress", "expected_initial_loss", "train_size", "val_size")
# JSON objects with the right keys and any values: the wrongly typed files
keyed_objects = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8)
contents = (st.binary(max_size=300)
            | json_values.map(lambda v: json.dumps(v).encode())
            | keyed_objects.map(lambda v: json.dumps(v).encode())
            | st.lists(keyed_objects.map(json.dumps), max_size=5).map(lambda ls: "\n".join(ls).encode() + b"\n"))


def write_good_run(path: Path) -> Path:
    """A finished run as the loop writes it (no training needed)."""
    path.mkdir(parents=True)
    write_json_atomic(path / "spec.json", load_preset("lenet5").to_dict())
    write_json_atomic(path / "config.json", TrainConfig(dataset="digits").to_dict())
    write_json_atomic(path / "summary.json", {"status": "completed", "best_val_acc": 0.9, "params": 61706,
                                              "macs": 416520, "seconds": 3.5, "images_per_s": 900.0,
                                              "epochs_done": 1, "started": 1.0e9, "message": "finished"})
    lines = [{"event": "start", "time": 1.0, "device": "cpu", "dataset": "digits", "train_size": 10, "val_size": 5,
              "steps_per_epoch": 1, "total_steps": 1, "expected_initial_loss": 2.3026},
             {"event": "step", "time": 2.0, "step": 1, "epoch": 1, "loss": 2.3, "acc": 0.1, "lr": 0.01,
              "images_per_s": 100.0, "eta_s": 0.0, "elapsed_s": 0.1, "progress": 1.0},
             {"event": "epoch", "time": 3.0, "epoch": 1, "step": 1, "train_loss": 2.3, "train_acc": 0.1,
              "val_loss": 2.2, "val_acc": 0.9, "val_top5": 1.0},
             {"event": "done", "time": 4.0, "status": "completed", "message": "finished"}]
    (path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    good = write_good_run(root / "20260101-000000-good-aaaaaaaa")
    bad = write_good_run(root / "20260101-000001-bad-bbbbbbbb")
    return root, good, bad


def read_everything(root: Path, bad: Path) -> list:
    """Every reader of run folders, as the CLI and the pages call them."""
    records = list_runs(root)
    frame = cmp.runs_frame(records)
    cmp.epoch_curves(bad)
    curves = RunCurves.from_events(read_metrics(bad)[0], "bad")
    curves.best_val_acc, curves.progress, curves.num_classes, curves.first_loss  # noqa: B018 - must not raise
    assert len(frame) + len(cmp.unreadable_runs(records)) == len(records)
    return records


@pytest.mark.parametrize("name", RUN_FILES)
@settings(max_examples=FUZZ_CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=contents)
def test_any_bytes_in_a_run_file_leave_the_other_runs_listed(two_runs, name, data):
    root, good, bad = two_runs
    original = (good / name).read_bytes() if (good / name).exists() else None
    (bad / name).write_bytes(data)
    try:
        records = {r.path.name: r for r in read_everything(root, bad)}
    finally:
        if original is None:
            (bad / name).unlink()
        else:
            (bad / name).write_bytes(original)
    assert records[good.name].status == "completed" and records[good.name].best_val_acc == 0.9
    assert records[bad.name].status in STATUSES
    if records[bad.name].status == "unreadable":
        assert records[bad.name].message  # the reason


@pytest.mark.parametrize("name", ("summary.json", "spec.json", "config.json"))
def test_missing_empty_truncated_and_wrong_type_files_are_unreadable_with_the_reason(tmp_path, name, capsys):
    cases = {"missing": None, "empty": b"", "truncated": b'{"status": "compl', "binary": b"\x00\xff\xfe\x89PNG",
             "a list": b"[1, 2]"}
    if name == "summary.json":
        del cases["missing"]  # no summary yet: running or interrupted, decided by the heartbeat
    for i, (what, data) in enumerate(cases.items()):
        run = write_good_run(tmp_path / f"20260101-00000{i}-x-{what.replace(' ', '')}")
        (run / name).unlink()
        if data is not None:
            (run / name).write_bytes(data)
        os.utime(run, (1e9, 1e9))  # old enough: not a run still being created
    good = write_good_run(tmp_path / "20270101-000000-good-cccccccc")
    records = {r.path.name: r for r in list_runs(tmp_path)}
    assert records[good.name].status == "completed"
    bad = [r for r in records.values() if r.path != good]
    assert len(bad) == len(cases) and all(r.status == "unreadable" and name in r.message for r in bad)
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("unreadable") >= 2 * len(cases) and "completed" in out
    assert main(["runs", "--runs-dir", str(tmp_path), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(r["status"] for r in listed) == ["completed"] + ["unreadable"] * len(cases)


def test_a_wrongly_typed_summary_field_is_named(tmp_path):
    run = write_good_run(tmp_path / "20260101-000000-x-dddddddd")
    write_json_atomic(run / "summary.json", {"status": "completed", "params": "many"})
    record = load_run(run)
    assert record.status == "unreadable" and "params" in record.message
    write_json_atomic(run / "summary.json", {"status": "completed"})
    write_json_atomic(run / "config.json", {"dataset": "digits", "lr": "fast"})
    record = load_run(run)
    assert record.status == "unreadable" and "lr" in record.message


def test_read_metrics_keeps_only_well_formed_events(tmp_path):
    (tmp_path / "metrics.jsonl").write_bytes(
        b'5\n[1]\n{"event": "step", "step": "x"}\n\xff\xfe\n{"event": "warning", "message": "ok"}\n'
        b'{"event": "epoch", "epoch": 1, "step": 1, "train_loss": NaN, "train_acc": 0, "val_loss": 1,'
        b' "val_acc": 1, "val_top5": 1}\n{"event": "warn')
    events, offset = read_metrics(tmp_path)
    assert events == [{"event": "warning", "message": "ok"}]
    assert offset == (tmp_path / "metrics.jsonl").read_bytes().rindex(b"\n") + 1


# --- running, or interrupted ----------------------------------------------------------------------------
def _live_run(tmp_path: Path, heartbeat: dict | None) -> Path:
    run = tmp_path / "20260101-000000-live-eeeeeeee"
    run.mkdir(parents=True)
    write_json_atomic(run / "spec.json", load_preset("lenet5").to_dict())
    write_json_atomic(run / "config.json", TrainConfig(dataset="digits").to_dict())
    (run / "metrics.jsonl").write_text('{"event": "start", "train_size": 1, "val_size": 1}\n')
    if heartbeat is not None:
        write_json_atomic(run / "heartbeat.json", heartbeat)
    return run


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_liveness_from_heartbeat_pid_and_host(tmp_path):
    me, host, now = os.getpid(), socket.gethostname(), time.time()
    start = runs_module._proc_start(me)
    cases = [  # (heartbeat, status)
        ({"pid": me, "host": host, "proc_start": start, "time": now}, "running"),
        ({"pid": _dead_pid(), "host": host, "proc_start": None, "time": now}, "interrupted"),  # process gone
        ({"pid": me, "host": host, "proc_start": (start or 0) + 1, "time": now}, "interrupted"),  # pid reused
        ({"pid": me, "host": host, "proc_start": start, "time": now - 2 * STALE_SECONDS}, "interrupted"),  # hung
        ({"pid": 1, "host": "another-machine", "time": now}, "running"),
        ({"pid": 1, "host": "another-machine", "time": now - 2 * STALE_SECONDS}, "interrupted"),
        ({"pid": "x", "host": None, "time": "soon"}, "running"),  # junk heartbeat: the fresh metrics decide
    ]
    for i, (beat, status) in enumerate(cases):
        run = _live_run(tmp_path / str(i), beat)
        record = load_run(run)
        assert record.status == status, (beat, record)
        if status == "interrupted":
            assert record.message
    old = _live_run(tmp_path / "old", None)  # a run from before heartbeats: its metrics file's age decides
    os.utime(old / "metrics.jsonl", (now - 2 * STALE_SECONDS,) * 2)
    assert load_run(old).status == "interrupted"


def test_a_sigkilled_cli_training_run_is_listed_as_interrupted(tmp_path, capsys):
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "explorer", "train", "--preset", "lenet5", "--dataset",
                                "digits", "--epochs", "50", "--device", "cpu", "--runs-dir", str(tmp_path)],
                               cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            runs = [p for p in tmp_path.iterdir() if p.is_dir()]
            if runs and any(e["event"] == "step" for e in read_metrics(runs[0])[0]):
                break
            assert process.poll() is None, "the training process ended early"
            time.sleep(0.1)
        assert list_runs(tmp_path)[0].status == "running"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    record = list_runs(tmp_path)[0]
    assert record.status == "interrupted" and "without a summary" in record.message
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert "interrupted" in capsys.readouterr().out


# --- a full disk ------------------------------------------------------------------------------------
def test_write_json_atomic_removes_its_temporary_file_on_any_failure(tmp_path, monkeypatch):
    real = Path.write_text

    def full(self, text, *args, **kwargs):
        real(self, text[:10], *args, **kwargs)  # a few bytes fit, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError) as info:
        write_json_atomic(tmp_path / "summary.json", {"status": "completed"})
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "summary.json", {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_checkpointing_ends_the_run_as_failed(tmp_path, monkeypatch):
    def full(model, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(loop_module, "_save_checkpoint", full)
    summary = train(load_preset("twoconv"), TrainConfig(dataset="digits", epochs=1, device="cpu"), tmp_path / "r")
    assert summary["status"] == "failed" and summary["message"] == DISK_FULL
    assert load_run(tmp_path / "r").status == "failed"
    assert not [p for p in (tmp_path / "r").iterdir() if p.name.endswith(".tmp")]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (root only); skipped where mounting is not permitted."""
    where = tmp_path / "tiny"
    where.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode(errors='replace').strip()}")
    yield where
    subprocess.run(["umount", str(where)], capture_output=True)


def test_a_real_full_disk_ends_the_run_as_failed_without_temporary_files(tiny_disk):
    (tiny_disk / "filler").write_bytes(b"\0" * 40_000)  # leaves room for the small files, not for weights
    summary = train(load_preset("lenet5"), TrainConfig(dataset="digits", epochs=2, device="cpu"), tiny_disk / "r")
    assert summary["status"] == "failed" and summary["message"] == DISK_FULL
    assert not [p for p in (tiny_disk / "r").iterdir() if p.name.endswith(".tmp")]
    record = load_run(tiny_disk / "r")
    assert record.status in ("failed", "unreadable", "interrupted")


# --- unique names ---------------------------------------------------------------------------------------
def _make_dirs(root: str, n: int) -> list[str]:
    return [new_run_dir(Path(root), "same").name for _ in range(n)]


def test_run_folder_names_are_unique_under_concurrent_creation(tmp_path):
    names: list[str] = []
    threads = [threading.Thread(target=lambda: names.extend(_make_dirs(str(tmp_path), 25))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with ProcessPoolExecutor(4) as pool:
        for batch in pool.map(_make_dirs, [str(tmp_path)] * 4, [25] * 4):
            names.extend(batch)
    assert len(names) == len(set(names)) == 300 == len(list(tmp_path.iterdir()))


def test_a_name_clash_is_retried(tmp_path, monkeypatch):
    suffixes = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(runs_module.secrets, "token_hex", lambda n: next(suffixes))
    monkeypatch.setattr(runs_module.time, "time", lambda: 1767225600.25)   # 250 ms: "0fa"
    monkeypatch.setattr(runs_module.time, "strftime", lambda fmt, t: "20260101-000000")
    first, second = new_run_dir(tmp_path, "x"), new_run_dir(tmp_path, "x")
    assert first.name.endswith("-0faaaaaa") and second.name.endswith("-0fabbbbb")


def test_a_fifo_or_a_device_in_place_of_a_run_file_does_not_block(tmp_path):
    run = write_good_run(tmp_path / "20260101-000000-fifo-ffffffff")
    (run / "summary.json").unlink()
    os.mkfifo(run / "summary.json")
    (run / "checkpoint.safetensors").symlink_to("/dev/zero")
    (run / "metrics.jsonl").unlink()
    os.mkfifo(run / "metrics.jsonl")
    assert read_metrics(run) == ([], 0)
    record = load_run(run)
    assert record.status == "unreadable" and "not a regular file" in record.message


def test_run_folders_started_within_one_second_sort_by_start(tmp_path):
    """The default selection is the newest folder by name: the millisecond leads the suffix."""
    from explorer.training.status import parse_run_name

    made = []
    for _ in range(6):
        made.append(new_run_dir(tmp_path, "lenet5").name)
        time.sleep(0.003)
    same_second = [n for n in made if n[:15] == made[-1][:15]]
    assert sorted(same_second) == same_second and len(set(made)) == len(made)
    assert all(len(parse_run_name(n).suffix) == 8 for n in made)
