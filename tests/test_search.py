"""Sweeps (explorer/search): sweep files, the space, the Pareto front and best trial, pruning a
hopeless trial, resuming a killed sweep, seeded reproducibility, and the CLI's exit status.

Trials are real runs (tiny networks on the offline `digits` set, 1-6 epochs) through the job queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.errors import ConfigError
from explorer.core.presets import load_preset
from explorer.search import study as st
from explorer.search.driver import run_sweep
from explorer.search.space import Dim, apply, default_space, narrow
from explorer.search.sweepfile import Budget, Stages, SweepFile, new_sweep, read_sweep, sweep_from_dict
from explorer.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def tiny_sweep(**changes) -> SweepFile:
    """twoconv on digits: a width multiplier and the learning rate; random sampler, no pruning."""
    base = load_preset("twoconv")
    sweep = SweepFile(base=base, dataset="digits", train=TrainConfig(dataset="digits", device="cpu", lr=0.05),
                      space=(Dim("width", "float", 0.25, 0.5), Dim("lr", "float", 0.01, 0.1, log=True)),
                      objective="accuracy", sampler="random", pruner="none", seed=0,
                      budget=Budget(trials=2, max_epochs=1), stages=Stages(coarse_fraction=1.0, coarse_epochs=1))
    return replace(sweep, **changes).validate()


# --- sweep files ---------------------------------------------------------------------------------------
def test_sweep_file_round_trip(tmp_path):
    sweep = new_sweep(load_preset("lenet5"), "mnist5k", trials=7, seconds=90, max_epochs=6, seed=4, device="cpu",
                      min_accuracy=0.9)
    again = sweep_from_dict(json.loads(sweep.to_json()))
    assert again == sweep
    path = tmp_path / "s.json"
    path.write_text(sweep.to_json())
    assert read_sweep(path) == sweep
    assert {d.name for d in sweep.space} >= {"width", "kernel.0", "activation", "dropout", "lr", "weight_decay",
                                              "batch_size", "optimizer", "schedule", "epochs"}


def _mutations():
    return {
        "unknown key": lambda d: d.update(colour="red"),
        "bad format": lambda d: d.update(format="sweep@0"),
        "bad objective": lambda d: d.update(objective="speed"),
        "pareto with a pruner": lambda d: d.update(objective="pareto", pruner="halving"),
        "bad sampler": lambda d: d.update(sampler="grid"),
        "zero trials": lambda d: d["budget"].update(trials=0),
        "negative seconds": lambda d: d["budget"].update(seconds=-1),
        "unknown space name": lambda d: d["space"].append({"name": "depth_of_field", "kind": "int", "low": 1,
                                                           "high": 2}),
        "low above high": lambda d: d["space"].append({"name": "dropout", "kind": "float", "low": 0.5, "high": 0.1}),
        "log with zero": lambda d: d["space"].__setitem__(0, {"name": "width", "kind": "float", "low": 0, "high": 1,
                                                              "log": True}),
        "kernel of a relu": lambda d: d["space"].append({"name": "kernel.1", "kind": "choice", "choices": [3]}),
        "block out of range": lambda d: d["space"].append({"name": "repeat.99", "kind": "int", "low": 1, "high": 2}),
        "duplicate name": lambda d: d["space"].append(d["space"][0]),
        "empty space": lambda d: d.update(space=[]),
        "start point outside": lambda d: d.update(start_points=[{"width": 9.0}]),
        "bad train setting": lambda d: d["train"].update(lr=-1),
        "bad id": lambda d: d.update(id="../../etc"),
        "min accuracy above 1": lambda d: d.update(min_accuracy=97),
        "prune after zero epochs": lambda d: d.update(prune_min_epochs=0),
        "prune after true epochs": lambda d: d.update(prune_min_epochs=True),
    }


@pytest.mark.parametrize("name", list(_mutations()))
def test_bad_sweep_files_raise_config_error(name, tmp_path):
    data = json.loads(tiny_sweep().to_json())
    _mutations()[name](data)
    with pytest.raises(ConfigError):
        sweep_from_dict(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError):
        read_sweep(path)


def test_unreadable_sweep_file_raises_config_error(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b"\xff\x00{")
    with pytest.raises(ConfigError):
        read_sweep(path)
    with pytest.raises(ConfigError):
        read_sweep(tmp_path / "missing.json")


# --- the space -----------------------------------------------------------------------------------------
def test_apply_changes_width_kernels_activation_dropout_and_training():
    from explorer.core.analysis import analyze

    base = load_preset("lenet5")
    spec, config = apply(base, TrainConfig(), {"width": 0.5, "kernel.0": 3, "activation": "relu", "dropout": 0.25,
                                               "lr": 0.2, "optimizer": "adamw", "epochs": 3})
    types = [b.type for b in spec.blocks]
    assert [b.get("out_channels") for b in spec.blocks if b.type == "conv"] == [3, 8, 60]
    assert [b.get("out_features") for b in spec.blocks if b.type == "linear"] == [42, 10]  # the classifier keeps 10
    assert spec.blocks[0].get("kernel") == 3 and "tanh" not in types and types.count("relu") == 4
    assert types[-2:] == ["dropout", "linear"] and spec.blocks[-2].get("p") == 0.25
    assert (config.lr, config.optimizer, config.epochs) == (0.2, "adamw", 3)
    # 32 -> conv3 30 -> pool 15 -> conv5 11 -> pool 5 -> conv5 1: 3x3x1x3+3, 5x5x3x8+8, 5x5x8x60+60,
    # 60x42+42, 42x10+10
    assert analyze(spec).totals.params == 30 + 608 + 12060 + 2562 + 430


def test_same_padding_follows_the_kernel():
    spec, _ = apply(load_preset("twoconv"), TrainConfig(), {"kernel.0": 5, "repeat.0": 2})
    assert spec.blocks[0].get("padding") == 2 and spec.blocks[0].repeat == 2


def test_narrow_keeps_the_span_of_the_best_points_widened_and_clipped():
    space = (Dim("lr", "float", 1e-4, 1.0, log=True), Dim("dropout", "float", 0.0, 0.5),
             Dim("optimizer", "choice", choices=("sgd", "adam", "adamw")), Dim("epochs", "int", 2, 8))
    fine = {d.name: d for d in narrow(space, [{"lr": 0.01, "dropout": 0.1, "optimizer": "sgd"},
                                              {"lr": 0.1, "dropout": 0.3, "optimizer": "adamw"}])}
    # lr: log span ln(0.1/0.01) = 2.30, widened by 25% each side -> 0.01 * e^-0.576 .. 0.1 * e^0.576
    assert fine["lr"].low == pytest.approx(0.01 * 0.5623, rel=1e-3) and fine["lr"].high == pytest.approx(0.1778, rel=1e-3)
    # dropout: span 0.2 -> 0.05 each side; at least 25% of the original 0.5 already
    assert (fine["dropout"].low, fine["dropout"].high) == pytest.approx((0.05, 0.35))
    assert fine["optimizer"].choices == ("sgd", "adamw")
    assert fine["epochs"] == space[3]  # never drawn in the coarse stage


# --- Pareto front and best trial on a constructed study ------------------------------------------------
def _constructed(tmp_path, objective: str, min_accuracy: float = 0.0) -> dict:
    import optuna

    sweep = tiny_sweep(objective=objective, id="built", min_accuracy=min_accuracy,
                       sampler="nsga2" if objective == "pareto" else "random")
    folder = st.sweep_dir(tmp_path, "built")
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(sweep.to_json())
    study = st.open_study(sweep, tmp_path, "coarse", 1)
    dist = optuna.distributions.FloatDistribution(0.25, 0.5)
    points = [(0.90, 10_000), (0.95, 20_000), (0.93, 30_000), (0.99, 90_000), (0.80, 5_000), (0.95, 25_000)]
    for acc, params in points:
        study.add_trial(optuna.trial.create_trial(
            params={"width": 0.3}, distributions={"width": dist},
            values=st.objective_value(sweep, acc, params, params * 10),
            user_attrs={"best_val_acc": acc, "params": params, "macs": params * 10}))
    study.add_trial(optuna.trial.create_trial(params={"width": 0.3}, distributions={"width": dist},
                                              state=optuna.trial.TrialState.PRUNED,
                                              user_attrs={"best_val_acc": 0.999, "params": 100}))
    return st.sweep_report(tmp_path, "built")


def test_pareto_front_on_a_constructed_set(tmp_path):
    report = _constructed(tmp_path, "pareto", min_accuracy=0.94)
    # (0.93, 30K) loses to (0.95, 20K); (0.95, 25K) to (0.95, 20K); the pruned trial is no candidate
    assert report["pareto"] == [4, 0, 1, 3]
    assert report["best"] == 1  # the best course score on the front among trials >= 94%: 0.95 / 0.2 = 4.75
    assert [t["state"] for t in report["trials"]] == ["complete"] * 6 + ["pruned"]


def test_best_by_course_score_respects_the_accuracy_floor(tmp_path):
    report = _constructed(tmp_path, "score", min_accuracy=0.92)
    assert report["best"] == 1
    scores = {t["number"]: t["score"] for t in report["trials"]}
    assert scores[4] == pytest.approx(0.80 / 0.05)  # the highest score, but under the floor
    assert _constructed(tmp_path / "b", "score", min_accuracy=0.0)["best"] == 4


# --- real sweeps ---------------------------------------------------------------------------------------
def test_hopeless_learning_rate_is_pruned_early(tmp_path):
    sweep = tiny_sweep(space=(Dim("lr", "float", 1e-7, 0.2, log=True),), pruner="halving",
                       start_points=({"lr": 0.1}, {"lr": 1e-7}),
                       budget=Budget(trials=2, max_epochs=8), stages=Stages(coarse_fraction=1.0, coarse_epochs=8))
    assert sweep.min_epochs_before_pruning(8) == 2
    report = run_sweep(sweep, tmp_path, poll=0.1)
    good, bad = report["trials"]
    assert good["state"] == "complete" and good["epochs_done"] == 8 and good["best_val_acc"] > 0.5
    assert bad["state"] == "pruned" and bad["epochs_done"] == 2  # the first epoch pruning may look at
    summary = json.loads((Path(bad["run_dir"]) / "summary.json").read_text())
    assert summary["status"] == "cancelled" and summary["epochs_done"] < 8
    assert report["best"] == good["number"]
    saved = report["pruning"]
    assert (saved["epochs_run"], saved["epochs_planned"], saved["epochs_saved"]) == (10, 16, 6)
    assert saved["seconds_saved_est"] > 0


def test_min_epochs_before_pruning_default_and_field():
    sweep = tiny_sweep()
    assert [sweep.min_epochs_before_pruning(e) for e in (1, 2, 4, 8, 12, 20)] == [1, 2, 2, 2, 3, 5]
    fixed = sweep.with_changes(prune_min_epochs=5)
    assert [fixed.min_epochs_before_pruning(e) for e in (3, 10)] == [3, 5]  # never past the stage's epochs
    assert sweep_from_dict(json.loads(fixed.to_json())).prune_min_epochs == 5
    old_file = json.loads(sweep.to_json())
    del old_file["prune_min_epochs"]  # sweep files written before the field still read
    assert sweep_from_dict(old_file).prune_min_epochs is None


def _report_curve(study, curve: list[float]) -> tuple[object, int | None]:
    """Report a validation curve epoch by epoch; (trial, the epoch it was pruned at, or None)."""
    trial = study.ask()
    for epoch, value in enumerate(curve, start=1):
        trial.report(value, epoch)
        if trial.should_prune():
            return trial, epoch
    return trial, None


@pytest.mark.parametrize("pruner", ["halving", "hyperband"])
def test_pruner_spares_a_slow_starter_at_epoch_1_but_stops_a_hopeless_trial(pruner):
    import optuna

    def study_for(sweep):
        study = optuna.create_study(direction="maximize", pruner=st.make_pruner(sweep, 8),
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        for curve in ([0.90, 0.93, 0.95, 0.96], [0.88, 0.92, 0.94, 0.95], [0.85, 0.91, 0.93, 0.94]):
            trial, at = _report_curve(study, curve)  # fast starters, all finished
            study.tell(trial, curve[-1])
        return study

    sweep = tiny_sweep(pruner=pruner, budget=Budget(trials=8, max_epochs=8),
                       stages=Stages(coarse_fraction=1.0, coarse_epochs=8))
    slow_starter = [0.40, 0.93, 0.96, 0.97]  # a small net: poor after epoch 1, then the best
    trial, at = _report_curve(study_for(sweep), slow_starter)
    assert at is None
    if pruner == "halving":  # Hyperband splits trials into brackets, so only halving's rungs are fixed here
        _, at = _report_curve(study_for(sweep), [0.10, 0.10, 0.10, 0.10])  # a hopeless learning rate
        assert at == 2
        # pruning from epoch 1 (the old min_resource) would have lost the slow starter
        _, at = _report_curve(study_for(sweep.with_changes(prune_min_epochs=1)), slow_starter)
        assert at == 1


def test_same_seed_gives_the_same_trials(tmp_path):
    def points(seed: int, where: str) -> list[dict]:
        report = run_sweep(tiny_sweep(seed=seed, budget=Budget(trials=2, max_epochs=1)), tmp_path / where, poll=0.1)
        return [t["values"] for t in report["trials"]]

    first = points(7, "a")
    assert first == points(7, "b")
    assert first != points(8, "c")


def _sweep_cmd(sweep_file: Path, runs: Path) -> list[str]:
    return [sys.executable, "-m", "explorer", "sweep", "--sweep", str(sweep_file), "--runs-dir", str(runs),
            "--format", "json"]


def test_killed_sweep_resumes(tmp_path):
    runs = tmp_path / "runs"
    sweep_file = tmp_path / "sweep.json"
    sweep_file.write_text(tiny_sweep(id="resume-me", budget=Budget(trials=3, max_epochs=2),
                                     stages=Stages(coarse_fraction=1.0, coarse_epochs=2)).to_json())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(_sweep_cmd(sweep_file, runs), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(600):  # until the first trial has finished and the driver is mid-sweep
            study = st.load_stage(runs, "resume-me", "coarse")
            if study and any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
                break
            assert driver.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.1)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    before = st.sweep_report(runs, "resume-me")
    assert before["driver"] == "stopped"
    assert sum(t["state"] == "complete" for t in before["trials"]) < 3  # killed mid-sweep
    first_run = next(t["run_dir"] for t in before["trials"] if t["state"] == "complete")

    out = subprocess.run(_sweep_cmd(sweep_file, runs), cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["sweep"] == "resume-me" and report["driver"] == "finished"
    assert [t["number"] for t in report["trials"]] == [0, 1, 2]
    assert all(t["state"] == "complete" for t in report["trials"])
    assert report["trials"][0]["run_dir"] == first_run  # not trained again
    assert len({t["run_dir"] for t in report["trials"]}) == 3
    assert len([p for p in runs.iterdir() if (p / "spec.json").exists()]) == 3  # no duplicate runs
    for trial in report["trials"]:
        assert {"number", "state", "params", "macs", "best_val_acc", "score", "run_dir", "values"} <= set(trial)
    assert report["best"] in [t["number"] for t in report["trials"]] and set(report["pareto"]) <= {0, 1, 2}


# --- the command line ----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["--preset", "twoconv", "--dataset", "no-such-set"],
    ["--preset", "twoconv", "--dataset", "digits", "--objective", "pareto", "--pruner", "hyperband"],
    ["--preset", "no-such-net", "--dataset", "digits"],
    ["--preset", "twoconv"],
    ["--preset", "twoconv", "--dataset", "digits", "--budget-seconds", "-5"],
    ["--preset", "twoconv", "--dataset", "digits", "--trials", "0"],
])
def test_bad_sweep_input_exits_2_before_anything_starts(argv, tmp_path, capsys):
    runs = tmp_path / "runs"
    try:
        code = main(["sweep", *argv, "--runs-dir", str(runs)])
    except SystemExit as e:  # argparse rejects malformed flags itself, also with 2
        code = e.code
    assert code == 2
    assert not runs.exists()


def test_bad_sweep_file_exits_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "cnn-explorer/sweep@1", "base": {"blocks": []}}))
    assert main(["sweep", "--sweep", str(bad), "--runs-dir", str(tmp_path / "runs")]) == 2


def test_sweeps_lists_a_finished_sweep(tmp_path, capsys):
    run_sweep(tiny_sweep(id="listed", budget=Budget(trials=1, max_epochs=1)), tmp_path, poll=0.1)
    capsys.readouterr()
    assert main(["sweeps", "--runs-dir", str(tmp_path), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["sweep"] == "listed" and row["driver"] == "finished" and row["complete"] == 1
    assert main(["sweeps", "--runs-dir", str(tmp_path)]) == 0
    assert "listed" in capsys.readouterr().out


def test_default_space_of_lenet5_has_no_repeat_of_size_changing_convs():
    names = [d.name for d in default_space(load_preset("lenet5"))]
    assert not any(n.startswith("repeat.") for n in names) and "kernel.6" in names


def test_a_trial_is_not_pruned_at_its_last_epoch(tmp_path):
    # the worse trial reaches its last epoch exactly at the pruner's first rung (epoch 2): pruning it
    # would save nothing and lose a finished result, so it completes
    sweep = tiny_sweep(space=(Dim("lr", "float", 1e-7, 0.2, log=True),), pruner="halving",
                       start_points=({"lr": 0.1}, {"lr": 1e-7}),
                       budget=Budget(trials=2, max_epochs=2), stages=Stages(coarse_fraction=1.0, coarse_epochs=2))
    good, bad = run_sweep(sweep, tmp_path, poll=0.1)["trials"]
    assert good["best_val_acc"] > bad["best_val_acc"]
    assert [t["state"] for t in (good, bad)] == ["complete", "complete"] and bad["epochs_done"] == 2


# --- recipes ---------------------------------------------------------------------------------------------
def test_every_preset_and_offline_dataset_starts_from_a_recipe_that_says_where_it_came_from():
    from explorer.core.presets import preset_names
    from explorer.data import list_datasets
    from explorer.search import recipes

    offline = [d.name for d in list_datasets() if d.offline]
    assert {"mnist5k", "digits", "shapes"} <= set(offline)
    searched = set(recipes.recipe_pairs())
    assert ("lenet5", "mnist5k") in searched
    assert set(recipes.family_presets()) == set(preset_names())  # every preset has a family default
    for preset in preset_names():
        for dataset in offline:
            entry = recipes.recipe(preset, dataset)
            assert recipes.recipe_config(preset, dataset).dataset == dataset
            if (preset, dataset) in searched:  # found by a sweep whose file is committed beside recipes.json
                assert (recipes.RECIPES_FILE.parent / entry["sweep"]).is_file()
                assert 0 < entry["measured"]["best_val_acc"] <= 1
            else:
                assert entry["source"] == recipes.FAMILY_SOURCE and "measured" not in entry
                assert recipes.recipe_source(preset, dataset).startswith(recipes.FAMILY_SOURCE)
    # digits are never flipped; a mirrored shape keeps its class
    assert not recipes.recipe_config("vgg16", "digits").flip and recipes.recipe_config("vgg16", "shapes").flip
    assert recipes.recipe("my-own-net", "mnist5k") is None
    assert recipes.recipe_config("my-own-net", "mnist5k") == TrainConfig(dataset="mnist5k")


def test_the_train_page_loads_a_pairs_recipe_when_the_network_or_the_dataset_changes():
    from explorer.search import recipes

    mine = TrainConfig(dataset="shapes", epochs=99, lr=0.3, device="cpu", seed=7, val_fraction=0.3, max_seconds=60.0,
                       overfit=20, freeze="features", data_root="/data")
    cfg, key = recipes.follow_recipe(mine, None, "twoconv")          # first visit: the network's recipe
    expected = recipes.recipe_config("twoconv", "shapes")            # what `train --preset twoconv ...` uses
    assert key == recipes.recipe_key("twoconv", "shapes") == ("twoconv", "shapes")
    assert all(getattr(cfg, f) == getattr(expected, f) for f in recipes.RECIPE_FIELDS)
    kept = [f for f in TrainConfig.__dataclass_fields__ if f not in recipes.RECIPE_FIELDS + ("dataset",)]
    assert {f: getattr(cfg, f) for f in kept} == {f: getattr(mine, f) for f in kept}   # device, seed, ... stay
    assert recipes.edited_fields(cfg, "twoconv") == []
    edited = cfg.with_changes(lr=0.001, epochs=2)
    assert recipes.edited_fields(edited, "twoconv") == ["epochs", "lr"]
    assert recipes.follow_recipe(edited, key, "twoconv") is None     # same pair: the edits stay
    assert recipes.load_recipe(edited, "twoconv", "shapes") == cfg   # Reset to recipe
    moved, key2 = recipes.follow_recipe(edited.with_changes(dataset="digits"), key, "twoconv")
    assert key2 == ("twoconv", "digits") and moved == recipes.load_recipe(cfg, "twoconv", "digits")
    assert moved.lr == recipes.recipe_config("twoconv", "digits").lr and not moved.flip
    other, key3 = recipes.follow_recipe(moved, key2, "gapnet")       # another preset
    assert key3 == ("gapnet", "digits") and other.lr == recipes.recipe_config("gapnet", "digits").lr
    # a network that is no preset: TrainConfig's defaults, which depend on no dataset
    plain, key4 = recipes.follow_recipe(other, key3, "my-own-net")
    assert key4 == (None, None) and all(getattr(plain, f) == getattr(TrainConfig(), f) for f in recipes.RECIPE_FIELDS)
    assert plain.device == "cpu" and plain.seed == 7
    assert recipes.follow_recipe(plain.with_changes(dataset="shapes", lr=0.2), key4, "another-net") is None
    # every field a recipe or family sets is one the page loads
    book = json.loads(recipes.RECIPES_FILE.read_text())
    used = {k for e in book["recipes"] + book["families"] for k in e["train"]}
    used |= {k for d in book["dataset_defaults"].values() for k in d}
    assert used <= set(recipes.RECIPE_FIELDS), used - set(recipes.RECIPE_FIELDS)


def test_the_committed_sweep_files_read():
    from explorer.search.recipes import RECIPES_FILE

    files = sorted(RECIPES_FILE.parent.glob("*.sweep.json"))
    assert any(f.name == "lenet5-mnist5k-score.sweep.json" for f in files)
    for path in files:
        sweep = read_sweep(path)
        assert sweep.id is None and sweep.train.device == "cpu"


def test_recipe_summary_names_the_sweep_and_its_measurement_or_the_family():
    from explorer.search import recipes

    for preset, dataset in recipes.recipe_pairs():
        entry = recipes.recipe(preset, dataset)
        line = recipes.recipe_summary(preset, dataset)
        assert entry["sweep"] in line and f"{entry['measured']['best_val_acc']:.1%}" in line
    # a pair no search has answered (every preset on a downloadable set: the recipe search covers
    # the offline ones) falls back to its family default, over that set's augmentation default
    searched = set(recipes.recipe_pairs())
    for preset, family in recipes.family_presets().items():
        assert (preset, "cifar10") not in searched
        assert f"the {family} family default (not searched" in recipes.recipe_summary(preset, "cifar10")
        assert recipes.recipe_config(preset, "cifar10").flip is True  # CIFAR's mirror images keep their class
    assert "no recipe" in recipes.recipe_summary("my-net", "digits")
