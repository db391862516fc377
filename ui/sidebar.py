"""The builder's sidebar: history, presets, input and memory settings, the block editor, the
block palette (widgets generated from each block's parameter schema), import/export/share.

Every change to the spec happens in a widget callback (before the script reruns), through
ui.state.commit, so the page always draws the spec after the change and undo sees every step.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import streamlit as st
import torch

from explorer.core.analysis import DTYPES, MAX_BATCH, OPTIMIZER_STATE
from explorer.core.budget import check_spec
from explorer.core.export import to_pytorch_source
from explorer.core.presets import list_presets, load_preset, preset_info
from explorer.core.registry import FAMILIES, Field, block_types, get_block, validate_block_dict
from explorer.core.share import share_url
from explorer.core.spec import MAX_REPEAT, MAX_SPEC_BYTES, BlockSpec, NetworkSpec, SpecError
from explorer.text import slug as text_slug
from explorer.errors import UserError
from explorer.text import markdown_plain
from explorer.training.config import OPTIMIZER_TABLE
from ui import state

# from the optimizer table (explorer.training.config): "Adam (2 states)", "Plain SGD (no state)"
OPTIMIZER_LABELS = {o.name: f"{o.label} ({o.state or 'no'} state{'s' * (o.state > 1)})" for o in OPTIMIZER_TABLE}


def render(spec: NetworkSpec, error: SpecError | None, out_shapes: dict[int, str]) -> None:
    with st.sidebar:
        _history_bar()
        _preset_picker()
        with st.expander("Input and memory settings", icon=":material/tune:"):
            _input_settings(spec)
        _block_editor(spec, error, out_shapes)
        with st.expander("Add a block", expanded=True, icon=":material/add_box:"):
            _palette(spec, out_shapes)
        with st.expander("Import, export, share", icon=":material/share:"):
            _files(spec, error)


def _safe(callback: Callable[..., None]) -> Callable[..., None]:
    """Widget callbacks run before the page; an unexpected error there becomes a message (the
    network is kept) instead of a traceback."""
    @functools.wraps(callback)
    def wrapper(*args: Any) -> None:
        try:
            callback(*args)
        except SpecError as e:
            state.notify("error", state.describe_error(e))
        except Exception as e:  # noqa: BLE001 - shown to the user in one line
            state.notify("error", f"That change could not be made ({type(e).__name__}: {e}); the network "
                                  f"is unchanged.")
    return wrapper


# --- history and presets -------------------------------------------------------------------------
def _history_bar() -> None:
    left, right = st.columns(2)
    left.button("Undo", icon=":material/undo:", on_click=state.undo, disabled=not state.can_undo(),
                width="stretch", key=state.W_UNDO, help="Take back the last change to the network")
    right.button("Redo", icon=":material/redo:", on_click=state.redo, disabled=not state.can_redo(),
                 width="stretch", key=state.W_REDO, help="Put back the change you took back")


def _preset_title(name: str) -> str:
    info = preset_info(name)
    return f"{info.title} ({info.year})" if info.year else info.title


def _preset_picker() -> None:
    names = [p.name for p in sorted(list_presets(), key=lambda p: (p.year or 0, p.title))]
    st.selectbox("Start from a preset", names, index=None, format_func=_preset_title, key=state.PRESET_PICK,
                 placeholder="Choose a network…", on_change=_on_preset,
                 help="Replaces the network with a classic architecture (undo brings yours back)")
    st.button("New empty network", icon=":material/add_box:", on_click=_on_new, key=state.W_NEW, width="stretch",
              help="Start from no blocks, keeping the input shape and class count (undo brings yours back)")


@_safe
def _on_new() -> None:
    """An empty network: no blocks, the default name and no description (nothing old travels in links)."""
    spec = state.spec()
    state.commit(NetworkSpec(input=spec.input, num_classes=spec.num_classes))
    state.select(0)


@_safe
def _on_preset() -> None:
    name = st.session_state.get(state.PRESET_PICK)
    if name:
        state.commit(load_preset(name))
        state.select(0)
    st.session_state[state.PRESET_PICK] = None


# --- input and memory settings -------------------------------------------------------------------
def _input_settings(spec: NetworkSpec) -> None:
    g = state.gen()
    st.text_input("Network name", spec.name, key=state.W_NAME + str(g), max_chars=100, on_change=_on_name,
                  args=(state.W_NAME + str(g),), help="Used for the downloaded files and the PyTorch class name")
    if len(spec.input) == 3:
        cols = st.columns(3)
        for i, (col, label) in enumerate(zip(cols, ("Channels", "Height (px)", "Width (px)"))):
            col.number_input(label, 1, 8192, int(spec.input[i]), key=f"{state.W_INPUT}{g}.{i}",
                             on_change=_on_input, args=(g,), help="Input image shape per example: C x H x W")
    else:
        st.number_input("Input features", 1, 8192, int(spec.input[0]), key=f"{state.W_INPUT}{g}.0",
                        on_change=_on_input, args=(g,), help="Length of each flat input vector")
    st.number_input("Number of classes", 1, 100_000, spec.num_classes, key=state.W_CLASSES + str(g),
                    on_change=_on_classes, args=(state.W_CLASSES + str(g),),
                    help="Also resizes the last layer when it produced the old count")
    st.divider()
    st.caption("Memory estimate")
    ss = st.session_state
    st.number_input("Batch size B", 1, MAX_BATCH, ss[state.BATCH], key=state.W_BATCH, on_change=state.set_setting,
                    args=(state.BATCH, state.W_BATCH), help="Images per training step; activation and "
                    "training memory scale with it")
    dtypes = list(DTYPES)
    st.selectbox("Number format (dtype)", dtypes, index=dtypes.index(ss[state.DTYPE]), key=state.W_DTYPE,
                 on_change=state.set_setting, args=(state.DTYPE, state.W_DTYPE),
                 help="Bytes per value: float32 4, float16/bfloat16 2, float64 8")
    opts = list(OPTIMIZER_STATE)
    st.selectbox("Optimizer", opts, index=opts.index(ss[state.OPTIMIZER]), key=state.W_OPTIMIZER,
                 format_func=OPTIMIZER_LABELS.get, on_change=state.set_setting,
                 args=(state.OPTIMIZER, state.W_OPTIMIZER),
                 help="Extra values the optimizer keeps per trainable parameter: SGD momentum 1, Adam's two moments 2")


@_safe
def _on_name(key: str) -> None:
    name = (st.session_state[key] or "").strip()
    if name:
        state.commit(NetworkSpec.from_dict({**state.spec().to_dict(), "name": name}), from_editor=True)


@_safe
def _on_input(g: int) -> None:
    spec = state.spec()
    values = [st.session_state.get(f"{state.W_INPUT}{g}.{i}") for i in range(len(spec.input))]
    if all(isinstance(v, int) for v in values):
        state.commit(spec.with_input(values), from_editor=True)


@_safe
def _on_classes(key: str) -> None:
    value = st.session_state[key]
    if isinstance(value, int):
        state.commit(state.spec().with_num_classes(value))  # may resize the last layer: editor re-reads


# --- the block editor ----------------------------------------------------------------------------
def _block_editor(spec: NetworkSpec, error: SpecError | None, out_shapes: dict[int, str]) -> None:
    n = len(spec.blocks)
    st.subheader(f"Blocks ({n})")
    if n == 0:
        st.info("The network is empty: add a block below, or start from a preset.")
        return
    sel, g = state.selected(), state.gen()
    bad = error.block_index if error is not None else None
    if bad is not None and bad != sel and bad < n:
        st.error(f"Block {bad + 1} does not fit: {error.message}", icon=":material/error:")
        st.button(f"Show block {bad + 1}", on_click=state.select, args=(bad,), key=state.W_SHOW_BAD,
                  icon=":material/arrow_forward:")
    key = f"{state.W_SELECT}{g}.{_labels_token(spec, out_shapes, bad)}"
    st.selectbox("Block to edit", range(n), index=sel, key=key, on_change=_on_select, args=(key,),
                 format_func=lambda i: ("⚠ " if i == bad else "") + block_summary(i, spec.blocks[i], out_shapes),
                 help="Pick a block to change, move, duplicate or delete (or click its row in the table)")
    cols = st.columns(4)
    actions = (("Move up", ":material/arrow_upward:", _move, (sel, -1), sel == 0),
               ("Move down", ":material/arrow_downward:", _move, (sel, 1), sel >= n - 1),
               ("Duplicate", ":material/content_copy:", _duplicate, (sel,), False),
               ("Delete", ":material/delete:", _delete, (sel,), False))
    for col, (label, icon, fn, args, disabled) in zip(cols, actions):
        col.button("", icon=icon, help=label, key=state.W_ACTION + label, on_click=fn, args=args, disabled=disabled,
                   width="stretch")
    block = spec.blocks[sel]
    definition = get_block(block.type)
    st.caption(f"**{definition.title}** — {definition.description}")
    values = {**definition.defaults(), **block.values}
    fields_grid(definition.fields, values, f"{state.W_EDIT}{g}.{sel}.", on_change=_on_edit,
                args_for=lambda name: (sel, name, g), repeat=block.repeat)
    for p in (state.field_error(), _as_problem(error)):
        if p and p["index"] == sel:
            st.error(p["message"], icon=":material/error:")


def _labels_token(spec: NetworkSpec, out_shapes: dict[int, str], bad: int | None = None) -> str:
    """Part of the key of a selectbox whose option labels describe the blocks: Streamlit keeps a
    selectbox's value as its label text, so new labels need a new widget."""
    return format(hash((spec.blocks, tuple(sorted(out_shapes.items())), bad)) & 0xFFFFFFFF, "08x")


def _as_problem(error: SpecError | None) -> dict[str, Any] | None:
    if error is None or error.block_index is None:
        return None
    return {"index": error.block_index, "field": error.field, "message": state.describe_error(error)}


@_safe
def _on_select(key: str) -> None:
    st.session_state[state.SELECTED] = st.session_state[key]


@_safe
def _on_edit(index: int, name: str, g: int) -> None:
    spec = state.spec()
    block = spec.blocks[index]
    key = f"{state.W_EDIT}{g}.{index}.{name}"
    try:
        if name == "repeat":
            value = st.session_state[key]
        else:
            value = read_field(get_block(block.type).field(name), key)
    except ValueError as e:
        state.set_field_error(index, name, f"{name} {e}")
        return
    current = block.repeat if name == "repeat" else {**get_block(block.type).defaults(), **block.values}.get(name)
    if value == current:  # nothing changed (keeps defaults implicit, so the spec stays minimal)
        return
    data = block.to_dict()
    if value is None:
        data.pop(name, None)
    else:
        data[name] = value
    try:
        new = validate_block_dict(index, data)
    except SpecError as e:
        state.set_field_error(index, name, state.describe_error(e))
        return
    state.commit(spec.with_blocks(spec.blocks[:index] + (new,) + spec.blocks[index + 1:]), from_editor=True)


@_safe
def _move(index: int, step: int) -> None:
    blocks = list(state.spec().blocks)
    j = index + step
    if 0 <= j < len(blocks):
        blocks[index], blocks[j] = blocks[j], blocks[index]
        state.commit(state.spec().with_blocks(blocks))
        state.select(j)


@_safe
def _duplicate(index: int) -> None:
    blocks = list(state.spec().blocks)
    blocks.insert(index + 1, blocks[index])
    state.commit(state.spec().with_blocks(blocks))
    state.select(index + 1)


@_safe
def _delete(index: int) -> None:
    blocks = list(state.spec().blocks)
    del blocks[index]
    state.commit(state.spec().with_blocks(blocks))
    state.select(max(0, min(index, len(blocks) - 1)))


# --- the palette ---------------------------------------------------------------------------------
def _palette(spec: NetworkSpec, out_shapes: dict[int, str]) -> None:
    first = next(iter(FAMILIES))
    family = st.pills("Family", list(FAMILIES), default=first, format_func=lambda f: FAMILIES[f].label,
                      required=True, key=state.W_ADD_FAMILY, help="Block types grouped by what they do")
    types = types_in_family(family or first)
    type_name = st.selectbox("Block type", types, key=state.W_ADD_TYPE + str(family),
                             format_func=lambda t: get_block(t).title)
    definition = get_block(type_name)
    st.caption(definition.description)
    n = len(spec.blocks)
    with st.form(state.W_ADD_FORM + type_name, border=False, enter_to_submit=False):
        fields_grid(definition.fields, definition.defaults(), f"{state.W_ADD}{type_name}.", repeat=1)
        position_key = f"{state.W_ADD_POSITION}{type_name}.{_labels_token(spec, out_shapes)}"
        st.selectbox("Position", range(n, -1, -1), key=position_key,
                     format_func=lambda k: ("At the end" if k == n else "At the start" if k == 0
                                            else f"After {block_summary(k - 1, spec.blocks[k - 1], out_shapes)}"),
                     help="Where the new block goes")
        st.form_submit_button("Add block", icon=":material/add:", type="primary", width="stretch",
                              on_click=_on_add, args=(type_name, position_key))
    problem = state.field_error()
    if problem and problem["index"] == -1:
        st.error(problem["message"], icon=":material/error:")


@_safe
def _on_add(type_name: str, position_key: str) -> None:
    spec = state.spec()
    definition = get_block(type_name)
    data: dict[str, Any] = {"type": type_name}
    for f in definition.fields:
        try:
            value = read_field(f, f"{state.W_ADD}{type_name}.{f.name}")
        except ValueError as e:
            state.set_field_error(-1, f.name, f"{f.name} {e}")
            return
        if value is not None and value != f.default:
            data[f.name] = value
    repeat = st.session_state.get(f"{state.W_ADD}{type_name}.{state.W_REPEAT}") or 1
    if repeat != 1:
        data["repeat"] = repeat
    position = st.session_state.get(position_key, len(spec.blocks))
    position = len(spec.blocks) if position is None else min(position, len(spec.blocks))
    try:
        block = validate_block_dict(position, data)
    except SpecError as e:
        state.set_field_error(-1, e.field, state.describe_error(e))
        return
    state.commit(spec.with_blocks(spec.blocks[:position] + (block,) + spec.blocks[position:]))
    state.select(position)


# --- import, export, share -----------------------------------------------------------------------
def _files(spec: NetworkSpec, error: SpecError | None) -> None:
    st.file_uploader("Import a spec (.json)", type=["json"], key=state.UPLOAD, on_change=_on_upload,
                     max_upload_size=1, help=f"A spec file saved from this app (at most {MAX_SPEC_BYTES:,} bytes)")
    result = st.session_state.get(state.IMPORT_RESULT)
    if result:
        (st.success if result[0] == "success" else st.error)(result[1])
    slug = text_slug(spec.name)
    st.download_button("Download spec JSON", spec.to_json(), file_name=f"{slug}.json", mime="application/json",
                       icon=":material/download:", on_click="ignore", width="stretch", key=state.W_DOWNLOAD_JSON)
    st.download_button("Download PyTorch code", functools.partial(pytorch_source, spec.to_json()),
                       file_name=f"{slug}.py", mime="text/x-python", icon=":material/code:", on_click="ignore",
                       width="stretch", key=state.W_DOWNLOAD_PY, disabled=error is not None,
                       help="Fix the error first" if error is not None else "A standalone .py file; needs only torch")
    st.caption("Share link (the address bar always holds the current network):")
    try:
        st.code(share_url(st.context.url or "", spec), language=None)
    except SpecError as e:
        st.warning(state.describe_error(e))


@_safe
def _on_upload() -> None:
    upload = st.session_state.get(state.UPLOAD)
    if upload is None:
        st.session_state[state.IMPORT_RESULT] = None
        return
    data = upload.getvalue()
    try:
        if len(data) > MAX_SPEC_BYTES:
            raise SpecError(f"the file is {len(data):,} bytes; a spec is at most {MAX_SPEC_BYTES:,}")
        spec = NetworkSpec.from_json(data)
        check_spec(spec)  # over the server's budget (BudgetError): keep the current network
    except UserError as e:
        st.session_state[state.IMPORT_RESULT] = ("error", f"Could not import {markdown_plain(upload.name)}: {state.describe_error(e)}")
        return
    state.commit(spec)
    state.select(0)
    st.session_state[state.IMPORT_RESULT] = ("success", f"Imported {markdown_plain(spec.name)} "
                                                  f"({len(spec.blocks)} blocks) from {markdown_plain(upload.name)}.")


@functools.lru_cache(maxsize=16)
def pytorch_source(spec_json: str) -> str:
    """Generated PyTorch code (modules built on the meta device: no weights allocated)."""
    with torch.device("meta"):
        return to_pytorch_source(NetworkSpec.from_json(spec_json))


# --- widgets generated from a block's parameter schema ---------------------------------------------
def types_in_family(family: str) -> list[str]:
    return [t for t in block_types() if get_block(t).family == family]


def block_summary(index: int, block: BlockSpec, out_shapes: dict[int, str]) -> str:
    """'3. Convolution K=16, F=5, S=1, P=0 → 16×10×10' (blocks numbered from 1)."""
    definition = get_block(block.type)
    values = {**definition.defaults(), **block.values}
    bits = []
    for f in definition.fields[:4]:
        value = values.get(f.name)
        if value is None or (f.kind == "bool" and f.name not in block.values):
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else f"{value:g}" if isinstance(value, float) \
            else str(value)
        bits.append(f"{f.ui_short}={shown}")
    text = f"{index + 1}. {definition.title}" + (f" {', '.join(bits)}" if bits else "")
    if block.repeat > 1:
        text += f" ×{block.repeat}"
    if index in out_shapes:
        text += f" → {out_shapes[index]}"
    return text


def field_help(f: Field) -> str:
    parts = [f.help[:1].upper() + f.help[1:] if f.help else f.ui_label]
    if f.min is not None and f.max is not None and f.kind in ("int", "float", "padding", "ints"):
        parts.append(f"range {f.min:g} to {f.max:g}")
    if f.default is not None:
        default = ", ".join(map(str, f.default)) if isinstance(f.default, list) else f.default
        parts.append(f"default {default}")
    return "; ".join(parts)


def _float_style(f: Field) -> tuple[float, str]:
    tiny = f.default is not None and 0 < abs(f.default) < 0.01
    if tiny:
        return float(f.default), "%.1e"
    return (0.01 if f.max is not None and f.max <= 1 else 0.1), "%.2f"


def fields_grid(fields: tuple[Field, ...], values: dict[str, Any], prefix: str, *, repeat: int,
                on_change=None, args_for=lambda name: ()) -> None:
    """Widgets for a block's fields in two columns: numbers and choices, the repeat count, then the
    switches (bool fields and padding's "same"). Keys are prefix + field name (`read_field`)."""
    cells = [f for f in fields if f.kind != "bool"] + [None]
    cols = st.columns(2)
    for i, f in enumerate(cells):
        with cols[i % 2]:
            if f is None:
                st.number_input("Repeat", 1, MAX_REPEAT, int(repeat), key=prefix + state.W_REPEAT, on_change=on_change,
                                args=args_for("repeat"),
                                help=f"Stack identical copies of this block, shapes carried through "
                                     f"(1 to {MAX_REPEAT})")
            else:
                field_widget(f, values.get(f.name), prefix + f.name, on_change=on_change, args=args_for(f.name),
                             fallback=values.get("kernel"))
    switches = [f for f in fields if f.kind in ("bool", "padding") or f.optional]
    cols = st.columns(2) if switches else []
    for i, f in enumerate(switches):
        with cols[i % 2]:
            if f.kind == "bool":
                st.checkbox(f.ui_label, value=bool(values.get(f.name)), key=prefix + f.name,
                            help=field_help(f), on_change=on_change, args=args_for(f.name))
            elif f.optional:
                st.checkbox(f.ui_label + f.unset,
                            value=values.get(f.name) is None, key=prefix + f.name + state.W_AUTO, on_change=on_change,
                            args=args_for(f.name), help=field_help(f))
            else:
                st.checkbox("\"Same\" padding", value=values.get(f.name) == "same", key=prefix + f.name + state.W_SAME,
                            on_change=on_change, args=args_for(f.name),
                            help="Pad so that the output keeps the input size (stride 1 only)")


def field_widget(f: Field, value: Any, key: str, *, on_change=None, args: tuple = (), fallback: Any = None) -> None:
    """One input for one schema field (bool fields and the "same"/"automatic" switches are drawn by
    fields_grid). An unset optional int shows `fallback` (the kernel for a pool stride), disabled."""
    label, help_text = f.ui_label, field_help(f)
    lo = None if f.min is None else (int(f.min) if f.kind != "float" else float(f.min))
    hi = None if f.max is None else (int(f.max) if f.kind != "float" else float(f.max))
    common = dict(key=key, help=help_text, on_change=on_change, args=args)
    live = on_change is not None
    if f.kind == "choice":
        st.selectbox(label, list(f.choices), index=list(f.choices).index(value), **common)
    elif f.kind == "int":
        unset = value is None
        shown = (fallback if isinstance(fallback, int) else lo) if unset else value
        # in the add form (no callback) nothing is disabled: the switch is only read on submit
        st.number_input(label, lo, hi, int(shown), step=1, disabled=unset and f.optional and live, **common)
    elif f.kind == "float":
        step, fmt = _float_style(f)
        st.number_input(label, lo, hi, float(value), step=step, format=fmt, **common)
    elif f.kind == "padding":
        same = value == "same"
        st.number_input(label, lo, hi, 0 if same else int(value), step=1, disabled=same and live, **common)
    elif f.kind == "ints":
        st.text_input(label, ", ".join(map(str, value)), **common, placeholder="e.g. 192, 160, 96")
    else:  # pragma: no cover - a new field kind needs a widget here
        st.warning(f"No widget for field kind {f.kind!r}")


def read_field(f: Field, key: str) -> Any:
    """The value a field's widget holds (None: leave the field unset); ValueError if unreadable."""
    ss = st.session_state
    value = ss.get(key)
    if f.kind == "padding":
        return "same" if ss.get(key + state.W_SAME) else value
    if f.optional and ss.get(key + state.W_AUTO):
        return None
    if f.kind == "ints":
        try:
            return [int(v) for v in str(value or "").replace(";", ",").split(",") if v.strip()]
        except ValueError:
            raise ValueError("must be whole numbers separated by commas, e.g. 192, 160, 96") from None
    return value
