"""Optuna studies of a sweep: where they live, which sampler and pruner, what a trial's value is,
and the sweep report that the CLI prints and the Sweep page shows.

Owns: the studies database (RUNS/sweeps.sqlite, beside the job queue's queue.sqlite), the sweep
folder (RUNS/sweeps/ID/: sweep.json, fine_space.json, driver.json, CANCEL), sampler and pruner
factories, the objective function of a finished or running trial, and sweep_report().

Each sweep has two studies, "ID/coarse" and "ID/fine" (the fine stage narrows the ranges, and
Optuna's samplers expect fixed distributions within a study). Trial numbers in reports are
global: the fine stage's trial k is number coarse_trials + k.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from explorer.compare.results import efficiency_score, pareto_front
from explorer.errors import ConfigError
from explorer.search.sweepfile import SweepFile, read_sweep
from explorer.training.runs import read_json

STAGES = ("coarse", "fine")
DB_ATTEMPTS = 5           # tries when the studies database is being created by another process
HALVING_RATE = 3          # successive halving / Hyperband: keep the best 1/3 at each rung
STATE_NAMES = {"RUNNING": "running", "COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed",
               "WAITING": "waiting"}


def sweeps_dir(runs_dir: Path) -> Path:
    return Path(runs_dir) / "sweeps"


def sweep_dir(runs_dir: Path, sweep_id: str) -> Path:
    return sweeps_dir(runs_dir) / sweep_id


def storage_url(runs_dir: Path) -> str:
    return f"sqlite:///{(Path(runs_dir).resolve() / 'sweeps.sqlite')}"


def _quiet() -> None:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)


def make_sampler(sweep: SweepFile, stage: str):
    import optuna

    seed = sweep.seed + STAGES.index(stage)  # the fine stage draws a different sequence
    if sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sweep.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(20, sweep.budget.trials // 4)))
    startup = max(2, min(10, sweep.coarse_trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def make_pruner(sweep: SweepFile, epochs: int):
    """Pruning on the per-epoch validation value; an epoch is one unit of resource. No trial is
    pruned before sweep.min_epochs_before_pruning(epochs) epochs (Optuna's min_resource): at epoch 1
    a small network that will end up best can still trail one that starts fast, while a hopeless
    one (a learning rate far too low or too high) is already plain at epoch 2."""
    import optuna

    first = sweep.min_epochs_before_pruning(epochs)
    if sweep.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=HALVING_RATE)
    if sweep.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=max(first, epochs),
                                              reduction_factor=HALVING_RATE)
    return optuna.pruners.NopPruner()


def directions(sweep: SweepFile) -> list[str]:
    return ["maximize", "minimize"] if sweep.objective == "pareto" else ["maximize"]


def _retrying(make):
    """make() again when another process is creating the studies database at the same moment
    (Optuna writes its schema on first use; two first uses race on SQLite)."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(DB_ATTEMPTS):
        try:
            return make()
        except (IntegrityError, OperationalError):
            if attempt == DB_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def open_study(sweep: SweepFile, runs_dir: Path, stage: str, epochs: int):
    """Create or reload (resume) one stage's study."""
    import optuna

    _quiet()
    return _retrying(lambda: optuna.create_study(
        storage=storage_url(runs_dir), study_name=f"{sweep.id}/{stage}", sampler=make_sampler(sweep, stage),
        pruner=make_pruner(sweep, epochs), directions=directions(sweep), load_if_exists=True))


def load_stage(runs_dir: Path, sweep_id: str, stage: str):
    """The stage's study, or None when it was never created (readers never create the database)."""
    import optuna

    _quiet()
    if not (Path(runs_dir) / "sweeps.sqlite").is_file():
        return None
    try:
        return _retrying(lambda: optuna.load_study(study_name=f"{sweep_id}/{stage}", storage=storage_url(runs_dir)))
    except KeyError:
        return None


def objective_value(sweep: SweepFile, accuracy: float, params: int, macs: int) -> list[float]:
    """The value(s) Optuna optimises. score: the course score accuracy / (params / 100K) when the
    accuracy reaches min_accuracy, else accuracy - 1 (<= 0, below every trial that reaches it, and
    still higher for a more accurate trial, so the search first climbs to the floor)."""
    if sweep.objective == "accuracy":
        return [accuracy]
    if sweep.objective == "pareto":
        return [accuracy, float(params if sweep.pareto_cost == "params" else macs)]
    if accuracy >= sweep.min_accuracy:
        return [efficiency_score(accuracy, params) or 0.0]
    return [accuracy - 1.0]


# --- the report -------------------------------------------------------------------------------------
def load_sweep_file(runs_dir: Path, sweep_id: str) -> SweepFile:
    path = sweep_dir(runs_dir, sweep_id) / "sweep.json"
    if not path.is_file():
        raise ConfigError(f"no sweep {sweep_id!r} in {runs_dir}; list them with `python -m explorer sweeps`",
                          field="sweep")
    return read_sweep(path)


def _trial_row(frozen, offset: int, stage: str) -> dict[str, Any]:
    attrs = frozen.user_attrs
    acc, params = attrs.get("best_val_acc"), attrs.get("params")
    return {"number": offset + frozen.number, "stage": stage, "state": STATE_NAMES.get(frozen.state.name, "?"),
            "params": params, "macs": attrs.get("macs"), "best_val_acc": acc,
            "score": efficiency_score(acc, params), "run_dir": attrs.get("run_dir"),
            "values": dict(frozen.params), "objective": list(frozen.values) if frozen.values else None,
            "epochs_done": len(frozen.intermediate_values), "epochs_planned": attrs.get("epochs"),
            "seconds": attrs.get("seconds"),
            "run_status": attrs.get("run_status"), "message": attrs.get("message", "")}


def trial_rows(runs_dir: Path, sweep: SweepFile) -> list[dict[str, Any]]:
    rows = []
    for stage in STAGES:
        study = load_stage(runs_dir, sweep.id, stage)
        if study is not None:
            offset = 0 if stage == "coarse" else sweep.coarse_trials
            rows += [_trial_row(t, offset, stage) for t in study.get_trials(deepcopy=False)]
    return rows


def best_trial(sweep: SweepFile, rows: list[dict], front: list[int]) -> int | None:
    """accuracy: the most accurate; score: the highest objective value; pareto: the highest course
    score on the front among trials that reach min_accuracy (the most accurate when none does)."""
    done = [r for r in rows if r["state"] == "complete" and r["best_val_acc"] is not None]
    if not done:
        return None
    if sweep.objective == "accuracy":
        return max(done, key=lambda r: r["best_val_acc"])["number"]
    if sweep.objective == "score":
        return max(done, key=lambda r: r["objective"][0])["number"]
    on_front = [r for r in done if r["number"] in front]
    passing = [r for r in on_front if r["best_val_acc"] >= sweep.min_accuracy and r["score"] is not None]
    if passing:
        return max(passing, key=lambda r: r["score"])["number"]
    return max(on_front or done, key=lambda r: r["best_val_acc"])["number"]


def sweep_report(runs_dir: Path, sweep_id: str) -> dict[str, Any]:
    """{"sweep": ID, "trials": [...], "pareto": [numbers], "best": number} plus the sweep's settings."""
    sweep = load_sweep_file(runs_dir, sweep_id)
    rows = trial_rows(runs_dir, sweep)
    done = [r for r in rows if r["state"] == "complete"]
    cost = "params" if sweep.pareto_cost == "params" else "macs"
    front = [done[i]["number"] for i in pareto_front([r[cost] for r in done], [r["best_val_acc"] for r in done])]
    return {"sweep": sweep_id, "trials": rows, "pareto": front, "best": best_trial(sweep, rows, front),
            "pruning": pruning_savings(rows), "objective": sweep.objective, "dataset": sweep.dataset,
            "base": sweep.base.name,
            "budget_trials": sweep.budget.trials, "driver": driver_state(runs_dir, sweep_id),
            "sweep_file": str(sweep_dir(runs_dir, sweep_id) / "sweep.json")}


def pruning_savings(rows: list[dict]) -> dict[str, Any]:
    """What pruning saved, over the finished trials that know their planned epochs (complete and
    pruned): epochs_run (epochs trained), epochs_planned (had every one trained to its end),
    epochs_saved, and seconds_run / seconds_saved_est (a pruned trial's unrun epochs at its own
    mean seconds per epoch; trial seconds include process start and data load, so this slightly
    overstates the saving of a trial pruned after few epochs)."""
    done = [r for r in rows if r["state"] in ("complete", "pruned") and r.get("epochs_planned")]
    run = sum(min(r["epochs_done"], r["epochs_planned"]) for r in done)
    planned = sum(r["epochs_planned"] for r in done)
    seconds = sum(r["seconds"] or 0.0 for r in done)
    saved = sum((r["seconds"] or 0.0) / max(1, r["epochs_done"]) * (r["epochs_planned"] - r["epochs_done"])
                for r in done if r["state"] == "pruned" and r["epochs_done"] < r["epochs_planned"])
    return {"trials": len(done), "epochs_run": run, "epochs_planned": planned, "epochs_saved": planned - run,
            "seconds_run": round(seconds, 1), "seconds_saved_est": round(saved, 1)}


def driver_state(runs_dir: Path, sweep_id: str) -> str:
    """running (a live driver), finished, cancelled, or stopped (killed: resume it)."""
    from explorer.training.runs import process_alive

    folder = sweep_dir(runs_dir, sweep_id)
    info = read_json(folder / "driver.json") or {}
    if info.get("state") in ("finished", "cancelled"):
        return info["state"]
    if process_alive(info.get("pid"), info.get("proc_start")):
        return "running"
    return "stopped" if info else "new"


def list_sweeps(runs_dir: Path) -> list[dict[str, Any]]:
    """One summary per sweep folder (newest first); a sweep whose file is bad says so."""
    out = []
    folder = sweeps_dir(runs_dir)
    for path in sorted(folder.iterdir(), reverse=True) if folder.is_dir() else []:
        if not (path / "sweep.json").is_file():
            continue
        try:
            report = sweep_report(runs_dir, path.name)
        except ConfigError as e:
            out.append({"sweep": path.name, "driver": "unreadable", "message": str(e)})
            continue
        rows = report["trials"]
        best = next((r for r in rows if r["number"] == report["best"]), None)
        counts = {s: sum(r["state"] == s for r in rows) for s in ("complete", "pruned", "failed", "running")}
        out.append({"sweep": path.name, "base": report["base"], "dataset": report["dataset"],
                    "objective": report["objective"], "driver": report["driver"], "trials": len(rows),
                    "budget_trials": report["budget_trials"], **counts, "best": report["best"],
                    "best_val_acc": best and best["best_val_acc"], "best_params": best and best["params"],
                    "best_score": best and best["score"]})
    return out


def write_fine_space(runs_dir: Path, sweep_id: str, dims: list[dict]) -> None:
    from explorer.training.runs import write_json_atomic

    write_json_atomic(sweep_dir(runs_dir, sweep_id) / "fine_space.json", dims)


def read_fine_space(runs_dir: Path, sweep_id: str) -> list[dict] | None:
    data = read_json(sweep_dir(runs_dir, sweep_id) / "fine_space.json")
    return data if isinstance(data, list) else None


__all__ = ["sweep_report", "list_sweeps", "open_study", "load_stage", "objective_value", "storage_url"]
