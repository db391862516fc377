"""AppTest tests of the Train page: the check before launch, real CPU runs through the job queue
(launch, watch to completion, divergence, cancel), overlaying runs, the layout (curves above the
notes), cards and curves following one list, the default selection of a new session; plus the
pure pieces (explorer.charts.training, explorer.training.status). Every run lives in a tmp folder:
the page reads its runs folder from state.RUNS_DIR, which these tests set before the first run."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer import load_preset
from explorer.search import recipes
from explorer.units import format_bytes, format_value
from explorer.core.spec import NetworkSpec
from explorer.training.config import TrainConfig
from explorer.training.jobs import JobQueue
from explorer.training.loop import train
from explorer.training.plan import plan_run
from explorer.training.runs import FINISHED, new_run_dir, read_json, read_metrics
from explorer.training.status import diagnosis
from explorer.charts.training import STYLE_GROUP, RunCurves, training_figure
from ui import state
from ui import train_views
from tests.shown import shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")
USED: list[Path] = []  # runs folders of this module: their leftover jobs are cancelled at the end


@pytest.fixture(scope="module", autouse=True)
def stop_leftover_runs():
    yield
    for root in USED:
        queue = JobQueue(root)
        live = [j for j in queue.jobs() if j.status not in FINISHED]
        for job in live:
            queue.cancel(job.id)
        if live:
            queue.wait([j.id for j in live], timeout=60)


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    """A fresh runs folder. Training uses one CPU thread here (the queue's processes inherit the
    environment): on a busy small machine, one OpenMP thread per core makes these tiny runs up
    to 100x slower while the threads wait for each other."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    USED.append(tmp_path / "runs")
    yield tmp_path / "runs"
    torch.set_num_threads(threads)


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_train(runs: Path, spec: NetworkSpec | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[state.RUNS_DIR] = str(runs)
    ok(at.run())
    if spec is not None:
        at.session_state[state.SPEC] = spec
    return ok(at.switch_page("pages/train.py").run())


def settings(at: AppTest, dataset: str = "digits", epochs: int = 1, **widgets) -> AppTest:
    """Pick the dataset, epochs and other settings; runs go to the CPU (one at a time, as here)."""
    widgets.setdefault("device", "cpu")
    at.selectbox(key="w.tr.dataset").select(dataset).run()
    at.number_input(key="w.tr.epochs").set_value(epochs).run()
    for field, value in widgets.items():
        widget = at.select_slider(key=f"w.tr.{field}") if field in ("lr", "batch_size") else \
            at.selectbox(key=f"w.tr.{field}")
        widget.set_value(value).run()
    return ok(at)


def launch(at: AppTest) -> str:
    ok(at.button(key="b.train").click().run())
    assert not at.error, [e.value for e in at.error]
    return at.session_state[state.TRAIN_CURRENT]


def wait_until(at: AppTest, done, timeout: float = 45) -> AppTest:
    """Re-run the page (as the fragment would every second) until done(at) or the timeout."""
    deadline = time.monotonic() + timeout
    while not done(ok(at)):
        assert time.monotonic() < deadline, "timed out; " + "; ".join(
            e.value for e in list(at.error) + list(at.warning) + list(at.info))
        time.sleep(0.3)
        at.run()
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def metric(at: AppTest, label: str):
    return next(m for m in at.metric if m.label == label)


def table(at: AppTest):
    return at.dataframe[0].value


def figure(at: AppTest) -> dict:
    charts = at.get("plotly_chart")
    assert charts, "no curves drawn"
    return json.loads(charts[0].proto.spec)


def run_groups(fig: dict) -> set[str]:
    """The runs drawn in a figure (legend groups, without the gray line-style key)."""
    return {t["legendgroup"] for t in fig["data"]} - {STYLE_GROUP}


def in_order(node):
    """Every element of the page in the order it is drawn (containers by position, not by when
    they were filled)."""
    yield node
    children = getattr(node, "children", None) or {}
    for index in sorted(children):
        yield from in_order(children[index])


def position(at: AppTest, found) -> int:
    """Index in page order of the first element for which found(element) is true."""
    return next(i for i, e in enumerate(in_order(at.main)) if found(e))


def is_text(kind: str, start: str):
    return lambda e: getattr(e, "type", None) == kind and str(getattr(e, "value", "")).startswith(start)


MLP = NetworkSpec.from_dict({"name": "mlp", "input": [784], "num_classes": 10, "blocks": [
    {"type": "linear", "out_features": 64}, {"type": "relu"}, {"type": "linear", "out_features": 10}]})
NO_HEAD = NetworkSpec.from_dict({"name": "convs-only", "input": [1, 28, 28], "num_classes": 10, "blocks": [
    {"type": "conv", "out_channels": 10, "kernel": 3}, {"type": "relu"}]})


# --- the check before launch ---------------------------------------------------------------------
def test_image_size_widget_sizes_the_run(runs):
    """VGG-11 on the 8x8 digits trains at 32x32 by default (the smallest size it works at); the
    image-size widget asks for another; a size it cannot take is refused with what to change."""
    at = settings(open_train(runs, load_preset("vgg11")), "digits")
    assert any("resized from 8x8 to 32x32 (the smallest size the network works at" in t for t in texts(at.info))
    ok(at.number_input(key="w.tr.image_size").set_value(48).run())
    assert at.session_state[state.TRAIN_CONFIG].image_size == 48
    assert any("resized from 8x8 to 48x48 (the image size asked for)" in t for t in texts(at.info))
    ok(at.number_input(key="w.tr.image_size").set_value(20).run())
    assert any("does not work at 20x20" in e.value and "32x32" in e.value for e in at.error)
    assert at.button(key="b.train").disabled


def test_opens_with_the_check_before_launch(runs):
    at = open_train(runs)
    assert shown(at.title[0].value) == "Train LeNet-5"
    assert "CPU" in at.caption[0].value and "at most 1 at a time" in at.caption[0].value
    assert "MNIST 5k" in at.markdown[0].value and "61,706 parameters" in at.markdown[0].value
    assert any("zero-padded from 28x28 to 32x32" in t for t in texts(at.info))
    assert any("ln(10) = 2.30" in t for t in texts(at.caption))
    assert not at.button(key="b.train").disabled and not at.error
    # a 1x32x32 network on 32x32 RGB shapes: input channels and classes follow the dataset
    at.selectbox(key="w.tr.dataset").select("shapes").run()
    notice = next(t for t in texts(at.info) if t.startswith("Adapted"))
    assert "input channels follow the dataset: 1 -> 3" in notice and "classes follow the dataset: 10 -> 6" in notice
    assert at.session_state[state.TRAIN_CONFIG].dataset == "shapes"
    assert not at.button(key="b.train").disabled
    assert any("No curves to show yet" in t for t in texts(at.info))
    # the curves' place comes before the notes about the network, which can be long
    assert position(at, is_text("info", "No curves")) < position(at, is_text("info", "Adapted"))
    assert not any(runs.glob("2*"))  # nothing launched


def test_settings_survive_a_visit_to_the_build_page(runs):
    at = settings(open_train(runs), "digits", epochs=7, optimizer="adam", lr=0.001)
    ok(at.switch_page("pages/build.py").run())
    assert shown(at.title[0].value) == "LeNet-5"
    ok(at.switch_page("pages/train.py").run())
    cfg = at.session_state[state.TRAIN_CONFIG]
    assert (cfg.dataset, cfg.epochs, cfg.optimizer, cfg.lr) == ("digits", 7, "adam", 0.001)
    assert at.number_input(key="w.tr.epochs").value == 7 and at.select_slider(key="w.tr.lr").value == 0.001


# --- the recipe the settings start from (explorer.search.recipes) -------------------------------------
def recipe_widgets(at: AppTest) -> dict:
    """The recipe fields as the sidebar's widgets show them."""
    sliders = {f: at.select_slider(key=f"w.tr.{f}").value for f in ("batch_size", "lr", "weight_decay")}
    boxes = {f: at.selectbox(key=f"w.tr.{f}").value for f in ("optimizer", "schedule")}
    numbers = {f: at.number_input(key=f"w.tr.{f}").value for f in ("epochs", "momentum", "crop_padding")}
    return {**sliders, **boxes, **numbers, "label_smoothing": at.slider(key="w.tr.label_smoothing").value,
            "flip": at.checkbox(key="w.tr.flip").value}


def assert_recipe(at: AppTest, preset: str | None, dataset: str) -> None:
    """Settings and widgets hold exactly what `train --preset P --dataset D` starts from."""
    expected = recipes.recipe_config(preset, dataset)
    cfg = at.session_state[state.TRAIN_CONFIG]
    assert cfg.dataset == dataset
    fields = recipes.RECIPE_FIELDS
    assert {f: getattr(cfg, f) for f in fields} == {f: getattr(expected, f) for f in fields}
    assert recipe_widgets(at) == {f: getattr(expected, f) for f in recipe_widgets(at)}
    assert f"Starting settings: {recipes.recipe_summary(preset, dataset)}." in recipe_caption(at)


def recipe_caption(at: AppTest) -> str:
    return next(shown(c.value) for c in at.sidebar.caption if c.value.startswith("Starting settings"))


def test_changing_the_dataset_loads_that_pairs_recipe_and_keeps_the_persons_device_and_seed(runs):
    at = open_train(runs, load_preset("twoconv"))
    assert_recipe(at, "twoconv", "mnist5k")          # the network's recipe from the first visit
    at.selectbox(key="w.tr.device").set_value("cpu").run()
    at.number_input(key="w.tr.seed").set_value(7).run()
    ok(at.selectbox(key="w.tr.dataset").select("shapes").run())
    assert_recipe(at, "twoconv", "shapes")
    shapes = recipes.recipe_config("twoconv", "shapes")
    assert (at.select_slider(key="w.tr.batch_size").value, at.select_slider(key="w.tr.lr").value,
            at.checkbox(key="w.tr.flip").value) == (shapes.batch_size, shapes.lr, shapes.flip)
    cfg = at.session_state[state.TRAIN_CONFIG]
    assert (cfg.device, cfg.seed) == ("cpu", 7)      # not part of a recipe: the person's
    assert f"batch {shapes.batch_size}" in at.markdown[0].value
    ok(at.selectbox(key="w.tr.dataset").select("digits").run())
    assert_recipe(at, "twoconv", "digits")


def test_a_new_network_loads_its_recipe_and_one_that_is_no_preset_gets_the_defaults(runs):
    at = open_train(runs)
    assert_recipe(at, "lenet5", "mnist5k")
    at.session_state[state.SPEC] = load_preset("gapnet")   # as the Build page would
    assert_recipe(ok(at.run()), "gapnet", "mnist5k")
    mine = NetworkSpec.from_dict({**load_preset("twoconv").to_dict(), "name": "my-net"})
    at.session_state[state.SPEC] = mine
    assert_recipe(ok(at.run()), "my-net", "mnist5k")
    assert "TrainConfig defaults" in recipe_caption(at)
    defaults = TrainConfig()
    assert at.select_slider(key="w.tr.lr").value == defaults.lr
    assert at.number_input(key="w.tr.epochs").value == defaults.epochs
    # its defaults do not depend on the dataset: an edit survives a change of dataset
    at.number_input(key="w.tr.epochs").set_value(3).run()
    ok(at.selectbox(key="w.tr.dataset").select("digits").run())
    assert at.session_state[state.TRAIN_CONFIG].epochs == 3 and at.number_input(key="w.tr.epochs").value == 3


def test_a_recipe_value_off_the_sliders_ladder_shows_exactly(runs):
    searched = recipes.recipe_config("gapnet", "digits")
    assert searched.lr not in train_views.LR_CHOICES and searched.weight_decay not in train_views.DECAY_CHOICES
    at = open_train(runs, load_preset("gapnet"))
    ok(at.selectbox(key="w.tr.dataset").select("digits").run())
    assert not at.error
    assert_recipe(at, "gapnet", "digits")
    lr, decay = at.select_slider(key="w.tr.lr"), at.select_slider(key="w.tr.weight_decay")
    assert format_value(searched.lr) in lr.options and format_value(searched.weight_decay) in decay.options
    assert format_value(searched.lr) == "0.0757" and len(format_value(searched.weight_decay)) <= 8
    assert f"learning rate {format_value(searched.lr)}" in at.markdown[0].value
    # moving off the recipe's value and back: the recipe's value stays on the ladder
    lr.set_value(0.1).run()
    assert at.session_state[state.TRAIN_CONFIG].lr == 0.1
    assert format_value(searched.lr) in at.select_slider(key="w.tr.lr").options
    ok(at.select_slider(key="w.tr.lr").set_value(searched.lr).run())
    assert at.session_state[state.TRAIN_CONFIG].lr == searched.lr


def test_reset_to_recipe_restores_the_edited_values(runs):
    at = open_train(runs, load_preset("twoconv"))
    ok(at.selectbox(key="w.tr.dataset").select("shapes").run())
    assert at.button(key=state.W_TRAIN_RESET).disabled               # nothing edited yet
    at.select_slider(key="w.tr.lr").set_value(0.001).run()
    at.number_input(key="w.tr.epochs").set_value(2).run()
    at.checkbox(key="w.tr.flip").uncheck().run()
    at.selectbox(key="w.tr.device").set_value("cpu").run()
    assert "Changed since: epochs, learning rate, flips." in recipe_caption(at)
    ok(at.button(key=state.W_TRAIN_RESET).click().run())
    assert_recipe(at, "twoconv", "shapes")
    assert at.session_state[state.TRAIN_CONFIG].device == "cpu" and "Changed since" not in recipe_caption(at)
    assert at.button(key=state.W_TRAIN_RESET).disabled


def test_slider_choices_hold_the_current_and_the_recipes_value():
    assert train_views.choices((0.01, 0.1), 0.0757, 0.1) == [0.01, 0.0757, 0.1]
    assert train_views.choices((0.05, 0.1), 0.05000001) == [0.05000001, 0.1]  # one label, one option
    assert train_views.choices((32, 64), 48, None) == [32, 48, 64]


@pytest.mark.parametrize("spec, expected", [(MLP, "takes a flat vector of 784 features"),
                                            (NO_HEAD, "ends with 10x26x26 values")], ids=["mlp", "no-head"])
def test_a_network_that_cannot_fit_is_caught_before_launch(runs, spec, expected):
    at = open_train(runs, spec)
    settings(at, "digits")
    message = at.error[0].value
    assert "cannot train on Digits 8x8" in message and expected in message
    assert "Change the network on the Build page" in message
    assert at.button(key="b.train").disabled
    assert at.get("page_link"), "a link to the Build page"
    assert not any(runs.glob("2*"))


def test_image_folder_needs_a_data_folder(runs, tmp_path, monkeypatch):
    allowed = tmp_path / "allowed"
    (allowed / "imgs").mkdir(parents=True)
    (allowed / "escape").symlink_to("/etc")
    monkeypatch.setenv("CNN_EXPLORER_DATA_ROOTS", str(allowed))      # the server owner's setting
    at = open_train(runs)
    at.selectbox(key="w.tr.dataset").select("folder").run()
    assert "needs a data folder" in at.error[0].value and at.button(key="b.train").disabled
    for outside in ("/etc", str(allowed / ".." / ".."), str(allowed / "escape")):    # refused, nothing queued
        at.text_input(key="w.tr.data_root").input(outside).run()
        assert "outside the folders this server reads data from" in at.error[0].value
        assert at.session_state[state.TRAIN_CONFIG].data_root is None and at.button(key="b.train").disabled
    at.text_input(key="w.tr.data_root").input(str(allowed / "imgs")).run()
    assert not at.error and not at.button(key="b.train").disabled
    assert at.session_state[state.TRAIN_CONFIG].data_root == str((allowed / "imgs").resolve())


# --- real runs through the queue ---------------------------------------------------------------------
def test_launch_twoconv_on_digits_and_watch_it_complete(runs):
    at = settings(open_train(runs, load_preset("twoconv")), "digits", epochs=1)
    name = launch(at)
    assert name and (runs / name / "config.json").exists()
    assert name in at.session_state[state.TRAIN_ACTIVE]          # the fragment polls while it runs
    assert at.session_state[state.TRAIN_SELECTED] == [name]       # its curves are shown
    wait_until(at, lambda at: any(t.startswith("Completed") for t in texts(at.success)))
    assert at.session_state[state.TRAIN_ACTIVE] == frozenset()   # polling off
    first = metric(at, "First loss")
    assert abs(float(first.value) - 2.3026) < 0.5 and first.delta == "ln(10) = 2.30"
    assert metric(at, "Val acc").value.endswith("%") and float(metric(at, "Images/s").value.replace(",", "")) > 0
    steps = math.ceil(1438 / recipes.recipe_config("twoconv", "digits").batch_size)  # 1,797 digits, 20% held out
    assert f"step {steps} of {steps} · 100% · learning rate" in at.get("progress")[0].proto.text
    assert "on CPU" in at.markdown[1].value
    # the live curves come right after the Train button, above the run's card and the notes
    chart = position(at, lambda e: getattr(e, "type", None) == "plotly_chart")
    assert position(at, lambda e: getattr(e, "type", None) == "button") < chart < position(
        at, lambda e: getattr(e, "type", None) == "metric")
    import socket

    assert f"executes on {socket.gethostname()} (local)" in shown(" ".join(c.value for c in at.caption))
    row = table(at).iloc[0]
    assert (row["Folder"], row["Status"], row["Dataset"], row["Epochs"]) == (name, "completed", "digits", 1)
    assert 0 < row["Best val acc"] <= 100
    fig = figure(at)
    names = {t["name"] for t in fig["data"]}
    assert {"train (per step)", "train (per epoch)", "validation (per epoch)"} <= names
    assert any("ln(10) = 2.30" in a["text"] for a in fig["layout"]["annotations"])
    assert read_json(runs / name / "summary.json")["status"] == "completed"


def test_a_diverging_run_stops_with_its_message(runs):
    at = settings(open_train(runs, load_preset("twoconv")), "digits", epochs=2, optimizer="adam", lr=1.0,
                  schedule="constant")
    name = launch(at)
    wait_until(at, lambda at: any(t.startswith("Diverged") for t in texts(at.error)))
    message = next(t for t in texts(at.error) if t.startswith("Diverged"))
    assert "more than 3x its start" in message and "lower the learning rate" in message
    assert table(at).iloc[0]["Status"] == "diverged"
    assert read_json(runs / name / "summary.json")["status"] == "diverged"


def test_overfit_a_tiny_subset(runs):
    at = settings(open_train(runs, load_preset("twoconv")), "digits", epochs=30)
    at.toggle(key="w.tr.overfit").set_value(True).run()
    assert at.session_state[state.TRAIN_CONFIG].overfit == 20
    assert "overfit mode: 20 training images only" in at.markdown[0].value
    launch(at)
    wait_until(at, lambda at: any(t.startswith("Completed") for t in texts(at.success)))
    assert any(t.startswith("All 20 images are fitted (100%)") for t in texts(at.success))


def test_cancel_a_queued_and_a_running_run(runs):
    at = settings(open_train(runs, load_preset("twoconv")), "digits", epochs=300)
    first = launch(at)
    second = launch(at)  # the CPU takes one run at a time: this one waits
    assert at.session_state[state.TRAIN_SELECTED] == [second, first]
    assert any(t.startswith("Waiting in the queue: number 1 of 1 for the CPU") for t in texts(at.info))
    assert "1 running, 1 waiting" in at.caption[0].value
    ok(at.button(key=f"b.cancel.{second}").click().run())
    assert any(t.startswith("Cancelled: Cancelled before it started") for t in texts(at.info))
    assert read_json(runs / second / "summary.json")["status"] == "cancelled"
    ok(at.button(key=f"b.cancel.{first}").click().run())  # running: asked to stop at its next step
    wait_until(at, lambda at: list(table(at)["Status"]) == ["cancelled", "cancelled"])
    assert read_json(runs / first / "summary.json")["message"] == "cancelled by the user"
    assert at.session_state[state.TRAIN_ACTIVE] == frozenset()


def test_a_killed_training_process_shows_as_interrupted(runs):
    at = settings(open_train(runs, load_preset("twoconv")), "digits", epochs=300)
    name = launch(at)
    job = JobQueue(runs).job_for_run(runs / name)
    assert job.status == "running" and job.pid
    os.kill(job.pid, signal.SIGKILL)  # as if the machine ran out of memory
    wait_until(at, lambda at: any(t.startswith("Interrupted") for t in texts(at.warning)))
    assert "ended without a summary" in next(t for t in texts(at.warning) if t.startswith("Interrupted"))
    assert table(at).iloc[0]["Status"] == "interrupted"
    assert at.session_state[state.TRAIN_ACTIVE] == frozenset()


def test_select_runs_to_overlay_their_curves(runs):
    names = []
    for lr in (0.05, 0.01):  # two real runs written in-process, as the CLI would
        run = new_run_dir(runs, "twoconv")
        cfg = TrainConfig(dataset="digits", epochs=2, lr=lr, device="cpu", log_every=5)
        assert train(load_preset("twoconv"), cfg, run)["status"] == "completed"
        names.append(run.name)
    at = open_train(runs)
    frame = table(at)
    assert sorted(frame["Folder"]) == sorted(names) and set(frame["Status"]) == {"completed"}
    # a new session (it launched nothing) shows the server's latest run, not an empty chart
    assert at.session_state[state.TRAIN_SELECTED] == [max(names)]
    # (the newest by folder name; two runs started in the same second sort by their random suffix)
    newest_lr = "lr 0.05" if max(names) == names[0] else "lr 0.01"
    assert len(run_groups(figure(at))) == 1 and newest_lr in next(iter(run_groups(figure(at))))
    key = at.dataframe[0].key
    at.session_state[key] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    ok(at.run())
    assert sorted(at.session_state[state.TRAIN_SELECTED]) == sorted(names)
    fig = figure(at)
    labels = run_groups(fig)
    assert len(labels) == 2 and any("lr 0.05" in g for g in labels) and any("lr 0.01" in g for g in labels)
    assert len({t["line"]["color"] for t in fig["data"] if t["legendgroup"] in labels}) == 2  # one colour per run
    # the line styles stay explained with two runs overlaid: a gray key beside the run entries
    key_names = [t["name"] for t in fig["data"] if t["legendgroup"] == STYLE_GROUP and t["showlegend"]]
    assert key_names == ["train (per step)", "train (per epoch)", "validation (per epoch)"]
    # cards and curves follow the same list: two cards, each naming its run folder
    assert sum(t.startswith("Completed") for t in texts(at.success)) == 2
    assert all(any(f"Run folder {n}" in c for c in texts(at.caption)) for n in names)
    at.session_state[key] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    ok(at.run())
    assert at.session_state[state.TRAIN_SELECTED] == [frame["Folder"][1]]
    assert len(run_groups(figure(at))) == 1
    assert sum(t.startswith("Completed") for t in texts(at.success)) == 1
    at.segmented_control(key="w.tr.xaxis").set_value("step").run()
    assert figure(at)["layout"]["xaxis"]["title"]["text"] == "optimizer step"


# --- the pure pieces ---------------------------------------------------------------------------------
EVENTS = [
    {"event": "start", "device": "cpu", "steps_per_epoch": 10, "total_steps": 20, "expected_initial_loss": 2.3026},
    {"event": "warning", "message": "input channels follow the dataset: 1 -> 3"},
    {"event": "step", "step": 1, "epoch": 1, "loss": 2.31, "acc": 0.1, "progress": 0.05, "images_per_s": 100},
    {"event": "step", "step": 10, "epoch": 1, "loss": 1.5, "acc": 0.5, "progress": 0.5, "images_per_s": 120},
    {"event": "epoch", "epoch": 1, "step": 10, "train_loss": 1.8, "train_acc": 0.4, "val_loss": 1.4, "val_acc": 0.55,
     "val_top5": 0.9},
    {"event": "step", "step": 20, "epoch": 2, "loss": 0.9, "acc": 0.8, "progress": 1.0, "images_per_s": 110},
    {"event": "epoch", "epoch": 2, "step": 20, "train_loss": 0.9, "train_acc": 0.95, "val_loss": 1.0, "val_acc": 0.7,
     "val_top5": 0.95},
    {"event": "done", "status": "completed", "message": "finished all epochs"},
]


def test_run_curves_from_events():
    c = RunCurves.from_events(EVENTS, "a")
    assert (c.first_loss, c.num_classes, c.progress, c.best_val_acc) == (2.31, 10, 1.0, 0.7)
    assert c.step_x("epoch") == [0.1, 1.0, 2.0] and c.step_x("step") == [1, 10, 20]
    assert c.epoch_x("epoch") == [1, 2] and c.epoch_x("step") == [10, 20]
    assert c.warnings == ["input channels follow the dataset: 1 -> 3"] and c.end["status"] == "completed"
    partial = RunCurves.from_events(EVENTS[:4], "b")
    assert partial.progress == 0.5 and partial.best_val_acc is None and partial.end is None


def test_training_figure_overlays_runs():
    fig = training_figure([RunCurves.from_events(EVENTS, "a"), RunCurves.from_events(EVENTS[:4], "b")])
    # run a: 3 series x 2 panels; run b (no epoch yet): per-step only, x 2 panels; a 3-entry style key
    assert len(fig.data) == 11 and {t.legendgroup for t in fig.data} == {"a", "b", STYLE_GROUP}
    # several runs: one legend entry per run (its validation series, or per-step before an epoch ends),
    # then the gray line-style key, so the styles stay explained
    assert [(t.name, t.line.dash) for t in fig.data if t.showlegend] == [
        ("a", "dash"), ("b", None), ("train (per step)", None), ("train (per epoch)", "dot"),
        ("validation (per epoch)", "dash")]
    assert all(t.x == (None,) for t in fig.data if t.legendgroup == STYLE_GROUP)   # a key, no data
    early = training_figure([RunCurves.from_events(EVENTS[:4], "b"), RunCurves.from_events(EVENTS[:3], "c")])
    assert [t.name for t in early.data if t.legendgroup == STYLE_GROUP] == ["train (per step)"]  # styles in use
    single = training_figure([RunCurves.from_events(EVENTS, "a")], x="step")
    assert [t.name for t in single.data if t.showlegend] == ["train (per step)", "train (per epoch)",
                                                             "validation (per epoch)"]
    assert single.layout.xaxis.title.text == "optimizer step" and list(single.data[0].x) == [1, 10, 20]
    with pytest.raises(ValueError):
        training_figure([], x="time")


def test_diagnosis_reads_bias_and_variance():
    last = RunCurves.from_events(EVENTS, "a").last_epoch
    assert diagnosis(last)[0] == "warning" and "overfits" in diagnosis(last)[1]  # 95% train vs 70% val
    assert diagnosis(last, overfit=20)[0] == "warning"  # not 100% of the 20 images
    fitted = RunCurves.from_events(EVENTS[:-2] + [dict(EVENTS[-2], train_acc=1.0, val_acc=1.0)], "c")
    assert diagnosis(fitted.last_epoch, overfit=20)[0] == "success"
    weak = RunCurves.from_events(EVENTS[:5], "d").last_epoch  # 40% train accuracy
    assert diagnosis(weak)[0] == "info" and "underfits" in diagnosis(weak)[1]
    assert diagnosis(RunCurves.from_events(EVENTS[:3], "e").last_epoch) is None


# --- a shared server: damaged run folders, and whose runs a session may cancel ----------------------
def corrupt_runs(root: Path) -> list[str]:
    """Four damaged run folders beside the good ones (old enough not to count as being created)."""
    names = []
    for what, file, data in (("binary", "summary.json", b"\x00\xff\xfe"), ("list", "spec.json", b"[1]"),
                             ("types", "config.json", b'{"dataset": 7}'), ("weights", "checkpoint.safetensors",
                                                                          b"junk")):
        run = new_run_dir(root, what)
        for name in ("spec.json", "config.json"):
            (run / name).write_text(json.dumps({"name": what} if name == "spec.json" else {"dataset": "digits"}))
        (run / "summary.json").write_text('{"status": "completed"}')
        (run / "metrics.jsonl").write_bytes(b'[]\n{"event": "step", "loss": "x"}\n\xff\n')
        (run / file).write_bytes(data)
        os.utime(run, (1e9, 1e9))
        names.append(run.name)
    return names


def test_corrupt_run_folders_are_listed_as_unreadable_on_every_page(runs):
    good = new_run_dir(runs, "twoconv")
    assert train(load_preset("twoconv"), TrainConfig(dataset="digits", epochs=1, device="cpu"), good)["status"] \
        == "completed"
    bad = corrupt_runs(runs)
    at = open_train(runs)
    rows = table(at)
    assert sorted(rows["Status"]) == ["completed"] + ["unreadable"] * 4
    notes = " ".join(rows["Note"])
    for reason in ("summary.json is not valid JSON", "spec.json holds a list", "config.json: dataset",
                   "checkpoint.safetensors is truncated"):
        assert reason in notes, notes
    at.session_state[state.TRAIN_SELECTED] = bad + [good.name]  # their cards and curves draw too
    ok(at.run())

    compare = AppTest.from_file(APP, default_timeout=60)
    compare.session_state[state.RUNS_DIR] = str(runs)
    ok(compare.switch_page("pages/compare.py").run())
    assert len(compare.dataframe[0].value) == 1
    assert all(f"{name}: unreadable" in " ".join(t.value for t in compare.text) for name in bad)

    inspect = AppTest.from_file(APP, default_timeout=60)
    inspect.session_state[state.RUNS_DIR] = str(runs)
    ok(inspect.switch_page("pages/inspect.py").run())
    sidebar = " ".join(c.value for c in inspect.sidebar.caption)
    assert "4 run folders cannot be read" in sidebar and f"{bad[0]}: unreadable" in sidebar


def _queued_job(root: Path, owner: str) -> str:
    """A job waiting for a device this queue never schedules (so it stays queued), owned by `owner`."""
    import sqlite3

    run = new_run_dir(root, f"of-{owner}")
    (run / "spec.json").write_text(load_preset("twoconv").to_json())
    (run / "config.json").write_text(TrainConfig(dataset="digits").to_json())
    JobQueue(root)  # makes the database
    with sqlite3.connect(root / "queue.sqlite") as db:
        db.execute("INSERT INTO jobs (run_dir, device, status, created, owner) VALUES (?, 'tpu', 'queued', ?, ?)",
                   (str(run), time.time(), owner))
    return run.name


def test_the_cancel_button_only_for_own_jobs_unless_the_owner_code_is_typed(runs, monkeypatch):
    monkeypatch.setenv("CNN_EXPLORER_OWNER_CODE", "let-me-in")
    runs.mkdir(parents=True)
    mine, theirs = _queued_job(runs, "me"), _queued_job(runs, "someone-else")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[state.RUNS_DIR] = str(runs)
    at.session_state[state.TRAIN_OWNER] = "me"
    at.session_state[state.TRAIN_SELECTED] = [mine, theirs]
    ok(at.switch_page("pages/train.py").run())
    keys = {b.key for b in at.button}
    assert f"b.cancel.{mine}" in keys and f"b.cancel.{theirs}" not in keys
    at.text_input(key=state.W_OWNER_CODE).input("wrong").run()
    assert f"b.cancel.{theirs}" not in {b.key for b in at.button}
    at.text_input(key=state.W_OWNER_CODE).input("let-me-in").run()
    assert f"b.cancel.{theirs}" in {b.key for b in at.button}
    ok(at.button(key=f"b.cancel.{theirs}").click().run())
    assert JobQueue(runs).job_for_run(runs / theirs).status == "cancelled"


# --- one plan for the page and the loop; one list for cards and curves; keys declared once -----------
def test_the_page_and_the_loop_predict_the_same_training_memory(runs, tmp_path):
    spec = load_preset("twoconv")
    at = settings(open_train(runs, spec), "digits", epochs=1, batch_size=128)
    cfg = at.session_state[state.TRAIN_CONFIG]
    planned = plan_run(spec, cfg)
    assert planned.ok and (planned.device, planned.dtype) == ("cpu", "float32")
    assert train_views.preflight(spec, cfg).memory == planned.memory_bytes > 0
    caption = next(t for t in texts(at.caption) if t.startswith("Predicted training memory"))
    assert f"on the CPU ({planned.execution})" in caption and format_bytes(planned.memory_bytes) in caption
    assert planned.execution == "float32, channels_last, one thread"  # a small network; conftest: passive waits
    assert train(spec, cfg, tmp_path / "run")["status"] == "completed"
    start = next(e for e in read_metrics(tmp_path / "run")[0] if e["event"] == "start")
    assert start["predicted_train_memory_bytes"] == planned.memory_bytes


def test_on_cuda_the_page_predicts_bf16_activations_as_the_loop_runs_them(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)   # the plan only; nothing runs on it
    spec, cfg = load_preset("twoconv"), TrainConfig(dataset="digits", device="cuda", batch_size=256)
    gpu, cpu = plan_run(spec, cfg), plan_run(spec, cfg.with_changes(device="cpu"))
    assert (gpu.device, gpu.dtype, gpu.channels_last) == ("cuda", "bfloat16", True)
    assert gpu.memory.saved_activations < cpu.memory.saved_activations   # bf16 activations, not fp32
    assert gpu.memory.parameters == cpu.memory.parameters and gpu.memory_bytes < cpu.memory_bytes
    assert train_views.preflight(spec, cfg).memory == gpu.memory_bytes
    assert plan_run(spec, cfg.with_changes(device="auto")).memory_bytes == gpu.memory_bytes


def test_a_queued_run_starting_keeps_the_first_runs_card_with_its_curves(runs):
    at = settings(open_train(runs, load_preset("twoconv")), "digits", epochs=1)
    first = launch(at)
    second = launch(at)  # the CPU takes one run at a time: it waits, then starts when the first ends
    wait_until(at, lambda at: sum(t.startswith("Completed") for t in texts(at.success)) == 2, timeout=90)
    assert at.session_state[state.TRAIN_SELECTED] == [second, first]
    captions = " ".join(texts(at.caption))
    assert f"Run folder {first}" in captions and f"Run folder {second}" in captions
    assert len(run_groups(figure(at))) == 2


def test_a_new_session_selects_its_owners_latest_runs_else_the_servers_latest():
    from explorer.training.status import default_selection

    folders = ["20260101-000001-a-aaaa", "20260101-000003-c-cccc", "20260101-000002-b-bbbb"]
    assert default_selection(folders, {}, "me") == ["20260101-000003-c-cccc"]
    owners = {"20260101-000001-a-aaaa": "me", "20260101-000002-b-bbbb": "me", "20260101-000003-c-cccc": "you"}
    assert default_selection(folders, owners, "me") == ["20260101-000002-b-bbbb", "20260101-000001-a-aaaa"]
    assert default_selection([], owners, "me") == []


def test_widget_keys_on_the_train_page_come_from_ui_state():
    import ast

    source = Path(train_views.__file__).read_text()
    literal = [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.keyword)
               and node.arg == "key" and isinstance(node.value, (ast.Constant, ast.JoinedStr))]
    assert literal == [], f"ui/train_views.py spells widget keys itself on lines {literal}"
    assert train_views.runs_dir is state.runs_dir   # one runs-folder resolver for every page
