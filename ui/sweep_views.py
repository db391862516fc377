"""Sweep page widgets: set a sweep up from the current network, launch, cancel or resume it, and
watch it (live trial table, trade-off chart, Optuna's figures, "open in the builder").

Its session-state and widget keys are declared in ui.state (nowhere else). Decisions live in
explorer.search: the space, the sweep file, the driver process, the report and the figures.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from explorer.data import list_datasets
from explorer.errors import UserError
from explorer.charts import search as charts
from explorer.search.driver import launch, request_cancel
from explorer.search.recipes import recipe_config
from explorer.search.study import list_sweeps, sweep_report
from explorer.search.sweepfile import OBJECTIVES, PRUNERS, SAMPLERS, SweepFile, new_sweep, sweep_from_dict
from explorer.core.spec import NetworkSpec
from explorer.units import format_count
from ui import state
from ui.compare_views import runs_dir

SWEEP_PICK, SWEEP_LAUNCHED, SWEEP_TO_BUILD, W_SWEEP = (state.SWEEP_PICK, state.SWEEP_LAUNCHED,  # keys: ui.state
                                                         state.SWEEP_TO_BUILD, state.W_SWEEP)
REFRESH_SECONDS = 2.0             # the live view re-reads the study this often while the driver runs


def header() -> None:
    for kind, text in state.pop_notices():
        getattr(st, kind, st.info)(text)
    st.title("Sweep")
    st.caption("Random search, TPE or NSGA-II over the network's width, kernels, depth, activation and dropout "
               "and the training knobs, coarse to fine. Every trial is an ordinary run (see Compare).")


# --- setup ---------------------------------------------------------------------------------------
def setup(spec: NetworkSpec) -> SweepFile | None:
    """The setup form from the current network; the SweepFile, or None after showing the problem."""
    offline = [d.name for d in list_datasets() if d.offline]
    with st.expander("Set up a sweep from the current network", expanded=True):
        c1, c2, c3 = st.columns(3)
        dataset = c1.selectbox("Dataset", offline, key=state.SW_DATASET)
        objective = c2.selectbox("Objective", OBJECTIVES, index=OBJECTIVES.index("score"), key=state.SW_OBJECTIVE,
                                 help="score: the course score accuracy / (params / 100K) above an accuracy floor; "
                                      "pareto: accuracy against parameters (NSGA-II, no pruning)")
        sampler = c3.selectbox("Sampler", SAMPLERS, index=2 if objective == "pareto" else 1, key=state.SW_SAMPLER)
        c1, c2, c3, c4 = st.columns(4)
        pruner = c1.selectbox("Pruner", PRUNERS, index=0 if objective == "pareto" else 1, key=state.SW_PRUNER)
        trials = c2.number_input("Trials", 1, 500, 20, key=state.SW_TRIALS)
        minutes = c3.number_input("Wall time (min)", 1, 600, 10, key=state.SW_MINUTES)
        epochs = c4.number_input("Max epochs", 1, 100, 10, key=state.SW_EPOCHS)
        floor = st.slider("Accuracy floor for the score (%)", 0, 100, 95, key=state.SW_FLOOR) / 100
        try:
            sweep = new_sweep(spec, dataset, objective=objective, sampler=sampler, pruner=pruner, trials=int(trials),
                              seconds=60.0 * minutes, max_epochs=int(epochs), min_accuracy=floor,
                              train=recipe_config(spec.name, dataset))
        except UserError as e:
            st.warning(str(e), icon=":material/warning:")
            return None
        names = [d.name for d in sweep.space]
        keep = st.multiselect("Searched", names, default=names, key=state.SW_DIMS,
                              help="width scales every conv and hidden linear layer; kernel.I / repeat.I are block I")
        if not keep:
            st.info("Choose at least one quantity to search.")
            return None
        return replace(sweep, space=tuple(d for d in sweep.space if d.name in keep))


def uploaded() -> SweepFile | None:
    """A sweep file the visitor uploads instead (the same file the CLI reads)."""
    file = st.file_uploader("…or upload a sweep file (cnn-explorer/sweep@1)", type=["json"], key=state.SW_UPLOAD)
    if file is None:
        return None
    try:
        return replace(sweep_from_dict(json.loads(file.getvalue()[:1_000_000].decode("utf-8"))), id=None)
    except (UserError, ValueError) as e:
        st.warning(f"This sweep file cannot be used: {e}", icon=":material/warning:")
        return None


def launch_button(sweep: SweepFile | None, root: Path) -> None:
    c1, c2 = st.columns(2)
    if sweep is not None:
        c2.download_button("Download the sweep file", sweep.to_json(), file_name=f"{sweep.base.name}.sweep.json",
                           mime="application/json", key=state.SW_DOWNLOAD)
    c1.button("Launch the sweep", type="primary", disabled=sweep is None, key=state.SW_LAUNCH,
              on_click=_launch, args=(sweep, root))


def _launch(sweep: SweepFile, root: Path) -> None:
    """on_click: start the driver process; the new sweep is shown below."""
    try:
        st.session_state[SWEEP_LAUNCHED] = launch(sweep.validate(), root)
    except UserError as e:
        state.notify("warning", f"The sweep cannot start: {e}")
        return
    st.session_state.pop(SWEEP_PICK, None)


# --- watching ------------------------------------------------------------------------------------
def pick(root: Path) -> str | None:
    sweeps = list_sweeps(root)
    ids = [s["sweep"] for s in sweeps]
    launched = st.session_state.get(SWEEP_LAUNCHED)
    if launched and launched not in ids:
        ids.insert(0, launched)
    if not ids:
        st.info("No sweeps yet: set one up above, or run `python -m explorer sweep --preset lenet5 --dataset mnist5k`.")
        return None
    default = ids.index(launched) if launched in ids else 0
    return st.selectbox("Sweep", ids, index=default, key=SWEEP_PICK)


def controls(root: Path, sweep_id: str, report: dict) -> None:
    c1, c2 = st.columns(2)
    driver = report["driver"]
    if c1.button("Cancel the sweep", disabled=driver != "running", key=state.SW_CANCEL):
        request_cancel(root, sweep_id)
        st.toast("Cancelling: running trials stop at their next step.")
    if c2.button("Resume", disabled=driver not in ("stopped",), key=state.SW_RESUME,
                 help="a sweep whose driver was killed (or the server restarted) continues where it stopped"):
        from explorer.search.study import load_sweep_file

        launch(load_sweep_file(root, sweep_id), root)
        st.rerun()


def trials_frame(report: dict) -> pd.DataFrame:
    rows = [{"Trial": r["number"], "Stage": r["stage"], "State": r["state"], "Params": r["params"], "MACs": r["macs"],
             "Best val acc (%)": None if r["best_val_acc"] is None else round(100 * r["best_val_acc"], 2),
             "Score": None if r["score"] is None else round(r["score"], 3), "Epochs": r["epochs_done"],
             "Pareto": r["number"] in report["pareto"], "Best": r["number"] == report["best"],
             "Point": ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["values"].items())}
            for r in report["trials"]]
    return pd.DataFrame(rows)


def live(root: Path, sweep_id: str) -> None:
    """Table and trade-off chart, re-read every REFRESH_SECONDS while the driver runs."""
    running = sweep_report(root, sweep_id)["driver"] == "running"

    @st.fragment(run_every=REFRESH_SECONDS if running else None)
    def body() -> None:
        report = sweep_report(root, sweep_id)
        counts = trials_frame(report)["State"].value_counts().to_dict() if report["trials"] else {}
        st.caption(f"driver {report['driver']} · {len(report['trials'])} of {report['budget_trials']} trials · "
                   + ", ".join(f"{v} {k}" for k, v in counts.items()))
        controls(root, sweep_id, report)
        if report["trials"]:
            st.dataframe(trials_frame(report), hide_index=True, key=state.SW_TABLE)
            st.plotly_chart(charts.trade_off_figure(report), key=state.FIG_SW_TRADEOFF)

    body()


def optuna_view(root: Path, sweep_id: str) -> None:
    c1, c2 = st.columns(2)
    stage = c1.radio("Stage", ("coarse", "fine"), horizontal=True, key=state.SW_STAGE)
    which = c2.selectbox("Figure", charts.OPTUNA_FIGURES, key=state.SW_FIGURE)
    fig, why = charts.optuna_figure(root, sweep_id, stage, which)
    if fig is None:
        st.info(why)
    else:
        st.plotly_chart(fig, key=state.FIG_SW_OPTUNA)


def open_in_builder(root: Path, sweep_id: str) -> None:
    report = sweep_report(root, sweep_id)
    trials = [r for r in report["trials"] if r["run_dir"] and (Path(r["run_dir"]) / "spec.json").is_file()]
    if not trials:
        st.info("No trial has a network yet.")
        return
    default = next((i for i, r in enumerate(trials) if r["number"] == report["best"]), 0)
    chosen = st.selectbox("Trial", trials, index=default, key=state.SW_OPEN,
                          format_func=lambda r: f"trial {r['number']} ({r['state']}, {format_count(r['params'] or 0)} params)")
    st.button("Open in the builder", key=state.SW_OPEN_BUTTON, on_click=_open, args=(chosen,))


def _open(trial: dict) -> None:
    """on_click: the trial's network (as it trained) becomes the builder's spec (undoable)."""
    try:
        spec = NetworkSpec.from_json((Path(trial["run_dir"]) / "spec.json").read_bytes())
    except UserError as e:
        state.notify("warning", f"Trial {trial['number']}'s network cannot be opened: {e}")
        return
    state.commit(spec)
    state.notify("success", f"Opened trial {trial['number']} of the sweep.")
    st.session_state[SWEEP_TO_BUILD] = True


def follow_to_builder() -> None:
    """Switch to the Build page when a trial was just opened (st.switch_page cannot run in a callback)."""
    if st.session_state.pop(SWEEP_TO_BUILD, False):
        st.switch_page("pages/build.py")


def watch(root: Path, sweep_id: str) -> None:
    live(root, sweep_id)
    st.subheader("Open a trial in the builder")
    open_in_builder(root, sweep_id)
    with st.expander("Optuna's figures", expanded=True):
        optuna_view(root, sweep_id)


__all__ = ["follow_to_builder", "header", "setup", "uploaded", "launch_button", "pick", "watch", "runs_dir"]
