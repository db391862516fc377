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
# Builder sidebar widgets (ui.sidebar). A trailing dot marks a prefix; what follows is noted.
W_UNDO, W_REDO, W_NEW = "b.undo", "b.redo", "b.new"            # history and "new network" buttons
W_SHOW_BAD = "b.showbad"                                         # "Show block N" (the one that does not fit)
W_ACTION = "b."                      # + action label: move up/down, duplicate, delete the selected block
W_DOWNLOAD_JSON, W_DOWNLOAD_PY = "b.dl.json", "b.dl.py"          # download buttons
W_NAME, W_INPUT, W_CLASSES = "name.", "in.", "cls."   # + widget generation (W_INPUT: + "." + axis)
W_SELECT = "sel."                    # + generation + "." + a token of the block labels: block chooser
W_EDIT = "ed."                       # + generation + "." + block index + "." (+ field): the block editor
W_ADD_FAMILY = "add.family"                                      # palette: family pills
W_ADD_TYPE, W_ADD_FORM = "add.type.", "add.form."                # + family, + block type
W_ADD_POSITION = "add.pos."          # + block type + "." + a token of the block labels
W_ADD = "add."                       # + block type + "." (+ field): the add form's fields
W_REPEAT = "repeat"                  # after a field-grid prefix: the repeat count
W_AUTO, W_SAME = ".auto", ".same"    # after a field's key: its "automatic" and "same padding" switches
# Train page (ui.train_views)
TRAIN_CONFIG = "train_config"      # TrainConfig: the settings the Train page edits
TRAIN_RECIPE = "train_recipe"      # (preset, dataset) | None: recipe_key of the recipe the settings were last
#                                    loaded from (explorer.search.recipes.follow_recipe); None: not yet
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


# --- widget and element keys of the Build, Inspect, Compare, Zoo, Sweep, Quiz and Challenge pages -----
# (the pages use these names; the values are the keys' spelling, unchanged, so links and tests hold)
def _keys(prefix: str, *names: str) -> tuple[str, ...]:
    return tuple(prefix + n for n in names)


# Build page (ui.views): downloads, figures, the diagram tab's controls
W_LAYER_COLUMNS = "w.layers.columns"  # widget: which column set the layer table shows (Costs, Shares, ...)
BUILD_CSV = "b.dl.csv"             # download button: the layer table as CSV
FIG_PVA, FIG_MACS, FIG_RF, FIG_MEM = "fig.pva", "fig.macs", "fig.rf", "fig.mem"   # the Charts tab's figures
DIAGRAM_COLOR, DIAGRAM_EXPAND, DIAGRAM_LR, DIAGRAM_DOT, DIAGRAM_SVG = _keys(W_DIAGRAM, "color", "expand", "lr",
                                                                           "dot", "svg")
# Inspect page (ui.inspect_views); the per-network keys carry the network's cache key
IN_SOURCE, IN_DATASET, IN_UPLOAD, IN_COLOURS, IN_TAB, IN_INIT = _keys(W_INSPECT, "source", "dataset", "upload",
                                                                      "colours", "tab", "init")
FIG_IN_INPUT, FIG_IN_GRADCAM, FIG_IN_CAM, FIG_IN_TOPK, FIG_IN_FMAPS, FIG_IN_FILTERS, FIG_IN_FSCALE, FIG_IN_CM, \
    FIG_IN_PCA = _keys("fig.in.", "input", "gradcam", "cam", "topk", "fmaps", "filters", "fscale", "cm", "pca")


def in_image_from(modes: int) -> str:
    """Inspect: 'Validation image' / 'Upload' switch; one key per number of modes offered."""
    return f"{W_INSPECT}from.{modes}"


def in_index(subject: str) -> str:
    """Inspect: the validation image number, per network (subject = Subject.key)."""
    return f"{W_INSPECT}index.{subject}"


def in_layer(subject: str) -> str:
    """Inspect: the Grad-CAM layer, per network."""
    return f"{W_INSPECT}layer.{subject}"


def in_feature_layer(subject: str) -> str:
    """Inspect: the feature-map layer, per network."""
    return f"{W_INSPECT}fmap.{subject}"


def in_class(subject: str, image: str) -> str:
    """Inspect: the class whose evidence is shown, per network and image (image: a digest)."""
    return f"{W_INSPECT}class.{subject}.{image}"


# Compare page (ui.compare_views)
CMP_DATASET, CMP_RUNS, CMP_RUN_A, CMP_RUN_B, CMP_BUDGET, CMP_BOARD_DATASET = _keys(
    W_COMPARE, "dataset", "runs", "a", "b", "budget", "board")
CMP_TABLE, CMP_CSV, CMP_DIFF, CMP_BOARD = _keys(W_COMPARE, "table", "csv", "diff", "board_table")
CMP_COLUMNS = W_COMPARE + "columns"   # widget: the runs table's column set (Summary / All)
FIG_CMP_SCATTER, FIG_CMP_CURVES, FIG_CMP_BOARD = _keys(W_COMPARE, "fig.scatter", "fig.curves", "fig.board")
# Zoo page (ui.zoo_views)
ZOO_ALL, ZOO_MODEL, ZOO_DEPTH_A, ZOO_DEPTH_B = _keys(W_ZOO, "all", "model", "depth_a", "depth_b")
ZOO_TABLE, ZOO_OPEN, ZOO_LAYERS, ZOO_CSV = _keys(W_ZOO, "table", "open", "layers", "csv")
ZOO_STACK_C, ZOO_STACK_N, ZOO_BN_IN, ZOO_BN_R, ZOO_SEP_C, ZOO_SEP_K = _keys(
    W_ZOO, "stack_c", "stack_n", "bn_in", "bn_r", "sep_c", "sep_k")
FIG_ZOO_BUBBLES, FIG_ZOO_DEPTH = _keys(W_ZOO, "fig.bubbles", "fig.depth")
ZOO_PRE_UPLOAD, ZOO_PRE_TOP5 = _keys(W_ZOO, "pre_upload", "pre_top5")   # pretrained model: upload, top-5


def zoo_explainer(name: str) -> tuple[str, str]:
    """Zoo: (table key, figure key) of one explainer, by its first network's name."""
    return f"{W_ZOO}tbl.{name}", f"{W_ZOO}fig.{name}"


# Sweep page (ui.sweep_views)
SWEEP_PICK = "w.sw.pick"           # widget: the sweep shown (its id)
SWEEP_LAUNCHED = "sweep_launched"  # str | None: the id this session launched last (selected first)
SWEEP_TO_BUILD = "sweep_to_build"  # bool: a trial was just opened; go to the Build page on this run
W_SWEEP = "w.sw."                  # widget key prefix of the setup form (w.sw.<name>)
SW_DATASET, SW_OBJECTIVE, SW_SAMPLER, SW_PRUNER, SW_TRIALS, SW_MINUTES, SW_EPOCHS, SW_FLOOR, SW_DIMS = _keys(
    W_SWEEP, "dataset", "objective", "sampler", "pruner", "trials", "minutes", "epochs", "floor", "dims")
SW_UPLOAD, SW_DOWNLOAD, SW_LAUNCH, SW_CANCEL, SW_RESUME, SW_TABLE, SW_STAGE, SW_FIGURE, SW_OPEN, SW_OPEN_BUTTON = _keys(
    W_SWEEP, "upload", "download", "launch", "cancel", "resume", "table", "stage", "figure", "open", "open_btn")
FIG_SW_TRADEOFF, FIG_SW_OPTUNA = _keys(W_SWEEP, "tradeoff", "optuna")
# Quiz page (ui.quiz_views)
QUIZ_SOURCE, QUIZ_TABLE, QUIZ_COLS, QUIZ_ROWS, QUIZ_FRACTION, QUIZ_SEED = _keys(
    W_QUIZ, "source", "table", "cols", "rows", "fraction", "seed")


def quiz_answer(part: str, row: int, column: str) -> str:
    """Quiz: the answer box of one hidden cell (part: the quiz part's key)."""
    return f"{W_QUIZ}a.{part}.{row}.{column}"


def quiz_checked(part: str) -> str:
    """Quiz: bool, 'Check answers' was pressed for this part."""
    return f"{W_QUIZ}checked.{part}"


def quiz_form(part: str) -> str:
    return f"{W_QUIZ}form.{part}"


# Challenge page (ui.challenge_views)
CH_NICK, CH_SUBMIT, CH_BY, CH_CSV, CH_CODE, CH_FORM, CH_RESET = _keys(
    W_CHALLENGE, "nick", "submit", "by", "csv", "code", "form", "reset")
CH_TITLE, CH_DATASET, CH_EPOCHS, CH_PARAMS, CH_MINUTES = _keys(W_CHALLENGE, "title", "dataset", "epochs", "params",
                                                               "minutes")
# Train page, transfer learning (ui.transfer_views): widget keys
W_TRANSFER = "w.tl."                    # widget key prefix of the transfer-learning panel
TL_SOURCE = W_TRANSFER + "source"       # widget: the run or weights file to start from ("" = random weights)
TL_SIMILAR = W_TRANSFER + "similar"     # widget: is the data similar to the source's? ("similar"/"different")
TL_FREEZE = W_TRANSFER + "freeze"       # widget: TrainConfig.freeze
TL_LR_SCALE = W_TRANSFER + "lr_scale"   # widget: TrainConfig.pretrained_lr_scale
TL_FREEZE_BN = W_TRANSFER + "freeze_bn" # widget: TrainConfig.freeze_bn
TL_PER_CLASS = W_TRANSFER + "per_class" # widget: TrainConfig.train_per_class


def tl_use(small: bool, similar: bool) -> str:
    """Transfer panel: the "Use: ..." button of one cell of the course's table."""
    return f"{W_TRANSFER}use.{int(small)}{int(similar)}"


# Train page widgets (ui.train_views): every key it draws, spelled here
W_TRAIN_LAUNCH = "b.train"         # widget: the Train button
W_TRAIN_RESET = "b.train.recipe"   # widget: the Reset to recipe button under the training settings
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
