"""Plotly figures of the Inspect page (no streamlit): pictures with a colour bar and the heat
map's peak, top-k predictions, feature maps, first-layer filters and their scales, the confusion
matrix and per-class accuracy. Built from explorer.interpret's arrays; every axis names its unit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from explorer.interpret.features import map_grid
from explorer.interpret.pictures import FEATURE_COLORSCALE, HEAT_COLORSCALE
from explorer.text import html_plain
from explorer.units import format_percent

STATIC = {"displayModeBar": False}   # plotly_chart config for pictures: no zoom toolbar over the title
TRUE_COLOR, BAR_COLOR = "#54A24B", "#4C78A8"


def _image_layout(fig: go.Figure, title: str, height: int, right: int = 95) -> go.Figure:
    """Pictures: no axes, square pixels; the same right margin (room for a colour bar) on every
    picture, so pictures side by side come out the same size with or without a bar."""
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", font=dict(size=14)), height=height,
                      margin=dict(l=0, r=right, t=40, b=0), showlegend=False)
    return fig


def _colorbar_trace(colorscale: Any, title: str, lo: float, hi: float, ticks: dict | None = None) -> go.Scatter:
    """An invisible point that only draws a colour bar (go.Image has none)."""
    bar = dict(title=dict(text=title, side="right"), thickness=14, len=0.9, x=1.03, xanchor="left", **(ticks or {}))
    return go.Scatter(x=[None], y=[None], mode="markers", hoverinfo="skip", marker=dict(
        colorscale=colorscale, cmin=lo, cmax=hi, color=[lo], showscale=True, colorbar=bar))


def image_figure(rgb: np.ndarray, title: str, *, colorbar: str | None = None,
                 peak: tuple[int, int] | None = None, scale: int = 1, height: int = 340) -> go.Figure:
    """An RGB picture (H*s, W*s, 3); with a turbo colour bar 0..1 for overlays and a marker at the
    map's peak (row, column) in image pixels, drawn at `scale`."""
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    if colorbar:
        fig.add_trace(_colorbar_trace(HEAT_COLORSCALE, colorbar, 0, 1))
    if peak is not None:
        fig.add_trace(go.Scatter(x=[(peak[1] + 0.5) * scale - 0.5], y=[(peak[0] + 0.5) * scale - 0.5],
                                 mode="markers", marker=dict(symbol="x-thin", size=14,
                                                             line=dict(width=3, color="white")),
                                 hovertemplate="peak<extra></extra>"))
    return _image_layout(fig, html_plain(title), height)


def topk_figure(rows: list[tuple[int, str, float]], true_label: int | None) -> go.Figure:
    """Horizontal bars of [(class, name, probability)], most likely on top; the true class green."""
    colours = [TRUE_COLOR if i == true_label else BAR_COLOR for i, _, _ in rows]
    fig = go.Figure(go.Bar(y=[html_plain(n) for _, n, _ in rows], x=[100 * p for _, _, p in rows], orientation="h",
                           marker_color=colours, text=[format_percent(p) for _, _, p in rows],
                           textposition="auto", hovertemplate="%{y}: %{x:.2f}%<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")   # class names like "7" stay labels
    fig.update_xaxes(title_text="probability (%)", range=[0, 100])
    title = f"Top-{len(rows)} predictions" + ("" if true_label is None else " (green: the true class)")
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=60 + 36 * len(rows),
                      margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig


def feature_maps_figure(maps: np.ndarray, order: np.ndarray, columns: int = 8) -> go.Figure:
    """The channels `order` of maps (C, h, w) tiled, each scaled to its own min..max; hover gives
    the channel and its raw value."""
    mosaic, channel, value = map_grid(maps, order, columns)
    n = len(order)
    fig = go.Figure(go.Heatmap(z=mosaic, colorscale=FEATURE_COLORSCALE, zmin=0, zmax=1,
                               customdata=np.stack([channel, value], axis=-1),
                               colorbar=dict(title=dict(text="per map: min → max", side="right"), thickness=14,
                                             tickvals=[0, 1], ticktext=["min", "max"]),
                               hovertemplate="channel %{customdata[0]}<br>value %{customdata[1]:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    rows = -(-n // columns)
    what = f"all {n}" if n == len(maps) else f"the {n} strongest of {len(maps)}"
    return _image_layout(fig, f"Feature maps ({what})", min(900, 80 + rows * max(70, 760 // columns)), 110)


def filters_figure(mosaic: np.ndarray, rgb: bool) -> go.Figure:
    """The filter mosaic (explorer.interpret.features.filter_mosaic) with a -max..+max colour bar."""
    fig = go.Figure(go.Image(z=mosaic, hoverinfo="skip"))
    grey = [[0, "rgb(0,0,0)"], [1, "rgb(255,255,255)"]]
    fig.add_trace(_colorbar_trace(grey, "w / max|w|", -1, 1,
                                  dict(tickvals=[-1, 0, 1], ticktext=["−max", "0", "+max"])))
    rows = mosaic.shape[0] / mosaic.shape[1]
    return _image_layout(fig, "First-layer filters", int(min(700, max(220, 60 + 900 * rows))))


def filter_scale_figure(scales: np.ndarray) -> go.Figure:
    """max |weight| per filter (K,), in the mosaic's order."""
    fig = go.Figure(go.Bar(x=list(range(len(scales))), y=scales, marker_color=BAR_COLOR,
                           hovertemplate="filter %{x}: max|w| = %{y:.4f}<extra></extra>"))
    fig.update_xaxes(title_text="filter (left to right, top to bottom above)")
    fig.update_yaxes(title_text="max |weight|")
    fig.update_layout(title=dict(text="Scale of each filter", x=0, xanchor="left"), height=260,
                      margin=dict(l=10, r=10, t=40, b=10), showlegend=False, bargap=0.2)
    return fig


def confusion_figure(cm: np.ndarray, names: tuple[str, ...]) -> go.Figure:
    """Counts as text; colour = share of the true class (row), so rare classes show too."""
    totals = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, np.maximum(totals, 1))
    labels = [html_plain(str(n)) for n in names]
    fig = go.Figure(go.Heatmap(z=share, x=labels, y=labels, colorscale="Blues", zmin=0, zmax=1,
                               text=cm, texttemplate="%{text}" if len(names) <= 20 else None,
                               colorbar=dict(title=dict(text="share of the row", side="right"), thickness=14),
                               hovertemplate="true %{y}, predicted %{x}: %{text} images (%{z:.1%})<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="true class", type="category")
    fig.update_xaxes(title_text="predicted class", type="category", tickangle=-45 if len(names) > 8 else 0)
    fig.update_layout(title=dict(text="Confusion matrix", x=0, xanchor="left"),
                      height=min(900, 160 + 34 * len(names)), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def per_class_figure(acc: np.ndarray, counts: np.ndarray, names: tuple[str, ...]) -> go.Figure:
    """Accuracy (%) per true class, '-' for a class with no images; hover gives the image count."""
    fig = go.Figure(go.Bar(y=[html_plain(str(n)) for n in names], x=100 * np.nan_to_num(acc), orientation="h",
                           marker_color=TRUE_COLOR, customdata=counts,
                           text=[("-" if np.isnan(a) else format_percent(a, 0)) for a in acc], textposition="auto",
                           hovertemplate="%{y}: %{x:.1f}% of %{customdata} images<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title_text="accuracy (%)", range=[0, 100])
    fig.update_layout(title=dict(text="Per-class accuracy", x=0, xanchor="left"),
                      height=min(900, 160 + 34 * len(names)), margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig


__all__ = ["STATIC", "image_figure", "topk_figure", "feature_maps_figure", "filters_figure", "filter_scale_figure",
           "confusion_figure", "per_class_figure"]
