"""The Train page's pieces: training settings (sidebar; they load the recipe of the current network
and dataset whenever either changes, explorer.search.recipes.follow_recipe), the check before launch, launching into
the shared job queue, the live panel (a fragment that polls metrics.jsonl about once a second)
and the list of runs, whose selected rows overlay their curves.

Nothing here trains: a run is a `python -m explorer train` process that the JobQueue starts
(explorer.training.jobs); this module only reads what it writes (explorer.training.runs).
Polling stays cheap: each session keeps a byte offset and the events read so far per run
(state.TRAIN_OFFSETS, state.TRAIN_EVENTS), and one QueueHandle per app refreshes the queue at
most once every POLL_SECONDS for every session together.
Each session has a random owner id (state.TRAIN_OWNER): its Cancel buttons show only on its own
jobs, or on every job once the server's owner typed the code ($CNN_EXPLORER_OWNER_CODE).
Damaged run folders are listed as "unreadable" with the reason; they never break the page.
Decisions live in explorer: what a launch would do (explorer.training.plan.plan_run), a run's
label, status and diagnosis and the default selection (explorer.training.status); widget keys in
ui.state. The live panel draws one list of runs, the selected ones: their curves on top, then
their cards, so a card and its curves always come and go together.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st
import torch

from explorer.units import format_bytes, format_macs, format_seconds, format_value
from explorer.data import DEFAULT_DATASET, default_data_root, list_datasets
from explorer.data.roots import resolve_data_root
from explorer.core.presets import preset_info, preset_names
from explorer.search import recipes
from explorer.search.recipes import recipe_config
from explorer.errors import QueueError, UserError
from explorer.core.spec import NetworkSpec
from explorer.training.config import MAX_IMAGE_SIZE, OPTIMIZER_LABELS, OPTIMIZERS as TRAINABLE, TrainConfig
from explorer.training.initialise import INIT_LABELS, INIT_NAMES, INITS
from explorer.training.plan import RunPlan, plan_run
from explorer.training.status import (default_selection, diagnosis, parse_run_name, run_epochs,
                                      run_label, run_overfit, run_status, shown_runs)
from explorer.text import markdown_plain
from explorer.training.executors import read_placement
from explorer.training.jobs import OWNER_CODE_ENV, Job, JobQueue, owner_code_ok
from explorer.training.runs import list_runs, load_run, read_metrics
from explorer.charts.training import X_AXES, RunCurves, training_figure
from ui import state, views

POLL_SECONDS = 0.9          # the queue is refreshed at most this often (all sessions together)
LIVE_SECONDS = 1.0          # the live panel's refresh period while a run is queued or running
OVERFIT_IMAGES = 20         # "overfit a tiny subset": cs231n's sanity check
# A new session's settings until its first page run loads the current network's recipe
# (follow_recipe): the same as `train --preset lenet5 --dataset mnist5k` (the default network on the
# offline default dataset), explorer/search/recipes/recipes.json.
DEFAULT_CONFIG = replace(recipe_config(state.DEFAULT_PRESET, DEFAULT_DATASET), device="auto")
# The select sliders' ladders; choices() adds the current value and the recipe's, which a search finds
# anywhere (lr 0.0757), so the slider shows them exactly.
LR_CHOICES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
BATCH_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
DECAY_CHOICES = (0.0, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2)
OPTIMIZERS = {name: OPTIMIZER_LABELS[name] for name in TRAINABLE}   # the optimizer table's trainable rows
SCHEDULES = {"constant": "Constant", "step": "Step decay (× gamma every third of the run)",
             "cosine": "Cosine decay to 0", "onecycle": "One-cycle (warm up, then anneal)"}
STATUS_ICONS = {"queued": ":material/hourglass_top:", "running": ":material/play_circle:",
                "completed": ":material/check_circle:", "diverged": ":material/trending_up:",
                "cancelled": ":material/stop_circle:", "failed": ":material/error:",
                "interrupted": ":material/warning:", "unreadable": ":material/broken_image:"}
BADGE_COLORS = {"queued": "gray", "running": "blue", "completed": "green", "diverged": "red",
                "cancelled": "gray", "failed": "red", "interrupted": "orange", "unreadable": "red"}
ACTIVE = ("queued", "running")


def init() -> None:
    ss = st.session_state
    # TRAIN_SELECTED None: nothing picked yet; the runs table fills in the latest runs (select_default)
    for key, value in ((state.TRAIN_CONFIG, DEFAULT_CONFIG), (state.TRAIN_RECIPE, None), (state.TRAIN_SELECTED, None),
                       (state.TRAIN_CURRENT, None), (state.TRAIN_EVENTS, {}), (state.TRAIN_OFFSETS, {}),
                       (state.TRAIN_ACTIVE, frozenset()), (state.TRAIN_OWNER_CODE, None)):
        ss.setdefault(key, value)
    if not ss.get(state.TRAIN_OWNER):
        ss[state.TRAIN_OWNER] = secrets.token_hex(8)  # this session's jobs carry it; only they can be cancelled


def config() -> TrainConfig:
    return st.session_state[state.TRAIN_CONFIG]


runs_dir = state.runs_dir   # the one resolver every page uses


def owner() -> str:
    return st.session_state[state.TRAIN_OWNER]


def may_cancel(job: Job) -> bool:
    """This session's own jobs, or every job once the server's owner typed the code."""
    return job.owner == owner() or owner_code_ok(st.session_state.get(state.TRAIN_OWNER_CODE))


# --- the queue: one per app and runs directory -------------------------------------------------------
class QueueHandle:
    """A JobQueue plus a snapshot of its jobs, refreshed (refresh + schedule) at most once every
    POLL_SECONDS however many sessions and fragments ask."""

    def __init__(self, root: Path):
        self.root = root
        self.queue = JobQueue(root)
        self.error: str | None = None     # why the last poll failed (shown on the page), or None
        self.problems: list[str] = []     # malformed queue rows skipped by the last poll
        self._lock = threading.Lock()
        self._polled = -math.inf
        self._jobs: dict[str, Job] = {}

    def jobs(self, force: bool = False) -> dict[str, Job]:
        """Run directory name -> Job (the last good snapshot when the queue cannot be read)."""
        with self._lock:
            if force or time.monotonic() - self._polled >= POLL_SECONDS:
                self._polled = time.monotonic()
                try:
                    self._poll()
                except QueueError as e:  # locked or damaged: say so, keep the last snapshot
                    self.error = f"The job queue cannot be read: {e}."
                except (sqlite3.Error, OSError):  # the runs folder was removed or replaced: start afresh
                    try:
                        self.queue = JobQueue(self.root)
                        self._poll()
                    except (QueueError, sqlite3.Error, OSError) as e:
                        self.error = (f"The job queue in {self.root} cannot be read ({type(e).__name__}: {e}). "
                                      f"Check that the folder exists and is writable, then reload the page.")
            return dict(self._jobs)

    def _poll(self) -> None:
        self.queue.refresh()
        self.queue.schedule()
        self._jobs = {j.run_dir.name: j for j in self.queue.jobs()}
        self.problems = list(self.queue.problems)
        self.error = None


@st.cache_resource(show_spinner=False)
def _handle(root: str) -> QueueHandle:
    return QueueHandle(Path(root))


def queue_handle() -> QueueHandle:
    try:
        return _handle(str(runs_dir()))
    except (QueueError, sqlite3.Error, OSError) as e:
        raise RuntimeError(f"the runs folder {runs_dir()} cannot be used ({e}); point the CNN_EXPLORER_RUNS "
                           f"environment variable at a writable folder and restart the app") from e


def device_text() -> str:
    if torch.cuda.is_available():
        return f"CUDA GPU ({torch.cuda.get_device_name(0)})"
    return "CPU (no CUDA GPU found here)"


# --- settings (sidebar) -----------------------------------------------------------------------------
RECIPE_WORDS = {"epochs": "epochs", "batch_size": "batch size", "lr": "learning rate", "optimizer": "optimizer",
                "momentum": "momentum", "nesterov": "Nesterov momentum", "weight_decay": "weight decay",
                "schedule": "schedule", "step_epochs": "step period", "gamma": "step factor",
                "label_smoothing": "label smoothing", "crop_padding": "crop padding", "flip": "flips",
                "init": "initialisation"}


def follow_recipe(spec: NetworkSpec) -> None:
    """Before the settings are drawn: when the network (its preset name) or the dataset changed, load
    that pair's recipe (explorer.search.recipes.follow_recipe decides what and when)."""
    update = recipes.follow_recipe(config(), st.session_state[state.TRAIN_RECIPE], spec.name)
    if update is not None:
        _load(*update)


def _load(cfg: TrainConfig, key: tuple[str | None, str | None]) -> None:
    """Make cfg the settings; the recipe's widgets already drawn show its values (set_value)."""
    ss = st.session_state
    ss[state.TRAIN_CONFIG], ss[state.TRAIN_RECIPE] = cfg, key
    for field in recipes.RECIPE_FIELDS:
        if state.W_TRAIN + field in ss:   # a widget not drawn yet starts from cfg by itself
            ss[state.W_TRAIN + field] = getattr(cfg, field)


def _reset_recipe() -> None:
    """on_click of Reset to recipe: the pair's recipe again, over the person's edits."""
    cfg, name = config(), state.spec().name
    _load(recipes.load_recipe(cfg, name, cfg.dataset), recipes.recipe_key(name, cfg.dataset))


def recipe_note(spec: NetworkSpec, cfg: TrainConfig) -> None:
    """Where the settings come from (recipe_source), what was changed since, and Reset to recipe."""
    edited = recipes.edited_fields(cfg, spec.name)
    changed = f" Changed since: {', '.join(RECIPE_WORDS.get(f, f) for f in edited)}." if edited else ""
    summary = recipes.recipe_summary(spec.name, cfg.dataset)
    st.caption(f"Starting settings: {markdown_plain(summary)}.{changed}",
               help=markdown_plain(recipes.recipe_source(spec.name, cfg.dataset)))
    st.button("Reset to recipe", key=state.W_TRAIN_RESET, icon=":material/restart_alt:", on_click=_reset_recipe,
              disabled=not edited, help="Load this network's recipe for this dataset again (what `python -m "
                                        "explorer train --preset NAME --dataset NAME` starts from). Device, data "
                                        "folder, seed, time limit and transfer settings stay as they are.")


def choices(ladder: tuple, *values: Any) -> list:
    """A select slider's options: the ladder plus the given values (the current one, the recipe's),
    sorted; a ladder step whose label (format_value) a given value shares gives way to it, since
    the slider tells its options apart by label."""
    given = {v for v in values if v is not None}
    labels = {format_value(v) for v in given}
    return sorted(given | {v for v in ladder if format_value(v) not in labels})


def _set(field: str, key: str, label: str, convert: Callable[[Any], Any] = lambda v: v) -> None:
    """on_change of a settings widget: copy its value into the TrainConfig (validated)."""
    try:
        st.session_state[state.TRAIN_CONFIG] = config().with_changes(**{field: convert(st.session_state[key])})
    except UserError as e:
        state.notify("error", f"{label}: {e.message}. The setting was not changed.")
    except Exception as e:  # noqa: BLE001 - shown in one line, the settings are kept
        state.notify("error", f"{label} could not be changed ({type(e).__name__}: {e}).")


def _widget(make: Callable[..., Any], label: str, field: str, convert: Callable[[Any], Any] = lambda v: v,
            **kwargs: Any) -> Any:
    key = state.W_TRAIN + field   # w.tr.<TrainConfig field>
    if field in recipes.RECIPE_FIELDS and key in st.session_state:  # its state holds the value (_load may have
        kwargs.pop("value", None), kwargs.pop("index", None)        # just set it): no second default beside it
    return make(label, key=key, on_change=_set, args=(field, key, label, convert), **kwargs)


def settings_sidebar(spec: NetworkSpec, cfg: TrainConfig) -> None:
    datasets, start = {d.name: d for d in list_datasets()}, recipe_config(spec.name, cfg.dataset)
    with st.sidebar:
        st.subheader("Training settings", anchor=False)
        names = list(datasets)
        _widget(st.selectbox, "Dataset", "dataset", options=names, index=names.index(cfg.dataset),
                format_func=lambda n: datasets[n].title)
        info = datasets[cfg.dataset]
        st.caption(f"{info.channels}×{info.height}×{info.width} · "
                   f"{info.num_classes or 'one class per sub-folder:'} classes · {info.description}")
        if not info.offline:
            _widget(st.text_input, "Data folder", "data_root", value=cfg.data_root or "",
                    convert=lambda v: str(resolve_data_root(v)) if v.strip() else None,   # allowed roots only
                    placeholder=str(default_data_root()),
                    help="Where the dataset's files are (or are downloaded to on first use). Empty: the "
                         "default folder shown. Only folders under this server's data folders are read.")
        _widget(st.number_input, "Epochs", "epochs", min_value=1, max_value=1000, value=cfg.epochs,
                help="Passes over the training images")
        _widget(st.select_slider, "Batch size", "batch_size", value=cfg.batch_size,
                options=choices(BATCH_CHOICES, cfg.batch_size, start.batch_size),
                help="Images per optimizer step. Small batches give a noisy loss curve.")
        _widget(st.select_slider, "Learning rate", "lr", options=choices(LR_CHOICES, cfg.lr, start.lr),
                value=cfg.lr, format_func=format_value,
                help="Peak learning rate. Search it on a log scale, coarse to fine; a loss that "
                     "explodes means it is too high.")
        _widget(st.selectbox, "Optimizer", "optimizer", options=list(OPTIMIZERS),
                index=list(OPTIMIZERS).index(cfg.optimizer), format_func=OPTIMIZERS.get)
        _widget(st.selectbox, "Learning-rate schedule", "schedule", options=list(SCHEDULES),
                index=list(SCHEDULES).index(cfg.schedule), format_func=SCHEDULES.get)
        _widget(st.selectbox, "Weight initialisation", "init", options=list(INIT_NAMES),
                index=list(INIT_NAMES).index(cfg.init), format_func=INIT_LABELS.get,
                help="How the weights start. " + " ".join(f"{i.label}: {i.what}." for i in INITS) +
                     " Deep networks without batch norm may stay at chance from the default.")
        _widget(st.toggle, f"Overfit {OVERFIT_IMAGES} images (sanity check)", "overfit", value=cfg.overfit > 0,
                convert=lambda on: OVERFIT_IMAGES if on else 0,
                help=f"Train and validate on {OVERFIT_IMAGES} training images only. A working network "
                     f"and loop reach 100% on them within a few dozen epochs; if not, fix that before a "
                     f"real run.")
        with st.expander("Regularization, augmentation, device", icon=":material/tune:"):
            _more_settings(cfg, start)
        recipe_note(spec, cfg)


def _more_settings(cfg: TrainConfig, start: TrainConfig) -> None:
    _widget(st.number_input, "Momentum (SGD)", "momentum", min_value=0.0, max_value=0.99, step=0.05,
            value=cfg.momentum, disabled=cfg.optimizer != "sgd")
    _widget(st.select_slider, "Weight decay", "weight_decay", value=cfg.weight_decay, format_func=format_value,
            options=choices(DECAY_CHOICES, cfg.weight_decay, start.weight_decay),
            help="L2 penalty on the weights (decoupled for AdamW)")
    _widget(st.slider, "Label smoothing", "label_smoothing", min_value=0.0, max_value=0.3, step=0.05,
            value=cfg.label_smoothing)
    _widget(st.number_input, "Random crop padding (pixels)", "crop_padding", min_value=0, max_value=16,
            value=cfg.crop_padding, help="Pad by P pixels, then crop back at a random offset (CIFAR: 4)")
    _widget(st.checkbox, "Random horizontal flips", "flip", value=cfg.flip,
            help="Good for photos; not for digits (a flipped 2 is no longer a 2)")
    _widget(st.number_input, "Image size (pixels, 0 = automatic)", "image_size", min_value=0,
            max_value=MAX_IMAGE_SIZE, value=cfg.image_size,
            help="Side of the square images the network trains on. Automatic: the dataset's own size when the "
                 "network works at it, else the smallest size it works at (VGG-16 on 28x28 digits trains at "
                 "32x32, not its own 224x224: 432M multiply-adds per image instead of 15,408M); starting from "
                 "weights, the size they were trained at. The 'Adapted to the dataset' note says what was "
                 "chosen.")
    _widget(st.slider, "Validation share", "val_fraction", min_value=0.05, max_value=0.5, step=0.05,
            value=cfg.val_fraction, help="Share of a built-in set held out for validation")
    _widget(st.number_input, "Seed", "seed", min_value=0, max_value=2**31 - 1, value=cfg.seed)
    _widget(st.number_input, "Time limit (seconds, 0 = none)", "max_seconds", min_value=0, max_value=86_400,
            value=int(cfg.max_seconds or 0), convert=lambda v: float(v) if v else None)
    devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    _widget(st.selectbox, "Device", "device", options=devices,
            index=devices.index(cfg.device) if cfg.device in devices else 0,
            format_func={"auto": "Automatic (GPU when there is one)", "cpu": "CPU", "cuda": "CUDA GPU"}.get)
    st.caption(f"This machine: {device_text()}.")


def owner_code_input() -> None:
    """Sidebar: the server's owner types the code ($CNN_EXPLORER_OWNER_CODE) to cancel any run."""
    if not os.environ.get(OWNER_CODE_ENV):
        return
    with st.sidebar.expander("Server owner", icon=":material/admin_panel_settings:"):
        if st.session_state.get(state.TRAIN_OWNER_CODE):
            st.caption("Unlocked: you can cancel every run in the queue.")
            return
        st.text_input("Owner code", key=state.W_OWNER_CODE, type="password", on_change=_unlock,
                      help="The code the server was started with; it lets you cancel anyone's runs.")


def _unlock() -> None:
    code = st.session_state.get(state.W_OWNER_CODE)
    if owner_code_ok(code):
        st.session_state[state.TRAIN_OWNER_CODE] = code
        state.notify("success", "Owner code accepted: you can cancel every run.")
    elif code:
        state.notify("error", "That is not the owner code.")


# --- the check before launch ------------------------------------------------------------------------
@dataclass(frozen=True)
class Preflight:
    """The Train page's view of a RunPlan: the plan, or the sentence saying what to change."""

    plan: RunPlan | None = None               # what a launch would do (None: the settings are refused)
    error: str | None = None                  # one message: what is wrong and what to change
    dataset: str = ""                         # the dataset's title

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def memory(self) -> int | None:
        """Predicted training memory (bytes): the number the run records in its start event."""
        return None if self.plan is None else self.plan.memory_bytes

    @property
    def params(self) -> int | None:
        """Parameters of the network fitted to the dataset (the challenge page's budget check)."""
        return None if self.plan is None else self.plan.params


@st.cache_resource(max_entries=64, show_spinner=False)
def _plan(spec_json: str, cfg_json: str, cuda: bool) -> RunPlan:
    """plan_run, remembered per spec, settings and GPU presence (a plan is frozen: shared safely)."""
    return plan_run(NetworkSpec.from_json(spec_json), TrainConfig.from_dict(json.loads(cfg_json)))


def preflight(spec: NetworkSpec, cfg: TrainConfig) -> Preflight:
    try:
        cfg.validate()
        if cfg.data_root:      # checked again here: a job launched with it reads that folder
            resolve_data_root(cfg.data_root)   # the server's data roots only (the loop reads any)
    except UserError as e:
        return Preflight(error=f"{state.describe_error(e)} Change it in the training settings.")
    plan = _plan(spec.to_json(indent=None), json.dumps(cfg.to_dict()), torch.cuda.is_available())
    info = plan.dataset
    title = info.title if info is not None else cfg.dataset
    if plan.ok:
        return Preflight(plan=plan, dataset=title)
    why = state.describe_error(plan.error)
    error = {
        "settings": f"{why} Change it in the training settings.",
        "dataset": f"{why[:1].upper()}{why[1:]} Type its path under Data folder in the sidebar.",
        "network": (f"This network cannot train on {title} ({info.channels}×{info.height}×{info.width}, "
                    f"{info.num_classes or spec.num_classes} classes). {why} Change the network on the Build "
                    f"page, or pick another dataset."),
        "analysis": f"The network adapted to {title} does not fit together: {why} Change the network on the "
                    f"Build page.",
        "transfer": f"{why} Change where the weights start from, or what is frozen, under Start from trained "
                    f"weights below.",
    }[plan.blocked_at]
    return Preflight(plan=plan, error=error, dataset=title)


def network_title(spec: NetworkSpec) -> str:
    return preset_info(spec.name).title if spec.name in preset_names() else spec.name


def header(spec: NetworkSpec, cfg: TrainConfig, jobs: dict[str, Job], handle: QueueHandle) -> None:
    st.title(f"Train {markdown_plain(network_title(spec))}", anchor=False)
    counts = []
    for device, limit in handle.queue.limits.items():
        running = sum(j.status == "running" and j.device == device for j in jobs.values())
        queued = sum(j.status == "queued" and j.device == device for j in jobs.values())
        if running or queued or device == "cpu" or torch.cuda.is_available():
            counts.append(f"{device.upper()} {running} running, {queued} waiting (at most {limit} at a time)")
    st.caption(f"Runs on: {device_text()} · Queue, shared by everyone using this app: {'; '.join(counts)}")
    if handle.error:
        st.error(handle.error, icon=":material/error:")
    for text in handle.problems[:5]:
        st.warning(text, icon=":material/warning:")
    for kind, text in state.pop_notices():
        getattr(st, kind, st.info)(text)


def preflight_view(spec: NetworkSpec, cfg: TrainConfig, check: Preflight) -> None:
    """One line of what a launch would do (or the blocking error), the Train button beside it."""
    if not check.ok:
        st.error(check.error, icon=":material/error:")
        st.page_link("pages/build.py", label="Change the network on the Build page", icon=":material/construction:")
        launch_button(check)
        return
    plan = check.plan
    expected = math.log(plan.spec.num_classes)
    shape = "×".join(map(str, plan.spec.input))
    overfit = f" · overfit mode: {OVERFIT_IMAGES} training images only" if cfg.overfit else ""
    st.markdown(f"**{network_title(spec)}** ({plan.params:,} parameters, {format_macs(plan.macs)} per image) "
                f"on **{check.dataset}** at {shape} · {cfg.epochs} epoch{'s' * (cfg.epochs != 1)}, batch "
                f"{cfg.batch_size}, {OPTIMIZERS[cfg.optimizer]} at learning rate {format_value(cfg.lr)}{overfit}")
    st.caption(f"Predicted training memory at batch {cfg.batch_size} on the {plan.device.upper()} "
               f"({plan.execution}): {format_bytes(check.memory)} · an untrained "
               f"network starts near loss ln({plan.spec.num_classes}) = {expected:.2f}")
    launch_button(check)


def preflight_notes(check: Preflight) -> None:
    """How the network was fitted to the data and the warnings: below the live curves (they can be long)."""
    if not check.ok:
        return
    if check.plan.notices:
        st.info("Adapted to the dataset: " + "; ".join(check.plan.notices) + ".", icon=":material/auto_fix_high:")
    for text in check.plan.warnings:
        st.warning(text, icon=":material/warning:")


def launch_button(check: Preflight) -> None:
    st.button("Train", type="primary", icon=":material/play_arrow:", key=state.W_TRAIN_LAUNCH, disabled=not check.ok,
              on_click=_launch, help="Start a training process with these settings (it waits in the queue "
                                     "when the device is busy)")


def _launch() -> None:
    spec, cfg = state.spec(), config()
    check = preflight(spec, cfg)
    if not check.ok:
        state.notify("error", check.error)
        return
    handle = queue_handle()
    try:
        job = handle.queue.submit(spec, cfg, owner=owner())
        handle.jobs(force=True)
    except UserError as e:
        state.notify("error", f"The run was not started: {state.describe_error(e)}")
        return
    except Exception as e:  # noqa: BLE001 - one line instead of a traceback
        state.notify("error", f"The run could not be started ({type(e).__name__}: {e}). Check that the runs "
                              f"folder {runs_dir()} is writable.")
        return
    ss = st.session_state
    ss[state.TRAIN_CURRENT] = job.run_dir.name
    ss[state.TRAIN_SELECTED] = [job.run_dir.name] + [n for n in ss[state.TRAIN_SELECTED] or [] if n != job.run_dir.name]


def _cancel(name: str) -> None:
    handle = queue_handle()
    try:
        job = handle.jobs().get(name)
        if job is None or job.status not in ACTIVE:
            state.notify("info", "That run has already finished.")
            return
        handle.queue.cancel(job.id, owner=owner(), owner_code=st.session_state.get(state.TRAIN_OWNER_CODE))
        handle.jobs(force=True)
    except UserError as e:
        state.notify("error", f"The run was not cancelled: {state.describe_error(e)}")
    except Exception as e:  # noqa: BLE001
        state.notify("error", f"The run could not be cancelled ({type(e).__name__}: {e}).")


# --- reading runs (incrementally) -----------------------------------------------------------------
MAX_SHOWN = 6               # runs drawn at most (cards and curves alike): the newest selected first


def curves_for(names: list[str]) -> dict[str, RunCurves]:
    """Each run's events so far: only the bytes appended since the last call are read."""
    ss, root = st.session_state, runs_dir()
    store, offsets = ss[state.TRAIN_EVENTS], ss[state.TRAIN_OFFSETS]
    for name in names:
        curves = store.get(name)
        if curves is None:
            curves = store[name] = RunCurves(run_label(root / name))
        if curves.end is None:
            events, offsets[name] = read_metrics(root / name, offsets.get(name, 0))
            curves.add(events)
    return {name: store[name] for name in names}


def selected() -> list[str]:
    """The runs this session overlays (select_default fills it on the session's first page run)."""
    return list(st.session_state[state.TRAIN_SELECTED] or [])


def select_default(folders: list[str], jobs: dict[str, Job]) -> None:
    """A new session (nothing picked yet) overlays its owner's latest runs, else the server's latest."""
    if st.session_state[state.TRAIN_SELECTED] is None:
        owners = {name: job.owner for name, job in jobs.items()}
        st.session_state[state.TRAIN_SELECTED] = default_selection(folders, owners, owner())


@dataclass(frozen=True)
class Watch:
    """What the live panel shows: one list of runs, each with its curves and status."""

    shown: list[str]                 # run folder names, in selection order (newest launched first)
    curves: dict[str, RunCurves]
    statuses: dict[str, str]

    @property
    def active(self) -> frozenset[str]:
        return frozenset(n for n, s in self.statuses.items() if s in ACTIVE)


def watch(jobs: dict[str, Job]) -> Watch:
    root = runs_dir()
    chosen = selected()
    shown = shown_runs(chosen, [n for n in chosen if (root / n).is_dir()], MAX_SHOWN)
    curves = curves_for(shown)
    statuses = {n: run_status(root / n, jobs[n].status if n in jobs else None, curves[n].end) for n in shown}
    return Watch(shown, curves, statuses)


# --- the live panel ----------------------------------------------------------------------------------
def live_panel(handle: QueueHandle) -> None:
    """Curves and cards; a fragment refreshing every LIVE_SECONDS while a shown run is queued or
    running, and redrawing the whole page (run list, polling off) when that set changes."""
    st.session_state[state.TRAIN_ACTIVE] = watch(handle.jobs()).active
    active = bool(st.session_state[state.TRAIN_ACTIVE])
    st.fragment(_live, run_every=LIVE_SECONDS if active else None)(handle)


def _live(handle: QueueHandle) -> None:
    with views.guarded("the live panel"):
        jobs = handle.jobs()
        w = watch(jobs)
        if w.active != st.session_state[state.TRAIN_ACTIVE]:
            st.session_state[state.TRAIN_ACTIVE] = w.active
            st.rerun()  # a run started or ended: refresh the run list and switch polling on or off
        # the curves first, in view while a run trains; oldest first, so a run keeps its colour
        curves_chart([w.curves[n] for n in sorted(w.shown)])
        if len(selected()) > len(w.shown):
            st.caption(f"Showing the {len(w.shown)} newest selected runs (at most {MAX_SHOWN}).")
        for name in w.shown:
            run_card(name, w.curves[name], w.statuses[name], jobs, handle)


def queue_text(name: str, jobs: dict[str, Job], limits: dict[str, int]) -> str:
    job = jobs[name]
    waiting = sorted((j for j in jobs.values() if j.status == "queued" and j.device == job.device), key=lambda j: j.id)
    position = next((i for i, j in enumerate(waiting, 1) if j.id == job.id), 1)
    running = sum(j.status == "running" and j.device == job.device for j in jobs.values())
    return (f"Waiting in the queue: number {position} of {len(waiting)} for the {job.device.upper()} "
            f"({running} running, at most {limits.get(job.device, 1)} at a time). It starts by itself when a "
            f"place frees up.")


def placement_text(run: Path) -> str:
    """' · executes on HOST (ray, GPU 0)' from the run's placement, '' before it has one."""
    placement = read_placement(run)
    if placement is None or not placement.node:
        return ""
    gpu = f", GPU {placement.gpu}" if placement.gpu else ""
    return f" · executes on {markdown_plain(placement.node)} ({placement.executor}{gpu})"


def run_card(name: str, c: RunCurves, status: str, jobs: dict[str, Job], handle: QueueHandle) -> None:
    start, last, epoch = c.start or {}, c.last_step, c.last_epoch
    with st.container(border=True):
        left, mid, right = st.columns([6, 1.3, 1.2], vertical_alignment="center")
        device = f" on {str(start['device']).upper()}" if start.get("device") else ""
        left.markdown(f"**{markdown_plain(c.label)}**{device}")
        left.caption(f"Run folder {name}{placement_text(runs_dir() / name)}")
        mid.badge(status, icon=STATUS_ICONS.get(status), color=BADGE_COLORS.get(status, "gray"))
        if status in ACTIVE and name in jobs and may_cancel(jobs[name]):
            stopping = (runs_dir() / name / "CANCEL").exists()
            right.button("Stopping…" if stopping else "Cancel", key=state.W_TRAIN_CANCEL + name, icon=":material/stop:",
                         on_click=_cancel, args=(name,), disabled=stopping, width="stretch",
                         help="Stop this run (a queued run is dropped; a running one stops at its next step)")
        if status == "queued" and name in jobs:
            st.info(queue_text(name, jobs, handle.queue.limits), icon=":material/hourglass_top:")
        elif status == "running" and last is None:
            st.progress(0.0, text="Starting: loading the dataset and building the network…")
        if last is not None:
            total = c.total_steps or last["step"]
            epochs = run_epochs(runs_dir() / name) or "?"
            st.progress(min(1.0, c.progress), text=f"Epoch {last['epoch']} of {epochs} · step {last['step']:,} of "
                                                  f"{total:,} · {c.progress:.0%} · learning rate {last['lr']:.3g}")
            _metrics(c, status, last, epoch)
        notices = (start.get("notices") or [])
        if notices:
            st.caption("Adapted to the dataset: " + "; ".join(notices) + ".")
        _warnings([m for m in c.warnings if m not in notices])
        _outcome(name, c, status, jobs)


def _metrics(c: RunCurves, status: str, last: dict, epoch: dict | None) -> None:
    cols = st.columns(6)
    cols[0].metric("Loss", f"{last['loss']:.3f}", help="Cross-entropy, mean over the last logged steps")
    expected = c.expected_initial_loss
    cols[1].metric("First loss", f"{c.first_loss:.3f}",
                   delta=f"ln({c.num_classes}) = {expected:.2f}" if expected else None,
                   delta_color="off", delta_arrow="off",
                   help="An untrained network guesses uniformly, so its first loss is near ln(number of "
                        "classes). Far from it: check the initialisation or the last layer.")
    cols[2].metric("Train acc", f"{last['acc']:.1%}", help="Training accuracy over the last logged steps")
    cols[3].metric("Val acc", "–" if epoch is None else f"{epoch['val_acc']:.1%}",
                   help="Validation accuracy on the held-out images, at the end of each epoch"
                        + ("" if epoch is None else f"; top-5 {epoch['val_top5']:.1%}"))
    cols[4].metric("Images/s", f"{last['images_per_s']:,.0f}", help="Training throughput over the last logged steps")
    if status in ACTIVE:
        cols[5].metric("Time left", format_seconds(last.get("eta_s")), help="Estimated from the speed so far")
    else:
        cols[5].metric("Took", format_seconds(last.get("elapsed_s")), help="Wall time of the training loop")


def _warnings(messages: list[str]) -> None:
    unique = list(dict.fromkeys(messages))
    for text in unique[:3]:
        st.warning(text[:1].upper() + text[1:], icon=":material/warning:")
    if len(unique) > 3:
        with st.expander(f"{len(unique) - 3} more warnings"):
            for text in unique[3:]:
                st.warning(text[:1].upper() + text[1:])


def _outcome(name: str, c: RunCurves, status: str, jobs: dict[str, Job]) -> None:
    message = (c.end or {}).get("message") or (jobs[name].message if name in jobs else "")
    if not message and status in ("interrupted", "unreadable"):
        record = load_run(runs_dir() / name)
        message = record.message if record is not None else ""
    message = str(message)
    message = message[:1].upper() + message[1:] if message else ""
    if status == "completed":
        best = c.best_val_acc
        st.success(f"Completed: {message or 'finished'}."
                   + ("" if best is None else f" Best validation accuracy {best:.1%}."), icon=":material/check_circle:")
        advice = diagnosis(c.last_epoch, run_overfit(runs_dir() / name))
        if advice:
            getattr(st, advice[0])(advice[1], icon=":material/lightbulb:")
    elif status == "diverged":
        st.error(f"Diverged: {message}", icon=":material/trending_up:")
    elif status == "failed":
        st.error(f"Failed: {message or 'the training process stopped with an error'}", icon=":material/error:")
    elif status == "cancelled":
        st.info(f"Cancelled: {message or 'stopped by the user'}.", icon=":material/stop_circle:")
    elif status == "unreadable":
        st.error(f"Unreadable: {message or 'a file in this run folder is damaged'}.", icon=":material/error:")
    elif status == "interrupted":
        st.warning(f"{status.capitalize()}: {message or 'no news from this run for a while'}.",
                   icon=":material/warning:")
    if status in ("failed", "interrupted") and c.end is None:
        said = _last_log_line(runs_dir() / name / "process.log")
        if said:
            st.caption(f"The training process said: {said}")


def _last_log_line(path: Path, tail: int = 2048) -> str:
    """The last non-empty line of a process log (its final error message), read from the end."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - tail))
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def curves_chart(runs: list[RunCurves]) -> None:
    drawn = [r for r in runs if r.steps or r.epochs]
    if not runs:
        st.info("No curves to show yet: press Train, or select runs in the list below to overlay them.",
                icon=":material/show_chart:")
        return
    if not drawn:
        st.caption("The curves appear after the first logged steps.")
        return
    x = st.segmented_control("X axis", list(X_AXES), default="epoch", key=state.W_TRAIN_XAXIS,
                             format_func={"epoch": "Epochs", "step": "Optimizer steps"}.get) or "epoch"
    st.plotly_chart(training_figure(drawn, x), key=state.W_TRAIN_FIGURE)
    st.caption("Thin line: train loss and accuracy per logged step (mean of the last steps; a small batch makes "
               "it noisy). Dotted: train per epoch. Dashed: validation per epoch. A big gap between train and "
               "validation means overfitting." + (" One colour per run; click a run in the legend to hide it "
                                                  "(gray entries: the line styles)." if len(drawn) > 1 else ""))


# --- the run list ----------------------------------------------------------------------------------
def runs_table(jobs: dict[str, Job]) -> None:
    """Every run in the runs folder, newest first; the selected rows are overlaid in the chart."""
    st.subheader("Runs", anchor=False)
    records = sorted(list_runs(runs_dir()), key=lambda r: r.path.name, reverse=True)
    names = [r.path.name for r in records]
    select_default(names, jobs)
    if not records:
        st.caption(f"No runs yet in {runs_dir()}. Press Train to start one.")
        return
    statuses = [jobs[n].status if n in jobs else r.status for n, r in zip(names, records)]
    frame = pd.DataFrame({
        "Run": [r.name for r in records],
        "Status": statuses,
        "Dataset": [r.dataset for r in records],
        "Best val acc": [None if r.best_val_acc is None else 100 * r.best_val_acc for r in records],
        "Epochs": [r.epochs_done for r in records],
        "Time": [format_seconds(r.seconds) if r.seconds is not None else "" for r in records],
        "Started": [parse_run_name(n).started for n in names],
        "Start": [r.start for r in records],
        "Images/s": [r.images_per_s for r in records],
        "Params": [r.params for r in records],
        "Note": [r.message for r in records],
        "Folder": names,
    })
    cc = st.column_config
    # the first seven columns fit a 1024-px projector; the rest scroll sideways
    config = {"Best val acc": cc.ProgressColumn("Best val acc", format="%.1f%%", min_value=0, max_value=100,
                                                help="Best validation accuracy over the epochs", width=110),
              "Run": cc.TextColumn("Run", width=100), "Dataset": cc.TextColumn("Dataset", width=70),
              "Status": cc.TextColumn("Status", width=85),
              "Epochs": cc.NumberColumn("Epochs", help="Epochs finished", format="%d", width=55),
              "Time": cc.TextColumn("Time", help="Wall time of the whole run", width=70),
              "Started": cc.TextColumn("Started", width=80),
              "Start": cc.TextColumn("Start", help="What the weights started from (transfer learning)"),
              "Images/s": cc.NumberColumn("Images/s", format="localized"),
              "Params": cc.NumberColumn("Params", format="localized"),
              "Note": cc.TextColumn("Note", width="large")}
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()[:10]  # a new run -> a new table
    rows = [names.index(n) for n in selected() if n in names]
    event = st.dataframe(frame, key=state.W_TRAIN_RUNS + digest, on_select="rerun", selection_mode="multi-row",
                         selection_default={"selection": {"rows": rows}}, hide_index=True, placeholder="–",
                         column_config=config, height=min(35 * (len(records) + 1) + 3, 420))
    st.session_state[state.TRAIN_SELECTED] = [names[i] for i in event.selection.rows if i < len(names)]
    st.caption("Select rows to overlay their curves above. The list is shared: it shows every run in "
               f"{runs_dir()}, from every session.")
