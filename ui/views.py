"""Main-area views of the builder: totals, the layer table, the cs231n memory table, charts, the
training-memory breakdown and the generated code. Numbers come from explorer.analyze (cached by
spec JSON + settings); formatting from explorer.core.report; figures from explorer.charts.analysis."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any, Iterator

import pandas as pd
import streamlit as st

from explorer.charts import analysis as charts, diagram
from explorer.core.analysis import Analysis, analyze
from explorer.core.presets import preset_info, preset_names, load_preset
from explorer.core.report import csv_text, memtable_text
from explorer.units import format_bytes, format_bytes_short, format_count, format_short
from explorer.errors import UserError
from explorer.core.spec import NetworkSpec, SpecError
from explorer.text import slug
from explorer.text import markdown_plain
from ui import state
from ui.sidebar import OPTIMIZER_LABELS, pytorch_source

TABS = ("Layers", "Diagram", "Memory table", "Charts", "Training memory", "PyTorch code")


@dataclass(frozen=True)
class Outcome:
    analysis: Analysis | None     # what the page shows (None when nothing ever analysed)
    error: SpecError | None       # why the current spec does not analyse
    stale: bool = False           # analysis is of the last spec that worked, not the current one


@st.cache_data(max_entries=64, show_spinner=False)
def _analyse(spec_json: str, batch: int, dtype: str, optimizer: str) -> tuple[str, Any]:
    """('ok', Analysis) or ('error', SpecError fields); errors are cached too, so a broken spec
    costs one analysis, not one per rerun."""
    try:
        return "ok", analyze(NetworkSpec.from_json(spec_json), batch=batch, dtype=dtype, optimizer=optimizer)
    except UserError as e:  # a SpecError (BudgetError included), or a ConfigError (a bad budget variable)
        return "error", dict(message=e.message, block_index=getattr(e, "block_index", None),
                             block_type=getattr(e, "block_type", None), field=getattr(e, "field", None))
    except Exception as e:  # a bug in a formula: say so in one line, never a traceback
        return "error", dict(message=f"the analysis failed unexpectedly ({type(e).__name__}: {e}); "
                                     f"undo the last change", block_index=None, block_type=None, field=None)


def run_analysis(spec: NetworkSpec, settings: state.Settings) -> Outcome:
    key = (spec.to_json(indent=None), settings.batch, settings.dtype, settings.optimizer)
    kind, value = _analyse(*key)
    if kind == "ok":
        st.session_state[state.LAST_GOOD] = key
        return Outcome(value, None)
    error = SpecError(value.pop("message"), **value)
    last = st.session_state.get(state.LAST_GOOD)
    if last is not None:
        kind, previous = _analyse(*last)
        if kind == "ok":
            return Outcome(previous, error, stale=True)
    return Outcome(None, error)


def output_shapes(outcome: Outcome) -> dict[int, str]:
    """Block index -> output shape text, for labels (only when the analysis is current)."""
    if outcome.analysis is None or outcome.stale:
        return {}
    return {r.block_index: charts.shape_text(r.output_shape) for r in outcome.analysis.rows
            if r.block_index is not None}


@contextlib.contextmanager
def guarded(what: str) -> Iterator[None]:
    """Show an unexpected error as one line (the network is kept) instead of a traceback."""
    try:
        yield
    except Exception as e:  # Streamlit's rerun/stop are BaseExceptions and pass through
        st.error(f"Something went wrong while drawing {what} ({type(e).__name__}: {e}). "
                 f"Your network is kept; undo the last change or reload the page.", icon=":material/error:")


# --- header, totals, messages --------------------------------------------------------------------
def header(spec: NetworkSpec) -> None:
    title = spec.name
    edited = ""
    if spec.name in preset_names():
        title = preset_info(spec.name).title
        edited = " (edited)" if spec != load_preset(spec.name) else ""
    st.title(markdown_plain(title) + edited, anchor=False)
    shape = "×".join(map(str, spec.input))
    about = markdown_plain(spec.description, max_len=300) + " · " if spec.description else ""
    st.caption(f"{about}Input {shape} per image · "
               f"{format_count(spec.num_classes)} classes · {len(spec.blocks)} blocks")


def messages(outcome: Outcome) -> None:
    for kind, text in state.pop_notices():
        getattr(st, kind, st.info)(text)
    if outcome.error is not None:
        st.error(state.describe_error(outcome.error), icon=":material/error:")
        if outcome.stale:
            st.info("The numbers below are for the last version that fitted together. Fix the block "
                    "marked in the sidebar, or press Undo.", icon=":material/history:")
    if outcome.analysis is not None and not outcome.stale:
        warnings = outcome.analysis.warnings
        for w in warnings[:3]:
            st.warning(_sentence(w), icon=":material/warning:")
        if len(warnings) > 3:
            with st.expander(f"{len(warnings) - 3} more warnings"):
                for w in warnings[3:]:
                    st.warning(_sentence(w))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def totals(a: Analysis) -> None:
    """The four headline numbers, compact so a 1024-px projector shows them whole (exact in the help)."""
    t, b = a.totals, a.batch
    cols = st.columns(4)
    cols[0].metric("Parameters", format_short(t.params), border=True,
                   help=f"{format_count(t.params)} weights and biases (PyTorch's count); trainable "
                        f"{format_count(t.trainable_params)}. Stored: {format_bytes(t.param_bytes)} in {a.dtype}.")
    cols[1].metric("MACs / image", format_short(t.macs), border=True,
                   help=f"{format_count(t.macs)} multiply-accumulates of the conv and linear layers, bias "
                        f"excluded (K = 10³, M = 10⁶, G = 10⁹). FLOPs = 2 × MACs = {format_count(t.flops)}.")
    cols[2].metric("Activations", format_bytes_short(t.activation_bytes), border=True,
                   help=f"Memory of every layer's output at batch size B: {format_count(t.activations)} "
                        f"values per image × {a.dtype_size} bytes ({a.dtype}) × {format_count(b)} = "
                        f"{format_bytes(t.activation_bytes)}. Forward pass only.")
    cols[3].metric("Training memory", format_bytes_short(t.memory.total), border=True,
                   help=f"{format_bytes(t.memory.total)} at batch size B = {format_count(b)}: parameters + buffers + "
                        "gradients + optimizer state + activations saved for backward + workspace; see the "
                        "Training memory tab.")
    st.caption(f"{format_count(t.params)} parameters · {format_count(t.macs)} MACs per image · output "
               f"{charts.shape_text(a.output_shape)} · batch {format_count(b)} · {a.dtype} · "
               f"{OPTIMIZER_LABELS.get(a.optimizer, a.optimizer)}")


# --- tabs ----------------------------------------------------------------------------------------
def lazy_tabs(labels, key: str, renderers, *args) -> None:
    """Tabs whose bodies run only when open; each renderer gets *args and fails on its own."""
    containers = st.tabs(list(labels), key=key, on_change="rerun")
    for container, render in zip(containers, renderers):
        if container.open is False:  # lazy: only the open tab runs
            continue
        with container, guarded(f"the {render.__name__.replace('_', ' ')}"):
            render(*args)


def tabs(spec: NetworkSpec, a: Analysis) -> None:
    lazy_tabs(TABS, state.VIEW, (layer_table, diagram_view, memory_table, charts_view, training_memory, code_view),
              spec, a)


COLUMN_HELP = {
    "Block": "Block number in the sidebar list (click a row to edit that block)",
    "Layer": "Module name in the built network and the generated PyTorch code",
    "Output shape": "Channels × height × width per image (or features for flat vectors)",
    "Params": "Parameter elements including biases (PyTorch's count)",
    "% params": "Share of all parameters in the network",
    "MACs": "Multiply-accumulates per image of conv and linear layers, bias excluded; FLOPs = 2 × MACs "
            "(K thousand, M million, B billion)",
    "% MACs": "Share of all multiply-accumulates",
    "Activations": "Output elements per image (the cs231n 'memory' column; K thousand, M million)",
    "Activation memory": "Output elements × bytes per value × batch size",
    "Receptive field": "Input pixels one output value sees (height × width); largest branch for "
                       "branching blocks",
    "Formula": "Output size W2 = (W1 - F + 2P)/S + 1 and the parameter count, cs231n style",
}


def layer_frame(a: Analysis) -> pd.DataFrame:
    tp, tm = a.totals.params or 1, a.totals.macs or 1
    return pd.DataFrame({
        "Block": [None if r.block_index is None else r.block_index + 1 for r in a.rows],
        "Layer": [r.name for r in a.rows],
        "Output shape": [charts.shape_text(r.output_shape) for r in a.rows],
        "Params": [r.params for r in a.rows],
        "% params": [100 * r.params / tp for r in a.rows],
        "MACs": [r.macs for r in a.rows],
        "% MACs": [100 * r.macs / tm for r in a.rows],
        "Activations": [r.activations for r in a.rows],
        "Activation memory": [format_bytes(r.activation_bytes) for r in a.rows],
        "Receptive field": ["×".join(map(str, r.receptive_field)) if r.receptive_field else "-" for r in a.rows],
        "Formula": [r.formula for r in a.rows],
    })


# Column sets of the layer table. Each fits a 1024-px projector beside the sidebar (about 620 px of
# table); "All" scrolls sideways there and fits a 1920-px screen.
LAYER_COLUMNS = {
    "Costs": ("Block", "Layer", "Output shape", "Params", "MACs", "Activations", "Activation memory",
              "Receptive field"),
    "Shares": ("Block", "Layer", "Params", "% params", "MACs", "% MACs", "Activation memory"),
    "Formulas": ("Block", "Layer", "Output shape", "Params", "Formula"),
    "All": tuple(COLUMN_HELP),
}


def layer_table(spec: NetworkSpec, a: Analysis) -> None:
    cc = st.column_config
    # Params exact (the cs231n count); MACs and activations compact (3.2M, as the slides write them)
    number = lambda name, width, fmt="localized": cc.NumberColumn(name, help=COLUMN_HELP[name],  # noqa: E731
                                                                   format=fmt, width=width)
    share = lambda name: cc.ProgressColumn(name, help=COLUMN_HELP[name], format="%.1f%%",  # noqa: E731
                                           min_value=0, max_value=100, width=100)
    config = {"Block": cc.NumberColumn("Block", help=COLUMN_HELP["Block"], format="%d", width=52),
              "Params": number("Params", 92), "MACs": number("MACs", 64, "compact"),
              "Activations": number("Activations", 84, "compact"),
              "% params": share("% params"), "% MACs": share("% MACs"),
              "Activation memory": cc.TextColumn("Memory", width=88, help=f"{COLUMN_HELP['Activation memory']} "
                                                                          f"(B = {format_count(a.batch)} here)"),
              "Layer": cc.TextColumn("Layer", help=COLUMN_HELP["Layer"], width=80),
              "Output shape": cc.TextColumn("Output", help=COLUMN_HELP["Output shape"], width=84),
              "Receptive field": cc.TextColumn("RF (px)", help=COLUMN_HELP["Receptive field"], width=60),
              "Formula": cc.TextColumn("Formula", help=COLUMN_HELP["Formula"], width=300)}
    shown = st.segmented_control("Columns", list(LAYER_COLUMNS), default="Costs", key=state.W_LAYER_COLUMNS,
                                 label_visibility="collapsed",
                                 help="Costs: sizes per layer · Shares: each layer's part of the parameters "
                                      "and MACs · Formulas: the cs231n output-size and parameter formulas · "
                                      "All: every column (scrolls sideways on narrow screens)") or "Costs"
    st.dataframe(layer_frame(a), hide_index=True, column_config=config, column_order=LAYER_COLUMNS[shown],
                 key=state.TABLE, height=min(35 * (len(a.rows) + 1) + 3, 640), on_select=_on_row,
                 selection_mode="single-row")
    st.caption("Params include biases · MACs exclude bias, FLOPs = 2 × MACs · activations are output "
               "values per image, memory at the batch size · receptive field in input pixels. "
               "Select a row to edit its block in the sidebar.")
    st.download_button("Download this table (CSV)", csv_text(a), file_name=f"{slug(spec.name)}-layers.csv",
                       mime="text/csv", on_click="ignore", icon=":material/download:", key=state.BUILD_CSV)


def _on_row() -> None:
    """A selected table row selects its block in the sidebar editor."""
    try:
        rows = st.session_state[state.TABLE].selection.rows
        analysis = run_analysis(state.spec(), state.settings()).analysis
        if rows and analysis is not None and rows[0] < len(analysis.rows):
            index = analysis.rows[rows[0]].block_index
            if index is not None and index < len(state.spec().blocks):
                state.select(index)
    except Exception:  # noqa: BLE001 - selecting a row is a convenience; never break the page
        pass


def memory_table(spec: NetworkSpec, a: Analysis) -> None:
    st.caption("The cs231n VGG-16 table for this network: memory = output values per image "
               "(H×W×C), params = weights without bias ((F·F·D)·K for a conv, in·out for a linear "
               "layer); ReLU, batch norm and dropout fold into the layer before them.")
    st.code(memtable_text(a), language=None, wrap_lines=True)


def charts_view(spec: NetworkSpec, a: Analysis) -> None:
    st.plotly_chart(charts.params_vs_activations(a), key=state.FIG_PVA)
    st.caption("Activation memory sits in the early, high-resolution convolutions; the parameters sit "
               "in the late fully connected layers. Element-wise layers (ReLU, batch norm, dropout) "
               "are folded into the layer before them.")
    st.plotly_chart(charts.macs_per_layer(a), key=state.FIG_MACS)
    st.plotly_chart(charts.receptive_field_growth(a), key=state.FIG_RF)
    st.caption("Each 3×3 stride-1 conv adds 2 × jump pixels; pooling doubles the jump, so later "
               "layers grow the receptive field faster.")


def training_memory(spec: NetworkSpec, a: Analysis) -> None:
    st.plotly_chart(charts.memory_breakdown(a), key=state.FIG_MEM)
    m = a.totals.memory
    parts = [(label, getattr(m, key)) for key, label in charts.MEMORY_PARTS] + [("Total", m.total)]
    st.dataframe(pd.DataFrame({"Part": [p for p, _ in parts], "Size": [format_bytes(v) for _, v in parts],
                               "Bytes": [v for _, v in parts],
                               "Share": [100 * v / (m.total or 1) for _, v in parts]}),
                 hide_index=True, column_config={
                     "Bytes": st.column_config.NumberColumn(format="localized"),
                     "Share": st.column_config.ProgressColumn(format="%.1f%%", min_value=0, max_value=100)})
    st.caption(f"At batch {format_count(a.batch)} in {a.dtype} ({a.dtype_size} bytes per value), "
               f"{OPTIMIZER_LABELS.get(a.optimizer, a.optimizer)}. Saved activations are the tensors "
               "autograd keeps for the backward pass (measured on the meta device); the workspace "
               "estimate is two of the largest activation. Sizes in binary units (1 MiB = 2²⁰ bytes).")


def code_view(spec: NetworkSpec, a: Analysis) -> None:
    try:
        source = pytorch_source(spec.to_json())
    except SpecError as e:
        st.info(f"Fix the network first: {state.describe_error(e)}", icon=":material/info:")
        return
    st.caption("Standalone PyTorch: needs only torch; each line notes its output shape.")
    st.code(source, language="python", line_numbers=True, height=640)


@st.cache_data(max_entries=16, show_spinner=False)
def _svg(dot: str) -> bytes:
    return diagram.dot_to_svg(dot)


def diagram_view(spec: NetworkSpec, a: Analysis) -> None:
    """The network as a Graphviz diagram (drawn in the browser), coloured by a chosen share."""
    c1, c2, c3 = st.columns([3, 2, 2])
    color_by = c1.segmented_control("Colour by share of", list(diagram.METRICS), default="params",
                                    key=state.DIAGRAM_COLOR, format_func=diagram.METRICS.get) or "params"
    expand = c2.toggle("Show branches inside blocks", True, key=state.DIAGRAM_EXPAND)
    across = c3.toggle("Left to right", False, key=state.DIAGRAM_LR)
    options = diagram.DiagramOptions(color_by=color_by, selected=state.selected() if spec.blocks else None,
                                     expand=expand, direction="LR" if across else "TB")
    dot = diagram.network_dot(a, spec, options)
    st.caption("Darker blocks hold a larger share; the block selected in the sidebar is outlined in red; "
               "edges carry the tensor shape (channels × height × width per image).")
    st.graphviz_chart(dot, width="content")
    d1, d2 = st.columns(2)
    name = slug(spec.name)
    d1.download_button("Download .dot", dot, file_name=f"{name}.dot", mime="text/vnd.graphviz",
                       icon=":material/download:", on_click="ignore", key=state.DIAGRAM_DOT)
    if diagram.has_svg():
        d2.download_button("Download SVG", functools.partial(_svg, dot), file_name=f"{name}.svg",
                           mime="image/svg+xml", icon=":material/image:", on_click="ignore",
                           key=state.DIAGRAM_SVG)
    else:
        d2.caption("SVG download: install Graphviz on the server (apt-get install graphviz).")
