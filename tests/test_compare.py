"""explorer.compare.results and its charts on run directories made by real short CPU runs: the runs
table, the course's efficiency score, the Pareto front, the budget leaderboard, curves, the
architecture diff."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest

from explorer import analyze, load_preset
from explorer.compare import results as cmp
from explorer.charts import compare as charts
from explorer.training.config import TrainConfig
from explorer.training.loop import train
from explorer.training.runs import list_runs, new_run_dir


def make_run(root: Path, preset: str, epochs: int = 1, **config) -> Path:
    run = new_run_dir(root, preset)
    summary = train(load_preset(preset), TrainConfig(dataset="digits", epochs=epochs, device="cpu", **config), run)
    assert summary["status"] == "completed", summary
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    make_run(root, "twoconv", epochs=2, lr=0.05)
    make_run(root, "lenet5", lr=0.05)
    return root


@pytest.fixture(scope="module")
def frame(runs) -> pd.DataFrame:
    return cmp.runs_frame(list_runs(runs))


# --- the score and the front ----------------------------------------------------------------------
def test_efficiency_score_is_accuracy_per_100k_params():
    assert cmp.efficiency_score(0.9, 50_000) == pytest.approx(1.8)
    assert cmp.efficiency_score(0.9, 1_000_000) == pytest.approx(0.09)
    assert cmp.efficiency_score(0.5, 100_000) == pytest.approx(0.5)
    assert cmp.efficiency_score(None, 1000) is None
    assert cmp.efficiency_score(0.9, None) is None
    assert cmp.efficiency_score(0.9, 0) is None


def test_pareto_front_by_hand():
    params = [100, 200, 300, 400, 150, 200, None, 500]
    acc = [0.50, 0.70, 0.60, 0.90, 0.50, 0.70, 0.99, float("nan")]
    # 300 (0.60) is beaten by 200 (0.70); 150 (0.50) by 100 (0.50); the second 200 duplicates the first
    assert cmp.pareto_front(params, acc) == [0, 1, 3]
    assert cmp.pareto_front([], []) == []
    assert cmp.pareto_front([10], [0.1]) == [0]


def test_the_runs_folder_is_read_from_the_environment_at_call_time(monkeypatch, tmp_path):
    from explorer.training.runs import runs_root

    monkeypatch.setenv("CNN_EXPLORER_RUNS", str(tmp_path))
    assert runs_root() == tmp_path
    monkeypatch.delenv("CNN_EXPLORER_RUNS")
    assert runs_root() == Path("runs")


# --- the runs table -------------------------------------------------------------------------------
def test_runs_frame_from_real_runs(frame, runs):
    assert list(frame.columns) == list(cmp.RUN_COLUMNS)
    assert len(frame) == 2
    assert set(frame[cmp.NETWORK]) == {"twoconv", "lenet5"}
    records = {r.path.name: r for r in list_runs(runs)}
    for _, row in frame.iterrows():
        r = records[row[cmp.RUN]]
        assert row[cmp.PARAMS] == r.params and row[cmp.MACS] == r.macs
        assert row[cmp.ACC] == pytest.approx(100 * r.best_val_acc)
        assert row[cmp.EFFICIENCY] == pytest.approx(r.best_val_acc / (r.params / 100_000))
        assert row[cmp.STATUS] == "completed" and row[cmp.DATASET] == "digits"
        assert row[cmp.SECONDS] > 0 and row[cmp.IMAGES_PER_S] > 0
    # the adapted twoconv (8x8 digits) is far smaller than LeNet-5
    small = frame[frame[cmp.NETWORK] == "twoconv"].iloc[0]
    big = frame[frame[cmp.NETWORK] == "lenet5"].iloc[0]
    assert small[cmp.PARAMS] < big[cmp.PARAMS] == 61_706
    assert small[cmp.EPOCHS] == 2 and big[cmp.EPOCHS] == 1
    # sorted by accuracy, best first
    assert list(frame[cmp.ACC]) == sorted(frame[cmp.ACC], reverse=True)
    # the smaller network is always on the front; the bigger one only if it is more accurate
    assert small[cmp.PARETO]
    assert big[cmp.PARETO] == (big[cmp.ACC] > small[cmp.ACC])


def test_runs_frame_handles_unfinished_runs(runs, tmp_path):
    # a run that has written its spec and config but no summary yet is "running", without numbers
    source = next(p for p in runs.iterdir() if p.is_dir())
    live = tmp_path / "20991231-235959-live-beef"
    live.mkdir()
    for name in ("spec.json", "config.json"):
        (live / name).write_text((source / name).read_text())
    (live / "metrics.jsonl").write_text('{"event": "start"}\n{"event": "st')  # half a line
    frame = cmp.runs_frame(list_runs(tmp_path))
    assert list(frame[cmp.STATUS]) == ["running"]
    assert frame[cmp.ACC].isna().all() and frame[cmp.EFFICIENCY].isna().all()
    assert not frame[cmp.PARETO].any()
    assert cmp.epoch_curves(live).empty
    assert cmp.runs_frame([]).empty


def test_csv_round_trip(frame):
    back = pd.read_csv(io.StringIO(cmp.runs_csv(frame)))
    assert list(back.columns) == list(cmp.RUN_COLUMNS)
    assert list(back[cmp.RUN]) == list(frame[cmp.RUN])
    assert list(back[cmp.PARAMS]) == [int(v) for v in frame[cmp.PARAMS]]


def test_leaderboard_under_a_budget(frame):
    small = int(frame[frame[cmp.NETWORK] == "twoconv"][cmp.PARAMS].iloc[0])
    board = cmp.leaderboard(frame, 10_000)
    assert list(board[cmp.NETWORK]) == ["twoconv"] and list(board["Rank"]) == [1]
    assert board["Budget used (%)"].iloc[0] == pytest.approx(100 * small / 10_000)
    assert cmp.over_budget(frame, 10_000) == 1
    board = cmp.leaderboard(frame, 100_000, "digits")
    assert list(board["Rank"]) == [1, 2]
    assert list(board[cmp.ACC]) == sorted(board[cmp.ACC], reverse=True)
    assert cmp.over_budget(frame, 100_000) == 0
    assert cmp.leaderboard(frame, 100, "digits").empty
    assert cmp.leaderboard(frame, 100_000, "shapes").empty


def test_epoch_curves(runs, frame):
    run = frame[frame[cmp.NETWORK] == "twoconv"][cmp.RUN].iloc[0]
    curves = cmp.epoch_curves(runs / run)
    assert list(curves.columns) == list(cmp.CURVE_COLUMNS)
    assert list(curves["epoch"]) == [1, 2]
    assert curves["val_acc"].max() == pytest.approx(frame[frame[cmp.RUN] == run][cmp.ACC].iloc[0] / 100, abs=1e-4)


# --- architecture diff ----------------------------------------------------------------------------
def _diff(a: str, b: str) -> pd.DataFrame:
    sa, sb = load_preset(a), load_preset(b)
    return cmp.architecture_diff(sa, analyze(sa), sb, analyze(sb))


def test_diff_of_a_network_with_itself_is_all_same():
    d = _diff("lenet5", "lenet5")
    assert list(d.columns) == list(cmp.DIFF_COLUMNS)
    assert set(d["Change"]) == {cmp.SAME}
    assert (d["A params"] == d["B params"]).all() and d["A params"].sum() == 61_706


def test_diff_lenet5_against_twoconv():
    d = _diff("lenet5", "twoconv")
    first = d.iloc[0]
    assert (first["A layer"], first["B layer"], first["Change"]) == ("conv1", "conv1", cmp.CHANGED)
    assert "out_channels 6 → 16" in first["What differs"] and "kernel 5 → 3" in first["What differs"]
    assert (d.iloc[1]["Change"], d.iloc[1]["What differs"]) == (cmp.REPLACED, "tanh → relu")
    # every layer of each network appears exactly once, with its own costs
    a = analyze(load_preset("lenet5"))
    assert [x for x in d["A layer"] if x] == [r.name for r in a.rows]
    assert d["A params"].sum() == 61_706 and d["A MACs"].sum() == a.totals.macs
    assert d["B params"].sum() == analyze(load_preset("twoconv")).totals.params
    # the classifiers (10 outputs) pair up; LeNet's extra layers are only in A
    last = d.iloc[-1]
    assert (last["A layer"], last["B layer"]) == ("linear2", "linear1")
    assert set(d[d["B layer"] == ""]["Change"]) == {cmp.ONLY_A}


def test_diff_finds_resnet18_inside_resnet34():
    d = _diff("resnet18", "resnet34")
    blocks = d[d["B layer"].str.startswith("residual")]
    assert (blocks["Change"] == cmp.SAME).sum() == 8      # ResNet-18's 8 basic blocks
    assert (blocks["Change"] == cmp.ONLY_B).sum() == 8    # ResNet-34 has 16
    assert (d["Change"] != cmp.CHANGED).all()


def test_diff_totals():
    sa, sb = load_preset("lenet5"), load_preset("twoconv")
    t = cmp.diff_totals(analyze(sa), analyze(sb)).set_index("Measure")
    assert t.loc["Params", "A"] == "61,706"
    assert t.loc["Input (per image)", "A"] == "1×32×32"


# --- charts ---------------------------------------------------------------------------------------
def test_accuracy_vs_params_chart(frame):
    fig = charts.accuracy_vs_params(frame)
    names = [t.name for t in fig.data]
    assert names == ["digits", "Pareto front (digits)"]
    assert fig.layout.xaxis.type == "log"
    assert sorted(fig.data[0].x) == sorted(int(v) for v in frame[cmp.PARAMS])
    front = frame[frame[cmp.PARETO]]
    assert len(fig.data[1].x) == len(front) and fig.data[1].line.shape == "hv"
    with_budget = charts.accuracy_vs_params(frame, budget=50_000)
    assert any(s.x0 == 50_000 for s in with_budget.layout.shapes)
    empty = charts.accuracy_vs_params(frame.iloc[0:0])
    assert len(empty.data) == 0


def test_curves_chart(runs, frame):
    series = {r: cmp.epoch_curves(runs / r) for r in frame[cmp.RUN]}
    fig = charts.curves(series)
    assert len(fig.data) == 3 * len(series)  # validation accuracy, train loss, validation loss per run
    assert max(fig.data[0].y) <= 100 and not any(math.isnan(y) for y in fig.data[0].y)


def test_scatter_names_points_marks_a_one_run_front_and_ticks_powers_of_ten():
    import pandas as pd

    from explorer.charts import compare as compare_charts

    frame = pd.DataFrame([{cmp.RUN: "r1", cmp.NETWORK: "<b>tiny</b> %{x}", cmp.DATASET: "digits",
                           cmp.PARAMS: 20_490, cmp.MACS: 1_000_000, cmp.ACC: 95.0, cmp.EFFICIENCY: 4.6,
                           cmp.PARETO: True}])
    fig = compare_charts.accuracy_vs_params(frame)
    points, front = fig.data
    assert list(points.text) == ["&lt;b&gt;tiny&lt;/b&gt; &#37;{x}"]  # the name, inert
    assert "markers" in front.mode and list(front.x) == [20_490]   # a one-run front still shows
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickformat == "~s"


def test_runs_csv_makes_network_names_inert_for_spreadsheets():
    import pandas as pd

    text = cmp.runs_csv(pd.DataFrame([{cmp.NETWORK: "=HYPERLINK(\"http://x\")", cmp.PARAMS: 10}]))
    assert "'=HYPERLINK" in text and ",10" in text
