"""Per-layer analysis: shapes, parameters, MACs, activation memory, receptive field, training memory.

Conventions (the same everywhere in the app, the CLI and the JSON):
- params: every parameter element, bias included (PyTorch's count); trainable split out.
- macs: multiply-accumulates of convolutions and matrix products, bias excluded, per image
  (torchvision's `_ops` and fvcore's "flops" count the same); flops = 2 * macs. Per image means
  the batch's MACs / batch: work that does not depend on the images (Swin-V2's position-bias MLP)
  is done once per batch, so at batch 1 it counts whole (per_image_macs).
- activations: elements of a row's output, per image; activation_bytes = activations x dtype
  size x batch.
- receptive_field / jump: (height, width) in input pixels; for branching blocks the largest branch.
- training memory at batch B: parameters + buffers + gradients + optimizer state + tensors saved
  for backward (measured on the meta device, de-duplicated by storage, parameters excluded) +
  workspace (estimate: the gradients of the largest activation and of its input alive at once,
  2 x the largest single tensor). All sizes in bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from explorer.core.describe import describe_module, is_elementwise_module, memtable_label_for_module
from explorer.core.registry import BlockDef, get_block, version
from explorer.core.budget import check_module, spec_cost
from explorer.core.spec import NetworkSpec, SpecError, check_input_shape, freeze_params
from explorer.errors import ConfigError
from explorer.core.trace import RF, Call, Trace, trace

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16,
                                  "bfloat16": torch.bfloat16, "float64": torch.float64}
# Optimizer state kept per trainable parameter element (in units of one parameter):
# SGD with momentum keeps one velocity buffer, Adam/AdamW two moments, plain SGD none.
OPTIMIZER_STATE: dict[str, int] = {"sgd": 1, "sgd-plain": 0, "adam": 2, "adamw": 2}
MAX_BATCH = 1 << 20


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    depth: int
    block_index: int | None           # index in spec.blocks (None for torchvision/module rows)
    input_shape: tuple[int, ...]      # per image
    output_shape: tuple[int, ...]     # per image
    params: int
    trainable_params: int
    macs: int                         # per image
    activations: int                  # output elements per image
    activation_bytes: int             # at the analysis batch and dtype
    saved_bytes: int                  # tensors saved for backward inside this row, at the batch
    receptive_field: tuple[int, int] | None
    jump: tuple[int, int] | None
    formula: str
    label: str                        # cs231n-style row label, e.g. CONV3-64
    elementwise: bool                 # same-shape layer (ReLU, BN, dropout...): folded in memtables
    warnings: tuple[str, ...] = ()

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "depth": self.depth, "block_index": self.block_index,
                "input_shape": list(self.input_shape), "output_shape": list(self.output_shape),
                "params": self.params, "trainable_params": self.trainable_params, "macs": self.macs,
                "flops": self.flops, "activations": self.activations,
                "activation_bytes": self.activation_bytes, "saved_bytes": self.saved_bytes,
                "receptive_field": list(self.receptive_field) if self.receptive_field else None,
                "jump": list(self.jump) if self.jump else None, "formula": self.formula,
                "label": self.label, "elementwise": self.elementwise, "warnings": list(self.warnings)}


@dataclass(frozen=True)
class MemoryBreakdown:
    """Training memory at one batch size, in bytes."""

    parameters: int
    buffers: int
    gradients: int
    optimizer_state: int
    saved_activations: int
    workspace: int

    @property
    def total(self) -> int:
        return (self.parameters + self.buffers + self.gradients + self.optimizer_state
                + self.saved_activations + self.workspace)

    def to_dict(self) -> dict[str, int]:
        return {"parameters": self.parameters, "buffers": self.buffers, "gradients": self.gradients,
                "optimizer_state": self.optimizer_state, "saved_activations": self.saved_activations,
                "workspace": self.workspace, "total": self.total}


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    macs: int                 # per image
    activations: int          # sum of the rows' output elements, per image
    param_bytes: int
    activation_bytes: int     # activations x dtype size x batch
    memory: MemoryBreakdown

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def train_memory_bytes(self) -> int:
        return self.memory.total

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "trainable_params": self.trainable_params, "macs": self.macs,
                "flops": self.flops, "activations": self.activations, "param_bytes": self.param_bytes,
                "activation_bytes": self.activation_bytes, "train_memory_bytes": self.train_memory_bytes,
                "train_memory": self.memory.to_dict()}


@dataclass(frozen=True)
class Analysis:
    name: str
    source: str                       # "spec", "torchvision" or "module"
    input_shape: tuple[int, ...]
    batch: int
    dtype: str
    optimizer: str
    rows: tuple[LayerRow, ...]
    totals: Totals
    output_shape: tuple[int, ...]
    warnings: tuple[str, ...] = ()
    detail_rows: tuple[LayerRow, ...] = field(default=(), repr=False)  # every leaf module call

    @property
    def dtype_size(self) -> int:
        return DTYPES[self.dtype].itemsize

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "input": list(self.input_shape),
                "batch": self.batch, "dtype": self.dtype, "optimizer": self.optimizer,
                "output_shape": list(self.output_shape),
                "layers": [r.to_dict() for r in self.rows], "totals": self.totals.to_dict(),
                "warnings": list(self.warnings)}


def _dtype(dtype: str | torch.dtype) -> tuple[str, torch.dtype]:
    if isinstance(dtype, torch.dtype):
        for name, value in DTYPES.items():
            if value == dtype:
                return name, value
    elif dtype in DTYPES:
        return dtype, DTYPES[dtype]
    raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}", field="dtype")


def _check_args(batch: int, optimizer: str) -> None:
    if not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise ConfigError(f"batch must be an integer from 1 to {MAX_BATCH:,}, got {batch!r}", field="batch")
    if optimizer not in OPTIMIZER_STATE:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZER_STATE)}, got {optimizer!r}",
                        field="optimizer")


def analyze(obj: NetworkSpec | nn.Module, input_shape: tuple[int, ...] | None = None, batch: int = 1,
            dtype: str | torch.dtype = "float32", optimizer: str = "sgd", name: str | None = None,
            source: str | None = None, frozen_blocks: int = 0) -> Analysis:
    """Analyse a spec or any nn.Module (weights are never touched: everything runs on meta).

    input_shape is per image; for a spec it defaults to spec.input, for a module to 3x224x224.
    Raises SpecError with the block and the fix when the spec does not fit together, and
    BudgetError (a SpecError) when it is over the server's budget (explorer.core.budget), which is
    checked before anything is traced; that bounds the time and memory of the trace.
    frozen_blocks (specs only): the first N blocks of spec.blocks keep their weights (transfer
    learning): their parameters are traced with requires_grad=False, so autograd itself drops the
    tensors it no longer needs to save, and gradients and optimizer state count trainable ones only.
    """
    dtype_name, torch_dtype = _dtype(dtype)
    _check_args(batch, optimizer)
    if isinstance(obj, NetworkSpec):
        return _analyze_spec(obj, input_shape, batch, dtype_name, torch_dtype, optimizer, frozen_blocks)
    if isinstance(obj, nn.Module):
        shape = check_input_shape(list(input_shape or (3, 224, 224)))
        check_module(obj)  # leaf modules and parameters against the budget, before tracing
        return _analyze_module(obj, shape, batch, dtype_name, torch_dtype, optimizer,
                               name or type(obj).__name__, source or "module")
    raise TypeError(f"analyze() takes a NetworkSpec or an nn.Module, got {type(obj).__name__}")


def _trace_batch(batch: int) -> int:
    # Batch norm refuses one value per channel in training mode; trace 2 images and scale.
    return max(batch, 2)


def per_image_macs(macs: int, fixed_macs: int, traced_batch: int, batch: int) -> int:
    """MACs per image at `batch` from a trace of `traced_batch` images: the part that scales with
    the batch (macs - fixed_macs, traced_batch copies) plus the fixed part (work on parameters and
    buffers alone, e.g. Swin-V2's position-bias MLP, done once per batch), divided by the batch.
    At batch 1 this is the whole network's work for one image (torchvision's `_ops`)."""
    scaling = (macs - fixed_macs) // traced_batch  # one image's share (exact: every image does the same)
    return (scaling * batch + fixed_macs) // batch


@lru_cache(maxsize=4096)
def _block_trace(type_name: str, registration: int, params: tuple, in_shape: tuple[int, ...], dtype_name: str,
                 traced_batch: int, input_requires_grad: bool, frozen: bool = False) -> Trace:
    """Trace one block alone (meta device). Identical blocks, in this network or in the last
    edit, are traced once: an edit re-traces only the blocks it changed. Keyed on the type's
    registration (explorer.core.registry.version), so a type registered again is traced again."""
    definition = get_block(type_name)
    values = definition.defaults()
    values.update({k: list(v) if isinstance(v, tuple) else v for k, v in params})
    with torch.device("meta"):
        module = definition.build(in_shape, values)
    if DTYPES[dtype_name] != torch.get_default_dtype():
        module.to(DTYPES[dtype_name])
    if frozen:  # transfer learning: this block keeps its weights
        module.requires_grad_(False)
    return trace(module, in_shape, traced_batch, DTYPES[dtype_name], input_requires_grad=input_requires_grad)


def _compose_rf(rf_in: RF | None, relative: RF | None) -> RF | None:
    """A block traced from (1, 1, 1, 1) grows the field affinely: rf = rf_in + jump_in*(rf_rel - 1),
    jump = jump_in * jump_rel (exact, also for the largest of several branches)."""
    if rf_in is None or relative is None:
        return relative if rf_in is None else None
    return (rf_in[0] + rf_in[2] * (relative[0] - 1), rf_in[1] + rf_in[3] * (relative[1] - 1),
            rf_in[2] * relative[2], rf_in[3] * relative[3])


class _Boundaries:
    """Storage groups along the chain of block boundaries, [bytes, saved?] each (views share a
    group): a tensor at a block boundary is counted by the first block that saves it."""

    def __init__(self, input_bytes: int):
        self.groups = [[input_bytes, False]]
        self.group = 0

    def take(self, bt: Trace) -> tuple[int, bool]:
        """(boundary bytes this block is first to save, whether its input was saved already)."""
        input_already_saved = self.groups[self.group][1]
        owned = 0
        if bt.saved_input and not input_already_saved:
            self.groups[self.group][1] = True
            owned += self.groups[self.group][0]
        if not bt.output_aliases_input:
            self.groups.append([bt.output_bytes, False])
            self.group = len(self.groups) - 1
        if bt.saved_output and not self.groups[self.group][1]:
            self.groups[self.group][1] = True
            owned += self.groups[self.group][0]
        return owned, input_already_saved


_SUMMED = (("params", "param_count"), ("trainable", "trainable_count"), ("param_bytes", "param_bytes"),
           ("buffer_bytes", "buffer_bytes"), ("macs", "macs"), ("fixed_macs", "fixed_macs"))


def _analyze_spec(spec: NetworkSpec, input_shape, batch, dtype_name, torch_dtype, optimizer,
                  frozen_blocks: int = 0) -> Analysis:
    """Analyse block by block and compose. Saved tensors at a block boundary (a ReLU output that
    the next conv also saves) are counted once, as in one trace of the whole network."""
    if input_shape is not None:
        spec = spec.with_input(input_shape)
    _, plan = spec_cost(spec)  # the budget (BudgetError) and the shapes (SpecError), before tracing
    tb = _trace_batch(batch)
    rows: list[LayerRow] = []
    detail: list[LayerRow] = []
    rf: RF | None = (1, 1, 1, 1)
    grad = False
    boundaries = _Boundaries(tb * math.prod(spec.input) * _esize(torch_dtype))
    total = dict.fromkeys(("params", "trainable", "param_bytes", "buffer_bytes", "macs", "fixed_macs", "largest",
                           "saved", "saved_batch"), 0)
    for inst in plan.instances:
        definition = get_block(inst.type)
        try:
            bt = _block_trace(inst.type, version(inst.type), freeze_params(inst.params), inst.in_shape,
                              dtype_name, tb, grad, inst.block_index < frozen_blocks)
        except Exception as e:  # a shape formula missed something: name the block it happened in
            raise SpecError(f"the block does not run on its {'x'.join(map(str, inst.in_shape))} input: {e}",
                            block_index=inst.block_index, block_type=inst.type) from None
        owned, input_already_saved = boundaries.take(bt)
        boundary = (bt.input_bytes if bt.saved_input else 0) + \
                   (bt.output_bytes if bt.saved_output and not bt.output_aliases_input else 0)
        internal = bt.saved_bytes - boundary
        total["saved"] += internal + owned
        total["saved_batch"] += bt.saved_batch_bytes - boundary + owned
        for key, attr in _SUMMED:
            total[key] += getattr(bt, attr)
        total["largest"] = max(total["largest"], bt.largest_activation_bytes)
        grad = grad or bt.trainable_count > 0
        row = _block_row(inst, definition, bt, tb, batch, torch_dtype, rf, internal + owned)
        rows.append(row)
        detail += _inner_rows(inst, bt, tb, batch, torch_dtype, rf, input_already_saved)
        rf = row_rf(row, rf)
    combined = Trace(calls=[], batch=tb, saved_bytes=total["saved"], saved_batch_bytes=total["saved_batch"],
                     macs=total["macs"], fixed_macs=total["fixed_macs"], param_count=total["params"],
                     trainable_count=total["trainable"],
                     param_bytes=total["param_bytes"], buffer_bytes=total["buffer_bytes"],
                     largest_activation_bytes=total["largest"])
    return _finish(spec.name, "spec", tuple(spec.input), batch, dtype_name, torch_dtype, optimizer, combined,
                   rows, detail, plan.output_shape, plan.warnings)


def _block_row(inst, definition: BlockDef, bt: Trace, tb: int, batch: int, torch_dtype, rf: RF | None,
               saved_bytes: int) -> LayerRow:
    """One block's row of the layer table (its registry entry gives the formula and label)."""
    root = bt.calls[0]
    row = _row(root, tb, batch, torch_dtype, name=inst.name, depth=1, block_index=inst.block_index,
               type_name=inst.type, rf=_compose_rf(rf, root.receptive_field), saved_bytes=saved_bytes,
               formula=definition.formula(inst.in_shape, inst.out_shape, inst.params),
               label=definition.row_label(inst.in_shape, inst.out_shape, inst.params),
               elementwise=definition.is_elementwise(inst.in_shape, inst.out_shape, inst.params),
               warnings=inst.warnings)
    if row.output_shape != inst.out_shape:  # the formula and the forward pass disagree
        raise SpecError(f"internal shape mismatch: formula {inst.out_shape} vs forward "
                        f"{row.output_shape}", block_index=inst.block_index, block_type=inst.type)
    return row


def _inner_rows(inst, bt: Trace, tb: int, batch: int, torch_dtype, rf: RF | None,
                input_already_saved: bool) -> list[LayerRow]:
    """The rows of the torch leaf modules inside one block (the detailed table)."""
    out = []
    for call in bt.calls:
        if call.children:
            continue
        name = f"{inst.name}.{call.name}" if call.name else inst.name
        saved = call.saved_bytes - (bt.input_bytes if call.saved_input and input_already_saved else 0)
        out.append(_row(call, tb, batch, torch_dtype, name=name, depth=call.depth + 1, saved_bytes=saved,
                        block_index=inst.block_index, type_name=type(call.module).__name__,
                        rf=_compose_rf(rf, call.receptive_field),
                        formula=describe_module(call.module, call.input_shapes, call.output_shapes),
                        label=memtable_label_for_module(call.module),
                        elementwise=is_elementwise_module(call.module, call.input_shapes, call.output_shapes)))
    return out


def row_rf(row: "LayerRow", previous: RF | None) -> RF | None:
    if row.receptive_field is None:
        return previous
    return (*row.receptive_field, *row.jump)


def _esize(torch_dtype) -> int:
    return torch_dtype.itemsize  # bytes per element


def _analyze_module(model: nn.Module, input_shape, batch, dtype_name, torch_dtype, optimizer, name, source):
    tb = _trace_batch(batch)
    if all(p.is_meta for p in model.parameters()):
        model.to(torch_dtype)
    try:
        tr = trace(model, input_shape, tb, torch_dtype, root_name=name)
    except Exception as e:
        raise SpecError(f"{name} does not run on a {'x'.join(map(str, input_shape))} input: {e}",
                        field="input") from None
    rows = _leaf_rows(tr, batch, torch_dtype)
    root = tr.calls[0]
    out_shape = root.output_shapes[0][1:] if root.output_shapes else ()
    return _finish(name, source, input_shape, batch, dtype_name, torch_dtype, optimizer, tr, rows, rows,
                   tuple(out_shape), ())


def _leaf_rows(tr, batch, torch_dtype) -> list[LayerRow]:
    """One row per call without nested module calls; a bare leaf module (an nn.Conv2d passed as
    the model) is its own row."""
    rows = []
    for call in tr.calls:
        if call.children:
            continue
        rows.append(_row(call, tr.batch, batch, torch_dtype, block_index=None,
                         type_name=type(call.module).__name__,
                         formula=describe_module(call.module, call.input_shapes, call.output_shapes),
                         label=memtable_label_for_module(call.module),
                         elementwise=is_elementwise_module(call.module, call.input_shapes, call.output_shapes)))
    return rows


def _row(call: Call, traced_batch: int, batch: int, torch_dtype, *, block_index, type_name, formula, label,
         elementwise, warnings=(), name: str | None = None, depth: int | None = None,
         rf: RF | None | str = "call", saved_bytes: int | None = None) -> LayerRow:
    esize = _esize(torch_dtype)
    out = call.output_shapes[0][1:] if call.output_shapes else ()
    inp = call.input_shapes[0][1:] if call.input_shapes else ()
    activations = call.output_numel // traced_batch
    if rf == "call":
        rf = call.receptive_field
    saved = call.saved_bytes if saved_bytes is None else saved_bytes
    return LayerRow(
        name=call.name if name is None else name, type=type_name, depth=call.depth if depth is None else depth,
        block_index=block_index, input_shape=tuple(inp), output_shape=tuple(out), params=call.params,
        trainable_params=call.trainable_params,
        macs=per_image_macs(call.macs, call.fixed_macs, traced_batch, batch), activations=activations,
        activation_bytes=activations * esize * batch, saved_bytes=saved * batch // traced_batch,
        receptive_field=(rf[0], rf[1]) if rf else None, jump=(rf[2], rf[3]) if rf else None,
        formula=formula, label=label, elementwise=elementwise, warnings=tuple(warnings))


def _finish(name, source, input_shape, batch, dtype_name, torch_dtype, optimizer, tr, rows, detail,
            output_shape, warnings) -> Analysis:
    esize = _esize(torch_dtype)
    tb = tr.batch
    saved = tr.saved_batch_bytes * batch // tb + (tr.saved_bytes - tr.saved_batch_bytes)
    memory = MemoryBreakdown(
        parameters=tr.param_bytes, buffers=tr.buffer_bytes,
        gradients=tr.trainable_count * esize,
        optimizer_state=OPTIMIZER_STATE[optimizer] * tr.trainable_count * esize,
        saved_activations=saved,
        workspace=2 * tr.largest_activation_bytes * batch // tb)
    activations = sum(r.activations for r in rows)
    totals = Totals(params=tr.param_count, trainable_params=tr.trainable_count,
                    macs=per_image_macs(tr.macs, tr.fixed_macs, tb, batch),
                    activations=activations, param_bytes=tr.param_bytes,
                    activation_bytes=activations * esize * batch, memory=memory)
    all_warnings = list(warnings) + [f"{r.name}: {w}" for r in rows for w in r.warnings]
    return Analysis(name=name, source=source, input_shape=tuple(input_shape), batch=batch, dtype=dtype_name,
                    optimizer=optimizer, rows=tuple(rows), totals=totals, output_shape=tuple(output_shape),
                    warnings=tuple(all_warnings), detail_rows=tuple(detail))


def clear_cache() -> None:
    """Forget the per-block traces (benchmarks use this to time a cold analysis)."""
    _block_trace.cache_clear()
