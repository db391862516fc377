"""Plotly figures of the Compare and Zoo pages (no streamlit; built from explorer.compare.results and
explorer.compare.zoo data). Every axis names its unit:
- accuracy_vs_params: runs as bubbles (validation accuracy against parameters, log axis; area
  proportional to MACs per image), each dataset's Pareto front as a staircase, an optional
  parameter budget with the region over it shaded;
- curves: several runs' per-epoch validation accuracy and losses overlaid;
- zoo_bubbles: the Canziani et al. (2016) view: ImageNet top-1 against GMACs per image, area
  proportional to parameters;
- depth_profiles: activations and parameters of each weight layer along the depth of two networks;
- explainer_bars: parameters and MACs of an explainer's two designs, stacked by layer.
"""

from __future__ import annotations

import math
from typing import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.compare import results as cmp
from explorer.units import format_short
from explorer.compare.zoo import Explainer
from explorer.text import html_plain

COLORS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#B279A2", "#72B7B2", "#EECA3B", "#9D755D",
          "#FF9DA6", "#BAB0AC", "#393B79", "#637939", "#17BECF", "#843C39", "#7B4173", "#000000", "#BCBD22",
          "#8C6D31", "#E377C2", "#1F77B4")  # the first ten for runs, all twenty for the zoo's families
# Where a crowded label goes relative to its bubble (the rest sit on top).
LABEL_POSITIONS = {"alexnet": "middle left", "googlenet": "middle left", "resnet18": "middle right",
                   "resnet50": "bottom center", "resnext50_32x4d": "middle left", "wide_resnet50_2": "bottom center",
                   "vgg16": "bottom center", "mobilenet_v2": "bottom center", "mobilenet_v3_small": "top right"}
_FONT = dict(size=13)
MAX_BUBBLE = 44   # diameter in px of the largest bubble
MIN_BUBBLE = 7


def _layout(fig: go.Figure, title: str, height: int, legend: bool = True) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=height, font=_FONT,
                      margin=dict(l=10, r=10, t=60, b=10), showlegend=legend, hoverlabel=dict(font_size=13),
                      legend=dict(orientation="h", yanchor="bottom", y=-0.32, x=0, xanchor="left"))
    return fig


def _sizeref(values: list[float]) -> float:
    """Plotly's sizeref for area-proportional bubbles whose largest is MAX_BUBBLE px across."""
    top = max([v for v in values if v and v > 0], default=1)
    return 2.0 * top / MAX_BUBBLE ** 2


def _color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def accuracy_vs_params(frame: pd.DataFrame, budget: int | None = None) -> go.Figure:
    """Best validation accuracy (%) against parameters (log axis), bubble area ∝ MACs per image;
    one colour per dataset with its Pareto front; a dashed budget line when `budget` is given."""
    data = frame[frame[cmp.ACC].notna() & frame[cmp.PARAMS].notna()]
    fig = go.Figure()
    macs = [float(v) for v in data[cmp.MACS].fillna(0)]
    ref = _sizeref(macs)
    for i, (dataset, group) in enumerate(data.groupby(cmp.DATASET, sort=True)):
        color = _color(i)
        fig.add_trace(go.Scatter(
            x=[int(v) for v in group[cmp.PARAMS]], y=[float(v) for v in group[cmp.ACC]], mode="markers+text",
            name=dataset, legendgroup=dataset, textposition="top center", textfont=dict(size=11),
            text=[html_plain(n, max_len=24) for n in group[cmp.NETWORK]],  # each point names its network
            marker=dict(size=[float(v) for v in group[cmp.MACS].fillna(0)], sizemode="area", sizeref=ref,
                        sizemin=MIN_BUBBLE, color=color, opacity=0.75, line=dict(color="white", width=1)),
            customdata=[[html_plain(r[cmp.RUN]), html_plain(r[cmp.NETWORK]), _fmt(r[cmp.MACS], " MACs"),
                         _fmt_float(r[cmp.EFFICIENCY])]
                        for _, r in group.iterrows()],
            hovertemplate=("<b>%{customdata[1]}</b> (%{customdata[0]})<br>%{x:,} params<br>"
                           "%{y:.2f}% best validation accuracy<br>%{customdata[2]} per image<br>"
                           "efficiency %{customdata[3]}<extra>" + str(dataset) + "</extra>")))
        front = group[group[cmp.PARETO]].sort_values(cmp.PARAMS)
        if len(front):
            fig.add_trace(go.Scatter(
                x=[int(v) for v in front[cmp.PARAMS]], y=[float(v) for v in front[cmp.ACC]], mode="lines+markers",
                marker=dict(symbol="diamond-open", size=13, color=color, line=dict(width=2)),  # one run: a mark
                line=dict(color=color, width=2, dash="dot", shape="hv"), name=f"Pareto front ({dataset})",
                legendgroup=dataset, hoverinfo="skip"))
    if budget:
        fig.add_vline(x=budget, line_dash="dash", line_color="#E45756", line_width=2)
        top = max([int(v) for v in data[cmp.PARAMS]] + [budget])
        fig.add_vrect(x0=budget, x1=top * 4, fillcolor="#E45756", opacity=0.07, line_width=0)
        fig.add_annotation(x=math.log10(budget), y=1, yref="paper", text=f" budget {format_short(budget)} params",
                           showarrow=False, xanchor="left", yanchor="top", font=dict(color="#E45756"))
    # ticks at powers of ten only, written 1k, 10k, 100k, 1M (not "2 ... 100k 2 3")
    fig.update_xaxes(type="log", title_text="parameters (log scale)", dtick=1, tickformat="~s")
    fig.update_yaxes(title_text="best validation accuracy (%)")
    title = "Accuracy against parameters (bubble area ∝ MACs per image; dotted: Pareto front)"
    return _layout(fig, title, 470)


def _fmt(value, unit: str = "") -> str:
    return "-" if value is None or pd.isna(value) else f"{format_short(value)}{unit}"


def _fmt_float(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):.3g}"


def curves(runs: Mapping[str, pd.DataFrame]) -> go.Figure:
    """Per-epoch validation accuracy (left) and losses (right: train solid, validation dashed)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=("Validation accuracy (%)", "Loss (solid: train, dashed: validation)"))
    for i, (label, frame) in enumerate(runs.items()):
        color, label = _color(i), html_plain(label)  # run labels hold network names: visitors' text
        epochs = list(frame["epoch"])
        fig.add_trace(go.Scatter(x=epochs, y=[100 * v for v in frame["val_acc"]], mode="lines+markers",
                                 line=dict(color=color, width=2), name=label, legendgroup=label,
                                 hovertemplate="epoch %{x}<br>%{y:.2f}%<extra>" + label + "</extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=epochs, y=list(frame["train_loss"]), mode="lines+markers",
                                 line=dict(color=color, width=2), name=label, legendgroup=label, showlegend=False,
                                 hovertemplate="epoch %{x}<br>train loss %{y:.4f}<extra>" + label + "</extra>"),
                      row=1, col=2)
        fig.add_trace(go.Scatter(x=epochs, y=list(frame["val_loss"]), mode="lines+markers",
                                 line=dict(color=color, width=2, dash="dash"), name=label, legendgroup=label,
                                 showlegend=False,
                                 hovertemplate="epoch %{x}<br>validation loss %{y:.4f}<extra>" + label + "</extra>"),
                      row=1, col=2)
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(title_text="accuracy (%)", row=1, col=1)
    fig.update_yaxes(title_text="cross-entropy loss", row=1, col=2)
    fig.update_annotations(font=dict(size=13))
    return _layout(fig, "Training curves, per epoch", 430)


def zoo_bubbles(frame: pd.DataFrame, highlight: tuple[str, ...] = (),
                labels: tuple[str, ...] | None = None) -> go.Figure:
    """Top-1 (%) against GMACs per image (log axis), bubble area ∝ parameters, one colour per
    family; `highlight` (torchvision names) get a black outline; only `labels` (torchvision
    names; all when None) are written next to their bubble, the rest show on hover."""
    fig = go.Figure()
    ref = _sizeref([float(v) for v in frame["Params"]])
    for i, (family, group) in enumerate(frame.groupby("Family", sort=False)):
        fig.add_trace(go.Scatter(
            x=list(group["GMACs"]), y=list(group["Top-1 (%)"]), mode="markers+text", name=family,
            text=[m if labels is None or n in labels else "" for m, n in zip(group["Model"], group["torchvision"])],
            textposition=[LABEL_POSITIONS.get(n, "top center") for n in group["torchvision"]], textfont=dict(size=11),
            marker=dict(size=list(group["Params"]), sizemode="area", sizeref=ref, sizemin=MIN_BUBBLE,
                        color=_color(i), opacity=0.7,
                        line=dict(color=["black" if n in highlight else "white" for n in group["torchvision"]],
                                  width=[3 if n in highlight else 1 for n in group["torchvision"]])),
            customdata=[[format_short(p), y if not pd.isna(y) else "", w, m]
                        for p, y, w, m in zip(group["Params"], group["Year"], group["Weights"], group["Model"])],
            hovertemplate=("<b>%{customdata[3]}</b> %{customdata[1]}<br>%{y:.1f}% ImageNet top-1<br>"
                           "%{x:.3f} GMACs per image<br>%{customdata[0]} parameters<br>weights %{customdata[2]}"
                           "<extra></extra>")))
    fig.update_xaxes(type="log", title_text="GMACs per image (log scale; FLOPs = 2 × MACs)")
    fig.update_yaxes(title_text="ImageNet top-1 accuracy (%)")
    return _layout(fig, "Accuracy against operations, bubble area ∝ parameters (after Canziani et al. 2016)", 560)


def depth_profiles(profiles: Mapping[str, pd.DataFrame]) -> go.Figure:
    """Two rows sharing the depth axis (weight layer number): output activations per image and
    parameters of each conv/linear layer, log scales."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.09,
                        subplot_titles=("Activations: output values per image of each weight layer",
                                        "Parameters of each weight layer"))
    for i, (label, p) in enumerate(profiles.items()):
        color = _color(i)
        custom = [[layer, out] for layer, out in zip(p["layer"], p["output"])]
        fig.add_trace(go.Scatter(x=list(p["depth"]), y=list(p["activations"]), mode="lines+markers", name=label,
                                 legendgroup=label, line=dict(color=color, width=2), marker=dict(size=5),
                                 customdata=custom,
                                 hovertemplate=("layer %{x}: %{customdata[0]} → %{customdata[1]}<br>"
                                                "%{y:,} values per image<extra>" + label + "</extra>")), row=1, col=1)
        fig.add_trace(go.Scatter(x=list(p["depth"]), y=list(p["params"]), mode="lines+markers", name=label,
                                 legendgroup=label, showlegend=False, line=dict(color=color, width=2),
                                 marker=dict(size=5), customdata=custom,
                                 hovertemplate=("layer %{x}: %{customdata[0]}<br>%{y:,} parameters"
                                                "<extra>" + label + "</extra>")), row=2, col=1)
    fig.update_yaxes(type="log", title_text="values (log)", row=1, col=1)
    fig.update_yaxes(type="log", title_text="parameters (log)", row=2, col=1)
    fig.update_xaxes(title_text="weight layer (conv or linear, in execution order)", row=2, col=1)
    fig.update_annotations(font=dict(size=13))
    fig = _layout(fig, "Along the depth: where the memory is and where the parameters are", 600)
    return fig.update_layout(legend=dict(y=1.02, yanchor="bottom", x=1, xanchor="right"), margin=dict(t=90))


def explainer_bars(e: Explainer) -> go.Figure:
    """Parameters (left) and MACs per image (right) of both designs, each bar stacked by layer."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("Parameters (weights + biases)", "MACs per image"))
    for col, getter in ((1, "layer_params"), (2, "layer_macs")):
        for v, color in ((e.a, "#BAB0AC"), (e.b, "#54A24B")):
            layers = getattr(v, getter)()
            for k, (name, value) in enumerate(layers):
                fig.add_trace(go.Bar(x=[v.label], y=[value], name=name, marker_color=color,
                                     marker_line=dict(color="white", width=2), opacity=1 - 0.2 * (k % 2),
                                     text=[format_short(value)], textposition="inside",
                                     hovertemplate=f"{v.label}<br>{name}: %{{y:,}}<extra></extra>"),
                              row=1, col=col)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(tickformat="~s")
    fig.update_annotations(font=dict(size=13))
    return _layout(fig, "", 320, legend=False).update_layout(margin=dict(t=40))


__all__ = ["accuracy_vs_params", "curves", "zoo_bubbles", "depth_profiles", "explainer_bars"]
