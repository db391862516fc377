"""Plotly figures built from an Analysis (no streamlit here: the app and notebooks both use them).

Each builder takes an Analysis and returns a plotly Figure whose axes name their unit:
- params_vs_activations: where the memory is (early convolutions) against where the parameters
  are (late dense layers), the cs231n VGG-16 lesson, for any network;
- macs_per_layer: multiply-accumulates per image (FLOPs = 2 x MACs);
- receptive_field_growth: how many input pixels each layer sees, against the image size;
- memory_breakdown: training memory at the analysis batch (parameters, buffers, gradients,
  optimizer state, saved activations, workspace).
Element-wise rows (ReLU, batch norm, dropout, flatten: same output as the layer before, at most
a few parameters) are folded out of the per-layer charts by default, as the cs231n table does.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.core.analysis import Analysis, LayerRow
from explorer.units import format_bytes, format_count, format_macs, format_share
from explorer.training.config import OPTIMIZER_LABELS

PARAMS_COLOR = "#4C78A8"
ACTIVATION_COLOR = "#F58518"
MACS_COLOR = "#54A24B"
RF_COLOR = "#B279A2"
MEMORY_COLORS = ("#4C78A8", "#9ECAE9", "#F58518", "#FFBF79", "#54A24B", "#B279A2")
_FONT = dict(size=13)
OPTIMIZER_NAMES = OPTIMIZER_LABELS   # the optimizer table (explorer.training.config)


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "-"


def chart_rows(analysis: Analysis, fold_elementwise: bool = True) -> list[LayerRow]:
    """The rows the per-layer charts show (all rows when folding would leave none)."""
    rows = [r for r in analysis.rows if not (fold_elementwise and r.elementwise)]
    return rows or list(analysis.rows)


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=height, font=_FONT,
                      margin=dict(l=10, r=10, t=60, b=10), showlegend=False, bargap=0.25,
                      hoverlabel=dict(font_size=13))
    return fig


def params_vs_activations(analysis: Analysis, fold_elementwise: bool = True) -> go.Figure:
    """Two stacked bar charts sharing the layer axis: activations (values per image) above,
    parameters below."""
    rows = chart_rows(analysis, fold_elementwise)
    names = [r.name for r in rows]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Activations: output values per image (memory)",
                                        "Parameters: weights + biases"))
    fig.add_trace(go.Bar(
        x=names, y=[r.activations for r in rows], marker_color=ACTIVATION_COLOR, name="activations",
        customdata=[[shape_text(r.output_shape), format_bytes(r.activation_bytes)] for r in rows],
        hovertemplate=("<b>%{x}</b> → %{customdata[0]}<br>%{y:,} values per image<br>"
                       f"%{{customdata[1]}} at batch {analysis.batch} ({analysis.dtype})<extra></extra>")),
        row=1, col=1)
    fig.add_trace(go.Bar(
        x=names, y=[r.params for r in rows], marker_color=PARAMS_COLOR, name="parameters",
        customdata=[[shape_text(r.output_shape), format_share(r.params, analysis.totals.params)] for r in rows],
        hovertemplate=("<b>%{x}</b> → %{customdata[0]}<br>%{y:,} parameters "
                       "(%{customdata[1]} of the total)<extra></extra>")),
        row=2, col=1)
    fig.update_yaxes(title_text="values", tickformat="~s", row=1, col=1)
    fig.update_yaxes(title_text="parameters", tickformat="~s", row=2, col=1)
    fig.update_xaxes(tickangle=-45, row=2, col=1)
    fig.update_annotations(font=dict(size=13))
    return _layout(fig, "Where the memory is vs where the parameters are", 560)


def macs_per_layer(analysis: Analysis, fold_elementwise: bool = True) -> go.Figure:
    rows = chart_rows(analysis, fold_elementwise)
    total = analysis.totals.macs
    fig = go.Figure(go.Bar(
        x=[r.name for r in rows], y=[r.macs for r in rows], marker_color=MACS_COLOR,
        customdata=[[shape_text(r.output_shape), format_macs(r.macs), format_share(r.macs, total)] for r in rows],
        hovertemplate=("<b>%{x}</b> → %{customdata[0]}<br>%{y:,} MACs per image (%{customdata[1]}, "
                       "%{customdata[2]} of the total)<extra></extra>")))
    fig.update_yaxes(title_text="MACs per image", tickformat="~s")
    fig.update_xaxes(tickangle=-45)
    return _layout(fig, f"Multiply-accumulates per layer (total {format_macs(total)} per image; "
                        f"FLOPs = 2 × MACs)", 420)


def receptive_field_growth(analysis: Analysis, fold_elementwise: bool = True) -> go.Figure:
    """Receptive field side (input pixels) per layer, with the input size as a dashed line."""
    rows = [r for r in chart_rows(analysis, fold_elementwise) if r.receptive_field is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[r.name for r in rows], y=[max(r.receptive_field) for r in rows], mode="lines+markers",
        line=dict(color=RF_COLOR, width=3), marker=dict(size=8), name="receptive field",
        customdata=[[f"{r.receptive_field[0]}×{r.receptive_field[1]}",
                     f"{r.jump[0]}×{r.jump[1]}" if r.jump else "-"] for r in rows],
        hovertemplate=("<b>%{x}</b><br>sees %{customdata[0]} input pixels<br>"
                       "jump (effective stride) %{customdata[1]}<extra></extra>")))
    if len(analysis.input_shape) == 3:
        side = max(analysis.input_shape[1:])
        fig.add_hline(y=side, line_dash="dash", line_color="gray",
                      annotation_text=f"input size {side} px", annotation_position="top left")
    fig.update_yaxes(title_text="receptive field (input pixels)", rangemode="tozero")
    fig.update_xaxes(tickangle=-45)
    return _layout(fig, "Receptive field growth (largest branch for branching blocks)", 420)


MEMORY_PARTS = (("parameters", "Parameters"), ("buffers", "Buffers (e.g. BN running stats)"),
                ("gradients", "Gradients"), ("optimizer_state", "Optimizer state"),
                ("saved_activations", "Saved activations (for backward)"),
                ("workspace", "Workspace (estimate)"))


def memory_breakdown(analysis: Analysis) -> go.Figure:
    """Horizontal bars, one per part of the training memory, in MiB with binary-unit labels."""
    mem = analysis.totals.memory
    values = [getattr(mem, key) for key, _ in MEMORY_PARTS]
    labels = [label for _, label in MEMORY_PARTS]
    fig = go.Figure(go.Bar(
        y=labels, x=[v / 2**20 for v in values], orientation="h", marker_color=list(MEMORY_COLORS),
        text=[f"{format_bytes(v)} ({format_share(v, mem.total)})" for v in values], textposition="auto",
        customdata=[format_count(v) for v in values],
        hovertemplate="<b>%{y}</b><br>%{customdata} bytes<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="MiB (2²⁰ bytes)")
    optimizer = OPTIMIZER_NAMES.get(analysis.optimizer, analysis.optimizer)
    return _layout(fig, f"Training memory at batch {analysis.batch:,}, {analysis.dtype}, {optimizer}: "
                        f"{format_bytes(mem.total)}", 380)


__all__ = ["shape_text", "chart_rows", "params_vs_activations", "macs_per_layer",
           "receptive_field_growth", "memory_breakdown", "MEMORY_PARTS"]
