"""The Inspect page's widgets: choosing what to look at (a run's best checkpoint or the current,
untrained network; a validation image or an upload) and the four tabs that show Grad-CAM and CAM
overlays with top-k predictions, feature maps, first-layer filters, and the validation set.

Decisions and numbers come from explorer.interpret (sources: what can be inspected; explain: the
one Grad-CAM/CAM function the CLI uses too; features; evaluate), figures from
explorer.charts.inspect; keys from ui.state. Loaded networks are cached per run (path +
checkpoint time) with a lock, because captum hooks the shared model while it works.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from explorer.charts import inspect as charts
from explorer.core.spec import NetworkSpec
from explorer.errors import UserError
from explorer.interpret import evaluate, features, pictures, sources
from explorer.interpret.explain import agreement, cam_info, explain, predict, top_k
from explorer.interpret.images import EXTENSIONS, MAX_UPLOAD_BYTES, ImageError, decode_image, should_invert
from explorer.interpret.layers import default_layer, first_feature_layer, layer_choices
from explorer.interpret.sources import Picture, Subject
from explorer.text import markdown_plain
from explorer.training.initialise import INIT_LABELS, INIT_NAMES
from explorer.training.runs import list_runs
from explorer.units import format_bytes, format_count, format_percent
from ui import state

UNTRAINED = "untrained"      # the source option for the current network with random weights
TABS = ("Grad-CAM & CAM", "Feature maps", "Filters", "Validation set")
MAX_FEATURE_MAPS = 32        # strongest channels shown
GALLERY = 24                 # misclassified images shown


# --- sources ---------------------------------------------------------------------------------------
runs_dir = state.runs_dir   # the one resolver every page uses (explorer.training.runs.runs_root)


@st.cache_resource(max_entries=6, show_spinner="Loading the run…")
def _load_run(path: str, mtime: float) -> Subject:
    return sources.run_subject(path, mtime)


@st.cache_resource(max_entries=4, show_spinner="Building the network…")
def _load_untrained(spec_json: str, dataset: str, init: str) -> Subject:
    return sources.untrained_subject(NetworkSpec.from_json(spec_json), dataset, init)


def choose_subject(current: NetworkSpec) -> Subject | None:
    """Sidebar: which network. Shows an error and returns None when it cannot be loaded."""
    records = list_runs(runs_dir())
    runs = sources.inspectable_runs(records)
    by_path = {str(r.path): r for r in runs}
    source = st.sidebar.selectbox(
        "Network", [*by_path, UNTRAINED], key=state.IN_SOURCE, persist_state="session",
        format_func=lambda o: "Current network (untrained)" if o == UNTRAINED else sources.run_label(by_path[o]),
        help="A training run's best checkpoint (from the Train page or `python -m explorer train`), "
             "or the network on the Build page with random weights.")
    if not runs:
        st.sidebar.caption("No trained runs yet: train one on the Train page to see what it learned.")
    note = sources.unreadable_text(records)
    if note:
        st.sidebar.caption(note)
    try:
        if source == UNTRAINED or source is None:
            sets = sources.OFFLINE_SETS
            dataset = st.sidebar.selectbox("Images from", sets, index=sets.index(sources.default_dataset(current)),
                                           key=state.IN_DATASET, help="An offline dataset; the network is fitted "
                                           "to it (channels, classes, image size) as training would.")
            init = st.sidebar.selectbox("Initialisation", INIT_NAMES, key=state.IN_INIT, format_func=INIT_LABELS.get,
                                        help="How the random weights are drawn (seed 0), as a training run with "
                                             "this setting starts. Compare the first-layer filters and feature "
                                             "maps of PyTorch's default with He's.")
            return _load_untrained(current.to_json(indent=None), dataset, init)
        return _load_run(source, (Path(source) / sources.CHECKPOINT).stat().st_mtime)
    except Exception as e:  # noqa: BLE001 - a broken run (or spec) is a message, not a traceback
        why = state.describe_error(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
        st.error(f"Cannot inspect this network. {why}", icon=":material/error:")
        return None


def choose_picture(subject: Subject) -> Picture | None:
    """Sidebar: a validation image (by index) or an uploaded one."""
    data = subject.data
    modes = ["Validation image", "Upload"] if data is not None else ["Upload"]
    mode = st.sidebar.segmented_control("Image", modes, default=modes[0], key=state.in_image_from(len(modes)),
                                        required=True, persist_state="session")
    if data is not None and mode == "Validation image":
        _, h, w = subject.spec.input
        n = len(data.x_val)
        i = st.sidebar.number_input(f"Validation image (0 to {format_count(n - 1)})", 0, n - 1, 0, step=1,
                                    key=state.in_index(subject.key), persist_state="session")
        i = int(min(max(i or 0, 0), n - 1))
        label = int(data.y_val[i])
        st.sidebar.image(pictures.enlarge(data.x_val[i], pictures.display_scale(h, w, 96)),
                         caption=f"#{i}: {markdown_plain(data.class_names[label])}")
        mask = None if data.masks_val is None else data.masks_val[i].numpy()
        return Picture(data.x_val[i], label, mask,
                       f"validation image #{i} (true class: {markdown_plain(data.class_names[label])})")
    if subject.data_error:
        st.sidebar.info(f"Validation images are not available: {subject.data_error}", icon=":material/info:")
    return _upload(subject)


def _upload(subject: Subject) -> Picture | None:
    c, h, w = subject.spec.input
    upload = st.sidebar.file_uploader("Upload an image", type=list(EXTENSIONS), key=state.IN_UPLOAD,
                                      max_upload_size=MAX_UPLOAD_BYTES // 2**20,
                                      help=f"PNG, JPEG, GIF, BMP or WebP up to {format_bytes(MAX_UPLOAD_BYTES)}; "
                                           f"it is scaled and centre-cropped to {w}×{h}.")
    colours = "as uploaded"
    if c == 1:
        colours = st.sidebar.radio("Colours", ("auto", "as uploaded", "inverted"), horizontal=True,
                                   key=state.IN_COLOURS, help="MNIST-like networks learned white digits on black; "
                                   "auto inverts a drawing that is dark on light")
    if upload is None:
        return None
    try:
        image = decode_image(upload.getvalue(), c, (h, w), invert=colours == "inverted")
    except ImageError as e:
        st.error(f"Cannot use {markdown_plain(upload.name)}: {markdown_plain(str(e))}", icon=":material/broken_image:")
        return None
    train_mean = float(subject.data.mean.flatten()[0]) if subject.data is not None else None
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

    containers = st.tabs(list(TABS), key=state.IN_TAB, on_change="rerun")
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
    return subject.normalize(picture.image[None])


def _class_choice(column, subject: Subject, picture: Picture, names, probs) -> int:
    """The class whose evidence to show (default: the predicted one). One widget per image: the
    "predicted: ..." label then always belongs to the image shown (with one key for all images the
    box kept showing the previous image's prediction)."""
    pred = int(probs.argmax())
    image_key = hashlib.sha1(picture.title.encode("utf-8", "replace")).hexdigest()[:12]
    target = column.selectbox("Class", [-1, *range(len(names))], key=state.in_class(subject.key, image_key),
                              format_func=lambda c: f"predicted: {names[pred]} ({format_percent(probs[pred])})"
                              if c == -1 else f"{names[c]} ({format_percent(probs[c])})",
                              help="Whose evidence to show; by default the class the network predicts.")
    return pred if target == -1 else int(target)


def _layer_box(column, subject: Subject, choices, default: str | None, key: str, help: str) -> str:
    names = [c.name for c in choices]
    labels = {c.name: c.label for c in choices}
    return column.selectbox("Layer", names, index=names.index(default or names[-1]), format_func=labels.get,
                            key=key, help=help)


def gradcam_view(subject: Subject, picture: Picture) -> None:
    model, names = subject.model, subject.class_names()
    choices = layer_choices(model)
    if not choices:
        st.info("This network has no convolutional layer, so there is nothing for Grad-CAM to look at.")
        return
    x = _x(subject, picture)
    with subject.lock:
        probs = predict(model, x)[0]
    left, right = st.columns(2)
    layer = _layer_box(left, subject, choices, default_layer(model), state.in_layer(subject.key),
                       "Grad-CAM weighs this layer's feature maps by how much each raises the class score. The "
                       "default, the last conv layer's rectified output, is the Grad-CAM paper's choice; earlier "
                       "layers give finer but less class-specific maps.")
    target = _class_choice(right, subject, picture, names, probs)
    with subject.lock:
        grad = explain(model, x, "gradcam", target, layer)
        info = cam_info(model)
        cam = explain(model, x, "cam", target) if info.applies else None
    s = pictures.display_scale(*picture.image.shape[1:])
    cols = st.columns(3)
    truth = "" if picture.label is None else f" · true: {names[picture.label]}"
    cols[0].plotly_chart(charts.image_figure(pictures.enlarge(picture.image, s), f"Input{truth}"),
                         key=state.FIG_IN_INPUT, config=charts.STATIC)
    cols[1].plotly_chart(charts.image_figure(grad.overlay(picture.image, s), f"Grad-CAM · {layer} · {names[target]}",
                                             colorbar="Grad-CAM / max", peak=grad.peak, scale=s),
                         key=state.FIG_IN_GRADCAM, config=charts.STATIC)
    _gradcam_note(cols[1], grad, picture, names)
    with cols[2]:
        _cam_column(subject, picture, info, grad, cam, names, s)
    st.plotly_chart(charts.topk_figure(top_k(probs, names, 5), picture.label), key=state.FIG_IN_TOPK)
    st.caption("Grad-CAM (Selvaraju et al. 2017): $\\alpha_k^c = \\frac{1}{hw}\\sum_{x,y} \\partial y_c / "
               "\\partial A_k(x,y)$, map $= \\mathrm{ReLU}(\\sum_k \\alpha_k^c A_k)$ over the layer's maps $A_k$, "
               "upsampled bilinearly to the image. Each map is divided by its maximum and blended 50/50 over the "
               "image (turbo colours); × marks the peak.")


def _gradcam_note(column, grad, picture: Picture, names) -> None:
    """Under the Grad-CAM picture: why it is blank, or whether its peak is on the shape."""
    if grad.zero:
        column.info(f"Grad-CAM is zero everywhere: nothing in {grad.layer} raises the score of "
                    f"{markdown_plain(names[grad.target])} (all evidence is negative).", icon=":material/info:")
    elif picture.mask is not None:
        hit = bool(picture.mask[grad.peak])
        game = " (the pointing game)" if grad.target == picture.label else ""
        column.caption(f"Peak at row {grad.peak[0]}, column {grad.peak[1]}: "
                       f"{'on the shape ✓' if hit else 'off the shape ✗'}{game}.")


def _cam_column(subject: Subject, picture: Picture, info, grad, cam, names, s: int) -> None:
    if cam is None:
        st.markdown("**CAM**")
        st.info(info.reason, icon=":material/block:")
        return
    st.plotly_chart(charts.image_figure(cam.overlay(picture.image, s), f"CAM · {names[cam.target]}",
                                        colorbar="CAM / max"), key=state.FIG_IN_CAM, config=charts.STATIC)
    if cam.zero:
        st.info(f"CAM is negative everywhere: every location counts against {markdown_plain(names[cam.target])}.",
                icon=":material/info:")
    r = agreement(cam, grad)
    st.caption(f"CAM (Zhou et al. 2016): $M_c(x,y) = \\sum_k w_k^c f_k(x,y)$ over the {info.maps} maps $f_k$ of "
               f"{info.features}, weighted by {info.linear}'s weights $w^c$; negative values clipped, as "
               f"Grad-CAM's ReLU does. Correlation with the Grad-CAM map: "
               + ("undefined (a map is zero everywhere)" if np.isnan(r) else f"**r = {r:.3f}**")
               + (f" (the same map: at {grad.layer}, Grad-CAM $= \\mathrm{{ReLU}}(M_c)/(hw)$)."
                  if grad.layer == info.features else f"; choose layer {info.features} to see them agree."))


def feature_maps_view(subject: Subject, picture: Picture) -> None:
    choices = layer_choices(subject.model)
    if not choices:
        st.info("This network has no convolutional layer.")
        return
    layer = _layer_box(st, subject, choices, first_feature_layer(choices), state.in_feature_layer(subject.key),
                       "Any convolutional or composite layer, or the activation after one.")
    with subject.lock:
        maps = features.feature_maps(subject.model, _x(subject, picture), layer)
    order = features.strongest(maps, MAX_FEATURE_MAPS)
    st.plotly_chart(charts.feature_maps_figure(maps, order), key=state.FIG_IN_FMAPS)
    st.caption(f"{layer}: {maps.shape[0]} maps of {maps.shape[1]}×{maps.shape[2]} for {picture.title}; the "
               f"{len(order)} with the largest mean activation, strongest first, each scaled to its own "
               f"minimum (dark) and maximum (bright). Hover for the channel and its value.")


def filters_view(subject: Subject, picture: Picture | None) -> None:
    found = features.first_conv(subject.model)
    if found is None:
        st.info("This network has no convolutional layer, so there are no filters to show.")
        return
    name, weight = found
    mosaic, scales, rgb = features.filter_mosaic(weight, scale=max(2, 48 // max(weight.shape[2:])))
    k, cin, kh, kw = weight.shape
    st.markdown(f"**{name}**: {k} filters of {cin}×{kh}×{kw}" + (" shown in RGB" if rgb else
                " shown in grey" + ("" if cin == 1 else f" (the mean over the {cin} input channels)")))
    st.plotly_chart(charts.filters_figure(mosaic, rgb), key=state.FIG_IN_FILTERS, config=charts.STATIC)
    st.caption("Each filter is scaled by its own largest |weight|: mid-grey is 0, "
               + ("a channel at 0 or 255 is −/+ that maximum (the colour bar), so a red patch weighs red "
                  "positively." if rgb else "black and white are −/+ that maximum (the colour bar).")
               + " The bars below give each filter's maximum, the scale of its picture."
               + (" These are random initial weights: train the network to see edge and colour detectors "
                  "appear." if subject.untrained else ""))
    st.plotly_chart(charts.filter_scale_figure(scales), key=state.FIG_IN_FSCALE)


@st.cache_resource(max_entries=8, show_spinner="Running the validation set…")
def _validation(_subject: Subject, key: str, n: int) -> np.ndarray:
    with _subject.lock:
        return predict(_subject.model, _subject.data.normalize(_subject.data.x_val[:n]))


def validation_view(subject: Subject, picture: Picture | None) -> None:
    data = subject.data
    if data is None:
        st.info(f"Validation images are not available: {subject.data_error}", icon=":material/info:")
        return
    total = len(data.x_val)
    n = evaluate.eval_count(total, subject.macs)
    probs = _validation(subject, subject.key, n)
    y = data.y_val[:n].numpy()
    names = data.class_names
    cm = evaluate.confusion_matrix(y, probs.argmax(axis=1), len(names))
    st.metric("Validation accuracy (top-1)", format_percent(evaluate.accuracy(cm)), border=True,
              help=f"Over {format_count(n)} of the {format_count(total)} validation images; chance is about "
                   f"{format_percent(1 / len(names), 0)}.")
    if n < total:
        st.caption(f"The first {format_count(n)} of {format_count(total)} validation images (a big network on "
                   f"this machine).")
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.confusion_figure(cm, names), key=state.FIG_IN_CM)
    right.plotly_chart(charts.per_class_figure(evaluate.per_class_accuracy(cm), cm.sum(axis=1), names),
                       key=state.FIG_IN_PCA)
    _gallery(data, names, y, probs, n)


def _gallery(data, names, y: np.ndarray, probs: np.ndarray, n: int) -> None:
    wrong = evaluate.misclassified(y, probs)
    st.subheader(f"Misclassified: {format_count(len(wrong))} of {format_count(n)}")
    if len(wrong) == 0:
        st.success("Every image is classified correctly.", icon=":material/check_circle:")
        return
    shown = wrong[:GALLERY]
    s = pictures.display_scale(*data.x_val.shape[2:], 96)
    pred = probs.argmax(axis=1)
    st.image([pictures.enlarge(data.x_val[i], s) for i in shown], width=96,
             caption=[f"#{i}: {names[y[i]]} → {names[pred[i]]} ({format_percent(probs[i, pred[i]], 0)})"
                      for i in shown])
    st.caption(f"The {len(shown)} most confident mistakes: true class → predicted (probability). Open one with "
               f"its number in the sidebar to see where the network looked.")
