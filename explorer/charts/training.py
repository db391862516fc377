"""Training curves from metrics events (runs.read_metrics), several runs overlaid; no streamlit.

`RunCurves.from_events` folds one run's events (start, step, epoch, warning, done/error) into
series and the latest progress; `training_figure` draws loss and accuracy side by side:
- train loss/accuracy per logged step (a thin line: the mean over the last `log_every` steps),
- train loss/accuracy per epoch (dotted, markers) and validation per epoch (dashed, markers),
- the loss an untrained network should start at, ln(C) for C classes (uniform guesses).
The x axis is epochs (fractional between epoch ends, so runs with different batch sizes line
up) or optimizer steps. One colour per run; the line style says which series it is. With one
run the legend names the series; with several it names the runs (a click hides a whole run) and
keeps a gray key of the line styles (STYLE_GROUP), so the styles stay explained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.text import html_plain

RUN_COLORS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#B279A2", "#72B7B2", "#EECA3B", "#9D755D",
              "#FF9DA6", "#BAB0AC")
X_AXES = {"epoch": "epoch", "step": "optimizer step"}
STYLE_GROUP = "line style"    # legend group of the gray line-style key drawn when several runs overlay
STYLE_COLOR = "#777777"
# (series name, line dash, marker symbol or None, line width): how each series is drawn
STYLES = (("train (per step)", None, None, 1.5), ("train (per epoch)", "dot", "circle-open", 2.5),
          ("validation (per epoch)", "dash", "circle", 2.5))
_FONT = dict(size=13)


@dataclass
class RunCurves:
    """One run's series and latest state, from its metrics events (mutable: `add` appends)."""

    label: str
    start: dict[str, Any] | None = None              # the "start" event (device, sizes, ln(C), ...)
    steps: list[dict[str, Any]] = field(default_factory=list)    # "step" events, in order
    epochs: list[dict[str, Any]] = field(default_factory=list)   # "epoch" events, in order
    warnings: list[str] = field(default_factory=list)             # messages, in order
    end: dict[str, Any] | None = None                 # the "done" or "error" event

    @classmethod
    def from_events(cls, events: Sequence[dict[str, Any]], label: str) -> "RunCurves":
        curves = cls(label)
        curves.add(events)
        return curves

    def add(self, events: Sequence[dict[str, Any]]) -> None:
        for e in events:
            kind = e.get("event")
            if kind == "start":
                self.start = e
            elif kind == "step":
                self.steps.append(e)
            elif kind == "epoch":
                self.epochs.append(e)
            elif kind == "warning" and e.get("message"):
                self.warnings.append(str(e["message"]))
            elif kind in ("done", "error"):
                self.end = e

    # --- the latest state ------------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int | None:
        return (self.start or {}).get("steps_per_epoch") or None

    @property
    def total_steps(self) -> int | None:
        return (self.start or {}).get("total_steps") or None

    @property
    def expected_initial_loss(self) -> float | None:
        """ln(C): the cross-entropy of uniform guesses over C classes."""
        return (self.start or {}).get("expected_initial_loss")

    @property
    def num_classes(self) -> int | None:
        expected = self.expected_initial_loss
        return round(math.exp(expected)) if expected else None

    @property
    def first_loss(self) -> float | None:
        return self.steps[0]["loss"] if self.steps else None

    @property
    def last_step(self) -> dict[str, Any] | None:
        return self.steps[-1] if self.steps else None

    @property
    def last_epoch(self) -> dict[str, Any] | None:
        return self.epochs[-1] if self.epochs else None

    @property
    def progress(self) -> float:
        """Share of the planned steps done, 0..1 (below 1 for a run stopped early)."""
        return float(self.last_step["progress"]) if self.last_step else 0.0

    @property
    def best_val_acc(self) -> float | None:
        return max((e["val_acc"] for e in self.epochs), default=None)

    # --- series ----------------------------------------------------------------------------------
    def step_x(self, x: str = "epoch") -> list[float]:
        """x of each step event: the optimizer step, or the fractional epoch step/steps_per_epoch."""
        per = self.steps_per_epoch
        if x == "step" or not per:
            return [e["step"] for e in self.steps]
        return [e["step"] / per for e in self.steps]

    def epoch_x(self, x: str = "epoch") -> list[float]:
        return [e["step"] if x == "step" else e["epoch"] for e in self.epochs]


def _series(fig: go.Figure, run: RunCurves, color: str, x: str, col: int, kind: str, legend: str) -> None:
    """Add one run's train-per-step, train-per-epoch and validation series to subplot `col`.
    legend: "series" (an entry per series), "run" (one entry per run, on its validation series, or
    its per-step series before the first epoch ends; a click toggles the whole run) or "none"."""
    is_loss = kind == "loss"
    value = ".3f" if is_loss else ".1%"
    unit = "loss" if is_loss else "accuracy"
    label = group = html_plain(run.label)  # the label holds the network's name: a visitor's text
    sx = run.step_x(x)
    if run.steps:
        fig.add_trace(go.Scatter(
            x=sx, y=[e["loss" if is_loss else "acc"] for e in run.steps], mode="lines",
            line=dict(color=color, width=STYLES[0][3]), opacity=0.55,
            name=label if legend == "run" else STYLES[0][0], legendgroup=group,
            showlegend=legend == "series" or (legend == "run" and not run.epochs),
            customdata=[[e["step"], e["epoch"]] for e in run.steps],
            hovertemplate=(f"<b>{label}</b><br>step %{{customdata[0]}} (epoch %{{customdata[1]}})<br>"
                           f"train {unit} %{{y:{value}}} (mean of the last logged steps)<extra></extra>")),
            row=1, col=col)
    if run.epochs:
        ex = run.epoch_x(x)
        for series, (name, dash, symbol, width) in zip(("train", "val"), STYLES[1:]):
            fig.add_trace(go.Scatter(
                x=ex, y=[e[f"{series}_{'loss' if is_loss else 'acc'}"] for e in run.epochs],
                mode="lines+markers", line=dict(color=color, width=width, dash=dash),
                marker=dict(size=8, symbol=symbol, color=color), legendgroup=group,
                name=label if legend == "run" else name,
                showlegend=legend == "series" or (legend == "run" and series == "val"), customdata=[[e["epoch"], e["step"]] for e in run.epochs],
                hovertemplate=(f"<b>{label}</b><br>end of epoch %{{customdata[0]}} (step %{{customdata[1]}})"
                               f"<br>{name.split(' ')[0]} {unit} %{{y:{value}}}<extra></extra>")),
                row=1, col=col)


def _style_key(fig: go.Figure, runs: Sequence[RunCurves]) -> None:
    """Gray legend entries naming the line styles (per step, per epoch, validation) in use."""
    used = (any(r.steps for r in runs), any(r.epochs for r in runs), any(r.epochs for r in runs))
    for (name, dash, symbol, width), on in zip(STYLES, used):
        if on:
            fig.add_trace(go.Scatter(
                x=[None], y=[None], name=name, legendgroup=STYLE_GROUP, legendgrouptitle_text="Line style",
                mode="lines" + ("+markers" if symbol else ""), line=dict(color=STYLE_COLOR, width=width, dash=dash),
                marker=dict(size=8, symbol=symbol or "circle", color=STYLE_COLOR), hoverinfo="skip",
                showlegend=True), row=1, col=1)


def training_figure(runs: Sequence[RunCurves], x: str = "epoch", height: int = 430) -> go.Figure:
    """Loss (left) and accuracy (right) of every run, overlaid; ln(C) marked on the loss side."""
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=("Loss (cross-entropy)", "Accuracy (top-1)"))
    legend = "run" if len(runs) > 1 else "series"
    for i, run in enumerate(runs):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        _series(fig, run, color, x, 1, "loss", legend)
        _series(fig, run, color, x, 2, "accuracy", "none")
    if legend == "run":
        _style_key(fig, runs)
    for expected in sorted({r.expected_initial_loss for r in runs if r.expected_initial_loss}):
        fig.add_hline(y=expected, line_dash="dot", line_color="gray", row=1, col=1,
                      annotation_text=f"ln({round(math.exp(expected))}) = {expected:.2f}: an untrained start",
                      annotation_position="top right", annotation_font=dict(size=12, color="gray"))
    fig.update_yaxes(title_text="loss", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.02], row=1, col=2)
    fig.update_xaxes(title_text=X_AXES[x], rangemode="tozero")
    fig.update_layout(height=height, font=_FONT, margin=dict(l=10, r=10, t=40, b=10), hovermode="closest",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0, font=dict(size=12)),
                      uirevision="keep",  # zoom and hidden series survive the once-a-second refresh
                      hoverlabel=dict(font_size=13))
    return fig


__all__ = ["RunCurves", "training_figure", "RUN_COLORS", "X_AXES"]
