"""The sweep driver: asks Optuna for trials, runs each as an ordinary job in the queue, feeds the
per-epoch validation values back for pruning, and tells Optuna how each trial ended.

Owns: one sweep's life (start or resume, the coarse stage, the fine stage, cancel), and the
coarse-to-fine rule's application (the rule itself is explorer.search.space.narrow).

- A trial is a run folder made by JobQueue.submit, so it shows in Compare and Inspect. At most
  the queue's limit for the device runs at once (interactive runs share that limit fairly).
- Pruning: the driver reads each running trial's metrics.jsonl; for every "epoch" event it calls
  trial.report(value, epoch) and trial.should_prune(); a pruned run is cancelled through the
  queue (RUN/CANCEL), and told PRUNED when its process has ended. No trial is pruned before the
  sweep's min_epochs_before_pruning (study.make_pruner) nor at its own last epoch (nothing is
  left to save; it completes and counts). The loop's own checks (loss
  over 3x its start, NaN) still apply; a diverged trial counts as pruned at its last epoch.
- Resume: studies live in SQLite and trial runs outlive the driver (own process sessions), so a
  driver started again for the same sweep picks up trials still marked running by their run
  folder, and asks for the rest of the budget.
- Cancel: RUNS/sweeps/ID/CANCEL (request_cancel) stops the driver at its next poll; it cancels
  its running jobs and marks those trials failed ("cancelled").
- Coarse to fine: the coarse stage trains coarse_trials trials for coarse_epochs each; the fine
  stage narrows the space around the best KEEP_SHARE of the completed coarse trials (at least 2;
  for pareto, the trials on the front), starts with the best coarse point, and draws epochs from
  the space's epochs range (up to max_epochs): longer training on a smaller region.
"""

from __future__ import annotations

import inspect
import math
import os
import secrets
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from explorer.errors import ConfigError, QueueError, UserError
from explorer.search import study as st
from explorer.search.space import KEEP_SHARE, apply, distributions, narrow, space_from_list, suggest
from explorer.search.sweepfile import SweepFile
from explorer.training.runs import FINISHED, heartbeat_record, process_alive, read_json, read_metrics, \
    write_json_atomic

POLL_SECONDS = 0.5      # how often the driver reads metrics and advances the queue (s)


@dataclass
class Active:
    """A trial whose run is queued or running."""

    trial: Any                 # optuna.trial.Trial
    job_id: int
    run_dir: Path
    offset: int = 0            # bytes of metrics.jsonl already read
    pruned: bool = False       # the pruner said stop; the run was asked to cancel
    reported: set = field(default_factory=set)  # epochs already reported


def new_sweep_id(sweep: SweepFile) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in sweep.base.name)[:30].strip("-") or "net"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{sweep.dataset}-{secrets.token_hex(3)}"


def request_cancel(runs_dir: Path, sweep_id: str) -> None:
    (st.sweep_dir(runs_dir, sweep_id) / "CANCEL").touch()


def prepare(sweep: SweepFile, runs_dir: Path) -> SweepFile:
    """Give the sweep an id and its folder (a resumed sweep keeps both); refuse a second driver."""
    sweep = sweep if sweep.id else replace(sweep, id=new_sweep_id(sweep))
    folder = st.sweep_dir(runs_dir, sweep.id)
    info = read_json(folder / "driver.json") or {}
    if info.get("state") == "running" and process_alive(info.get("pid"), info.get("proc_start")):
        raise ConfigError(f"sweep {sweep.id} is already being driven by process {info.get('pid')}", field="sweep")
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "sweep.json", sweep.to_dict())
    (folder / "CANCEL").unlink(missing_ok=True)
    return sweep


class SweepDriver:
    def __init__(self, sweep: SweepFile, runs_dir: Path, queue=None, on_event: Callable[[dict], None] | None = None,
                 poll: float = POLL_SECONDS, executor: str | None = None, ray_address: str | None = None):
        from explorer.training.jobs import JobQueue

        self.runs_dir = Path(runs_dir).resolve()
        self.sweep = prepare(sweep, self.runs_dir)
        self.folder = st.sweep_dir(self.runs_dir, self.sweep.id)
        # trials are ordinary queued runs: the executor (local or ray, $CNN_EXPLORER_EXECUTOR) places them
        self.queue = queue or JobQueue(self.runs_dir, executor=executor, ray_address=ray_address)
        self.on_event = on_event or (lambda e: None)
        self.poll = poll
        self.started = time.time()
        self.cancelled = False
        kind = self.sweep.train.device
        if kind == "auto":
            import torch

            kind = "cuda" if torch.cuda.is_available() else "cpu"
        self.parallel = max(1, int(self.queue.limits.get(kind, 1)))

    # --- the whole sweep ----------------------------------------------------------------------------
    def run(self) -> dict:
        self._mark("running")
        finished = False
        try:
            coarse = st.open_study(self.sweep, self.runs_dir, "coarse", self.sweep.coarse_epochs)
            if not coarse.trials:
                for point in self.sweep.start_points:
                    coarse.enqueue_trial(dict(point), skip_if_exists=True)
            self._run_stage(coarse, self.sweep.space, fine=False, n_trials=self.sweep.coarse_trials)
            fine_n = self.sweep.budget.trials - self.sweep.coarse_trials
            if fine_n > 0 and not self.cancelled and not self._out_of_time():
                self._fine_stage(coarse, fine_n)
            finished = True
        finally:
            self._mark("cancelled" if self.cancelled else ("finished" if finished else "stopped"))
        return st.sweep_report(self.runs_dir, self.sweep.id)

    def _fine_stage(self, coarse, n_trials: int) -> None:
        saved = st.read_fine_space(self.runs_dir, self.sweep.id)
        if saved is None:
            best = self._best_points(coarse)
            if len(best) < 1:
                self.on_event({"event": "note", "message": "no coarse trial completed: no fine stage"})
                return
            space = narrow(self.sweep.space, best)
            st.write_fine_space(self.runs_dir, self.sweep.id, [d.to_dict() for d in space])
        else:
            space, best = space_from_list(saved), []
        fine = st.open_study(self.sweep, self.runs_dir, "fine", self.sweep.budget.max_epochs)
        if best and not fine.trials:
            names = set(distributions(space, fine=True))
            fine.enqueue_trial({k: v for k, v in best[0].items() if k in names}, skip_if_exists=True)
        self.on_event({"event": "stage", "stage": "fine", "space": [d.to_dict() for d in space]})
        self._run_stage(fine, space, fine=True, n_trials=n_trials)

    def _best_points(self, coarse) -> list[dict]:
        """The coarse points the fine stage narrows around, best first (see the module docstring)."""
        done = [t for t in coarse.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        if self.sweep.objective == "pareto":
            return [t.params for t in sorted(coarse.best_trials, key=lambda t: -t.values[0])]
        done.sort(key=lambda t: -t.values[0])
        keep = max(2, math.ceil(KEEP_SHARE * len(done)))
        return [t.params for t in done[:keep]]

    # --- one stage -----------------------------------------------------------------------------------
    def _run_stage(self, study, space, fine: bool, n_trials: int) -> None:
        active = self._resume_active(study)
        pending = []   # (trial, spec, config) asked but not accepted by the queue yet
        while True:
            if (self.folder / "CANCEL").exists():
                self._cancel_all(study, active, pending)
                return
            room = self.parallel - len(active) - len(pending)
            while room > 0 and _asked(study) < n_trials and not self._out_of_time():
                item = self._ask(study, space, fine)
                if item is not None:
                    pending.append(item)
                    room -= 1
            pending = [p for p in pending if not self._submit(study, p, active)]
            if not active and not pending:
                return
            self._advance(study, active)
            time.sleep(self.poll)

    def _ask(self, study, space, fine: bool):
        trial = study.ask()
        point = suggest(trial, space, fine)
        offset = 0 if not fine else self.sweep.coarse_trials
        trial.set_user_attr("number", offset + trial.number)
        epochs = point.get("epochs", self.sweep.coarse_epochs if not fine else self.sweep.budget.max_epochs)
        try:
            spec, config = apply(self.sweep.base, self.sweep.train, {**point, "epochs": epochs})
            spec = replace(spec, name=f"{self.sweep.base.name}-sweep-t{offset + trial.number}")
            params, macs = network_cost(spec, self.sweep.dataset, config)
        except UserError as e:
            self._fail(study, trial, f"this point gives no valid network: {e}")
            return None
        trial.set_user_attr("params", params)
        trial.set_user_attr("macs", macs)
        trial.set_user_attr("epochs", int(epochs))  # planned: what pruning saves is measured against it
        self.on_event({"event": "ask", "number": offset + trial.number, "values": point, "params": params})
        return trial, spec, config

    def _submit(self, study, item, active: dict) -> bool:
        trial, spec, config = item
        try:
            kwargs = {"owner": f"sweep:{self.sweep.id}"} if "owner" in inspect.signature(
                self.queue.submit).parameters else {}
            job = self.queue.submit(spec, config, **kwargs)
        except QueueError:
            return False  # the queue is full: try again at the next poll
        trial.set_user_attr("run_dir", str(job.run_dir))
        trial.set_user_attr("job_id", job.id)
        active[trial.number] = Active(trial, job.id, job.run_dir)
        return True

    def _resume_active(self, study) -> dict:
        """Trials a killed driver left running: follow their runs, or fail those never submitted."""
        import optuna

        active = {}
        for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            trial = optuna.trial.Trial(study, frozen._trial_id)
            run_dir, job_id = frozen.user_attrs.get("run_dir"), frozen.user_attrs.get("job_id")
            if run_dir is None or job_id is None:
                self._fail(study, trial, "the sweep stopped before this trial's run was queued")
                continue
            active[frozen.number] = Active(trial, int(job_id), Path(run_dir), reported=set(frozen.intermediate_values))
            self.on_event({"event": "resume", "number": frozen.user_attrs.get("number"), "run_dir": run_dir})
        return active

    def _advance(self, study, active: dict) -> None:
        self.queue.refresh()
        self.queue.schedule()
        for number, a in list(active.items()):
            job = self.queue.get(a.job_id)  # the status as refresh() found it, before the metrics are read:
            self._read_epochs(a)            # a finished run's last epochs are then always reported
            if job.status in FINISHED:
                self._tell(study, a, job.status)
                del active[number]

    def _read_epochs(self, a: Active) -> None:
        events, a.offset = read_metrics(a.run_dir, a.offset)
        params, macs = a.trial.user_attrs["params"], a.trial.user_attrs["macs"]
        for event in events:
            if event["event"] != "epoch" or event["epoch"] in a.reported or a.pruned:
                continue
            a.reported.add(event["epoch"])
            if self.sweep.objective == "pareto":
                continue  # Optuna does not prune multi-objective studies
            value = st.objective_value(self.sweep, event["val_acc"], params, macs)[0]
            a.trial.report(value, event["epoch"])
            last = event["epoch"] >= a.trial.user_attrs.get("epochs", math.inf)  # nothing left to save
            if not last and a.trial.should_prune():
                a.pruned = True
                self.queue.cancel(a.job_id)
                self.on_event({"event": "pruned", "number": a.trial.user_attrs["number"], "epoch": event["epoch"],
                               "val_acc": event["val_acc"]})

    def _tell(self, study, a: Active, status: str) -> None:
        import optuna

        summary = read_json(a.run_dir / "summary.json")
        summary = summary if isinstance(summary, dict) else {}
        trial, states = a.trial, optuna.trial.TrialState
        acc = summary.get("best_val_acc")
        params = summary.get("params") if isinstance(summary.get("params"), int) else trial.user_attrs["params"]
        macs = summary.get("macs") if isinstance(summary.get("macs"), int) else trial.user_attrs["macs"]
        for key, value in (("run_status", status), ("message", str(summary.get("message", ""))[:300]),
                           ("best_val_acc", acc), ("seconds", summary.get("seconds")), ("params", params),
                           ("macs", macs)):
            trial.set_user_attr(key, value)
        if a.pruned:  # the pruner's verdict stands even when the run ended before it saw CANCEL
            study.tell(trial, state=states.PRUNED)
        elif status == "completed" and isinstance(acc, (int, float)):
            study.tell(trial, st.objective_value(self.sweep, float(acc), params, macs))
        elif status == "diverged" and self.sweep.objective != "pareto":
            study.tell(trial, state=states.PRUNED)
        else:
            study.tell(trial, state=states.FAIL)
        self.on_event({"event": "told", "number": trial.user_attrs["number"], "run_status": status,
                       "pruned": a.pruned, "best_val_acc": acc, "params": params})

    def _fail(self, study, trial, message: str) -> None:
        import optuna

        trial.set_user_attr("message", message[:300])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.on_event({"event": "failed", "number": trial.user_attrs.get("number"), "message": message})

    def _cancel_all(self, study, active: dict, pending: list) -> None:
        self.cancelled = True
        for trial, _spec, _config in pending:
            self._fail(study, trial, "cancelled with the sweep")
        for a in active.values():
            self.queue.cancel(a.job_id)
        deadline = time.time() + 60
        while active and time.time() < deadline:  # the runs stop at their next step
            self.queue.refresh()
            for number, a in list(active.items()):
                if self.queue.get(a.job_id).status in FINISHED:
                    a.trial.set_user_attr("run_status", "cancelled")
                    self._fail(study, a.trial, "cancelled with the sweep")
                    del active[number]
            time.sleep(self.poll)

    def _out_of_time(self) -> bool:
        limit = self.sweep.budget.seconds
        return limit is not None and time.time() - self.started > limit

    def _mark(self, state: str) -> None:
        record = {**heartbeat_record(self.started), "state": state, "host": socket.gethostname(),
                  "pid": os.getpid()}
        write_json_atomic(self.folder / "driver.json", record)


def _asked(study) -> int:
    """Trials asked so far (points enqueued but not yet asked do not count)."""
    return sum(t.state.name != "WAITING" for t in study.get_trials(deepcopy=False))


def network_cost(spec, dataset: str, config=None) -> tuple[int, int]:
    """Params and MACs of the network as it will train on `dataset` (input and classes adapted, at
    the image size `config`, a TrainConfig, asks for: automatic when None); a SpecError when the
    shapes do not fit."""
    from explorer.core.analysis import analyze
    from explorer.data import dataset_info
    from explorer.training.adapt import adapt_for_run
    from explorer.training.config import TrainConfig

    info = dataset_info(dataset)
    if info.num_classes:
        spec = adapt_for_run(spec, config or TrainConfig(), info.channels, info.height, info.width,
                             info.num_classes).spec
    totals = analyze(spec).totals
    return int(totals.params), int(totals.macs)


def run_sweep(sweep: SweepFile, runs_dir: Path, on_event: Callable[[dict], None] | None = None,
              poll: float = POLL_SECONDS, executor: str | None = None, ray_address: str | None = None) -> dict:
    """Start (or resume, when sweep.id names an existing sweep) and drive a sweep to its end; the report.
    executor/ray_address: where the trials run (default $CNN_EXPLORER_EXECUTOR, local)."""
    return SweepDriver(sweep, runs_dir, on_event=on_event, poll=poll, executor=executor,
                       ray_address=ray_address).run()


def launch(sweep: SweepFile, runs_dir: Path) -> str:
    """Start `python -m explorer sweep --sweep RUNS/sweeps/ID/sweep.json` as its own process
    (the Sweep page's launch and resume: the driver outlives the browser session); returns the id."""
    import subprocess
    import sys

    runs_dir = Path(runs_dir).resolve()
    sweep = sweep if sweep.id else replace(sweep, id=new_sweep_id(sweep))
    folder = st.sweep_dir(runs_dir, sweep.id)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "sweep.json", sweep.to_dict())
    project_root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(project_root), os.environ.get("PYTHONPATH")])),
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    with open(folder / "driver.log", "ab") as log:
        subprocess.Popen([sys.executable, "-m", "explorer", "sweep", "--sweep", str(folder / "sweep.json"),
                          "--runs-dir", str(runs_dir), "--format", "json"], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=project_root)
    return sweep.id
