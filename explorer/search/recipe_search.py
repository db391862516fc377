"""Recipe search: find a preset's training recipe on a dataset with a short sweep, and record it.

Owns: the CPU cost model that estimates a pair's epoch time from its MACs (on a GPU the epoch is
timed instead: measured_epoch_seconds), the skip rule (a pair
whose shortest useful sweep exceeds the budget is not searched), the recipe sweep of a pair
(PRESET-DATASET-recipe.sweep.json beside recipes.json: the pair's current recipe, usually its
family default, as the start point and trial 0; a small space around it: lr log-uniform, batch,
cosine/onecycle, weight decay, label smoothing; TPE and successive halving; trials, epochs and
seconds sized from the cost), running it with the sweep driver the CLI's `sweep` uses (in a
temporary runs folder), and turning its report into a searched entry of recipes.json
(explorer.search.recipes owns the file and writes it).

    python -m explorer.search.recipe_search [--pairs PRESET/DATASET,...] [--redo | --below ACC]
            [--budget-seconds S] [--plan] [--stop-at HH:MM] [--runs-dir DIR] [--device cpu|cuda]
    python -m explorer.search.recipe_search --list

Without --pairs: every preset on every offline dataset that has no searched recipe yet (--redo:
every searched one too; --below 0.6: those whose recorded best is under 60%), cheapest first. A
search of a pair that has a searched recipe replaces it only when its best trial does at least as
well as the recorded one (else the recipe and its sweep file stay as they were). --plan prints
the estimates and sizes and runs nothing. --list prints every preset on every offline dataset: its
searched recipe's accuracy, or the family it falls back to.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from explorer.errors import UserError
from explorer.search.recipes import RECIPE_FIELDS  # the TrainConfig fields an entry's "train" holds
from explorer.search.space import Dim
from explorer.search.sweepfile import Budget, Stages, SweepFile
from explorer.training.config import TrainConfig

BATCH_CHOICES = (32, 64, 128)          # images per step tried around the start point's
LR_SPAN = (0.2, 4.0)                   # lr range: the start point's lr times these (log-uniform)
WEIGHT_DECAY_RANGE = (1e-5, 2e-3)      # log-uniform; holds both family values (1e-4, 5e-4)
LABEL_SMOOTHING_CHOICES = (0.0, 0.1)
SCHEDULE_CHOICES = ("cosine", "onecycle")
TRAIN_NOTE = "the trial's training run (data load, epochs, evaluation; no process start)"


@dataclass(frozen=True)
class CostModel:
    """Seconds a training run takes on this machine's CPU. Fitted by least squares (then rounded
    up) to the 11 searched entries of recipes.json that record train_seconds (2026-12-01, 2
    shared CPU cores at load average 2-8): it predicts them within about 25% except twoconv/mnist5k,
    run at load 5-8. Checked on the 18 pairs it then sized (2026-12-01, load average 0.6-4): the
    best trials took 0.45-1.3x their estimate, except mobilenet_v2 at 2.2-2.6x (its depthwise
    convolutions run slower per MAC than this assumes); the sweep's seconds budget caps what an
    underestimate costs."""

    macs_per_second: float = 25e9      # MACs/s; a training image counts 3x its forward MACs (forward
    #                                    and backward), a validation image 1x
    layer_step_seconds: float = 0.5e-3  # s per leaf module per optimizer step (Python and kernel
    #                                    launch overhead: what dominates a small network's epoch)
    param_step_seconds: float = 4e-9   # s per parameter per optimizer step: SGD with momentum and weight
    #                                    decay reads and writes about 5 floats per parameter at a few GB/s
    #                                    (assumed, not fitted: the fitted nets have under 0.3M parameters;
    #                                    it matters for resnet18-50 on the 8x8 digits)
    run_seconds: float = 3.0           # s per run inside train_seconds: data load, build, checkpoint
    process_seconds: float = 3.0       # s per trial outside it: process start and exit (1.7 + 1.0 s in
    #                                    bench/train_recipe.py's lenet5/mnist5k phases)


@dataclass(frozen=True)
class SearchSettings:
    """How big a recipe sweep is."""

    budget_seconds: float = 300.0      # wall time one pair's sweep may take (s)
    min_trials: int = 3                # fewer than this is no search: the pair is skipped
    target_trials: int = 5             # epochs are chosen so that about this many full trials fit
    max_trials: int = 8
    min_epochs: int = 3                # the pruner first decides at epoch 2 and never at a trial's last
    max_epochs: int = 8                # and never more than the family default's epochs
    prune_gain: float = 1.5            # trials per budget's worth of full trials: halving saves about a
    #                                    third (README: the score sweep trained 202 of 258 planned epochs)


@dataclass(frozen=True)
class PairCost:
    """What one epoch of a preset on a dataset costs, as the loop will train it."""

    preset: str
    dataset: str
    macs: int                          # multiply-accumulates per image of the fitted network
    params: int
    layers: int                        # leaf modules (analysis detail rows) of the fitted network
    input: tuple[int, int, int]        # C, H, W the network sees (224 x 224 for ImageNet nets on digits)
    train_images: int
    val_images: int


@dataclass(frozen=True)
class Sizing:
    """A pair's recipe sweep, sized from its cost; skip says why it is not searched."""

    epoch_seconds: float               # estimated seconds of one epoch at the start point's batch
    epochs: int                        # every trial trains this many epochs
    trials: int
    seconds: float                     # the driver asks for no new trial after this (s)
    trial_seconds: float               # estimated wall time of one full trial (s)
    shortest_sweep_seconds: float      # min_trials trials of min_epochs each (s): the skip rule's measure
    skip: str | None = None


def epoch_seconds(cost: PairCost, batch_size: int, model: CostModel = CostModel()) -> float:
    """Estimated seconds of one epoch: training (3x forward MACs) and validation (1x) at the
    model's MAC rate, plus per-step overhead for every leaf module and every parameter."""
    macs = (3 * cost.train_images + cost.val_images) * cost.macs
    steps = math.ceil(cost.train_images / batch_size)
    per_step = cost.layers * model.layer_step_seconds + cost.params * model.param_step_seconds
    return macs / model.macs_per_second + steps * per_step


def size_sweep(cost: PairCost, batch_size: int, family_epochs: int, settings: SearchSettings = SearchSettings(),
               model: CostModel = CostModel(), per_epoch: float | None = None) -> Sizing:
    """Epochs, trials and seconds of the pair's sweep; skip (with the reason) when even min_trials
    trials of min_epochs each would take longer than the budget. per_epoch: a measured epoch time
    (s) to size by instead of the cost model's estimate."""
    per_epoch = epoch_seconds(cost, batch_size, model) if per_epoch is None else per_epoch
    overhead = model.run_seconds + model.process_seconds
    budget = settings.budget_seconds
    shortest = settings.min_trials * (settings.min_epochs * per_epoch + overhead)
    top = max(settings.min_epochs, min(family_epochs, settings.max_epochs))
    epochs = int((budget / settings.target_trials - overhead) // per_epoch)
    epochs = max(settings.min_epochs, min(top, epochs))
    trial = epochs * per_epoch + overhead
    trials = max(settings.min_trials, min(settings.max_trials, int(settings.prune_gain * budget // trial)))
    skip = None
    if shortest > budget:
        skip = (f"{cost.preset}/{cost.dataset}: {cost.macs / 1e6:,.0f}M MACs/image at "
                f"{'x'.join(map(str, cost.input))}, about {per_epoch:,.0f} s per epoch; {settings.min_trials} "
                f"trials of {settings.min_epochs} epochs take about {shortest:,.0f} s, over the "
                f"{budget:,.0f} s budget")
    return Sizing(epoch_seconds=per_epoch, epochs=epochs, trials=trials, seconds=round(max(budget - trial, trial)),
                  trial_seconds=trial, shortest_sweep_seconds=shortest, skip=skip)


def space_around(start: TrainConfig) -> tuple[tuple[Dim, ...], dict]:
    """The small space around a start point's settings, and the start point in it."""
    lr_low, lr_high = start.lr * LR_SPAN[0], start.lr * LR_SPAN[1]
    wd_low = min(WEIGHT_DECAY_RANGE[0], start.weight_decay or WEIGHT_DECAY_RANGE[0])
    wd_high = max(WEIGHT_DECAY_RANGE[1], start.weight_decay)
    space = (Dim("lr", "float", lr_low, lr_high, log=True),
             Dim("batch_size", "choice", choices=tuple(sorted({*BATCH_CHOICES, start.batch_size}))),
             Dim("schedule", "choice", choices=tuple(dict.fromkeys((start.schedule, *SCHEDULE_CHOICES)))),
             Dim("weight_decay", "float", wd_low, wd_high, log=True),
             Dim("label_smoothing", "choice",
                 choices=tuple(sorted({*LABEL_SMOOTHING_CHOICES, start.label_smoothing}))))
    point = {"lr": start.lr, "batch_size": start.batch_size, "schedule": start.schedule,
             "weight_decay": start.weight_decay or wd_low, "label_smoothing": start.label_smoothing}
    return space, point


def recipe_sweep(base, start: TrainConfig, sizing: Sizing, seed: int = 0, device: str = "cpu") -> SweepFile:
    """The pair's sweep: base is the preset's spec, start the pair's current recipe (with its dataset);
    its trials train on `device` ("cpu" or "cuda")."""
    space, point = space_around(start)
    train = start.with_changes(epochs=sizing.epochs, device=device, seed=seed)
    return SweepFile(base=base, dataset=start.dataset, train=train, space=space, objective="accuracy",
                     sampler="tpe", pruner="halving", seed=seed,
                     budget=Budget(trials=sizing.trials, seconds=sizing.seconds, max_epochs=sizing.epochs),
                     stages=Stages(coarse_fraction=1.0, coarse_epochs=sizing.epochs),
                     start_points=(point,)).validate()


def sweep_file_name(preset: str, dataset: str) -> str:
    return f"{preset}-{dataset}-recipe.sweep.json"


# --- from a finished sweep to a recipes.json entry --------------------------------------------------
@dataclass(frozen=True)
class Window:
    """When and under what load a sweep ran (for the entry's note)."""

    started: float                     # time.time() at the start (s since the epoch)
    ended: float
    load_start: float                  # 1-minute load average at the start
    load_end: float
    cpus: int                          # os.cpu_count()
    niceness: int = 0                  # the sweep's nice value (0: not lowered)
    gpu: str | None = None             # the GPU the trials trained on (its name); None: the CPU


def _time_and_load() -> tuple[float, float]:
    """Now (s since the epoch) and the 1-minute load average."""
    return time.time(), os.getloadavg()[0]


def _utc(seconds: float, fmt: str = "%H:%M:%S") -> str:
    return time.strftime(fmt, time.gmtime(seconds))


def recipe_entry(preset: str, dataset: str, sweep: SweepFile, report: dict, sweep_name: str, start_label: str,
                 window: Window, command: str) -> dict | None:
    """The searched entry for recipes.json from the sweep's report (explorer.search.study.sweep_report):
    the best trial's settings and measurements, and what the start point (trial 0) reached.
    None when no trial completed."""
    from explorer.search.space import apply

    rows = {r["number"]: r for r in report["trials"]}
    best = rows.get(report.get("best"))
    if best is None or best["best_val_acc"] is None:
        return None
    epochs = best.get("epochs_planned") or sweep.coarse_epochs
    config = apply(sweep.base, sweep.train, {**best["values"], "epochs": epochs})[1].to_dict()
    counts = {s: sum(r["state"] == s for r in report["trials"]) for s in ("complete", "pruned", "failed")}
    failed = f", {counts['failed']} failed" if counts["failed"] else ""
    diverged = sum(r.get("run_status") == "diverged" for r in report["trials"])  # the driver prunes them
    diverged = f" ({diverged} of them diverged)" if diverged else ""
    start = rows.get(0)
    ended = (start.get("run_status") or start["state"]) if start else "never ran"
    reached = (f"reached {start['best_val_acc']:.4f}" if start and start["state"] == "complete"
               else f"did not complete ({ended})")
    source = (f"sweep {sweep_name} on {_utc(window.started, '%Y-%m-%d')}: {len(rows)} trials ({sweep.sampler}, "
              f"successive halving from epoch {sweep.min_epochs_before_pruning(sweep.coarse_epochs)}; "
              f"{counts['complete']} complete, {counts['pruned']} pruned{diverged}{failed}), "
              f"best trial {best['number']}; its start point, {start_label}, {reached}{_all_tied(report['trials'])}")
    nice = f", niceness {window.niceness}" if window.niceness else ""
    where = f"one {window.gpu} GPU (host: {window.cpus} CPU cores)" if window.gpu else f"{window.cpus} shared CPU cores"
    note = (f"train_seconds: {TRAIN_NOTE} on {where}{nice}, load average "
            f"{window.load_start:.2f} at the sweep's start and {window.load_end:.2f} at its end "
            f"({_utc(window.started)}-{_utc(window.ended)} UTC); command: {command}")
    measured = {"best_val_acc": round(float(best["best_val_acc"]), 4), "epochs": int(epochs),
                "params": best["params"], "train_seconds": round(float(best["seconds"] or 0.0), 2), "note": note}
    return {"preset": preset, "dataset": dataset, "train": {k: config[k] for k in RECIPE_FIELDS},
            "sweep": sweep_name, "source": source, "measured": measured}


def _all_tied(rows: list[dict]) -> str:
    """A warning for the source when every complete trial (two or more) reached the same accuracy:
    then the search told the settings apart by nothing (e.g. none of them learned)."""
    accs = {r["best_val_acc"] for r in rows if r["state"] == "complete"}
    done = sum(r["state"] == "complete" for r in rows)
    if done < 2 or len(accs) != 1:
        return ""
    return f"; every complete trial reached {accs.pop():.4f}: the sweep told its settings apart by nothing"


# --- running it -------------------------------------------------------------------------------------
def pair_cost(preset: str, dataset: str) -> PairCost:
    """The pair's cost as plan_run fits the preset to the dataset, and the dataset's split sizes."""
    from explorer.core.analysis import analyze
    from explorer.core.presets import load_preset
    from explorer.data import load_dataset
    from explorer.search.recipes import recipe_config
    from explorer.training.plan import plan_run

    config = recipe_config(preset, dataset)
    plan = plan_run(load_preset(preset), config, check_transfer=False)
    if not plan.ok:
        raise plan.error
    data = load_dataset(dataset, val_fraction=config.val_fraction, seed=config.seed)
    return PairCost(preset=preset, dataset=dataset, macs=int(plan.macs), params=int(plan.params),
                    layers=len(analyze(plan.spec).detail_rows), input=tuple(plan.spec.input),
                    train_images=len(data.y_train), val_images=len(data.y_val))


def _start_label(preset: str, dataset: str) -> str:
    from explorer.search.recipes import FAMILY_SOURCE, recipe

    entry = recipe(preset, dataset)
    if entry["source"] == FAMILY_SOURCE:
        return f"the {entry['family']} family default"
    return "the previous searched recipe"


def _print_event(pair: str, event: dict) -> None:
    kind = event["event"]
    if kind == "told":
        acc = event["best_val_acc"]
        state = "pruned" if event["pruned"] else event["run_status"]
        print(f"  {pair} trial {event['number']} {state}: {'-' if acc is None else f'{acc:.4f}'}", flush=True)
    elif kind in ("failed", "note"):
        print(f"  {pair} trial {event.get('number', '-')}: {event['message']}", flush=True)


def search_pair(preset: str, dataset: str, sizing: Sizing, runs_dir: Path | None = None,
                recipes_file: Path | None = None, device: str = "cpu") -> dict | None:
    """Run the pair's sweep and record the best trial as the pair's recipe, with the sweep file beside
    the recipes file; the entry, or None when nothing was recorded. The committed sweep file (the
    one that found the current recipe) is replaced only together with its entry: a sweep that
    fails, finds nothing or does worse than the recorded recipe leaves both as they were."""
    from explorer.core.presets import load_preset
    from explorer.search import recipes
    from explorer.search.driver import run_sweep
    from explorer.training.runs import write_json_atomic

    recipes_file = Path(recipes_file or recipes.RECIPES_FILE)
    name, pair = sweep_file_name(preset, dataset), f"{preset}/{dataset}"
    path = recipes_file.parent / name
    sweep = recipe_sweep(load_preset(preset), recipes.recipe_config(preset, dataset), sizing, device=device)
    start_label = _start_label(preset, dataset)
    started, load_start = _time_and_load()
    with tempfile.TemporaryDirectory(prefix="recipe-search-") as tmp:
        report = run_sweep(sweep, Path(runs_dir or tmp), on_event=lambda e: _print_event(pair, e))
    ended, load_end = _time_and_load()
    window = Window(started, ended, load_start, load_end, os.cpu_count() or 1, os.nice(0), _gpu_name(device))
    entry = recipe_entry(preset, dataset, sweep, report, name, start_label, window, _command(path))
    if entry is None:
        print(f"{pair}: no trial completed in {ended - started:.0f} s; nothing recorded", flush=True)
        return None
    old = recipes.searched_entry(preset, dataset, recipes_file)
    if old is not None and old["measured"]["best_val_acc"] > entry["measured"]["best_val_acc"]:
        print(f"{pair}: the best trial reached {entry['measured']['best_val_acc']:.4f}, under the recorded "
              f"recipe's {old['measured']['best_val_acc']:.4f}; kept the recorded recipe", flush=True)
        return None
    write_json_atomic(path, sweep.to_dict())  # the sweep that found the entry, then the entry
    recipes.write_recipe(entry, recipes_file)
    m = entry["measured"]
    print(f"{pair}: {m['best_val_acc']:.4f} in {ended - started:.0f} s of sweep; {entry['source']}; the best "
          f"trial trained {m['epochs']} epochs in {m['train_seconds']:.1f} s (estimated "
          f"{m['epochs'] * sizing.epoch_seconds + CostModel().run_seconds:.1f} s)", flush=True)
    return entry


def _gpu_name(device: str) -> str | None:
    import torch

    return torch.cuda.get_device_name() if device == "cuda" else None


def measured_epoch_seconds(preset: str, dataset: str, device: str) -> float:
    """Seconds of one epoch of the pair's start point on `device`, measured rather than modelled
    (the cost model describes this machine's CPU, not a GPU): a real two-epoch run in a temporary
    folder, timed from its first epoch's end to its second's (the first pays for warm-up: CUDA's
    lazy start, cuDNN's autotuning). The learning rate is cut to 1e-4, constant, so that no start
    point diverges before it is timed; the operations, and so the time, are the same."""
    from explorer.core.presets import load_preset
    from explorer.errors import RunError
    from explorer.search.recipes import recipe_config
    from explorer.training.loop import train
    from explorer.training.runs import read_metrics

    config = recipe_config(preset, dataset).with_changes(epochs=2, device=device, lr=1e-4, schedule="constant",
                                                         max_seconds=None)
    with tempfile.TemporaryDirectory(prefix="recipe-timing-") as tmp:
        summary = train(load_preset(preset), config, Path(tmp) / "run")
        ends = [e["time"] for e in read_metrics(Path(tmp) / "run")[0] if e["event"] == "epoch"]
    if len(ends) < 2:
        raise RunError(f"could not time {preset}/{dataset} on {device}: its timing run {summary['status']} "
                       f"({str(summary.get('message') or 'no message')[:200]})")
    return ends[1] - ends[0]


def _command(path: Path) -> str:
    root = Path(__file__).resolve().parents[2]
    shown = path.resolve().relative_to(root) if path.resolve().is_relative_to(root) else path
    return f"python -m explorer sweep --sweep {shown}"


# --- the command line -------------------------------------------------------------------------------
def parse_pairs(text: str) -> list[tuple[str, str]]:
    """--pairs "resnet18/digits,gapnet/shapes" as (preset, dataset) pairs of known presets and offline
    datasets; argparse.ArgumentTypeError saying what is wrong otherwise (before anything runs)."""
    from explorer.core.presets import preset_names
    from explorer.data import list_datasets

    presets, offline = set(preset_names()), [d.name for d in list_datasets() if d.offline]
    pairs = []
    for item in filter(None, (p.strip() for p in str(text)[:10_000].split(","))):
        preset, _, dataset = item.partition("/")
        if preset not in presets or dataset not in offline:
            raise argparse.ArgumentTypeError(
                f"{item[:80]!r} is not PRESET/DATASET with a preset ({', '.join(sorted(presets))}) and an offline "
                f"dataset ({', '.join(offline)})")
        pairs.append((preset, dataset))
    if not pairs:
        raise argparse.ArgumentTypeError("give at least one PRESET/DATASET, e.g. resnet18/digits")
    return pairs


def _number(text: str) -> float:
    """The flag's value as a float; NaN (which every range check below refuses) when it is none."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def _budget(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text[:40]!r}")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 1:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"expected an accuracy between 0 and 1 (0.6 for 60%), got {text[:40]!r}")
    return value


def _clock(text: str) -> str:
    if len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit() or text > "23:59" or text[3] > "5":
        raise argparse.ArgumentTypeError(f"expected HH:MM (UTC, 00:00-23:59), got {text[:40]!r}")
    return text


def candidate_pairs(pairs: list[tuple[str, str]] | None, redo: bool,
                    below: float | None = None) -> list[tuple[str, str]]:
    """The pairs to search: those named, else every preset on every offline dataset without a
    searched recipe, plus (redo) every searched one, or (below) those whose recorded best is under it."""
    from explorer.core.presets import preset_names
    from explorer.data import list_datasets
    from explorer.search.recipes import recipe, recipe_pairs

    if pairs:
        return list(pairs)
    searched = set(recipe_pairs())

    def wanted(pair: tuple[str, str]) -> bool:
        if redo or pair not in searched:
            return True
        return below is not None and recipe(*pair)["measured"]["best_val_acc"] < below

    return [(p, d.name) for p in preset_names() for d in list_datasets() if d.offline and wanted((p, d.name))]


def _sized(pair: tuple[str, str], settings: SearchSettings, device: str = "cpu") -> tuple[PairCost, Sizing]:
    from explorer.search.recipes import recipe_config, recipe_values

    start = recipe_config(*pair)
    cost = pair_cost(*pair)
    family_epochs = int(recipe_values(*pair).get("epochs", start.epochs))
    measured = measured_epoch_seconds(*pair, device) if device != "cpu" else None
    return cost, size_sweep(cost, start.batch_size, family_epochs, settings, per_epoch=measured)


def _describe(cost: PairCost, sizing: Sizing) -> str:
    return (f"{cost.preset}/{cost.dataset}: {cost.macs / 1e6:,.1f}M MACs/image, {cost.layers} layers, about "
            f"{sizing.epoch_seconds:,.1f} s/epoch; {sizing.trials} trials x {sizing.epochs} epochs, "
            f"no new trial after {sizing.seconds:,.0f} s")


def _past(stop_at: str | None) -> bool:
    return bool(stop_at) and _utc(time.time(), "%H:%M") >= stop_at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.search.recipe_search",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=parse_pairs,
                        help="PRESET/DATASET[,...] (default: every offline pair not searched yet)")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--redo", action="store_true", help="without --pairs: searched pairs too")
    again.add_argument("--below", type=_fraction, metavar="ACC",
                       help="without --pairs: searched pairs whose recorded best is under ACC (e.g. 0.6) too")
    parser.add_argument("--budget-seconds", type=_budget, default=SearchSettings.budget_seconds,
                        help="wall time per pair (default %(default)s s); pairs estimated over it are skipped")
    parser.add_argument("--list", action="store_true",
                        help="print every offline pair's recipe (accuracy, or the family default); run nothing")
    parser.add_argument("--plan", action="store_true",
                        help="print estimates and sizes and run no sweep (on cuda the timing runs still run)")
    parser.add_argument("--stop-at", type=_clock, metavar="HH:MM", help="start no sweep at or after this UTC time")
    parser.add_argument("--runs-dir", help="keep the trials' runs here (default: a temporary folder)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the trials train (default cpu); on cuda each pair's epoch is timed by a "
                             "two-epoch run instead of estimated")
    args = parser.parse_args(argv)  # bad input exits 2 here, before anything runs
    if args.device == "cuda" and not _cuda():
        parser.error("--device cuda: no CUDA GPU is visible to PyTorch here; leave out --device to search on the CPU")
    try:
        return _search_or_list(args, SearchSettings(budget_seconds=args.budget_seconds))
    except UserError as e:  # one line, never a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. --runs-dir is a file, or the disk is full: what was recorded stays
        print(f"error: {e.strerror or e} ({e.filename}); recipes.json and the sweep files keep what was "
              f"recorded before", file=sys.stderr)
        return 1


def _search_or_list(args: argparse.Namespace, settings: SearchSettings) -> int:
    if args.list:
        print("\n".join(recipe_table()))
        return 0
    return _search(args, settings)


def recipe_table() -> list[str]:
    """One line per preset and offline dataset: what its searched recipe's best trial reached (and in
    how many epochs and seconds), or the family default it falls back to; then a count."""
    from explorer.core.presets import preset_names
    from explorer.data import list_datasets
    from explorer.search.recipes import FAMILY_SOURCE, recipe

    lines, searched, total = [f"{'preset/dataset':28s} {'accuracy':>8s} {'epochs':>6s} {'seconds':>8s}  recipe"], 0, 0
    for preset in preset_names():
        for dataset in (d.name for d in list_datasets() if d.offline):
            entry, total = recipe(preset, dataset), total + 1
            if entry is None or entry["source"] == FAMILY_SOURCE:
                family = entry["family"] if entry else "none"
                lines.append(f"{preset + '/' + dataset:28s} {'-':>8s} {'-':>6s} {'-':>8s}  {family} family default")
                continue
            searched += 1
            m = entry.get("measured", {})
            acc, seconds = m.get("best_val_acc"), m.get("train_seconds")   # older entries lack the seconds
            lines.append(f"{preset + '/' + dataset:28s} {'-' if acc is None else f'{acc:.1%}':>8s} "
                         f"{m.get('epochs', '-'):>6} {'-' if seconds is None else f'{seconds:.1f}':>8s}  "
                         f"searched ({entry.get('sweep', 'a sweep')})")
    return lines + [f"{searched} of {total} pairs searched"]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _search(args: argparse.Namespace, settings: SearchSettings) -> int:
    pairs = candidate_pairs(args.pairs, args.redo, args.below)
    if not pairs:
        under = f" at or over {args.below:.0%}" if args.below is not None else ""
        print(f"every offline pair has a searched recipe{under} (--list shows them); --pairs P/D,..., --below "
              f"ACC or --redo searches again", flush=True)
        return 0
    sized = sorted((_sized(p, settings, args.device) for p in pairs), key=lambda cs: cs[1].shortest_sweep_seconds)
    for cost, sizing in sized:
        if sizing.skip:
            print(f"skip {sizing.skip}", flush=True)
            continue
        print(_describe(cost, sizing), flush=True)
        if args.plan:
            continue
        if _past(args.stop_at):
            print(f"stop: it is past {args.stop_at} UTC", flush=True)
            break
        search_pair(cost.preset, cost.dataset, sizing, args.runs_dir, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
