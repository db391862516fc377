"""The `sweep` and `sweeps` commands (registered in explorer/cli.py).

Owns: their flags, turning flags into a SweepFile (a --sweep FILE, with any flags given
overriding it), checking everything before anything starts (bad input: a UserError, exit 2),
and printing progress (text) or the report (json).

    python -m explorer sweep (--preset NAME | --spec FILE | --sweep FILE) --dataset NAME
            [--trials N] [--budget-seconds S] [--objective accuracy|score|pareto]
            [--sampler random|tpe|nsga2] [--pruner none|halving|hyperband] [--max-epochs N]
            [--device auto|cpu|cuda] [--runs-dir DIR] [--seed N] [--format text|json]
    python -m explorer sweeps [--runs-dir DIR] [--format table|json]
"""

from __future__ import annotations

import json
from dataclasses import replace

from explorer.errors import ConfigError

_OVERRIDES = ("dataset", "trials", "budget_seconds", "objective", "sampler", "pruner", "max_epochs", "device",
              "seed")


def add_parsers(sub, positive) -> None:
    from explorer.search.sweepfile import OBJECTIVES, PRUNERS, SAMPLERS
    from explorer.training.config import DEVICES

    p = sub.add_parser("sweep", help="search architectures and hyperparameters (Optuna), coarse to fine",
                       description="Run (or resume) a sweep: every trial is an ordinary run in the job queue. "
                                   "A --sweep FILE with an id resumes that sweep. The json report holds "
                                   "trials [{number, state, params (parameter count), macs, best_val_acc, "
                                   "score (accuracy / (params / 100K)), run_dir, values (the sampled "
                                   "point)}], pareto (trial numbers) and best (a trial number).")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", metavar="NAME", help="search around a preset network")
    source.add_argument("--spec", metavar="FILE", help="search around a spec JSON file")
    source.add_argument("--sweep", metavar="FILE", help="a sweep file (format cnn-explorer/sweep@1)")
    p.add_argument("--dataset", metavar="NAME", help="required unless --sweep")
    p.add_argument("--trials", type=positive, metavar="N", help="trials in all (default 20)")
    p.add_argument("--budget-seconds", type=float, metavar="S", help="ask for no new trial after S seconds")
    p.add_argument("--objective", choices=OBJECTIVES, help="default score (the course score)")
    p.add_argument("--sampler", choices=SAMPLERS, help="default tpe (nsga2 for pareto)")
    p.add_argument("--pruner", choices=PRUNERS, help="default halving (none for pareto)")
    p.add_argument("--max-epochs", type=positive, metavar="N", help="the longest a trial trains (default 12)")
    p.add_argument("--device", choices=DEVICES)
    p.add_argument("--runs-dir", metavar="DIR", help="default ./runs ($CNN_EXPLORER_RUNS)")
    p.add_argument("--seed", type=int, metavar="N")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--executor", choices=("local", "ray"),
                   help="where the trials run (default $CNN_EXPLORER_EXECUTOR, else local)")
    p.add_argument("--ray-address", metavar="A", help="the Ray cluster (default $CNN_EXPLORER_RAY_ADDRESS; "
                                                      "empty: a local Ray instance)")

    p = sub.add_parser("sweeps", help="list sweeps")
    p.add_argument("--runs-dir", metavar="DIR", help="default ./runs ($CNN_EXPLORER_RUNS)")
    p.add_argument("--format", choices=("table", "json"), default="table")


def sweep_from_args(args, load_spec):
    """The SweepFile these flags describe; UserError for anything wrong (nothing has started)."""
    from explorer.data import dataset_info
    from explorer.search.driver import network_cost
    from explorer.search.recipes import recipe_config
    from explorer.search.sweepfile import Budget, new_sweep, read_sweep

    if args.budget_seconds is not None and not args.budget_seconds > 0:
        raise ConfigError(f"--budget-seconds must be positive, got {args.budget_seconds}", field="budget_seconds")
    if args.sweep:
        sweep = read_sweep(args.sweep)
        given = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None}
        budget = Budget(trials=given.get("trials", sweep.budget.trials),
                        seconds=given.get("budget_seconds", sweep.budget.seconds),
                        max_epochs=given.get("max_epochs", sweep.budget.max_epochs))
        train = sweep.train.with_changes(**{k: given[k] for k in ("dataset", "device", "seed") if k in given})
        sweep = replace(sweep, budget=budget, train=train, dataset=train.dataset,
                        **{k: given[k] for k in ("objective", "sampler", "pruner", "seed") if k in given}).validate()
    else:
        if not args.dataset:
            raise ConfigError("give --dataset NAME (e.g. mnist5k, which works offline) or --sweep FILE",
                              field="dataset")
        base = load_spec(args.preset, args.spec)
        seed = 0 if args.seed is None else args.seed
        sweep = new_sweep(base, args.dataset, objective=args.objective or "score", sampler=args.sampler,
                          pruner=args.pruner, trials=args.trials or 20, seconds=args.budget_seconds,
                          max_epochs=args.max_epochs or 12, seed=seed, device=args.device or "auto",
                          train=recipe_config(args.preset, args.dataset))
    try:
        dataset_info(sweep.dataset)
    except KeyError:
        raise ConfigError(f"unknown dataset {sweep.dataset!r}", field="dataset") from None
    network_cost(sweep.base, sweep.dataset, sweep.train)  # the base network must fit the data (SpecError otherwise)
    return sweep


def _progress(event: dict) -> None:
    kind = event["event"]
    if kind == "ask":
        print(f"trial {event['number']}: {event['params']:,} params, {_point(event['values'])}", flush=True)
    elif kind == "told":
        acc = event["best_val_acc"]
        how = "pruned" if event["pruned"] else event["run_status"]
        print(f"trial {event['number']} {how}: best val acc {'-' if acc is None else f'{acc:.4f}'}", flush=True)
    elif kind == "pruned":
        print(f"trial {event['number']} pruned after epoch {event['epoch']} (val acc {event['val_acc']:.4f})",
              flush=True)
    elif kind in ("failed", "note"):
        print(f"trial {event.get('number', '-')}: {event['message']}", flush=True)
    elif kind == "stage":
        print(f"fine stage: {_point({d['name']: d.get('choices') or [d['low'], d['high']] for d in event['space']})}",
              flush=True)
    elif kind == "resume":
        print(f"trial {event['number']}: following its run {event['run_dir']}", flush=True)


def _point(values: dict) -> str:
    def short(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{k}={short(v) if not isinstance(v, list) else '/'.join(map(short, v))}"
                     for k, v in values.items())


def cmd_sweep(args, load_spec) -> int:
    from explorer.search.driver import run_sweep
    from explorer.training.runs import runs_root

    sweep = sweep_from_args(args, load_spec)
    runs_dir = runs_root(args.runs_dir)
    report = run_sweep(sweep, runs_dir, on_event=_progress if args.format == "text" else None,
                       executor=args.executor, ray_address=args.ray_address)
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return 0
    print(summary_text(report))
    return 0


def summary_text(report: dict) -> str:
    rows = report["trials"]
    counts = {s: sum(r["state"] == s for r in rows) for s in ("complete", "pruned", "failed")}
    lines = [f"sweep {report['sweep']}: {len(rows)} trials ({counts['complete']} complete, {counts['pruned']} "
             f"pruned, {counts['failed']} failed); pareto front: {report['pareto']}"]
    best = next((r for r in rows if r["number"] == report["best"]), None)
    if best:
        lines.append(f"best: trial {best['number']}, {best['best_val_acc']:.4f} val acc, {best['params']:,} params, "
                     f"score {best['score']:.2f}, run {best['run_dir']}")
    saved = report.get("pruning") or {}
    if saved.get("epochs_planned"):
        lines.append(f"pruning: {saved['epochs_run']} of {saved['epochs_planned']} planned epochs trained "
                     f"({saved['epochs_saved']} saved); trials took {saved['seconds_run']:.0f} s, pruning saved "
                     f"about {saved['seconds_saved_est']:.0f} s")
    lines.append(f"resume or extend: python -m explorer sweep --sweep "
                 f"{report.get('sweep_file', 'RUNS/sweeps/' + report['sweep'] + '/sweep.json')}")
    return "\n".join(lines)


def cmd_sweeps(args) -> int:
    from explorer.search.study import list_sweeps
    from explorer.training.runs import runs_root

    sweeps = list_sweeps(runs_root(args.runs_dir))
    if args.format == "json":
        print(json.dumps(sweeps, indent=2))
        return 0
    if not sweeps:
        print("no sweeps yet: python -m explorer sweep --preset lenet5 --dataset mnist5k --trials 10")
        return 0
    print(f"{'sweep':44s} {'state':9s} {'trials':>9s} {'pruned':>6s} {'best acc':>8s} {'params':>10s} {'score':>7s}")
    for s in sweeps:
        acc, params, score = s.get("best_val_acc"), s.get("best_params"), s.get("best_score")
        print(f"{s['sweep']:44s} {s['driver']:9s} {str(s.get('trials', '-')) + '/' + str(s.get('budget_trials', '-')):>9s} "
              f"{s.get('pruned', '-')!s:>6s} {'-' if acc is None else f'{acc:.4f}':>8s} "
              f"{'-' if params is None else f'{params:,}':>10s} {'-' if score is None else f'{score:.2f}':>7s}")
    return 0


__all__ = ["add_parsers", "cmd_sweep", "cmd_sweeps"]
