"""The recipe search tool (explorer/search/recipe_search.py): the cost estimate and the skip rule,
the sweep it writes for a pair, the recipes.json entry it makes from a finished sweep's report,
and writing that entry. Nothing here trains."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from explorer.core.presets import load_preset
from explorer.search import recipe_search as rs
from explorer.search.recipes import RECIPES_FILE, write_recipe
from explorer.search.sweepfile import sweep_from_dict
from explorer.training.config import TrainConfig

SMALL = rs.PairCost(preset="resnet_cifar", dataset="shapes", macs=40_810_000, params=272_214, layers=64,
                    input=(3, 32, 32), train_images=2400, val_images=600)
ALEXNET = rs.PairCost(preset="alexnet", dataset="mnist5k", macs=663_280_000, params=57_029_322, layers=21,
                      input=(1, 224, 224), train_images=4000, val_images=1000)


def test_epoch_seconds_is_training_and_validation_macs_at_the_rate_plus_per_step_overhead():
    model = rs.CostModel(macs_per_second=1e9, layer_step_seconds=1e-3, param_step_seconds=1e-9)
    cost = rs.PairCost("p", "d", macs=1_000_000, params=1_000_000, layers=10, input=(1, 8, 8),
                       train_images=100, val_images=50)
    # (3 * 100 + 50) images x 1M MACs at 1G MACs/s = 0.35 s; ceil(100 / 32) = 4 steps x (10 ms + 1 ms)
    assert rs.epoch_seconds(cost, 32, model) == pytest.approx(0.35 + 4 * 0.011)


def test_a_pair_whose_shortest_sweep_exceeds_the_budget_is_skipped_with_its_estimate():
    sizing = rs.size_sweep(ALEXNET, batch_size=64, family_epochs=5)
    assert sizing.skip and sizing.shortest_sweep_seconds > 300
    assert "alexnet/mnist5k" in sizing.skip and "1x224x224" in sizing.skip and "over the 300 s budget" in sizing.skip
    assert rs.size_sweep(ALEXNET, 64, 5, rs.SearchSettings(budget_seconds=1e6)).skip is None


def test_a_cheap_pair_is_sized_to_its_budget():
    settings = rs.SearchSettings()
    sizing = rs.size_sweep(SMALL, batch_size=128, family_epochs=10, settings=settings)
    assert sizing.skip is None
    assert settings.min_epochs <= sizing.epochs <= settings.max_epochs
    assert settings.min_trials <= sizing.trials <= settings.max_trials
    assert sizing.trial_seconds <= sizing.seconds < settings.budget_seconds
    # never more epochs than the family default trains
    assert rs.size_sweep(SMALL, 128, family_epochs=3, settings=settings).epochs == 3
    # a dearer pair trains fewer epochs (never below min_epochs)
    dear = rs.PairCost(**{**SMALL.__dict__, "macs": SMALL.macs * 3})
    assert settings.min_epochs <= rs.size_sweep(dear, 128, 10, settings=settings).epochs <= sizing.epochs


def test_the_costly_pairs_are_skipped_and_the_small_ones_are_not():
    cost = rs.pair_cost("vgg19", "mnist5k")   # 28x28 zero-padded to 32x32, VGG's smallest size
    assert cost.input == (1, 32, 32) and cost.train_images + cost.val_images == 5000
    assert rs.size_sweep(cost, 64, 5).skip
    alex = rs.pair_cost("alexnet", "digits")  # 8x8 resized to 63x63, AlexNet's smallest (not 224x224)
    assert alex.input == (1, 63, 63) and alex.train_images + alex.val_images == 1797  # scikit-learn's digits
    small = rs.pair_cost("resnet_cifar", "digits")
    assert small.input == (1, 8, 8) and rs.size_sweep(small, 128, 10).skip is None


# the small-bn family default over shapes' augmentation (fixed here: recipes.json changes as pairs are searched)
SMALL_BN_SHAPES = TrainConfig(dataset="shapes", epochs=10, batch_size=128, lr=0.1, optimizer="sgd", momentum=0.9,
                              weight_decay=5e-4, schedule="cosine", crop_padding=2, flip=True)


def sizing(epochs=4, trials=6, seconds=240) -> rs.Sizing:
    return rs.Sizing(epoch_seconds=10.0, epochs=epochs, trials=trials, seconds=seconds, trial_seconds=46.0,
                     shortest_sweep_seconds=108.0)


def test_the_recipe_sweep_starts_from_the_pairs_recipe_in_a_small_space_around_it():
    start = SMALL_BN_SHAPES
    sweep = rs.recipe_sweep(load_preset("resnet_cifar"), start, sizing())
    assert (sweep.sampler, sweep.pruner, sweep.objective) == ("tpe", "halving", "accuracy")
    assert (sweep.budget.trials, sweep.budget.seconds, sweep.budget.max_epochs) == (6, 240, 4)
    assert sweep.coarse_trials == 6 and sweep.coarse_epochs == 4
    assert sweep.train.epochs == 4 and sweep.train.device == "cpu" and sweep.train.flip and sweep.dataset == "shapes"
    assert sweep.start_points == ({"lr": start.lr, "batch_size": start.batch_size, "schedule": start.schedule,
                                   "weight_decay": start.weight_decay, "label_smoothing": 0.0},)
    dims = {d.name: d for d in sweep.space}
    assert set(dims) == {"lr", "batch_size", "schedule", "weight_decay", "label_smoothing"}
    assert dims["lr"].log and dims["lr"].low < start.lr < dims["lr"].high
    assert dims["weight_decay"].log and start.batch_size in dims["batch_size"].choices
    assert set(dims["schedule"].choices) == {"cosine", "onecycle"}
    assert sweep_from_dict(json.loads(sweep.to_json())).to_dict() == sweep.to_dict()  # the file reads back
    assert rs.sweep_file_name("resnet_cifar", "shapes") == "resnet_cifar-shapes-recipe.sweep.json"


def test_a_start_point_outside_the_usual_ranges_widens_them():
    start = TrainConfig(dataset="digits", lr=0.02, batch_size=256, weight_decay=0.0, schedule="step",
                        label_smoothing=0.2)
    space, point = rs.space_around(start)
    dims = {d.name: d for d in space}
    assert 256 in dims["batch_size"].choices and "step" in dims["schedule"].choices
    assert 0.2 in dims["label_smoothing"].choices and dims["weight_decay"].low <= point["weight_decay"]


def report(best=1) -> dict:
    row = {"stage": "coarse", "params": 272_214, "macs": 40_810_000, "epochs_planned": 4, "run_dir": "/tmp/x"}
    return {"best": best, "trials": [
        {**row, "number": 0, "state": "complete", "best_val_acc": 0.61, "seconds": 50.0,
         "values": {"lr": 0.1, "batch_size": 128, "schedule": "cosine", "weight_decay": 5e-4, "label_smoothing": 0.0}},
        {**row, "number": 1, "state": "complete", "best_val_acc": 0.7233, "seconds": 61.234,
         "values": {"lr": 0.2, "batch_size": 64, "schedule": "onecycle", "weight_decay": 1e-4, "label_smoothing": 0.1}},
        {**row, "number": 2, "state": "pruned", "best_val_acc": 0.3, "seconds": 20.0,
         "values": {"lr": 0.03, "batch_size": 32, "schedule": "cosine", "weight_decay": 1e-3, "label_smoothing": 0.0}}]}


WINDOW = rs.Window(started=1_795_000_000.0, ended=1_795_000_200.0, load_start=3.25, load_end=2.5, cpus=2, niceness=5)


def entry_for(rep: dict) -> dict | None:
    sweep = rs.recipe_sweep(load_preset("resnet_cifar"), SMALL_BN_SHAPES, sizing(trials=3))
    return rs.recipe_entry("resnet_cifar", "shapes", sweep, rep, "resnet_cifar-shapes-recipe.sweep.json",
                           "the small-bn family default", WINDOW, "python -m explorer sweep --sweep F")


def test_the_entry_holds_the_best_trials_settings_and_what_the_start_point_reached():
    entry = entry_for(report())
    assert entry["train"] == {"epochs": 4, "batch_size": 64, "lr": 0.2, "optimizer": "sgd", "momentum": 0.9,
                              "weight_decay": 1e-4, "schedule": "onecycle", "label_smoothing": 0.1,
                              "crop_padding": 2, "flip": True, "nesterov": False, "step_epochs": 0, "gamma": 0.1,
                              "init": "default"}
    assert entry["sweep"] == "resnet_cifar-shapes-recipe.sweep.json"
    assert entry["source"] == ("sweep resnet_cifar-shapes-recipe.sweep.json on 2026-11-18: 3 trials (tpe, "
                               "successive halving from epoch 2; 2 complete, 1 pruned), best trial 1; its start "
                               "point, the small-bn family default, reached 0.6100")
    measured = entry["measured"]
    assert (measured["best_val_acc"], measured["epochs"], measured["params"], measured["train_seconds"]) == \
        (0.7233, 4, 272_214, 61.23)
    assert "load average 3.25 at the sweep's start and 2.50 at its end" in measured["note"]
    assert "niceness 5" in measured["note"] and measured["note"].endswith("command: python -m explorer sweep --sweep F")
    TrainConfig.from_dict({**entry["train"], "dataset": "shapes"})  # what recipes.py checks at import


def test_a_sweep_whose_complete_trials_all_tie_says_so():
    rep = report(best=0)
    rep["trials"][1]["best_val_acc"] = rep["trials"][0]["best_val_acc"] = 0.1667  # chance on 6 classes
    assert entry_for(rep)["source"].endswith("reached 0.1667; every complete trial reached 0.1667: the sweep "
                                             "told its settings apart by nothing")
    assert "every complete trial" not in entry_for(report())["source"]


def test_a_diverged_start_point_is_named_as_such():
    rep = report()
    rep["trials"][0].update(state="pruned", run_status="diverged", best_val_acc=None)
    assert "2 trials (tpe" not in entry_for(rep)["source"]
    assert ("1 complete, 2 pruned (1 of them diverged)), best trial 1; its start point, the small-bn family "
            "default, did not complete (diverged)") in entry_for(rep)["source"]


def test_the_start_point_can_be_the_best_and_nothing_completed_gives_no_entry():
    assert entry_for(report(best=0))["train"]["lr"] == 0.1
    rep = report(best=None)
    assert entry_for(rep) is None


def test_write_recipe_replaces_the_pairs_entry_or_adds_one(tmp_path):
    path = tmp_path / "recipes.json"
    data = json.loads(RECIPES_FILE.read_text())
    data["recipes"] = [e for e in data["recipes"] if (e["preset"], e["dataset"]) != ("resnet_cifar", "shapes")]
    path.write_text(json.dumps(data, indent=1) + "\n")
    entry = entry_for(report())
    with pytest.raises(RuntimeError, match="not beside"):
        write_recipe(entry, path)
    (tmp_path / entry["sweep"]).write_text("{}")
    before = json.loads(path.read_text())["recipes"]
    write_recipe(entry, path)
    after = json.loads(path.read_text())["recipes"]
    assert after[:-1] == before and after[-1] == entry
    better = {**entry, "measured": {**entry["measured"], "best_val_acc": 0.8}}
    write_recipe(better, path)
    assert json.loads(path.read_text())["recipes"] == before + [better]
    assert path.read_text().endswith("}\n") and not list(tmp_path.glob(".*.tmp"))


def test_with_every_pair_searched_the_default_search_says_so_and_runs_nothing(monkeypatch, capsys):
    from explorer.search import recipes

    every = rs.candidate_pairs(None, redo=True)
    monkeypatch.setattr(recipes, "recipe_pairs", lambda: every)
    assert rs.main([]) == 0
    assert capsys.readouterr().out.startswith("every offline pair has a searched recipe")


def test_plan_prints_the_estimate_and_runs_nothing(capsys):
    assert rs.main(["--plan", "--pairs", "resnet_cifar/digits,vgg19/mnist5k"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("resnet_cifar/digits: 2.5M MACs/image") and "trials x" in out[0]
    assert out[1].startswith("skip vgg19/mnist5k: 517M MACs/image at 1x32x32")


@pytest.mark.slow
def test_search_pair_runs_the_sweep_and_records_its_best_trial(tmp_path, capsys):
    """A tiny real search: twoconv on digits, 2 trials of 1 epoch, into a copy of the recipes file."""
    path = tmp_path / "recipes.json"
    data = json.loads(RECIPES_FILE.read_text())
    for old in data["recipes"]:   # a recorded recipe that any trial beats: the search replaces it
        if (old["preset"], old["dataset"]) == ("twoconv", "digits"):
            old["measured"]["best_val_acc"] = 0.01
    path.write_text(json.dumps(data))
    tiny = rs.Sizing(epoch_seconds=1.0, epochs=1, trials=2, seconds=120, trial_seconds=7.0,
                     shortest_sweep_seconds=21.0)
    entry = rs.search_pair("twoconv", "digits", tiny, runs_dir=tmp_path / "runs", recipes_file=path)
    assert (tmp_path / "twoconv-digits-recipe.sweep.json").is_file()
    assert [e for e in json.loads(path.read_text())["recipes"] if e["preset"] == "twoconv"
            and e["dataset"] == "digits"] == [entry]
    assert entry["train"]["epochs"] == 1 and 0 < entry["measured"]["best_val_acc"] <= 1
    assert "2 trials" in entry["source"] and "its start point, the previous searched recipe, reached" in entry["source"]
    assert entry["measured"]["note"].endswith(f"--sweep {tmp_path / 'twoconv-digits-recipe.sweep.json'}")
    assert "twoconv/digits trial 0 completed" in capsys.readouterr().out


def test_a_search_that_does_worse_than_the_recorded_recipe_keeps_it_and_its_sweep_file(tmp_path, monkeypatch,
                                                                                      capsys):
    path = tmp_path / "recipes.json"
    shutil.copy(RECIPES_FILE, path)
    recorded = next(e for e in json.loads(path.read_text())["recipes"] if e["preset"] == "twoconv"
                    and e["dataset"] == "digits")
    committed = RECIPES_FILE.parent / "twoconv-digits-recipe.sweep.json"
    shutil.copy(committed, tmp_path / committed.name)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    worse = {**recorded, "measured": {**recorded["measured"], "best_val_acc": recorded["measured"]["best_val_acc"] / 2}}
    monkeypatch.setattr("explorer.search.driver.run_sweep", lambda *args, **kwargs: None)
    monkeypatch.setattr(rs, "recipe_entry", lambda *args: worse)
    tiny = rs.Sizing(epoch_seconds=1.0, epochs=1, trials=2, seconds=120, trial_seconds=7.0,
                     shortest_sweep_seconds=21.0)
    assert rs.search_pair("twoconv", "digits", tiny, runs_dir=tmp_path / "runs", recipes_file=path) is None
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert "kept the recorded recipe" in capsys.readouterr().out


def test_below_adds_the_searched_pairs_under_that_accuracy_and_nothing_else():
    from explorer.search import recipes

    weak = {pair for pair in recipes.recipe_pairs() if recipes.recipe(*pair)["measured"]["best_val_acc"] < 0.6}
    unsearched = set(rs.candidate_pairs(None, redo=False))
    assert weak and set(rs.candidate_pairs(None, redo=False, below=0.6)) == unsearched | weak
    assert set(rs.candidate_pairs(None, redo=True)) >= unsearched | weak | set(recipes.recipe_pairs())


@pytest.mark.parametrize("argv, says", [
    (["--pairs", "foo"], "is not PRESET/DATASET"), (["--pairs", "../../etc/passwd/digits"], "is not PRESET/DATASET"),
    (["--pairs", "lenet5/cifar10"], "offline dataset"), (["--pairs", ","], "at least one"),
    (["--budget-seconds", "nan"], "positive number"), (["--budget-seconds", "-5"], "positive number"),
    (["--below", "60"], "between 0 and 1"), (["--below", "nan"], "between 0 and 1"),
    (["--below", "0.5", "--redo"], "not allowed with"), (["--stop-at", "12:60"], "HH:MM"),
    (["--stop-at", "x" * 5000], "HH:MM"), (["--device", "tpu"], "invalid choice"),
    *([(["--device", "cuda"], "no CUDA GPU")] if not torch.cuda.is_available() else [])])
def test_bad_flags_exit_2_with_a_message_before_anything_runs(argv, says, capsys):
    with pytest.raises(SystemExit) as stop:
        rs.main([*argv, "--plan"])
    assert stop.value.code == 2 and says in capsys.readouterr().err


def test_a_sweep_that_fails_leaves_the_committed_sweep_file_and_recipe_as_they_were(tmp_path, monkeypatch, capsys):
    path = tmp_path / "recipes.json"
    shutil.copy(RECIPES_FILE, path)
    committed = RECIPES_FILE.parent / "twoconv-digits-recipe.sweep.json"
    shutil.copy(committed, tmp_path / committed.name)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*args, **kwargs):
        raise NotADirectoryError(20, "Not a directory", str(tmp_path / "runs"))

    monkeypatch.setattr("explorer.search.driver.run_sweep", broken)
    tiny = rs.Sizing(epoch_seconds=1.0, epochs=1, trials=2, seconds=120, trial_seconds=7.0,
                     shortest_sweep_seconds=21.0)
    with pytest.raises(OSError):
        rs.search_pair("twoconv", "digits", tiny, recipes_file=path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_measured_epoch_time_sizes_the_sweep_instead_of_the_model():
    cost = rs.pair_cost("resnet_cifar", "digits")
    modelled = rs.size_sweep(cost, 128, 10)
    fast = rs.size_sweep(cost, 128, 10, per_epoch=0.5)
    assert fast.epoch_seconds == 0.5 and fast.epoch_seconds != modelled.epoch_seconds
    assert fast.epochs == 8 and fast.skip is None          # a fast epoch: the most epochs the settings allow
    slow = rs.size_sweep(cost, 128, 10, per_epoch=1000.0)
    assert slow.skip and "1,000 s per epoch" in slow.skip


def test_an_epoch_is_timed_by_a_real_two_epoch_run():
    """On the CPU here (the search times epochs this way on a GPU): twoconv on the 8x8 digits."""
    seconds = rs.measured_epoch_seconds("twoconv", "digits", "cpu")
    assert 0 < seconds < 60


def test_the_entry_names_the_gpu_its_trials_trained_on():
    sweep = rs.recipe_sweep(load_preset("resnet_cifar"), SMALL_BN_SHAPES, sizing(), device="cuda")
    assert sweep.train.device == "cuda"
    report = {"best": 0, "trials": [{"number": 0, "state": "complete", "best_val_acc": 0.9, "params": 100,
                                     "seconds": 12.0, "values": {}, "run_status": "completed"}]}
    window = rs.Window(**{**WINDOW.__dict__, "gpu": "NVIDIA H200"})
    entry = rs.recipe_entry("resnet_cifar", "shapes", sweep, report, "x.sweep.json", "the start", window, "cmd")
    assert "on one NVIDIA H200 GPU (host: 2 CPU cores)" in entry["measured"]["note"]



def test_list_prints_every_offline_pair_and_how_many_are_searched(capsys):
    from explorer.core.presets import preset_names
    from explorer.search.recipes import recipe_pairs

    assert rs.main(["--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    pairs = len(preset_names()) * 3                                      # mnist5k, digits, shapes
    assert len(out) == pairs + 2 and out[-1] == f"{len(recipe_pairs())} of {pairs} pairs searched"
    lenet = next(line for line in out if line.startswith("lenet5/mnist5k "))
    assert "searched (lenet5-mnist5k-recipe.sweep.json)" in lenet and "%" in lenet
