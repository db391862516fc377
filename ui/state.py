"""Session state for the app: every key declared once here, the spec with undo/redo, settings.

The network being built is a NetworkSpec (immutable) under SPEC. Every change goes through
`commit`, which pushes the previous spec on the undo stack, so undo/redo is a swap of specs.
Widgets that show the spec use keys with the generation number GEN in them: GEN changes when
the spec changes from outside those widgets (undo, preset, import, move...), so they re-read it.

Settings that must survive pages (batch, dtype, optimizer) live under plain keys; the widgets
that edit them use separate `w.` keys (Streamlit drops a widget's key when a page does not draw it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from explorer.core.analysis import DTYPES, MAX_BATCH, OPTIMIZER_STATE
from explorer.core.budget import check_spec
from explorer.core.presets import load_preset, preset_info, preset_names
from explorer.core.share import QUERY_KEY, decode_spec, encode_spec
from explorer.errors import UserError
from explorer.core.spec import NetworkSpec, SpecError
from explorer.text import markdown_plain

# --- keys (the only place they are spelled) ----------------------------------------------------
SPEC = "spec"                  # NetworkSpec: the network being built
UNDO = "undo_stack"            # list[NetworkSpec], oldest first
REDO = "redo_stack"            # list[NetworkSpec], most recently undone last
GEN = "widget_gen"             # int: bumps when the spec changes outside the block editor
SELECTED = "selected_block"    # int: index of the block shown in the editor
BATCH = "batch"                # int: batch size for the memory estimate
DTYPE = "dtype"                # str: key of explorer.core.analysis.DTYPES
OPTIMIZER = "optimizer"        # str: key of explorer.core.analysis.OPTIMIZER_STATE
NOTICES = "notices"            # list[(kind, text)]: messages shown once on the next render
FIELD_ERROR = "field_error"    # dict(index, field, message) from the last rejected edit, or None
LAST_GOOD = "last_good"        # (spec json, batch, dtype, optimizer) that last analysed cleanly
IMPORT_RESULT = "import_result"  # (kind, text) shown under the uploader until the next upload
PRESET_PICK = "w.preset"       # widget: preset chooser (reset after loading)
UPLOAD = "w.upload"            # widget: spec file uploader
TABLE = "w.table"              # widget: layer table (row selection selects a block)
VIEW = "view"                  # widget: main-area tab (bound to the URL as ?view=)
W_DIAGRAM = "w.diagram."       # widget key prefix of the Build page's diagram tab
W_BATCH, W_DTYPE, W_OPTIMIZER = "w.batch", "w.dtype", "w.optimizer"
# Train page (ui.train_views)
TRAIN_CONFIG = "train_config"      # TrainConfig: the settings the Train page edits
TRAIN_SELECTED = "train_selected"  # list[str] | None: runs whose curves and cards show (None: not picked yet)
TRAIN_CURRENT = "train_current"    # str | None: the run this session launched last
TRAIN_EVENTS = "train_events"      # dict[str, RunCurves]: metrics read so far, per run
TRAIN_OFFSETS = "train_offsets"    # dict[str, int]: byte offset in each run's metrics.jsonl
TRAIN_ACTIVE = "train_active"      # frozenset[str]: runs queued or running at the last full render
TRAIN_OWNER = "train_owner"        # str: this session's random id; the queue lets it cancel only its own jobs
TRAIN_OWNER_CODE = "train_owner_code"  # str | None: the server owner's code, once typed correctly
W_OWNER_CODE = "w.tr.owner_code"   # widget: where the server's owner types the code
RUNS_DIR = "runs_dir"              # str, optional: where runs live (tests point it at a tmp dir)
W_TRAIN = "w.tr."                  # widget key prefix of the training settings (w.tr.<field>)
# Compare and Zoo pages (ui.compare_views, ui.zoo_views); runs come from RUNS_DIR when it is set
COMPARE_VIEW = "compare_view"      # widget: Compare page tab
ZOO_VIEW = "zoo_view"              # widget: Zoo page tab
W_COMPARE = "w.cmp."               # widget key prefix on the Compare page (w.cmp.<name>)
W_ZOO = "w.zoo."                   # widget key prefix on the Zoo page (w.zoo.<name>)
ZOO_TO_BUILD = "zoo_to_build"      # bool: the Zoo loaded a preset; show the Build page on the next run
# Inspect page (ui.inspect_views); runs come from RUNS_DIR when it is set
W_INSPECT = "w.in."                # widget key prefix on the Inspect page (w.in.<name>)
LARGE_TEXT = "w.large_text"         # widget: the large-text switch drawn on every page (ui.display)
# Challenge page (ui.challenge_views)
W_CHALLENGE = "w.ch."              # widget key prefix on the Challenge page (w.ch.<name>)
CHALLENGE_NICK = "challenge_nick"  # str | None: the nickname this session holds in the current challenge
# Quiz page (ui.quiz_views)
W_QUIZ = "w.quiz."                 # widget key prefix on the Quiz page (w.quiz.<name>; answers under it)

DEFAULT_PRESET = "lenet5"      # opens with no network access: 1x32x32 grey digits (MNIST padded)
DEFAULT_BATCH, DEFAULT_DTYPE, DEFAULT_OPTIMIZER = 32, "float32", "sgd"
HISTORY_LIMIT = 100


@dataclass(frozen=True)
class Settings:
    """What the memory estimate depends on besides the spec."""

    batch: int
    dtype: str
    optimizer: str


def init(entry: bool = False) -> None:
    """Fill every key on a session's first run; the spec comes from the link when there is one.

    Pages call init(); app.py calls init(entry=True) (it is the router, nothing to re-route)."""
    if not entry:
        _route_through_app()
    ss = st.session_state
    if SPEC not in ss:
        ss[NOTICES] = []
        ss[SPEC] = _spec_from_link()
    for key, value in ((UNDO, []), (REDO, []), (GEN, 0), (SELECTED, 0), (FIELD_ERROR, None),
                       (LAST_GOOD, None), (IMPORT_RESULT, None), (NOTICES, []), (BATCH, DEFAULT_BATCH),
                       (DTYPE, DEFAULT_DTYPE), (OPTIMIZER, DEFAULT_OPTIMIZER)):
        ss.setdefault(key, value)


def _route_through_app() -> None:
    """When a page's address (/train) is the server's very first request, Streamlit runs
    pages/train.py on its own in its old pages-folder mode, and app.py (st.navigation, layout,
    CSS) never runs. Leave that mode and rerun: app.py then routes to the same page by its URL."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def _spec_from_link() -> NetworkSpec:
    token = st.query_params.get(QUERY_KEY)
    if token is not None:
        try:
            spec = decode_spec(token)
            check_spec(spec)  # over the server's budget (BudgetError): open the default instead
        except UserError as e:
            notify("error", f"Could not open the shared link. {describe_error(e)} "
                            f"Showing the default network instead.")
        else:
            title = preset_info(spec.name).title if spec.name in preset_names() else spec.name
            notify("success", f"Opened the network **{markdown_plain(title)}** from the shared link.")
            return spec
    return load_preset(DEFAULT_PRESET)


def spec() -> NetworkSpec:
    return st.session_state[SPEC]


def settings() -> Settings:
    ss = st.session_state
    return Settings(batch=ss[BATCH], dtype=ss[DTYPE], optimizer=ss[OPTIMIZER])


def gen() -> int:
    return st.session_state[GEN]


def selected() -> int:
    n = len(spec().blocks)
    return min(max(st.session_state[SELECTED], 0), max(n - 1, 0))


def select(index: int) -> None:
    st.session_state[SELECTED] = index
    st.session_state[GEN] += 1


def commit(new: NetworkSpec, *, from_editor: bool = False) -> None:
    """Make `new` the current spec, remembering the old one for undo."""
    ss = st.session_state
    old = ss[SPEC]
    if new == old:
        return
    ss[UNDO] = (ss[UNDO] + [old])[-HISTORY_LIMIT:]
    ss[REDO] = []
    ss[SPEC] = new
    ss[FIELD_ERROR] = None
    if not from_editor:
        ss[GEN] += 1


def can_undo() -> bool:
    return bool(st.session_state[UNDO])


def can_redo() -> bool:
    return bool(st.session_state[REDO])


def _step(source: str, target: str) -> None:
    """Undo (UNDO -> REDO) or redo (REDO -> UNDO): the current spec goes onto `target`."""
    ss = st.session_state
    if ss[source]:
        ss[target] = ss[target] + [ss[SPEC]]
        ss[SPEC] = ss[source][-1]
        ss[source] = ss[source][:-1]
        ss[FIELD_ERROR] = None
        ss[GEN] += 1


def undo() -> None:
    _step(UNDO, REDO)


def redo() -> None:
    _step(REDO, UNDO)


def set_setting(key: str, widget_key: str) -> None:
    """on_change for the batch/dtype/optimizer widgets: copy the widget's value to its plain key."""
    value = st.session_state[widget_key]
    valid = {BATCH: lambda v: isinstance(v, int) and 1 <= v <= MAX_BATCH,
             DTYPE: lambda v: v in DTYPES, OPTIMIZER: lambda v: v in OPTIMIZER_STATE}[key]
    if value is not None and valid(value):
        st.session_state[key] = value


def notify(kind: str, text: str) -> None:
    """Queue a message ("success", "info", "warning", "error") for the next render."""
    st.session_state.setdefault(NOTICES, []).append((kind, text))


def pop_notices() -> list[tuple[str, str]]:
    notices = st.session_state.get(NOTICES, [])
    st.session_state[NOTICES] = []
    return notices


def set_field_error(index: int, field: str | None, message: str) -> None:
    st.session_state[FIELD_ERROR] = {"index": index, "field": field, "message": message}


def field_error() -> dict[str, Any] | None:
    return st.session_state.get(FIELD_ERROR)


def describe_error(e: UserError) -> str:
    """A user error as one sentence for the UI, blocks numbered from 1 as in the sidebar."""
    where = []
    index, block_type, field = (getattr(e, k, None) for k in ("block_index", "block_type", "field"))
    if index is not None:
        where.append(f"block {index + 1}" + (f" ({block_type})" if block_type else ""))
    if field:
        where.append(f"field '{field}'")
    text = e.message[:1].upper() + e.message[1:] if e.message else "Invalid network"
    text = text if text.endswith((".", "]", ")")) else text + "."
    # the message quotes the visitor's input: shown as plain text wherever Markdown renders it
    return markdown_plain(f"{', '.join(where).capitalize()}: {text}" if where else text)


def sync_url() -> None:
    """Keep ?net= in the address bar equal to the current spec, so the URL is the share link."""
    try:
        token = encode_spec(spec())
    except SpecError:  # too large for a link: leave the address bar alone
        return
    if st.query_params.get(QUERY_KEY) != token:
        st.query_params[QUERY_KEY] = token
# Train page widgets (ui.train_views): every key it draws, spelled here
W_TRAIN_LAUNCH = "b.train"         # widget: the Train button
W_TRAIN_CANCEL = "b.cancel."       # widget key prefix: a run card's Cancel button (b.cancel.<run folder>)
W_TRAIN_XAXIS = W_TRAIN + "xaxis"  # widget: epochs or optimizer steps on the curves' x axis
W_TRAIN_RUNS = W_TRAIN + "runs."   # widget key prefix: the runs table (w.tr.runs.<digest of its rows>)
W_TRAIN_FIGURE = "fig.train"       # widget: the live curves chart


def runs_dir():
    """Where this session's runs live, as an absolute path: the session's override (RUNS_DIR, set
    by tests) else $CNN_EXPLORER_RUNS else ./runs, all decided by explorer.training.runs.runs_root.
    The Train, Compare, Inspect and Sweep pages all ask here, so they always list the same folder."""
    from explorer.training.runs import runs_root

    return runs_root(st.session_state.get(RUNS_DIR)).resolve()
