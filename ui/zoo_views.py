"""Zoo page views: torchvision's classic CNNs with their published figures (the Canziani et al.
view), any of them opened for analysis (a mirroring preset goes to the builder, the others are
analysed here on the meta device), per-depth profiles of two architectures, and the live
explainers (3x3 stacks, GoogLeNet's 1x1 bottleneck, depthwise-separable convs) whose numbers
come from explorer.analyze on small specs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.charts import compare as charts
from explorer.compare import zoo
from explorer.core.analysis import Analysis
from explorer.core.presets import load_preset
from explorer.core.report import csv_text
from explorer.errors import UserError
from explorer.units import format_bytes, format_bytes_short, format_count, format_macs, format_percent, format_short
from ui import state
from ui.views import layer_frame, lazy_tabs

TABS = ("Accuracy vs operations", "Open a model", "Depth profiles", "Explainers")
ALL_MODELS, MODEL, DEPTH_A, DEPTH_B = state.ZOO_ALL, state.ZOO_MODEL, state.ZOO_DEPTH_A, state.ZOO_DEPTH_B
BUILD_PAGE = "pages/build.py"


def models() -> tuple[zoo.ZooModel, ...]:
    include_all = st.toggle("Every torchvision classification model", key=ALL_MODELS,
                            help="Off: the classic CNNs. On: all of torchvision's ImageNet models "
                                 "(transformers and RegNets included).")
    return zoo.zoo_models(bool(include_all))


def _open_in_builder(preset: str, title: str) -> None:
    """on_click: load the preset into the builder (undoable) and go there on this run."""
    state.commit(load_preset(preset))
    state.notify("success", f"Opened **{title}** from the Zoo.")
    st.session_state[state.ZOO_TO_BUILD] = True


def follow_to_builder() -> None:
    """Switch to the Build page when a preset was just opened (st.switch_page cannot run in a callback)."""
    if st.session_state.pop(state.ZOO_TO_BUILD, False):
        st.switch_page(BUILD_PAGE)


def header() -> None:
    st.title("Model zoo")
    st.caption("torchvision's ImageNet classifiers with the parameters, GMACs and top-1/top-5 accuracy that "
               "torchvision publishes with their weights (read offline), and the design ideas behind them, "
               "computed live.")


def tabs(ms: tuple[zoo.ZooModel, ...]) -> None:
    lazy_tabs(TABS, state.ZOO_VIEW, (overview, open_model, depth_view, explainers_view), ms)


def overview(ms: tuple[zoo.ZooModel, ...]) -> None:
    frame = zoo.zoo_frame(ms)
    highlight = tuple(m.name for m in ms if m.preset)
    st.plotly_chart(charts.zoo_bubbles(frame, highlight, zoo.LABELED), key=state.FIG_ZOO_BUBBLES)
    st.caption("Up and to the left is better: more accurate for fewer operations. Operations predict inference "
               "time; the bubble's area is the parameter count (memory). Black outline: a preset reproduces the "
               "network exactly and opens in the builder. Hover a bubble for its name and numbers. Newer weights "
               "(…_V2) come from torchvision's improved 2021 training recipe, so they beat the original papers.")
    cc = st.column_config
    st.dataframe(frame, hide_index=True, key=state.ZOO_TABLE, column_config={
        "Year": cc.NumberColumn("Year", format="%d"), "Params": cc.NumberColumn("Params", format="localized"),
        "GMACs": cc.NumberColumn("GMACs", format="%.3f", help="Multiply-accumulates per image, billions"),
        "Top-1 (%)": cc.NumberColumn("Top-1", format="%.1f%%"), "Top-5 (%)": cc.NumberColumn("Top-5", format="%.1f%%"),
        "Top-1 per M params": cc.NumberColumn("Top-1 per M params", format="%.2f"),
        "Preset": cc.TextColumn("Preset", help="The builder preset that reproduces it exactly")})


@st.cache_data(max_entries=16, show_spinner="Analysing on the meta device…")
def _analysis(name: str) -> Analysis | str:
    """The model's analysis, or one sentence saying why it cannot be analysed."""
    try:
        return zoo.analyze_zoo_model(name)
    except UserError as e:  # e.g. over the server's budget for real weights: the whole message says what to do
        return f"{name} cannot be analysed here ({type(e).__name__}): {e}"
    except Exception as e:  # noqa: BLE001 - a torchvision constructor failing in a new way: one sentence
        return f"{name} cannot be analysed on the meta device ({type(e).__name__}: {str(e)[:160]})."


def open_model(ms: tuple[zoo.ZooModel, ...]) -> None:
    titles = {m.name: m.title for m in ms}
    name = st.selectbox("Model", list(titles), format_func=titles.get, key=MODEL)
    m = next(x for x in ms if x.name == name)
    cols = st.columns(4)
    cols[0].metric("Parameters (published)", format_short(m.params), border=True,
                   help=f"{format_count(m.params)} weights and biases, as torchvision publishes them")
    cols[1].metric(f"MACs / image ({m.input_size}×{m.input_size})", format_short(m.gmacs * 1e9), border=True,
                   help=f"{m.gmacs:.3f} GMACs, torchvision's published figure (G = 10⁹; FLOPs = 2 × MACs)")
    cols[2].metric("ImageNet top-1", format_percent(m.acc1 / 100), border=True,
                   help=f"{format_percent(m.acc1 / 100, 2)} with torchvision weights {m.weights}")
    cols[3].metric("ImageNet top-5", format_percent(m.acc5 / 100), border=True,
                   help=f"{format_percent(m.acc5 / 100, 2)} with torchvision weights {m.weights}")
    if m.preset:
        st.info(f"The preset **{m.preset}** reproduces torchvision's `{m.name}` exactly: open it in the builder "
                "to see every layer's cost, edit it and train it.", icon=":material/construction:")
        st.button(f"Open {m.title} in the builder", key=state.ZOO_OPEN, type="primary", icon=":material/open_in_new:",
                  on_click=_open_in_builder, args=(m.preset, m.title))
        pretrained_view(m)  # [transfer] its ImageNet weights, when they are on disk
        return
    a = _analysis(m.name)
    if isinstance(a, str):
        st.warning(a + " Its published figures are above.", icon=":material/warning:")
        return
    st.caption(f"No preset mirrors `{m.name}`, so here is its analysis: torchvision's module built on the meta "
               f"device (no weights), {len(a.rows)} leaf layers at {'×'.join(map(str, a.input_shape))}, batch 1.")
    cols = st.columns(3)
    cols[0].metric("Parameters (computed)", format_short(a.totals.params), border=True,
                   delta=None if a.totals.params == m.params else f"{a.totals.params - m.params:+,} vs published",
                   delta_color="off", help=f"{format_count(a.totals.params)} weights and biases. "
                                           + (m.note or "The published count, computed again here."))
    cols[1].metric("MACs / image (computed)", format_short(a.totals.macs), border=True,
                   help=f"{format_count(a.totals.macs)} multiply-accumulates ({format_macs(a.totals.macs)}) of the "
                        f"conv and linear layers, bias excluded. FLOPs = 2 × MACs.")
    cols[2].metric("Activations", format_bytes_short(a.totals.activation_bytes), border=True,
                   help=f"{format_count(a.totals.activations)} output values of every layer per image in float32 "
                        f"= {format_bytes(a.totals.activation_bytes)}. Forward pass only.")
    frame = layer_frame(a).drop(columns=["Block"])
    cc = st.column_config
    st.dataframe(frame, hide_index=True, key=state.ZOO_LAYERS, height=480, column_config={
        "Params": cc.NumberColumn(format="localized"), "MACs": cc.NumberColumn(format="localized"),
        "Activations": cc.NumberColumn(format="localized"),
        "% params": cc.ProgressColumn(format="%.1f%%", min_value=0, max_value=100),
        "% MACs": cc.ProgressColumn(format="%.1f%%", min_value=0, max_value=100)})
    st.download_button("Download this table (CSV)", csv_text(a), file_name=f"{m.name}-layers.csv", mime="text/csv",
                       on_click="ignore", icon=":material/download:", key=state.ZOO_CSV)


def _share(values: pd.Series, part: slice) -> float:
    total = values.sum()
    return 100 * values.iloc[part].sum() / total if total else 0.0


def depth_view(ms: tuple[zoo.ZooModel, ...]) -> None:
    titles = {m.name: m.title for m in ms}
    names = list(titles)
    left, right = st.columns(2)
    a = left.selectbox("Network 1", names, index=names.index("vgg16") if "vgg16" in names else 0,
                       format_func=titles.get, key=DEPTH_A)
    b = right.selectbox("Network 2", names, index=names.index("resnet50") if "resnet50" in names else 1,
                        format_func=titles.get, key=DEPTH_B)
    profiles, facts = {}, []
    for name in dict.fromkeys((a, b)):
        result = _analysis(name)
        if isinstance(result, str):
            st.warning(result, icon=":material/warning:")
            continue
        p = zoo.depth_profile(result)
        profiles[titles[name]] = p
        q = max(1, len(p) // 4)
        facts.append(f"**{titles[name]}**: {len(p)} weight layers; the first quarter holds "
                     f"{_share(p['activations'], slice(0, q)):.0f}% of their output values, the last quarter "
                     f"{_share(p['params'], slice(len(p) - q, None)):.0f}% of their parameters.")
    if profiles:
        st.plotly_chart(charts.depth_profiles(profiles), key=state.FIG_ZOO_DEPTH)
        st.markdown("  \n".join(facts))
        st.caption("Conv and linear layers only, numbered in execution order (parallel branches one after "
                   "another). Early layers work on big feature maps with few channels; late layers on small "
                   "maps with many channels, where the weights pile up.")


@st.cache_data(max_entries=32, show_spinner=False)
def _explainer(kind: str, **kwargs) -> zoo.Explainer:
    return {"stack": zoo.stacked_convs, "bottleneck": zoo.bottleneck, "separable": zoo.separable}[kind](**kwargs)


def comparison_frame(e: zoo.Explainer) -> pd.DataFrame:
    """The two designs' numbers side by side (all from explorer.analyze), with B / A."""
    rows = (("Parameters", e.a.params, e.b.params), ("MACs per image", e.a.macs, e.b.macs),
            ("Receptive field (px)", e.a.receptive_field, e.b.receptive_field),
            ("Conv layers", e.a.conv_layers, e.b.conv_layers))
    return pd.DataFrame({"": [r[0] for r in rows], e.a.label: [f"{format_count(r[1])}" for r in rows],
                         e.b.label: [f"{format_count(r[2])}" for r in rows],
                         "B / A": [f"{r[2] / r[1]:.3f}" if r[1] else "-" for r in rows]})


def _comparison(e: zoo.Explainer, formulas: tuple[str, str]) -> None:
    left, right = st.columns([3, 1])
    left.dataframe(comparison_frame(e), hide_index=True, key=state.zoo_explainer(e.a.spec.name)[0],
                   column_config={"": st.column_config.TextColumn("", width=140)})
    right.metric("Fewer parameters", f"{e.params_ratio:.2f}×", border=True,
                 help=f"{e.a.label}: {format_count(e.a.params)}; {e.b.label}: {format_count(e.b.params)}")
    right.metric("Fewer MACs", f"{e.macs_ratio:.2f}×", border=True,
                 help=f"{e.a.label}: {format_count(e.a.macs)}; {e.b.label}: {format_count(e.b.macs)}")
    st.markdown(f"- {e.a.label}: {formulas[0]}\n- {e.b.label}: {formulas[1]}")
    st.plotly_chart(charts.explainer_bars(e), key=state.zoo_explainer(e.a.spec.name)[1])
    st.caption(e.lesson + " Numbers from the same analysis as the builder (explorer.analyze on these two small "
               "networks).")


def explainers_view(ms: tuple[zoo.ZooModel, ...]) -> None:
    st.subheader("Two 3×3 convolutions or one 5×5?")
    left, right = st.columns(2)
    c = int(left.number_input("Channels C (in = out)", 1, 2048, 256, key=state.ZOO_STACK_C))
    n = right.segmented_control("Stacked 3×3 convs", [2, 3], default=2, key=state.ZOO_STACK_N) or 2
    e = _explainer("stack", channels=c, n=n, size=56)
    k = 2 * n + 1
    m1, mk = e.b.layer_macs()[0][1], e.a.macs
    _comparison(e, (f"{k}·{k}·{c}·{c} + {c} = **{format_count(e.a.params)}** params; 56·56·{c}·{k}·{k}·{c} = {format_count(mk)} MACs",
                    f"{n} × (3·3·{c}·{c} + {c}) = **{format_count(e.b.params)}** params; {n} × 56·56·{c}·3·3·{c} = "
                    f"{n} × {format_count(m1)} = {format_count(e.b.macs)} MACs"))

    st.subheader("GoogLeNet's 1×1 bottleneck")
    left, right = st.columns(2)
    cin = int(left.number_input("Input channels", 1, 2048, 192, key=state.ZOO_BN_IN))
    r = int(right.number_input("1×1 reduction to (channels)", 1, 2048, 16, key=state.ZOO_BN_R))
    e = _explainer("bottleneck", in_channels=cin, size=28, out_channels=32, reduce_to=r, kernel=5)
    (_, m1), (_, m2) = e.b.layer_macs()
    _comparison(e, (f"28·28·32·5·5·{cin} = **{format_count(e.a.macs)}** multiplies",
                    f"28·28·{r}·{cin} + 28·28·32·5·5·{r} = {format_count(m1)} + {format_count(m2)} = **{format_count(e.b.macs)}** multiplies "
                    f"({e.macs_ratio:.1f}× fewer)"))

    st.subheader("Depthwise-separable against full convolution")
    left, right = st.columns(2)
    ch = int(left.number_input("Channels (in = out)", 1, 2048, 512, key=state.ZOO_SEP_C))
    f = right.segmented_control("Kernel F", [3, 5, 7], default=3, key=state.ZOO_SEP_K) or 3
    e = _explainer("separable", in_channels=ch, out_channels=ch, size=14, kernel=f)
    (_, p1), (_, p2) = e.b.layer_params()
    _comparison(e, (f"{f}·{f}·{ch}·{ch} = **{format_count(e.a.params)}** weights",
                    f"{f}·{f}·{ch} + {ch}·{ch} = {format_count(p1)} + {format_count(p2)} = **{format_count(e.b.params)}** weights "
                    f"({e.params_ratio:.1f}× fewer; 1/N + 1/F² = {1 / ch + 1 / f ** 2:.3f})"))


# --- [transfer] pretrained weights on an uploaded image (explorer.compare.pretrained) ------------------
@st.cache_resource(max_entries=2, show_spinner="Loading the pretrained weights…")
def _pretrained(name: str, path: str, mtime: float):
    from explorer.compare import pretrained

    return pretrained.load_pretrained(name)


def pretrained_view(m: zoo.ZooModel) -> None:
    """Classify an uploaded image with torchvision's weights for m (top-5 and Grad-CAM), when the
    weights file is on disk; otherwise say where it would be looked for."""
    from explorer.compare import pretrained
    from explorer.interpret.images import EXTENSIONS, MAX_UPLOAD_BYTES
    from explorer.interpret.pictures import overlay

    path = pretrained.find_weights(m.name)
    if path is None:
        st.caption(f"With torchvision's weights file `{pretrained.weights_file_name(m.name)}` in "
                   f"{' or '.join(f'`{d}`' for d in pretrained.weights_dirs())} ({pretrained.WEIGHTS_DIR_ENV}), "
                   f"{m.title} would classify your own images here (nothing is downloaded).")
        return
    st.subheader("Try the pretrained network")
    upload = st.file_uploader("An image to classify", type=list(EXTENSIONS), key=state.ZOO_PRE_UPLOAD,
                              max_upload_size=MAX_UPLOAD_BYTES // 2**20,
                              help=f"Scaled and centre-cropped to {m.input_size}×{m.input_size} as torchvision does")
    if upload is None:
        st.caption(f"Weights found: `{path}`. Upload a photo to see ImageNet's top-5 classes and where the network "
                   f"looked (Grad-CAM of the most likely class).")
        return
    p = _pretrained(m.name, str(path), path.stat().st_mtime)
    result = pretrained.classify(p, upload.getvalue())
    left, right = st.columns(2)
    left.image(overlay(result.image, result.heat), caption=f"Grad-CAM at {result.layer} for "
               f"“{result.top5[0][1]}”", width="stretch")
    right.dataframe(pd.DataFrame({"Class": [name for _, name, _ in result.top5],
                                  "Probability (%)": [100 * prob for _, _, prob in result.top5]}),
                    hide_index=True, key=state.ZOO_PRE_TOP5,
                    column_config={"Probability (%)": st.column_config.ProgressColumn(
                        format="%.1f%%", min_value=0, max_value=100)})
