"""Train page: start from trained weights, and the course's transfer-learning table, live.

Widgets and session state only. The decisions are explorer.training.transfer's: which cell of the
table the dataset falls in (size x similarity), which freeze setting carries it out, what the
weights adapt to, and what freezing saves in training memory. The panel edits the TrainConfig the
Train page launches (state.TRAIN_CONFIG): init_from, freeze, pretrained_lr_scale, freeze_bn,
train_per_class. A source is picked from a list (finished runs with a checkpoint, and torchvision
weights already on disk), never typed, so visitors cannot point the server at other files.
"""

from __future__ import annotations

import streamlit as st

from explorer.data import dataset_info
from explorer.units import format_bytes, format_count
from explorer.core.spec import NetworkSpec
from explorer.errors import ConfigError, UserError
from explorer.training import transfer
from explorer.training.config import TrainConfig
from ui import state

SIMILARITY = ("similar", "different")
LR_SCALES = (1.0, 0.5, 0.3, 0.1, 0.03, 0.01)


def _config() -> TrainConfig:
    return st.session_state[state.TRAIN_CONFIG]


def _change(**changes) -> None:
    """Put changes into the Train page's config (validated); a message instead of a traceback."""
    try:
        st.session_state[state.TRAIN_CONFIG] = _config().with_changes(**changes)
    except UserError as e:
        state.notify("error", f"Transfer learning: {e.message}. The setting was not changed.")


def _from_widget(field: str, key: str, convert=lambda v: v) -> None:
    _change(**{field: convert(st.session_state[key])})


def _apply(freeze: str, scale: float, setting: str) -> None:
    """on_click of a table cell: its setting, and the freeze/rate widgets re-read from the config."""
    _change(freeze=freeze, pretrained_lr_scale=scale)
    for key in (state.TL_FREEZE, state.TL_LR_SCALE):
        st.session_state.pop(key, None)
    state.notify("success", f"Transfer setting: {setting}.")


@st.cache_data(ttl=10, show_spinner=False)
def _sources(runs_dir: str, spec_name: str) -> dict[str, str]:
    """explorer.compare.pretrained.start_sources, re-read at most every 10 s."""
    from pathlib import Path

    from explorer.compare.pretrained import start_sources

    return start_sources(Path(runs_dir), spec_name)


def _adapted(spec: NetworkSpec, cfg: TrainConfig) -> tuple[NetworkSpec, int | None]:
    """The network as the run will build it (the run's plan: channels and classes follow the
    data) and the class count (None for an image folder not read yet)."""
    from ui.train_views import preflight

    check = preflight(spec, cfg)   # the page's cached plan: adapted before the transfer check runs
    plan = check.plan
    if plan is not None and plan.adapted is not None:
        classes = plan.dataset.num_classes if plan.dataset is not None else None
        return (plan.adapted.spec, classes) if classes else (spec, None)
    if check.error:
        raise ConfigError(check.error)
    return spec, None

def panel(spec: NetworkSpec, cfg: TrainConfig) -> None:
    """The transfer-learning panel of the Train page."""
    busy = bool(cfg.init_from or cfg.freeze != "none" or cfg.train_per_class)
    with st.expander("Start from trained weights (transfer learning)", expanded=busy,
                     icon=":material/move_up:"):
        try:
            spec, classes = _adapted(spec, cfg)
        except UserError as e:
            st.info(f"Fit the network to the dataset first: {e}", icon=":material/info:")
            return
        source = _source_picker(spec, cfg)
        st.number_input("Training images per class (0: all)", min_value=0, max_value=1_000_000, step=10,
                        value=cfg.train_per_class, key=state.TL_PER_CLASS, on_change=_from_widget,
                        args=("train_per_class", state.TL_PER_CLASS, int),
                        help="Keep this many training images of each class (stratified, by the seed): how "
                             "transfer learning helps with little data. Validation stays whole.")
        if source is not None:
            guide(spec, _config(), classes, source)
        settings(spec, _config())
        cost(spec, _config())


def _source_picker(spec: NetworkSpec, cfg: TrainConfig) -> str | None:
    """The selectbox of sources; returns the source's dataset name ("imagenet" for torchvision
    weights, "" when unknown) or None for random weights."""
    runs_dir = str(state.runs_dir())
    sources = _sources(runs_dir, spec.name)
    labels = ["Random weights (from scratch)", *sources]
    values = {label: path for label, path in sources.items()}
    current = next((label for label, path in values.items() if path == cfg.init_from), labels[0])
    st.selectbox("Start from", labels, index=labels.index(current), key=state.TL_SOURCE,
                 on_change=_from_widget, args=("init_from", state.TL_SOURCE, lambda v: values.get(v)),
                 help="A finished run's best checkpoint, or torchvision's weights for this preset when they "
                      "are on disk. Another class count gets a new head; other input channels an adapted "
                      "first layer.")
    if not cfg.init_from:
        return None
    ok, text = _check(spec.to_json(indent=None), cfg.to_json(), _mtime(cfg.init_from))
    if not ok:
        st.error(f"These weights cannot start this network: {text}", icon=":material/error:")
        return None
    st.caption(text)
    if cfg.init_from.endswith((".pth", ".pt", ".bin")):
        return "imagenet"
    from explorer.training.checkpoint import load_run_spec_config

    try:
        return load_run_spec_config(cfg.init_from)[1].dataset
    except Exception:  # noqa: BLE001 - the similarity is then the user's call
        return ""


def _mtime(path: str) -> float:
    from pathlib import Path

    target = Path(path) / "checkpoint.safetensors" if Path(path).is_dir() else Path(path)
    try:
        return target.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_data(max_entries=16, show_spinner="Checking the weights…")
def _check(spec_json: str, cfg_json: str, mtime: float) -> tuple[bool, str]:
    """(fits, the notices joined) of transfer.check_init, or (False, why); cached per file version."""
    import json

    try:
        notices = transfer.check_init(NetworkSpec.from_json(spec_json), TrainConfig.from_dict(json.loads(cfg_json)))
    except UserError as e:
        return False, str(e)
    return True, " · ".join(notices)


def guide(spec: NetworkSpec, cfg: TrainConfig, classes: int | None, source_dataset: str) -> None:
    """The course's four cells: dataset size (small/large) against similarity to the source's data,
    the user's dataset placed in it, each cell's setting one click away."""
    per_class = transfer.images_per_class(cfg.dataset, cfg, classes or 0)
    guess = transfer.guess_similar(source_dataset, cfg.dataset)
    st.markdown("**Which layers to keep?** The course's table (cs231n): how much data you have against how "
                "much it looks like what the weights were trained on.")
    similar = st.radio("Your images compared with the source's", SIMILARITY, horizontal=True, key=state.TL_SIMILAR,
                       index=0 if guess in (None, True) else 1,
                       help=f"A guess from the datasets ({source_dataset or 'unknown'} → {cfg.dataset}); "
                            f"you know your images better") == "similar"
    if per_class is None:
        st.caption("The number of training images per class is unknown here (an image folder): pick the row.")
        small = True
    else:
        small = per_class < transfer.SMALL_PER_CLASS
        st.caption(f"{dataset_info(cfg.dataset).title}: about {format_count(per_class)} training images per class — "
                   f"{'small' if small else 'large'} next to the pretraining scale (under "
                   f"{transfer.SMALL_PER_CLASS:,} per class counts as small: ImageNet has about 1,300).")
    header = st.columns([1, 2, 2])
    header[1].markdown("**similar data**")
    header[2].markdown("**different data**")
    for row_small in (True, False):
        cols = st.columns([1, 2, 2])
        cols[0].markdown(f"**{'little' if row_small else 'lots of'} data**")
        for col, row_similar in zip(cols[1:], (True, False)):
            _cell(col, transfer.recommend(spec, 1 if row_small else transfer.SMALL_PER_CLASS, row_similar),
                  here=(row_small, row_similar) == (small, similar), cfg=cfg)


def _cell(col, r: transfer.Recommendation, here: bool, cfg: TrainConfig) -> None:
    box = col.container(border=True)
    chosen = (cfg.freeze, cfg.pretrained_lr_scale) == (r.freeze, r.pretrained_lr_scale)
    box.markdown(f"{':material/my_location: **You are here** · ' if here else ''}**{r.setting}**"
                 + (" :material/check:" if chosen else ""))
    box.caption(f"{r.course}. Here: {r.why}.")
    key = state.tl_use(r.small, r.similar)
    box.button(f"Use: {r.setting}", key=key, type="primary" if here else "secondary", disabled=chosen,
               on_click=_apply, args=(r.freeze, r.pretrained_lr_scale, r.setting), width="stretch")


def _freeze_label(spec: NetworkSpec, value: str) -> str:
    if value == "none":
        return "Nothing: every layer trains"
    if value == "features":
        return "Features: only the classifier head trains (linear probe)"
    block = spec.blocks[int(value) - 1]
    return f"Blocks 1–{value} (up to {value}. {block.type})"


def settings(spec: NetworkSpec, cfg: TrainConfig) -> None:
    """What keeps its weights, the loaded layers' learning rate, batch-norm statistics."""
    head = transfer.head_block(spec)
    options = ["none", "features", *(str(n) for n in range(1, head + 1))]
    freeze = cfg.freeze if cfg.freeze in options else "none"
    cols = st.columns([3, 2])
    cols[0].selectbox("Keep (freeze)", options, index=options.index(freeze), key=state.TL_FREEZE,
                      format_func=lambda v: _freeze_label(spec, v), on_change=_from_widget,
                      args=("freeze", state.TL_FREEZE),
                      help="Frozen blocks keep their weights and batch-norm statistics; blocks are numbered "
                           "as on the Build page")
    scale = cfg.pretrained_lr_scale if cfg.pretrained_lr_scale in LR_SCALES else 1.0
    cols[1].select_slider("Loaded layers' learning rate (× lr)", LR_SCALES, value=scale, key=state.TL_LR_SCALE,
                          format_func=lambda v: f"×{v:g}", on_change=_from_widget,
                          args=("pretrained_lr_scale", state.TL_LR_SCALE), disabled=not cfg.init_from,
                          help="Discriminative rates: the loaded layers learn slower than the new head")
    st.toggle("Keep batch-norm statistics (eval mode) everywhere", value=cfg.freeze_bn, key=state.TL_FREEZE_BN,
              on_change=_from_widget, args=("freeze_bn", state.TL_FREEZE_BN),
              help="Small batches give noisy statistics: keep the loaded running mean and variance")


def cost(spec: NetworkSpec, cfg: TrainConfig) -> None:
    """Trainable parameters and training memory with the frozen blocks, beside training everything."""
    try:
        c = transfer.frozen_cost(spec, cfg)
    except UserError as e:
        st.warning(str(e), icon=":material/warning:")
        return
    cols = st.columns(2)
    cols[0].metric("Trainable parameters", f"{c.trainable_params:,}", border=True,
                   help=f"of {c.params:,}; frozen ones get no gradient and no optimizer state")
    saved = f"−{format_bytes(c.saved_bytes)} vs training everything" if c.saved_bytes else None
    cols[1].metric(f"Training memory at batch {cfg.batch_size} (predicted)", format_bytes(c.frozen.total),
                   delta=saved, delta_color="off", border=True,
                   help="Weights + gradients + optimizer state + activations saved for backward + workspace; "
                        "frozen blocks save no activations (autograd needs none there)")
