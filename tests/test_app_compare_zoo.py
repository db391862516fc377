"""AppTest flows of the Compare and Zoo pages. The runs are real: short CPU trainings on the
offline digits set, written to a temporary runs folder the pages are pointed at (through the
session's runs-folder override, or $CNN_EXPLORER_RUNS). Every flow must end without an
exception or an error box (never a traceback on screen)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.compare import results as cmp
from explorer import load_preset
from explorer.training.config import TrainConfig
from explorer.training.loop import train
from explorer.training.runs import heartbeat_record, new_run_dir, read_json, write_json_atomic
from ui import compare_views as cv
from ui import state
from ui import zoo_views as zv
from tests.shown import shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def open_page(page: str, runs: Path | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if runs is not None:
        at.session_state[state.RUNS_DIR] = str(runs)
    at.switch_page(page)
    return ok(at.run())


def rerun(at: AppTest) -> AppTest:
    return ok(at.run())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Three finished runs (two networks under 100K parameters, one over) and one still running."""
    root = tmp_path_factory.mktemp("runs")
    for preset in ("twoconv", "lenet5", "gapnet"):
        run = new_run_dir(root, preset)
        summary = train(load_preset(preset), TrainConfig(dataset="digits", epochs=1, lr=0.05, device="cpu"), run)
        assert summary["status"] == "completed", summary
    source = next(root.glob("*-twoconv-*"))
    live = root / "20991231-235959-twoconv-beef"  # spec and config written, no summary yet
    live.mkdir()
    for name in ("spec.json", "config.json"):
        shutil.copy(source / name, live / name)
    (live / "metrics.jsonl").write_text('{"event": "start", "time": 0}\n')
    # its heartbeat names this test process, fresh until 2099: "running" for the whole module
    write_json_atomic(live / "heartbeat.json", {**heartbeat_record(0.0), "time": 4_102_444_800})
    return root


def frame_of(at: AppTest):
    return at.dataframe[0].value


# --- Compare ---------------------------------------------------------------------------------------
def test_compare_empty_folder_says_how_to_start(tmp_path):
    at = open_page("pages/compare.py", tmp_path / "nothing-here")
    assert at.title[0].value == "Compare runs"
    text = at.info[0].value
    assert "No training runs" in text and "python -m explorer train" in text and "Train" in text
    assert not at.dataframe


def test_compare_reads_the_environment_variable(runs, monkeypatch):
    monkeypatch.setenv("CNN_EXPLORER_RUNS", str(runs))
    at = open_page("pages/compare.py")
    assert str(runs.resolve()) in at.caption[0].value
    assert len(frame_of(at)) == 4


def test_compare_table_score_and_csv(runs):
    at = open_page("pages/compare.py", runs)
    table = frame_of(at)
    assert list(table.columns) == list(cmp.RUN_COLUMNS)
    done = table[table[cmp.STATUS] == "completed"]
    assert len(done) == 3 and set(done[cmp.NETWORK]) == {"twoconv", "lenet5", "gapnet"}
    for _, row in done.iterrows():
        assert row[cmp.EFFICIENCY] == pytest.approx(row[cmp.ACC] / 100 / (row[cmp.PARAMS] / 100_000))
    running = table[table[cmp.STATUS] == "running"]
    assert len(running) == 1 and running[cmp.ACC].isna().all()
    assert "4 runs (3 completed)" in at.caption[0].value
    assert any(b.label == "Download the runs table (CSV)" for b in at.get("download_button"))
    # first tab: accuracy against parameters with the front named under it
    assert at.get("plotly_chart")
    assert "Pareto front" in at.caption[1].value


def test_compare_curves_diff_and_leaderboard(runs):
    at = open_page("pages/compare.py", runs)
    at.session_state[state.COMPARE_VIEW] = "Curves"
    at = rerun(at)
    chosen = at.multiselect(key=cv.RUNS)
    assert len(chosen.value) == 3 and at.get("plotly_chart")
    at = rerun(chosen.set_value([]))
    assert "Pick runs" in at.info[0].value

    at.session_state[state.COMPARE_VIEW] = "Architecture diff"
    at = rerun(at)
    table = frame_of(at)
    names = dict(zip(table[cmp.RUN], table[cmp.NETWORK]))
    lenet = next(r for r, n in names.items() if n == "lenet5")
    twoconv = next(r for r, n in names.items() if n == "twoconv" and "beef" not in r)
    at.selectbox(key=cv.RUN_A).select(lenet)
    at = rerun(at.selectbox(key=cv.RUN_B).select(twoconv))
    totals, diff = at.dataframe[1].value, at.dataframe[2].value
    assert totals.iloc[2, 1] == "61,706"  # Params of run A (LeNet-5 as trained on 8x8 digits: 1x32x32 kept)
    assert list(diff.columns) == list(cmp.DIFF_COLUMNS)
    assert diff.iloc[0]["Change"] == cmp.CHANGED and "out_channels 6 → 16" in diff.iloc[0]["What differs"]

    at.session_state[state.COMPARE_VIEW] = "Leaderboard"
    at = rerun(at)
    board = at.dataframe[1].value
    assert at.number_input(key=cv.BUDGET).value == 100_000
    assert set(board[cmp.NETWORK]) == {"twoconv", "lenet5"}  # gapnet (103,338 params) is over
    assert "over the budget" in at.caption[-1].value
    at = rerun(at.number_input(key=cv.BUDGET).set_value(10_000))
    assert list(at.dataframe[1].value[cmp.NETWORK]) == ["twoconv"]
    assert "twoconv" in at.success[0].value and "leads" in at.success[0].value
    at = rerun(at.number_input(key=cv.BUDGET).set_value(100))
    assert "No digits run fits in 100 parameters" in at.info[0].value


def test_compare_dataset_filter(runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs, root)
    other = next(root.glob("*-lenet5-*"))
    config = read_json(other / "config.json")
    write_json_atomic(other / "config.json", {**config, "dataset": "shapes"})  # as if trained on shapes
    at = open_page("pages/compare.py", root)
    assert at.get("button_group")[0].value == cv.ALL
    assert len(frame_of(at)) == 4
    at.session_state[cv.DATASET] = "shapes"
    at = rerun(at)
    assert list(frame_of(at)[cmp.NETWORK]) == ["lenet5"]


def test_compare_survives_broken_run_folders(runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs, root)
    (root / "garbage").mkdir()
    (root / "garbage" / "spec.json").write_text("{not json")
    (root / "garbage" / "config.json").write_text("{}")
    broken = next(root.glob("*-gapnet-*"))
    (broken / "spec.json").write_text('{"format": "cnn-explorer/spec@1", "blocks": [{"type": "warp"}]}')
    at = open_page("pages/compare.py", root)
    assert len(frame_of(at)) == 4  # garbage has no readable spec: skipped; the broken spec is listed
    at.session_state[state.COMPARE_VIEW] = "Architecture diff"
    at = rerun(at)
    at.selectbox(key=cv.RUN_A).select(broken.name)
    at = at.run()
    assert not at.exception
    assert any("Cannot read that run's network" in w.value for w in at.warning)


# --- Zoo -------------------------------------------------------------------------------------------
def test_zoo_overview():
    at = open_page("pages/zoo.py")
    assert at.title[0].value == "Model zoo"
    table = at.dataframe[0].value
    assert {"alexnet", "vgg16", "googlenet", "resnet50", "densenet121", "mobilenet_v2", "squeezenet1_0"} <= set(
        table["torchvision"])
    assert table.set_index("torchvision").loc["vgg16", "Params"] == 138_357_544
    assert at.get("plotly_chart")
    at = rerun(at.toggle(key=zv.ALL_MODELS).set_value(True))
    assert len(at.dataframe[0].value) > len(table)


def test_zoo_model_with_a_preset_opens_in_the_builder():
    at = open_page("pages/zoo.py")
    at.session_state[state.ZOO_VIEW] = "Open a model"
    at = rerun(at)
    at = rerun(at.selectbox(key=zv.MODEL).select("vgg16"))
    assert "reproduces torchvision's" in at.info[0].value
    at = rerun(at.button(key=state.W_ZOO + "open").click())
    assert at.session_state[state.SPEC] == load_preset("vgg16")
    assert shown(at.title[0].value) == "VGG-16"  # the Build page, with its analysis
    assert any("Opened **VGG-16** from the Zoo" in s.value for s in at.success)
    assert next(m.value for m in at.metric if m.label == "Parameters") == "138M"
    assert any("138,357,544 parameters" in c.value for c in at.caption)


def test_zoo_model_without_a_preset_is_analysed_on_the_page():
    at = open_page("pages/zoo.py")
    at.session_state[state.ZOO_VIEW] = "Open a model"
    at = rerun(at)
    at = rerun(at.selectbox(key=zv.MODEL).select("resnet101"))
    layers = at.dataframe[0].value
    assert layers["Params"].sum() == 44_549_160
    assert next(m.value for m in at.metric if m.label == "Parameters (computed)") == "44.5M"
    assert at.session_state[state.SPEC] == load_preset(state.DEFAULT_PRESET)  # the builder is untouched


def test_zoo_model_that_cannot_be_analysed_says_so():
    at = open_page("pages/zoo.py")
    at = rerun(at.toggle(key=zv.ALL_MODELS).set_value(True))
    at.session_state[state.ZOO_VIEW] = "Open a model"
    at = rerun(at)
    at = rerun(at.selectbox(key=zv.MODEL).select("regnet_y_128gf"))
    assert next(m.value for m in at.metric if m.label == "Parameters (published)") == "645M"
    # torchvision's RegNet builder computes its widths with tensors: built on the CPU only within the
    # budget for real weights (200 M parameters), so the largest RegNet gets one sentence
    assert "cannot be analysed here" in at.warning[0].value
    assert "BudgetError" in at.warning[0].value


def test_zoo_depth_profiles():
    at = open_page("pages/zoo.py")
    at.session_state[state.ZOO_VIEW] = "Depth profiles"
    at = rerun(at)
    facts = at.markdown[-1].value
    assert "**VGG-16**: 16 weight layers" in facts and "**ResNet-50**" in facts
    at = rerun(at.selectbox(key=zv.DEPTH_B).select("resnet18"))
    assert "**ResNet-18**: 21 weight layers" in at.markdown[-1].value


def test_zoo_explainers_show_the_analysis_numbers():
    at = open_page("pages/zoo.py")
    at.session_state[state.ZOO_VIEW] = "Explainers"
    at = rerun(at)
    stack, bottleneck, separable = (t.value for t in at.dataframe[:3])
    assert list(stack.iloc[0, 1:3]) == ["1,638,656", "1,180,160"]     # params: one 5x5, two 3x3
    assert list(stack.iloc[2, 1:3]) == ["5", "5"]                     # receptive field
    assert list(bottleneck.iloc[1, 1:3]) == ["120,422,400", "12,443,648"]  # MACs
    assert list(separable.iloc[0, 1:3]) == ["2,359,296", "266,752"]
    text = " ".join(m.value for m in at.markdown)
    assert "2,408,448 + 10,035,200 = **12,443,648**" in text
    at = rerun(at.number_input(key=state.W_ZOO + "stack_c").set_value(64))
    assert at.dataframe[0].value.iloc[0, 2] == f"{2 * (9 * 64 * 64 + 64):,}"
    at.session_state[state.W_ZOO + "stack_n"] = 3
    at = rerun(at)
    stack = at.dataframe[0].value
    assert list(stack.iloc[2, 1:3]) == ["7", "7"] and stack.iloc[0, 2] == f"{3 * (9 * 64 * 64 + 64):,}"
