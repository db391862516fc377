"""The Sweep page's figures, from a sweep report and its studies (Plotly; no streamlit).

Owns: the accuracy-against-parameters trade-off chart (every finished trial, the Pareto front,
the best course score) and Optuna's own figures (history, parallel coordinates, importances,
intermediate values) with the reason when one cannot be drawn yet.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from explorer.compare.results import EFFICIENCY_UNIT
from explorer.search import study as st
from explorer.units import format_count

STATE_COLOURS = {"complete": "#4c78a8", "pruned": "#bab0ac", "failed": "#e45756", "running": "#f58518"}
OPTUNA_FIGURES = ("history", "parallel coordinates", "importances", "intermediate values")


def trade_off_figure(report: dict) -> go.Figure:
    """Best validation accuracy (%) against parameters (log axis); pruned trials show their last
    accuracy; the front joins the complete trials nobody beats on both; a star marks the best
    course score, accuracy / (params / 100K)."""
    fig = go.Figure()
    rows = [r for r in report["trials"] if r["params"] and r["best_val_acc"] is not None]
    for state, colour in STATE_COLOURS.items():
        mine = [r for r in rows if r["state"] == state]
        if mine:
            fig.add_trace(go.Scatter(
                x=[r["params"] for r in mine], y=[100 * r["best_val_acc"] for r in mine], mode="markers",
                name=state, marker=dict(color=colour, size=9),
                text=[f"trial {r['number']}: score {r['score']:.2f}" if r["score"] else f"trial {r['number']}"
                      for r in mine], hovertemplate="%{text}<br>%{x:,} params<br>%{y:.2f}%<extra></extra>"))
    by_number = {r["number"]: r for r in rows}
    front = sorted((by_number[n] for n in report["pareto"] if n in by_number), key=lambda r: r["params"])
    if front:
        fig.add_trace(go.Scatter(x=[r["params"] for r in front], y=[100 * r["best_val_acc"] for r in front],
                                 mode="lines", line=dict(shape="hv", color="#54a24b"), name="Pareto front"))
    best = by_number.get(report["best"])
    if best:
        fig.add_trace(go.Scatter(x=[best["params"]], y=[100 * best["best_val_acc"]], mode="markers",
                                 marker=dict(symbol="star", size=18, color="#eeca3b", line=dict(width=1)),
                                 name=f"best: trial {best['number']}, score {best['score']:.2f}"))
    fig.update_layout(xaxis=dict(type="log", title="parameters (log scale)"),
                      yaxis=dict(title="best validation accuracy (%)"), height=420,
                      margin=dict(l=10, r=10, t=30, b=10),
                      title=f"course score = accuracy / (params / {format_count(EFFICIENCY_UNIT)})")
    return fig


def optuna_figure(runs_dir: Path, sweep_id: str, stage: str, which: str) -> tuple[go.Figure | None, str]:
    """(figure, "") or (None, why not): one of OPTUNA_FIGURES for one stage's study."""
    import optuna.visualization as vis

    study = st.load_stage(runs_dir, sweep_id, stage)
    if study is None:
        return None, f"the {stage} stage has not started"
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    multi = len(study.directions) > 1
    target = {"target": (lambda t: t.values[0]), "target_name": "accuracy"} if multi else {}
    try:
        if which == "history":
            return vis.plot_optimization_history(study, **target), ""
        if which == "parallel coordinates":
            return vis.plot_parallel_coordinate(study, **target), ""
        if which == "importances":
            if len(done) < 2:
                return None, "parameter importances need at least two complete trials"
            return vis.plot_param_importances(study, **target), ""
        if multi:
            return None, "a Pareto sweep is not pruned, so there are no intermediate values to compare"
        return vis.plot_intermediate_values(study), ""
    except (ValueError, RuntimeError, ZeroDivisionError) as e:  # too few trials for that figure
        return None, f"not enough trials for this figure yet ({e})"
