"""Compare page views: the runs table with the course's efficiency score, accuracy against
parameters with the Pareto front, overlaid curves, a side-by-side architecture diff of two runs
and the parameter-budget leaderboard. Numbers from explorer.compare.results, figures from
explorer.charts.compare; runs are read from the folder `runs_dir()` names on every rerun."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from explorer.compare import results as cmp
from explorer.charts import compare as charts
from explorer.core.analysis import Analysis, analyze
from explorer.core.spec import NetworkSpec
from explorer.training.checkpoint import load_run_spec_config
from explorer.errors import UserError
from explorer.training.runs import list_runs
from explorer.training.status import short_label   # run-folder names are parsed in explorer
from explorer.units import format_count, format_percent, format_short
from ui import state
from ui.views import lazy_tabs

TABS = ("Accuracy vs parameters", "Curves", "Architecture diff", "Leaderboard")
DATASET, RUNS, RUN_A, RUN_B, BUDGET, BOARD_DATASET = (state.CMP_DATASET, state.CMP_RUNS, state.CMP_RUN_A, state.CMP_RUN_B,
                                                      state.CMP_BUDGET, state.CMP_BOARD_DATASET)
ALL = "All datasets"
DEFAULT_BUDGET = 100_000
CHANGE_COLORS = {cmp.SAME: "", cmp.CHANGED: "background-color: rgba(238, 202, 59, 0.25)",
                 cmp.REPLACED: "background-color: rgba(245, 133, 24, 0.25)",
                 cmp.ONLY_A: "background-color: rgba(228, 87, 86, 0.2)",
                 cmp.ONLY_B: "background-color: rgba(84, 162, 75, 0.2)"}


runs_dir = state.runs_dir   # the one resolver every page uses (explorer.training.runs.runs_root)


def load(root: Path) -> pd.DataFrame:
    """The readable runs as a frame (the unreadable ones: `unreadable`)."""
    return cmp.runs_frame(list_runs(root))


def unreadable(root: Path) -> None:
    """A warning listing the run folders whose files cannot be read, with the reason for each."""
    bad = cmp.unreadable_runs(list_runs(root))
    if bad:
        with st.expander(f"{len(bad)} run folder{'s' * (len(bad) != 1)} cannot be read and "
                         f"{'are' if len(bad) != 1 else 'is'} left out", icon=":material/warning:"):
            for run, why in bad[:50]:
                st.text(f"{run}: unreadable: {why}")


def header(root: Path, frame: pd.DataFrame) -> None:
    st.title("Compare runs")
    if frame.empty:
        st.caption(f"Runs folder `{root}`")
        return
    done = int((frame[cmp.STATUS] == "completed").sum())
    st.caption(f"{len(frame)} runs ({done} completed) in `{root}` · efficiency = accuracy / (params / 100K), "
               "the course's compact-model score")


def empty(root: Path) -> None:
    st.info(f"No training runs in `{root}` yet. Start one on the **Train** page (build or pick a network on "
            f"**Build**, then press Train), or from a terminal:\n\n"
            f"`python -m explorer train --preset lenet5 --dataset digits --epochs 3 --runs-dir {root}`\n\n"
            "Finished runs appear here with their accuracy, size, speed and curves.", icon=":material/info:")
    try:
        st.page_link("pages/train.py", label="Go to the Train page", icon=":material/model_training:")
    except Exception:  # noqa: BLE001 - the Train page may not be registered in this build
        pass


def dataset_filter(frame: pd.DataFrame) -> pd.DataFrame:
    datasets = sorted(frame[cmp.DATASET].unique())
    if len(datasets) < 2:
        return frame
    choice = st.segmented_control("Dataset", [ALL] + datasets, default=ALL, key=DATASET,
                                  help="Accuracies on different datasets do not compare; each has its own front")
    return frame if choice in (None, ALL) else frame[frame[cmp.DATASET] == choice].reset_index(drop=True)


# Column sets of the runs table: "Summary" fits beside the sidebar at 1024 px (about 600 px).
RUN_COLUMN_SETS = {
    "Summary": (cmp.NETWORK, cmp.DATASET, cmp.START, cmp.PARAMS, cmp.ACC, cmp.EFFICIENCY, cmp.STATUS),
    "All": tuple(c for c in cmp.RUN_COLUMNS if c != cmp.RUN) + (cmp.RUN,),  # the long folder name last
}


def table(frame: pd.DataFrame) -> None:
    cc = st.column_config
    config = {
        cmp.RUN: cc.TextColumn("Run folder", help="date-time-network-id, under the runs folder"),
        cmp.PARAMS: cc.NumberColumn("Params", format="localized", help="Parameters, biases included", width=80),
        cmp.MACS: cc.NumberColumn("MACs", format="localized",
                                  help="Multiply-accumulates per image, bias excluded; FLOPs = 2 × MACs"),
        cmp.ACC: cc.NumberColumn("Best val acc", format="%.2f%%", help="Best validation accuracy over the epochs",
                                 width=90),
        cmp.EFFICIENCY: cc.NumberColumn("Efficiency", format="%.3f", width=80,
                                        help="Accuracy (as a fraction) / (params / 100K): 90% with 50K params "
                                             "scores 1.8. Higher is better."),
        cmp.SECONDS: cc.NumberColumn("Time", format="%.1f s", help="Wall time of the whole run"),
        cmp.IMAGES_PER_S: cc.NumberColumn("Images/s", format="localized", help="Training throughput"),
        cmp.PARETO: cc.CheckboxColumn("Pareto", help="No other run on this dataset is as accurate with fewer "
                                                     "or equally many parameters"),
    }
    config.update({cmp.NETWORK: cc.TextColumn("Network", width=100), cmp.DATASET: cc.TextColumn("Dataset", width=70),
                   cmp.START: cc.TextColumn("Start", width=110, help="What the run's weights started from: "
                                            "scratch, a linear probe or a fine-tuned run (transfer learning)"),
                   cmp.STATUS: cc.TextColumn("Status", width=85)})
    shown = st.segmented_control("Columns", list(RUN_COLUMN_SETS), default="Summary", key=state.CMP_COLUMNS,
                                 label_visibility="collapsed",
                                 help="Summary fits a 1024-px projector; All adds size, speed and the run folder "
                                      "(scrolls sideways on narrow screens)") or "Summary"
    st.dataframe(frame, hide_index=True, column_config=config, column_order=RUN_COLUMN_SETS[shown],
                 key=state.CMP_TABLE, height=min(35 * (len(frame) + 1) + 3, 420))
    st.download_button("Download the runs table (CSV)", cmp.runs_csv(frame), file_name="runs.csv", mime="text/csv",
                       on_click="ignore", icon=":material/download:", key=state.CMP_CSV)


def tabs(frame: pd.DataFrame) -> None:
    lazy_tabs(TABS, state.COMPARE_VIEW, (scatter_view, curves_view, diff_view, leaderboard_view), frame)


def scatter_view(frame: pd.DataFrame) -> None:
    if frame[cmp.ACC].notna().sum() == 0:
        st.info("No run has finished an epoch yet, so there is no accuracy to plot.", icon=":material/info:")
        return
    st.plotly_chart(charts.accuracy_vs_params(frame), key=state.FIG_CMP_SCATTER)
    front = frame[frame[cmp.PARETO]].sort_values(cmp.PARAMS)
    st.caption("Runs on the dotted staircase are the Pareto front: for their size nothing trained here is more "
               "accurate. Front: " + ", ".join(f"**{short_label(r, n)}**" for r, n in zip(front[cmp.RUN],
                                                                                        front[cmp.NETWORK])) + ".")


def _options(frame: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    labels = {r: short_label(r, n) for r, n in zip(frame[cmp.RUN], frame[cmp.NETWORK])}
    return list(frame[cmp.RUN]), labels


def curves_view(frame: pd.DataFrame, root: Path | None = None) -> None:
    root = root or runs_dir()
    options, labels = _options(frame)
    default = [r for r in options if r in st.session_state.get(RUNS, [])] or options[:3]
    chosen = st.multiselect("Runs to overlay", options, default=default, format_func=labels.get, key=RUNS,
                            placeholder="Pick runs (the table above is sorted by accuracy)")
    series = {labels[r]: cmp.epoch_curves(root / r) for r in chosen}
    series = {k: v for k, v in series.items() if len(v)}
    if not series:
        st.info("Pick runs that have finished at least one epoch.", icon=":material/info:")
        return
    st.plotly_chart(charts.curves(series), key=state.FIG_CMP_CURVES)
    st.caption("A widening gap between the training and validation loss means overfitting; both high means "
               "underfitting (a bigger network or more epochs).")


@st.cache_data(max_entries=32, show_spinner=False)
def _analysis(spec_json: str) -> Analysis:
    return analyze(NetworkSpec.from_json(spec_json))


def _spec_and_analysis(root: Path, run: str) -> tuple[NetworkSpec, Analysis]:
    spec, _ = load_run_spec_config(root / run)
    return spec, _analysis(spec.to_json(indent=None))


def diff_view(frame: pd.DataFrame, root: Path | None = None) -> None:
    root = root or runs_dir()
    options, labels = _options(frame)
    if len(options) < 2:
        st.info("The diff needs two runs; start another on the Train page.", icon=":material/info:")
        return
    left, right = st.columns(2)
    a = left.selectbox("Run A", options, index=0, format_func=labels.get, key=RUN_A)
    b = right.selectbox("Run B", options, index=1, format_func=labels.get, key=RUN_B)
    try:
        (spec_a, an_a), (spec_b, an_b) = _spec_and_analysis(root, a), _spec_and_analysis(root, b)
    except UserError as e:
        st.warning(f"Cannot read that run's network: {e}", icon=":material/warning:")
        return
    st.dataframe(cmp.diff_totals(an_a, an_b).rename(columns={"A": f"A: {labels[a]}", "B": f"B: {labels[b]}"}),
                 hide_index=True)
    diff = cmp.architecture_diff(spec_a, an_a, spec_b, an_b)
    numbers = ["A params", "A MACs", "B params", "B MACs"]
    shown = diff.astype({c: object for c in numbers})
    for c in numbers:  # compact (48.1K) so both sides fit a 1024-px projector; a blank where a side has no layer
        shown[c] = [format_short(v) if not pd.isna(v) else "" for v in diff[c]]
    styled = shown.style.map(lambda v: CHANGE_COLORS.get(v, ""), subset=["Change"])
    cc = st.column_config
    # About 640 px in all: the diff fits beside the sidebar at 1024 px; the MACs per layer are one
    # click away (the table's column menu) and their totals are in the table above.
    st.dataframe(styled, hide_index=True, key=state.CMP_DIFF, height=min(35 * (len(diff) + 1) + 3, 640), column_config={
        **{c: cc.TextColumn(c, width=72) for c in ("A layer", "B layer", "A output", "B output", "Change")},
        **{c: cc.TextColumn(c, width=62, alignment="right") for c in ("A params", "B params")},
        **{c: {**cc.TextColumn(c, width=62, alignment="right"), "hidden": True} for c in ("A MACs", "B MACs")},
        "What differs": cc.TextColumn("What differs", width=150)})
    st.caption("Layers are paired by what they are (conv, pooling, activation...), identical blocks first, like a "
               "text diff. Params include biases; each layer's MACs per image: the table's Show/hide columns "
               "button (the eye in its toolbar). A run stores its network as trained, fitted "
               "to the dataset's image size and classes.")


def leaderboard_view(frame: pd.DataFrame) -> None:
    datasets = sorted(frame[cmp.DATASET].unique())
    left, right = st.columns([1, 2])
    budget = left.number_input("Parameter budget", min_value=1, max_value=10**10, value=DEFAULT_BUDGET,
                               step=10_000, key=BUDGET, help="The challenge: the best validation accuracy with at "
                                                             "most this many parameters (biases included)")
    dataset = right.selectbox("Dataset", datasets, key=BOARD_DATASET,
                              index=datasets.index(frame[cmp.DATASET].mode()[0]) if len(frame) else 0)
    board = cmp.leaderboard(frame, int(budget), dataset)
    over = cmp.over_budget(frame, int(budget), dataset)
    if board.empty:
        st.info(f"No {dataset} run fits in {format_count(int(budget))} parameters yet" + (f" ({over} over the budget)" if over
                else "") + ". Shrink a network on the Build page: fewer channels, a 1×1 reduction, global "
                "average pooling instead of a big dense layer.", icon=":material/info:")
    else:
        winner = board.iloc[0]
        st.success(f"**{short_label(winner[cmp.RUN], winner[cmp.NETWORK])}** leads with "
                   f"{format_percent(winner[cmp.ACC] / 100, 2)} using {format_count(int(winner[cmp.PARAMS]))} parameters "
                   f"({winner['Budget used (%)']:.0f}% of the budget).", icon=":material/emoji_events:")
        cc = st.column_config
        order = [c for c in board.columns if c != cmp.RUN] + [cmp.RUN]
        st.dataframe(board, hide_index=True, key=state.CMP_BOARD, column_order=order, column_config={
            cmp.RUN: cc.TextColumn("Run folder"),
            "Rank": cc.NumberColumn("Rank", format="%d", width=60),
            cmp.PARAMS: cc.NumberColumn("Params", format="localized"),
            cmp.MACS: cc.NumberColumn("MACs", format="localized"),
            cmp.ACC: cc.NumberColumn("Best val acc", format="%.2f%%"),
            cmp.EFFICIENCY: cc.NumberColumn("Efficiency", format="%.3f"),
            "Budget used (%)": cc.ProgressColumn("Budget used", format="%.0f%%", min_value=0, max_value=100)})
        if over:
            st.caption(f"{over} more {dataset} run(s) are over the budget and not ranked.")
    st.plotly_chart(charts.accuracy_vs_params(frame[frame[cmp.DATASET] == dataset], budget=int(budget)),
                    key=state.FIG_CMP_BOARD)
