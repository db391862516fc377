"""One forward pass on the meta device that records everything the analysis needs.

Nothing is allocated: parameters and activations are meta tensors (shapes and dtypes only), so
VGG-16 at batch 256 or a ten-billion-parameter network is traced in milliseconds.

What is recorded, per module call (a module called twice gives two calls):
- output shapes, from forward hooks;
- multiply-accumulates, from every aten op seen by a dispatch mode, using PyTorch's own shape
  formulas in torch.utils.flop_counter (conv and matmul family; bias adds excluded;
  MACs = FLOPs / 2). MACs of ops none of whose inputs derive from the traced images (Swin-V2's
  position-bias MLP runs on a fixed coordinate table) are also kept apart as `fixed_macs`: that
  work is done once per batch, whatever its size;
- receptive field and jump (effective stride) per spatial axis, propagated tensor to tensor:
  conv/pool ops grow it (rf += (k_eff - 1) * jump; jump *= stride), ops without spatial output
  (flatten, linear, global pooling) see the whole map (rf += (size - 1) * jump), every other op
  takes the largest over its inputs, so a branching block reports its largest branch;
- bytes of the tensors autograd saves for backward (saved_tensors_hooks), de-duplicated by
  storage, parameters excluded.
Counts are inclusive: a call's numbers include those of the calls nested inside it.
Every private torch API the trace relies on lives in explorer.core.torch_internals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from explorer.core.torch_internals import (ADAPTIVE_POOL_OPS, CONVOLUTION_OPS, DispatchMode, count_flops, fast_meta,
                                          storage_of)

aten = torch.ops.aten

# (rf_h, rf_w, jump_h, jump_w): receptive field and effective stride in input pixels.
RF = tuple[int, int, int, int]


@dataclass
class Call:
    """One module call seen during the trace (numbers for the whole traced batch)."""

    index: int
    name: str
    module: nn.Module
    depth: int
    parent: int | None
    params: int = 0              # counted on the module's first call only
    trainable_params: int = 0
    macs: int = 0                # whole traced batch, fixed_macs included
    fixed_macs: int = 0          # the part on tensors not derived from the images (once per batch)
    saved_bytes: int = 0
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    receptive_field: RF | None = None
    children: list[int] = field(default_factory=list)
    saved_input: bool = False    # this call (or one inside it) saved the traced input's storage

    @property
    def output_numel(self) -> int:
        return sum(math.prod(s) for s in self.output_shapes)


@dataclass
class Trace:
    calls: list[Call]
    batch: int
    saved_bytes: int             # all tensors saved for backward (whole batch), params excluded
    saved_batch_bytes: int       # the part that scales with the batch (leading dim == batch)
    macs: int                    # whole batch, fixed_macs included
    param_count: int
    trainable_count: int
    param_bytes: int
    buffer_bytes: int
    largest_activation_bytes: int  # largest single op output (whole batch)
    # Where the input and output tensors stand (for composing traces of consecutive blocks):
    input_bytes: int = 0           # storage size of the input / of the output
    output_bytes: int = 0
    saved_input: bool = False      # autograd saved the input's storage (e.g. a first conv)
    saved_output: bool = False     # ... the output's storage (e.g. a last ReLU)
    output_aliases_input: bool = False  # the output is a view of the input (e.g. flatten)
    fixed_macs: int = 0            # MACs that do not scale with the batch (done once per batch)


def _tensors(obj: Any) -> list[torch.Tensor]:
    """Tensors inside nested tuples/lists/dicts, in order (5x cheaper than pytree's flatten,
    which dominated the trace)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    found: list[torch.Tensor] = []
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return found


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1])) if len(v) else (0, 0)
    return (int(v), int(v))


def _window_rf(rf: RF, kernel, stride, dilation=1) -> RF:
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride) if stride not in (None, [], ()) else (kh, kw)
    dh, dw = _pair(dilation)
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    return (rf[0] + (eh - 1) * rf[2], rf[1] + (ew - 1) * rf[3], rf[2] * sh, rf[3] * sw)


def _whole_map_rf(rf: RF, shape: tuple[int, ...]) -> RF:
    """RF of an output that sees every position of a (..., H, W) map with this rf/jump."""
    h, w = shape[-2], shape[-1]
    return (rf[0] + (h - 1) * rf[2], rf[1] + (w - 1) * rf[3], rf[2] * h, rf[3] * w)


class _TraceMode(DispatchMode):
    def __init__(self, tracer: "_Tracer"):
        super().__init__()
        self.tracer = tracer

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = fast_meta(func, args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        self.tracer.on_op(func, args, kwargs, out)
        return out


class _Tracer:
    def __init__(self, param_storages: dict[int, torch.UntypedStorage], batch: int):
        self.calls: list[Call] = []
        self.stack: list[int] = []
        self.seen_modules: set[int] = set()
        self.rf: dict[int, RF] = {}        # id(tensor) -> receptive field info
        self.keep: list[torch.Tensor] = []  # keeps traced tensors alive so ids stay unique
        self.param_storages = param_storages
        self.saved_storages: dict[int, torch.UntypedStorage] = {}  # id -> storage (kept alive)
        self.input_storage: int | None = None
        self.saved_bytes = 0
        self.saved_batch_bytes = 0
        self.batch = batch
        self.macs = 0
        self.fixed_macs = 0
        self.largest_output = 0

    # module hooks ---------------------------------------------------------------------------
    def pre_hook(self, name: str, depth: int):
        def hook(module: nn.Module, inputs):
            parent = self.stack[-1] if self.stack else None
            call = Call(index=len(self.calls), name=name, module=module, depth=depth, parent=parent,
                        input_shapes=[tuple(t.shape) for t in _tensors(inputs)])
            if id(module) not in self.seen_modules:
                self.seen_modules.add(id(module))
                for p in module.parameters():
                    call.params += p.numel()
                    if p.requires_grad:
                        call.trainable_params += p.numel()
            if parent is not None:
                self.calls[parent].children.append(call.index)
            self.calls.append(call)
            self.stack.append(call.index)
        return hook

    def post_hook(self, module: nn.Module, inputs, output):
        call = self.calls[self.stack.pop()]
        outs = _tensors(output)
        call.output_shapes = [tuple(t.shape) for t in outs]
        infos = [self.rf[id(t)] for t in outs if id(t) in self.rf]
        call.receptive_field = _max_rf(infos)

    # every aten op ----------------------------------------------------------------------------
    def on_op(self, func, args, kwargs, out) -> None:
        packet = func.overloadpacket
        ins = _tensors((args, kwargs))
        known = [(t, self.rf[id(t)]) for t in ins if id(t) in self.rf]  # inputs derived from the images
        flops = count_flops(packet, args, kwargs, out)
        if flops:
            macs = flops // 2
            self.macs += macs
            fixed = not known  # on parameters/buffers only: the same work at every batch size
            if fixed:
                self.fixed_macs += macs
            for i in self.stack:
                self.calls[i].macs += macs
                if fixed:
                    self.calls[i].fixed_macs += macs
        outs = _tensors(out)
        for t in outs:
            self.largest_output = max(self.largest_output, t.numel() * t.element_size())
        if not known or not outs:
            return
        rf = self._propagate(packet, args, kwargs, known, outs[0])
        for t in outs:
            self.rf[id(t)] = rf
            self.keep.append(t)

    def _propagate(self, packet, args, kwargs, known, out: torch.Tensor) -> RF:
        first, rf0 = known[0]
        spatial_in = first.dim() == 4
        if packet in CONVOLUTION_OPS and spatial_in:
            # convolution(input, weight, bias, stride, padding, dilation, transposed, ...)
            weight = args[1]
            return _window_rf(rf0, tuple(weight.shape[2:]), args[3], args[5])
        if packet in (aten.max_pool2d_with_indices, aten.max_pool2d) and spatial_in:
            get = lambda i, d: args[i] if len(args) > i else d  # noqa: E731
            return _window_rf(rf0, get(1, 1), get(2, None), get(4, 1))
        if packet is aten.avg_pool2d and spatial_in:
            return _window_rf(rf0, args[1], args[2] if len(args) > 2 else None)
        if packet in ADAPTIVE_POOL_OPS and spatial_in:
            ih, iw = first.shape[-2:]
            oh, ow = out.shape[-2:]
            kernel = (-(-ih // oh), -(-iw // ow))
            stride = (max(1, ih // oh), max(1, iw // ow))
            return _window_rf(rf0, kernel, stride)
        # Everything else: the largest field among the inputs; an output without spatial axes
        # (flatten, mean over H and W, linear) has seen whole maps.
        best = None
        for t, rf in known:
            if t.dim() == 4 and out.dim() < 4 or (t.dim() == 4 and out.dim() == 4
                                                  and out.shape[-2:] == (1, 1) and t.shape[-2:] != (1, 1)):
                rf = _whole_map_rf(rf, tuple(t.shape))
            best = rf if best is None else _max_rf([best, rf])
        return best

    # saved tensors ----------------------------------------------------------------------------
    def pack(self, t: torch.Tensor):
        storage = storage_of(t)
        key = id(storage)
        if key in self.param_storages or key in self.saved_storages:
            return t
        self.saved_storages[key] = storage  # held, so that its id is never reused in this trace
        nbytes = storage.nbytes()
        self.saved_bytes += nbytes
        if t.dim() > 0 and t.shape[0] == self.batch:
            self.saved_batch_bytes += nbytes
        for i in self.stack:
            self.calls[i].saved_bytes += nbytes
            if key == self.input_storage:
                self.calls[i].saved_input = True
        return t


def _max_rf(infos: list[RF]) -> RF | None:
    if not infos:
        return None
    return tuple(max(i[k] for i in infos) for k in range(4))  # type: ignore[return-value]


def _meta_state(model: nn.Module, dtype: torch.dtype) -> tuple[bool, dict, dict]:
    """(on_meta, parameters, buffers): the model's own when all are on meta, else meta stand-ins
    of the same shapes (floating-point parameters in `dtype`)."""
    named = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    if all(p.is_meta for p in named.values()) and all(b.is_meta for b in buffers.values()):
        return True, named, buffers
    params = {k: torch.empty_like(p, device="meta", dtype=dtype if p.is_floating_point() else p.dtype)
              .requires_grad_(p.requires_grad) for k, p in named.items()}
    return False, params, {k: torch.empty_like(b, device="meta") for k, b in buffers.items()}


def trace(model: nn.Module, input_shape: tuple[int, ...], batch: int, dtype: torch.dtype,
          root_name: str = "", input_requires_grad: bool = False) -> Trace:
    """Run one training-mode forward pass of `model` on meta tensors and record it.

    `input_shape` is per image ((C, H, W) or (F,)); the traced batch is `batch` images.
    `input_requires_grad` traces the model as a part of a bigger network whose earlier layers have
    parameters: autograd then saves what it needs for the input's gradient too.
    Modules with real weights are traced through meta stand-ins (torch.func.functional_call),
    so nothing is copied or computed.
    """
    on_meta, params, buffers = _meta_state(model, dtype)
    param_storages = {id(s): s for s in map(storage_of, params.values())}
    unique = {id(p): p for p in params.values()}.values()
    param_count = sum(p.numel() for p in unique)
    trainable = sum(p.numel() for p in unique if p.requires_grad)
    param_bytes = sum(p.numel() * p.element_size() for p in unique)
    buffer_bytes = sum(b.numel() * b.element_size() for b in buffers.values())

    tracer = _Tracer(param_storages, batch)
    handles = []
    for name, module in model.named_modules():
        depth = 0 if name == "" else name.count(".") + 1
        handles.append(module.register_forward_pre_hook(tracer.pre_hook(name or root_name, depth)))
        handles.append(module.register_forward_hook(tracer.post_hook))
    x = torch.empty((batch, *input_shape), device="meta", dtype=dtype, requires_grad=input_requires_grad)
    tracer.rf[id(x)] = (1, 1, 1, 1)
    input_storage = storage_of(x)  # held until the end: its id is a key
    tracer.input_storage = id(input_storage)
    was_training = model.training
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(tracer.pack, lambda t: t), _TraceMode(tracer):
            if on_meta:
                out = model(x)
            else:
                out = torch.func.functional_call(model, {**params, **buffers}, (x,))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    outs = _tensors(out)
    out_storage = storage_of(outs[0]) if outs else None
    return Trace(calls=tracer.calls, batch=batch, saved_bytes=tracer.saved_bytes,
                 saved_batch_bytes=tracer.saved_batch_bytes, macs=tracer.macs, fixed_macs=tracer.fixed_macs,
                 param_count=param_count, trainable_count=trainable, param_bytes=param_bytes,
                 buffer_bytes=buffer_bytes, largest_activation_bytes=tracer.largest_output,
                 input_bytes=input_storage.nbytes(), output_bytes=out_storage.nbytes() if out_storage else 0,
                 saved_input=id(input_storage) in tracer.saved_storages,
                 saved_output=out_storage is not None and id(out_storage) in tracer.saved_storages,
                 output_aliases_input=out_storage is input_storage)
