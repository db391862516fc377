"""The Inspect page's pieces: choosing what to look at (a run's best checkpoint or the current,
untrained network; a validation image or an upload), and the views: Grad-CAM and CAM overlays
with top-k predictions, feature maps, first-layer filters, and the validation set (confusion
matrix, per-class accuracy, misclassified images).

The numbers and pictures come from explorer.interpret.explain (pure functions); the Plotly figures are
built by the `*_figure` functions below, which do not call streamlit. Loaded networks are cached
per run (path + checkpoint time) with a lock, because captum hooks the shared model while it works.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from torch import nn

from explorer.interpret import explain as ip
from explorer.interpret.images import should_invert, EXTENSIONS, MAX_UPLOAD_BYTES, ImageError, decode_image
from explorer.errors import UserError
from explorer.core.spec import NetworkSpec
from explorer.training.checkpoint import RunData
from explorer.training.runs import RunRecord, list_runs
from explorer.training.status import parse_run_name
from explorer.text import markdown_plain
from ui import state

UNTRAINED = "untrained"      # the source option for the current network with random weights
OFFLINE_SETS = ("shapes", "mnist5k", "digits")
TABS = ("Grad-CAM & CAM", "Feature maps", "Filters", "Validation set")
MAX_FEATURE_MAPS = 32        # strongest channels shown
GALLERY = 24                 # misclassified images shown
K = state.W_INSPECT          # widget key prefix
STATIC = {"displayModeBar": False}   # pictures: no zoom toolbar over the title


@dataclass(frozen=True)
class Subject:
    """What the page looks at: a network in eval mode (in-place ops off) and where images come from."""

    key: str                      # cache key (run path + checkpoint time, or spec + dataset)
    title: str
    caption: str
    spec: NetworkSpec             # as the network was built (adapted to its dataset)
    model: nn.Module
    data: RunData | None          # validation images, None when they cannot be loaded
    data_error: str | None
    notices: tuple[str, ...]
    macs: int
    lock: threading.Lock


@dataclass(frozen=True)
class Picture:
    """The image being explained: uint8 (C, H, W), and what is known about it."""

    image: torch.Tensor
    label: int | None             # true class (validation images)
    mask: np.ndarray | None       # bool (H, W): the shape's pixels (shapes dataset)
    title: str


# --- sources ---------------------------------------------------------------------------------------
runs_dir = state.runs_dir   # the one resolver every page uses (explorer.training.runs.runs_root)


def inspectable_runs(records: list[RunRecord] | None = None) -> list[RunRecord]:
    """Readable runs with a checkpoint, newest first."""
    records = list_runs(runs_dir()) if records is None else records
    runs = [r for r in records if r.readable and (r.path / "checkpoint.safetensors").exists()]
    return sorted(runs, key=lambda r: r.path.name, reverse=True)


def _unreadable_note(records: list[RunRecord]) -> None:
    bad = [r for r in records if not r.readable]
    if bad:
        st.sidebar.caption(f"{len(bad)} run folder{'s' * (len(bad) != 1)} cannot be read and "
                           f"{'are' if len(bad) != 1 else 'is'} left out: "
                           + "; ".join(f"{r.path.name}: unreadable: {r.message}" for r in bad[:5]))


def _run_label(r: RunRecord) -> str:
    acc = "" if r.best_val_acc is None else f" · {100 * r.best_val_acc:.1f}% val"
    status = "" if r.status == "completed" else f" · {r.status}"
    return f"{r.name} on {r.dataset}{acc}{status} ({parse_run_name(r.path.name).started or r.path.name})"


def _macs(spec: NetworkSpec) -> int:
    from explorer.core.analysis import analyze

    try:
        return int(analyze(spec).totals.macs)
    except Exception:  # noqa: BLE001 - only used to size the validation pass
        return 0


@st.cache_resource(max_entries=6, show_spinner="Loading the run…")
def _load_run(path: str, mtime: float) -> Subject:
    from explorer.training.checkpoint import load_run_data, load_run_model
    from explorer.training.runs import load_run

    spec, model = load_run_model(Path(path))
    data, error = None, None
    try:
        data = load_run_data(Path(path))
    except UserError as e:
        error = str(e)
    record = load_run(Path(path))
    acc = "" if record is None or record.best_val_acc is None else \
        f" · best validation accuracy {100 * record.best_val_acc:.1f}%"
    dataset = record.dataset if record else "?"
    return Subject(key=f"{path}@{mtime}", title=spec.name, notices=(),
                   caption=f"Run {Path(path).name} · trained on {dataset}{acc} · best checkpoint",
                   spec=spec, model=ip.interpretable(model), data=data, data_error=error, macs=_macs(spec),
                   lock=threading.Lock())


@st.cache_resource(max_entries=4, show_spinner="Building the network…")
def _load_untrained(spec_json: str, dataset: str) -> Subject:
    spec, model, data, notices = ip.load_untrained(NetworkSpec.from_json(spec_json), dataset)
    digest = hashlib.sha1(spec_json.encode()).hexdigest()[:10]
    return Subject(key=f"untrained:{digest}:{dataset}", title=spec.name, notices=notices,
                   caption=f"Current network, untrained (PyTorch's default random initialisation, seed 0) · "
                           f"images from {dataset}", spec=spec, model=ip.interpretable(model), data=data,
                   data_error=None, macs=_macs(spec), lock=threading.Lock())


def choose_subject(current: NetworkSpec) -> Subject | None:
    """Sidebar: which network. Shows an error and returns None when it cannot be loaded."""
    records = list_runs(runs_dir())
    runs = inspectable_runs(records)
    by_path = {str(r.path): r for r in runs}
    options = [*by_path, UNTRAINED]
    source = st.sidebar.selectbox(
        "Network", options, key=K + "source", persist_state="session",
        format_func=lambda o: "Current network (untrained)" if o == UNTRAINED else _run_label(by_path[o]),
        help="A training run's best checkpoint (from the Train page or `python -m explorer train`), "
             "or the network on the Build page with random weights.")
    if not runs:
        st.sidebar.caption("No trained runs yet: train one on the Train page to see what it learned.")
    _unreadable_note(records)
    try:
        if source == UNTRAINED or source is None:
            default = "shapes" if len(current.input) == 3 and current.input[0] == 3 else "mnist5k"
            dataset = st.sidebar.selectbox("Images from", OFFLINE_SETS, index=OFFLINE_SETS.index(default),
                                           key=K + "dataset", help="An offline dataset; the network is fitted "
                                           "to it (channels, classes, image size) as training would.")
            return _load_untrained(current.to_json(indent=None), dataset)
        ckpt = Path(source) / "checkpoint.safetensors"
        return _load_run(source, ckpt.stat().st_mtime)
    except Exception as e:  # noqa: BLE001 - a broken run (or spec) is a message, not a traceback
        why = state.describe_error(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
        st.error(f"Cannot inspect this network. {why}", icon=":material/error:")
        return None


def choose_picture(subject: Subject) -> Picture | None:
    """Sidebar: a validation image (by index) or an uploaded one."""
    c, h, w = subject.spec.input
    data = subject.data
    modes = ["Validation image", "Upload"] if data is not None else ["Upload"]
    mode = st.sidebar.segmented_control("Image", modes, default=modes[0], key=f"{K}from.{len(modes)}",
                                        required=True, persist_state="session")
    if data is not None and mode == "Validation image":
        n = len(data.x_val)
        i = st.sidebar.number_input(f"Validation image (0 to {n - 1:,})", 0, n - 1, 0, step=1,
                                    key=f"{K}index.{subject.key}", persist_state="session")
        i = int(min(max(i or 0, 0), n - 1))
        label = int(data.y_val[i])
        st.sidebar.image(ip.enlarge(data.x_val[i], ip.display_scale(h, w, 96)),
                         caption=f"#{i}: {markdown_plain(data.class_names[label])}")
        mask = None if data.masks_val is None else data.masks_val[i].numpy()
        return Picture(data.x_val[i], label, mask, f"validation image #{i} (true class: {markdown_plain(data.class_names[label])})")
    if subject.data_error:
        st.sidebar.info(f"Validation images are not available: {subject.data_error}", icon=":material/info:")
    upload = st.sidebar.file_uploader("Upload an image", type=list(EXTENSIONS), key=K + "upload",
                                      max_upload_size=MAX_UPLOAD_BYTES // 2**20,
                                      help=f"PNG, JPEG, GIF, BMP or WebP up to {MAX_UPLOAD_BYTES // 2**20} MiB; "
                                           f"it is scaled and centre-cropped to {w}×{h}.")
    colours = "as uploaded"
    if c == 1:
        colours = st.sidebar.radio("Colours", ("auto", "as uploaded", "inverted"), horizontal=True,
                                   key=K + "colours", help="MNIST-like networks learned white digits on black; "
                                   "auto inverts a drawing that is dark on light")
    if upload is None:
        return None
    try:
        image = decode_image(upload.getvalue(), c, (h, w), invert=colours == "inverted")
    except ImageError as e:
        st.error(f"Cannot use {markdown_plain(upload.name)}: {markdown_plain(str(e))}", icon=":material/broken_image:")
        return None
    train_mean = float(data.mean.flatten()[0]) if data is not None else None
    if colours == "auto" and should_invert(image, train_mean):
        image = 255 - image
        st.sidebar.caption("Inverted automatically: the upload is dark on light, and this network learned "
                           "light on dark. Choose \"as uploaded\" to keep it.")
    return Picture(image, None, None, f"uploaded {markdown_plain(upload.name)}")


# --- page ------------------------------------------------------------------------------------------
def header(subject: Subject) -> None:
    st.title(f"Inspect · {markdown_plain(subject.title)}", anchor=False)
    st.caption(subject.caption)
    for notice in subject.notices:
        st.caption(f":material/info: {notice[:1].upper()}{notice[1:]}.")


def tabs(subject: Subject, picture: Picture | None) -> None:
    from ui.views import guarded

    containers = st.tabs(list(TABS), key=K + "tab", on_change="rerun")
    renderers = (gradcam_view, feature_maps_view, filters_view, validation_view)
    for container, render in zip(containers, renderers):
        if container.open is False:
            continue
        with container, guarded(f"the {render.__name__.replace('_view', '').replace('_', ' ')} view"):
            if render in (gradcam_view, feature_maps_view) and picture is None:
                st.info("Upload an image in the sidebar to see what the network makes of it.",
                        icon=":material/upload:")
            else:
                render(subject, picture)


def _x(subject: Subject, picture: Picture) -> torch.Tensor:
    return subject.data.normalize(picture.image[None]) if subject.data is not None else \
        _normalize_without_data(picture.image[None])


def _normalize_without_data(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255 - 0.5) / 0.25   # no dataset statistics: a neutral guess


def class_names(subject: Subject) -> tuple[str, ...]:
    if subject.data is not None:
        return subject.data.class_names
    return tuple(str(i) for i in range(subject.spec.num_classes))


def _class_choice(column, subject: Subject, picture: Picture, names, probs) -> int:
    """The class whose evidence to show (default: the predicted one). One widget per image: the
    "predicted: ..." label then always belongs to the image shown (with one key for all images the
    box kept showing the previous image's prediction)."""
    pred = int(probs.argmax())
    image_key = hashlib.sha1(picture.title.encode("utf-8", "replace")).hexdigest()[:12]
    target = column.selectbox("Class", [-1, *range(len(names))], key=f"{K}class.{subject.key}.{image_key}",
                              format_func=lambda c: f"predicted: {names[pred]} ({100 * probs[pred]:.1f}%)"
                              if c == -1 else f"{names[c]} ({100 * probs[c]:.1f}%)",
                              help="Whose evidence to show; by default the class the network predicts.")
    return pred if target == -1 else int(target)


def gradcam_view(subject: Subject, picture: Picture) -> None:
    model, names = subject.model, class_names(subject)
    choices = ip.layer_choices(model)
    if not choices:
        st.info("This network has no convolutional layer, so there is nothing for Grad-CAM to look at.")
        return
    x = _x(subject, picture)
    with subject.lock:
        probs = ip.predict(model, x)[0]
    labels = {c.name: c.label for c in choices}
    names_list = [c.name for c in choices]
    left, right = st.columns(2)
    layer = left.selectbox("Layer", names_list, index=names_list.index(ip.default_layer(model) or names_list[-1]),
                           format_func=labels.get, key=f"{K}layer.{subject.key}",
                           help="Grad-CAM weighs this layer's feature maps by how much each raises the class "
                                "score. The default, the last conv layer's rectified output, is the Grad-CAM "
                                "paper's choice; earlier layers give finer but less class-specific maps.")
    target = _class_choice(right, subject, picture, names, probs)
    with subject.lock:
        raw = ip.gradcam(model, x, layer, target)[0]
        info = ip.cam_info(model)
        cam_raw = ip.cam(model, x, target)[0] if info.applies else None
    c, h, w = picture.image.shape
    s = ip.display_scale(h, w)
    heat = ip.normalize_map(raw)
    cols = st.columns(3)
    truth = "" if picture.label is None else f" · true: {names[picture.label]}"
    cols[0].plotly_chart(image_figure(ip.enlarge(picture.image, s), f"Input{truth}"), key="fig.in.input",
                         config=STATIC)
    peak = ip.peak(ip.upsample(raw, (h, w))) if raw.max() > 0 else None
    cols[1].plotly_chart(image_figure(ip.overlay(picture.image, heat, scale=s), f"Grad-CAM · {layer} · "
                                      f"{names[target]}", colorbar="Grad-CAM / max", peak=peak, scale=s),
                         key="fig.in.gradcam", config=STATIC)
    if raw.max() <= 0:
        cols[1].info(f"Grad-CAM is zero everywhere: nothing in {layer} raises the score of {markdown_plain(names[target])} "
                     f"(all evidence is negative).", icon=":material/info:")
    elif picture.mask is not None:
        hit = bool(picture.mask[peak])
        game = " (the pointing game)" if target == picture.label else ""
        cols[1].caption(f"Peak at row {peak[0]}, column {peak[1]}: "
                        f"{'on the shape ✓' if hit else 'off the shape ✗'}{game}.")
    with cols[2]:
        if cam_raw is None:
            st.markdown("**CAM**")
            st.info(info.reason, icon=":material/block:")
        else:
            cam_heat = ip.normalize_map(np.maximum(cam_raw, 0))
            st.plotly_chart(image_figure(ip.overlay(picture.image, cam_heat, scale=s),
                                         f"CAM · {names[target]}", colorbar="CAM / max"), key="fig.in.cam",
                            config=STATIC)
            r = ip.correlation(ip.upsample(np.maximum(cam_raw, 0), (h, w)), ip.upsample(raw, (h, w)))
            same = layer == info.features
            if cam_heat.max() <= 0:
                st.info(f"CAM is negative everywhere: every location counts against {markdown_plain(names[target])}.",
                        icon=":material/info:")
            st.caption(f"CAM (Zhou et al. 2016): $M_c(x,y) = \\sum_k w_k^c f_k(x,y)$ over the "
                       f"{subject.model.get_submodule(info.linear).in_features} maps $f_k$ of "
                       f"{info.features}, weighted by {info.linear}'s weights $w^c$; negative values clipped, as "
                       f"Grad-CAM's ReLU does. Correlation with the Grad-CAM map: "
                       + ("undefined (a map is zero everywhere)" if np.isnan(r) else f"**r = {r:.3f}**")
                       + (f" (the same map: at {layer}, Grad-CAM $= \\mathrm{{ReLU}}(M_c)/(hw)$)." if same else
                          f"; choose layer {info.features} to see them agree."))
    st.plotly_chart(topk_figure(ip.top_k(probs, names, 5), picture.label), key="fig.in.topk")
    st.caption("Grad-CAM (Selvaraju et al. 2017): $\\alpha_k^c = \\frac{1}{hw}\\sum_{x,y} \\partial y_c / "
               "\\partial A_k(x,y)$, map $= \\mathrm{ReLU}(\\sum_k \\alpha_k^c A_k)$ over the layer's maps $A_k$, "
               "upsampled bilinearly to the image. Each map is divided by its maximum and blended 50/50 over the "
               "image (turbo colours); × marks the peak.")


def feature_maps_view(subject: Subject, picture: Picture) -> None:
    choices = ip.layer_choices(subject.model)
    if not choices:
        st.info("This network has no convolutional layer.")
        return
    labels = {c.name: c.label for c in choices}
    names_list = [c.name for c in choices]
    first_rectified = next((c.name for c in choices if c.kind == "activation"), names_list[0])
    layer = st.selectbox("Layer", names_list, index=names_list.index(first_rectified), format_func=labels.get,
                         key=f"{K}fmap.{subject.key}",
                         help="Any convolutional or composite layer, or the activation after one.")
    with subject.lock:
        maps = ip.feature_maps(subject.model, _x(subject, picture), layer)
    order = ip.strongest(maps, MAX_FEATURE_MAPS)
    st.plotly_chart(feature_maps_figure(maps, order), key="fig.in.fmaps")
    st.caption(f"{layer}: {maps.shape[0]} maps of {maps.shape[1]}×{maps.shape[2]} for {picture.title}; the "
               f"{len(order)} with the largest mean activation, strongest first, each scaled to its own "
               f"minimum (dark) and maximum (bright). Hover for the channel and its value.")


def filters_view(subject: Subject, picture: Picture | None) -> None:
    found = ip.first_conv(subject.model)
    if found is None:
        st.info("This network has no convolutional layer, so there are no filters to show.")
        return
    name, weight = found
    mosaic, scales, rgb = ip.filter_mosaic(weight, scale=max(2, 48 // max(weight.shape[2:])))
    k, cin, kh, kw = weight.shape
    st.markdown(f"**{name}**: {k} filters of {cin}×{kh}×{kw}" + (" shown in RGB" if rgb else
                " shown in grey" + ("" if cin == 1 else f" (the mean over the {cin} input channels)")))
    st.plotly_chart(filters_figure(mosaic, rgb), key="fig.in.filters", config=STATIC)
    st.caption("Each filter is scaled by its own largest |weight|: mid-grey is 0, "
               + ("a channel at 0 or 255 is −/+ that maximum (the colour bar), so a red patch weighs red "
                  "positively." if rgb else "black and white are −/+ that maximum (the colour bar).")
               + " The bars below give each filter's maximum, the scale of its picture."
               + (" These are random initial weights: train the network to see edge and colour detectors "
                  "appear." if subject.key.startswith("untrained") else ""))
    st.plotly_chart(filter_scale_figure(scales), key="fig.in.fscale")


@st.cache_resource(max_entries=8, show_spinner="Running the validation set…")
def _validation(_subject: Subject, key: str, n: int) -> np.ndarray:
    with _subject.lock:
        return ip.predict(_subject.model, _subject.data.normalize(_subject.data.x_val[:n]))


def validation_view(subject: Subject, picture: Picture | None) -> None:
    data = subject.data
    if data is None:
        st.info(f"Validation images are not available: {subject.data_error}", icon=":material/info:")
        return
    total = len(data.x_val)
    n = ip.eval_count(total, subject.macs)
    probs = _validation(subject, subject.key, n)
    y = data.y_val[:n].numpy()
    names = data.class_names
    cm = ip.confusion_matrix(y, probs.argmax(axis=1), len(names))
    acc = np.trace(cm) / max(1, cm.sum())
    st.metric("Validation accuracy (top-1)", f"{100 * acc:.1f}%", border=True,
              help=f"Over {n:,} of the {total:,} validation images; chance is about {100 / len(names):.0f}%.")
    if n < total:
        st.caption(f"The first {n:,} of {total:,} validation images (a big network on this machine).")
    left, right = st.columns([3, 2])
    left.plotly_chart(confusion_figure(cm, names), key="fig.in.cm")
    right.plotly_chart(per_class_figure(ip.per_class_accuracy(cm), cm.sum(axis=1), names), key="fig.in.pca")
    wrong = ip.misclassified(y, probs)
    st.subheader(f"Misclassified: {len(wrong):,} of {n:,}")
    if len(wrong) == 0:
        st.success("Every image is classified correctly.", icon=":material/check_circle:")
        return
    shown = wrong[:GALLERY]
    _, h, w = data.x_val.shape[1:]
    s = ip.display_scale(h, w, 96)
    pred = probs.argmax(axis=1)
    st.image([ip.enlarge(data.x_val[i], s) for i in shown], width=96,
             caption=[f"#{i}: {names[y[i]]} → {names[pred[i]]} ({100 * probs[i, pred[i]]:.0f}%)" for i in shown])
    st.caption(f"The {len(shown)} most confident mistakes: true class → predicted (probability). Open one with "
               f"its number in the sidebar to see where the network looked.")


# --- figures (no streamlit) ------------------------------------------------------------------------
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
    """An RGB picture; with a turbo colour bar 0..1 for overlays and a marker at the map's peak."""
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    if colorbar:
        fig.add_trace(_colorbar_trace(ip.HEAT_COLORSCALE, colorbar, 0, 1))
    if peak is not None:
        fig.add_trace(go.Scatter(x=[(peak[1] + 0.5) * scale - 0.5], y=[(peak[0] + 0.5) * scale - 0.5],
                                 mode="markers", marker=dict(symbol="x-thin", size=14,
                                                             line=dict(width=3, color="white")),
                                 hovertemplate="peak<extra></extra>"))
    return _image_layout(fig, title, height)


def topk_figure(rows: list[tuple[int, str, float]], true_label: int | None) -> go.Figure:
    colours = ["#54A24B" if i == true_label else "#4C78A8" for i, _, _ in rows]
    fig = go.Figure(go.Bar(y=[n for _, n, _ in rows], x=[100 * p for _, _, p in rows], orientation="h",
                           marker_color=colours, text=[f"{100 * p:.1f}%" for _, _, p in rows],
                           textposition="auto", hovertemplate="%{y}: %{x:.2f}%<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")   # class names like "7" stay labels
    fig.update_xaxes(title_text="probability (%)", range=[0, 100])
    title = f"Top-{len(rows)} predictions" + ("" if true_label is None else " (green: the true class)")
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=60 + 36 * len(rows),
                      margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig


def feature_maps_figure(maps: np.ndarray, order: np.ndarray, columns: int = 8) -> go.Figure:
    sel = maps[order]
    mosaic = ip.mosaic_maps(sel, columns=columns)
    n, h, w = sel.shape
    channel = np.full(mosaic.shape, -1)
    value = np.full(mosaic.shape, np.nan)
    for j, ch in enumerate(order):
        r, q = divmod(j, columns)
        channel[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = ch
        value[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = maps[ch]
    fig = go.Figure(go.Heatmap(z=mosaic, colorscale=ip.FEATURE_COLORSCALE, zmin=0, zmax=1,
                               customdata=np.stack([channel, value], axis=-1),
                               colorbar=dict(title=dict(text="per map: min → max", side="right"), thickness=14,
                                             tickvals=[0, 1], ticktext=["min", "max"]),
                               hovertemplate="channel %{customdata[0]}<br>value %{customdata[1]:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    rows = -(-n // columns)
    what = f"all {n}" if n == len(maps) else f"the {n} strongest of {len(maps)}"
    return _image_layout(fig, f"Feature maps ({what})", min(900, 80 + rows * max(70, 760 // columns)), 110)


def filters_figure(mosaic: np.ndarray, rgb: bool) -> go.Figure:
    fig = go.Figure(go.Image(z=mosaic, hoverinfo="skip"))
    grey = [[0, "rgb(0,0,0)"], [1, "rgb(255,255,255)"]]
    fig.add_trace(_colorbar_trace(grey, "w / max|w|", -1, 1,
                                  dict(tickvals=[-1, 0, 1], ticktext=["−max", "0", "+max"])))
    rows = mosaic.shape[0] / mosaic.shape[1]
    return _image_layout(fig, "First-layer filters", int(min(700, max(220, 60 + 900 * rows))))


def filter_scale_figure(scales: np.ndarray) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(range(len(scales))), y=scales, marker_color="#4C78A8",
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
    labels = [str(n) for n in names]
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
    fig = go.Figure(go.Bar(y=[str(n) for n in names], x=100 * np.nan_to_num(acc), orientation="h",
                           marker_color="#54A24B", customdata=counts,
                           text=[("-" if np.isnan(a) else f"{100 * a:.0f}%") for a in acc], textposition="auto",
                           hovertemplate="%{y}: %{x:.1f}% of %{customdata} images<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title_text="accuracy (%)", range=[0, 100])
    fig.update_layout(title=dict(text="Per-class accuracy", x=0, xanchor="left"),
                      height=min(900, 160 + 34 * len(names)), margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig
