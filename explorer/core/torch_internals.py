"""The tracer's contract with torch: every private torch API that explorer.core.trace relies on.

Owns: the dispatch-mode base class, the lookup and fast evaluation of PyTorch's FLOP formulas, the
identity of a tensor's storage, and the hand-written meta kernels of five aten ops. Nothing else in
explorer uses a private torch name; tests/test_trace_contract.py checks every item below against
the installed torch and names the item that broke. Checked against torch 2.14.

Private names, why each is needed, and the public alternatives that were checked:

1. torch.utils._python_dispatch.TorchDispatchMode (exported here as DispatchMode).
   Why: the trace must see every aten op after autograd and decomposition (aten.convolution,
   aten.addmm, aten.bmm, ...) to apply FLOP formulas keyed by aten op, to propagate receptive
   fields op by op, and to answer some ops itself (4. below).
   Checked: torch.overrides.TorchFunctionMode (public) sees Python-level calls before dispatch
   (F.conv2d, Tensor.__matmul__, F.scaled_dot_product_attention ...): formulas would be needed per
   Python entry point and no op's output can be replaced. torch.utils.flop_counter.FlopCounterMode
   (public) is itself built on TorchDispatchMode, sums by module name (a module called twice gives
   one entry) and has no per-op hook. torch 2.14 exports TorchDispatchMode nowhere public.

2. torch.utils.flop_counter.flop_registry (named in that module's docstring, not in its __all__)
   and the `__wrapped__` of its entries.
   Why: PyTorch's own FLOP formulas per aten op (conv, mm/addmm/bmm/baddbmm, attention), so MACs
   agree with FlopCounterMode and follow new ops as torch adds them. Each entry is
   shape_wrapper(formula), which maps tensors to shapes with pytree on every call; its
   `__wrapped__` (set by functools.wraps) is the formula on shapes, called here with shapes taken
   directly (the pytree walk dominated the trace's time).
   Checked: FlopCounterMode(display=False).flop_registry holds the same entries, equally wrapped
   (no more public). Calling an entry the documented way, entry(*args, out_val=out), gives the
   same numbers: it is used for any entry without `__wrapped__` (get_raw formulas, or a torch that
   stops using functools.wraps), so such a change makes the trace slower, never wrong.

3. Storage identity: no private API any more. The trace used `UntypedStorage._cdata` (the address
   of the C++ StorageImpl) to de-duplicate saved tensors by storage. Replaced by the identity of
   the public `Tensor.untyped_storage()` object: PyTorch keeps one Python object per storage for
   as long as the storage lives (views share it), and the tracer holds every storage it keys on,
   so an id is never reused within a trace. Checked: `untyped_storage().data_ptr()` is public but
   0 for every meta storage, so it cannot tell meta storages apart.

4. The schemas of aten.native_batch_norm, aten._native_batch_norm_legit, aten.convolution,
   aten.add.Tensor and aten.mul.Tensor, for hand-written meta kernels (fast_meta below).
   Why: torch's own meta kernels for these are Python decompositions that check shapes at
   0.3-1 ms a call, most of a cold trace; these build the outputs of torch's CPU kernels (shape,
   dtype, strides for the contiguous inputs they accept) in microseconds and decline everything
   else. (Batch norm outside training: torch's meta kernel gives (C,) statistics, CPU and CUDA
   give empty ones, as here; the saved-tensor bytes follow the real devices.)
   Checked: torch.library (Library("aten", "IMPL").impl(op, kernel, "Meta"), register_fake)
   accepts an override, but it is process-wide and outlives the trace (every other meta
   computation of the server, in any thread, would run it) and a kernel registered there cannot
   fall back to torch's for the cases it does not cover (transposed or 3-D convolutions,
   broadcasting). A dispatch mode answers only inside the trace and declines by returning None.

6. TorchDispatchMode._should_skip_dynamo (a private classmethod; torch's docstring on it shows
   overriding it to return False).
   Why: by default torch wraps every subclass's __torch_dispatch__ in torch._disable_dynamo,
   which imports torch._dynamo (and sympy) on the first op it sees: 1.0-1.4 s, the largest part
   of a process's first analysis (the CLI's `train` before its first step, the app's first page).
   The trace never runs under torch.compile, so there is nothing for Dynamo to skip; the mode
   base class below says so. A torch without the hook wraps as before: slower, never wrong.
   Checked: no public switch; torch._dynamo.disable is what the wrapper imports.

5. aten's internal ops aten._convolution and aten._adaptive_avg_pool2d, in the op groups that the
   receptive-field rules match (CONVOLUTION_OPS, ADAPTIVE_POOL_OPS), beside their public names:
   F.conv2d and F.adaptive_avg_pool2d reach the dispatch mode as these on some paths.
   Checked: no public name covers them; a renamed op would make the rule miss it silently, so
   the contract test looks each one up.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

try:  # 1. (private module)
    from torch.utils._python_dispatch import TorchDispatchMode
except ImportError as e:  # pragma: no cover - only with a torch that moved it
    raise ImportError(f"explorer's trace needs torch.utils._python_dispatch.TorchDispatchMode, which torch "
                      f"{torch.__version__} does not provide ({e}); see explorer/core/torch_internals.py "
                      f"for what it is used for") from e


class DispatchMode(TorchDispatchMode):
    """The base of explorer's dispatch modes: __torch_dispatch__ is not wrapped for Dynamo (6. above)."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:  # 6. read by TorchDispatchMode.__init_subclass__
        return False


try:  # 2. (module attribute outside __all__)
    from torch.utils.flop_counter import flop_registry
except ImportError as e:  # pragma: no cover
    raise ImportError(f"explorer's trace needs torch.utils.flop_counter.flop_registry, which torch "
                      f"{torch.__version__} does not provide ({e}); see explorer/core/torch_internals.py") from e

aten = torch.ops.aten


# --- 2. FLOP formulas ------------------------------------------------------------------------------
def _shapes(obj: Any) -> Any:
    """Tensors replaced by their shapes in nested tuples/lists (what shape_wrapper does with pytree)."""
    if isinstance(obj, torch.Tensor):
        return obj.shape
    if isinstance(obj, (list, tuple)):
        return type(obj)(_shapes(o) for o in obj) if not hasattr(obj, "_fields") else tuple(_shapes(o) for o in obj)
    return obj


def count_flops(packet: Any, args: tuple, kwargs: dict, out: Any) -> int | None:
    """FLOPs of one aten op by PyTorch's formula (FLOPs = 2 x MACs, bias adds excluded), or None
    when torch registers no formula for the op (element-wise ops, pooling, ...)."""
    entry = flop_registry.get(packet)
    if entry is None:
        return None
    formula = getattr(entry, "__wrapped__", None)  # the formula on shapes, without the pytree wrapper
    if formula is None:
        return entry(*args, **kwargs, out_val=out)  # the public calling convention (FlopCounterMode's)
    return formula(*_shapes(args), **{k: _shapes(v) for k, v in kwargs.items()}, out_shape=_shapes(out))


# --- 3. storage identity ---------------------------------------------------------------------------
# storage_of(t): the tensor's storage, the same object for every view of it (hold it while its id
# is a key). The public method itself, not a wrapper: it runs for every saved tensor.
storage_of: Callable[[torch.Tensor], torch.UntypedStorage] = torch.Tensor.untyped_storage


# --- 4. fast meta kernels --------------------------------------------------------------------------
_BATCH_NORM = (aten.native_batch_norm, aten._native_batch_norm_legit)
# Element-wise binary ops between tensors of one shape and dtype (residual adds, SE's scaling
# broadcasts and takes torch's path).
_SAME_SHAPE_BINARY = (aten.add.Tensor, aten.mul.Tensor)


def _meta_batch_norm(x, weight, bias, running_mean, running_var, training, *rest):
    """(out like x, save_mean (C,), save_invstd (C,)); the statistics are empty outside training.
    Running-stat updates have no effect on meta tensors."""
    stats_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    c = x.shape[1] if training else 0
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    return out, x.new_empty((c,), dtype=stats_dtype), x.new_empty((c,), dtype=stats_dtype)


def _meta_convolution(x, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """(N, C_out, H_out, W_out) of a plain 2-D convolution; None for anything else."""
    if transposed or x.dim() != 4 or len(padding) != 2:
        return None
    sizes = [(x.shape[2 + i] + 2 * padding[i] - dilation[i] * (weight.shape[2 + i] - 1) - 1) // stride[i] + 1
             for i in range(2)]
    if min(sizes) < 1:
        return None  # let PyTorch raise its own error
    return x.new_empty((x.shape[0], weight.shape[0], *sizes))


def _meta_binary(a, b, *rest):
    """A tensor like `a` when both are contiguous of one shape and dtype; None otherwise (broadcasting)."""
    if (isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype
            and a.is_contiguous() and b.is_contiguous()):
        return torch.empty_like(a)
    return None


# Out-of-place activations: one tensor in, one like it out (shape, dtype, strides), whatever their
# scalar arguments (hardtanh's bounds, leaky_relu's slope, gelu's approximate=...). Their meta
# kernels are torch._refs decompositions wrapped in torch._disable_dynamo, so the first one a
# process meets imports torch._dynamo (see 6.); these answer without it.
_UNARY_LIKE = (aten.relu.default, aten.tanh.default, aten.hardtanh.default, aten.gelu.default,
               aten.leaky_relu.default, aten.elu.default, aten.hardswish.default, aten.sigmoid.default,
               aten.silu.default)


def _meta_unary(x, *rest):
    """A tensor like `x` for a floating-point input; None otherwise (integer type promotion)."""
    return torch.empty_like(x) if x.is_floating_point() else None


# In-place activations return their input (as torch's kernels do); hardtanh_ is ReLU6's.
_INPLACE_UNARY = (aten.hardtanh_.default, aten.relu_.default, aten.leaky_relu_.default, aten.elu_.default,
                  aten.hardswish_.default, aten.silu_.default)


def _meta_inplace(x, *rest):
    return x if x.is_floating_point() else None


def _meta_addmm(bias, a, b, *rest):
    """(N, out) contiguous for linear's addmm(bias (out,), x (N, in), W^T (in, out)); None otherwise."""
    if (a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[0] and a.dtype == b.dtype == bias.dtype
            and bias.dim() == 1 and bias.shape[0] == b.shape[1] and a.is_floating_point()):
        return a.new_empty((a.shape[0], b.shape[1]))
    return None


def _meta_mean_dim(x, dims, keepdim=False, *rest):
    """Global average pooling's mean over (H, W) (or any dims), contiguous; None with a dtype."""
    if rest or not x.is_floating_point() or not dims:
        return None
    axes = {d % x.dim() for d in dims}
    shape = [1 if i in axes else n for i, n in enumerate(x.shape) if keepdim or i not in axes]
    return x.new_empty(shape)


def _meta_cat(tensors, dim=0, *rest):
    """Concatenation of contiguous tensors of one dtype that agree on every other dim; None otherwise."""
    if rest or not tensors or not all(isinstance(t, torch.Tensor) and t.is_meta for t in tensors):
        return None
    first = tensors[0]
    d = dim % first.dim() if first.dim() else 0
    if not all(t.dtype == first.dtype and t.dim() == first.dim() and t.is_contiguous()
               and all(t.shape[i] == first.shape[i] for i in range(first.dim()) if i != d) for t in tensors):
        return None
    shape = list(first.shape)
    shape[d] = sum(t.shape[d] for t in tensors)
    return first.new_empty(shape)


def fast_meta(func: Any, args: tuple, kwargs: dict) -> Any:
    """The output of `func` on meta tensors made here, or None to let torch's kernel run."""
    packet = func.overloadpacket
    if packet not in _FAST_PACKETS or not args:
        return None
    if func is aten.cat.default:  # a list of tensors first
        return None if kwargs else _meta_cat(*args)
    if not isinstance(args[0], torch.Tensor) or not args[0].is_meta:
        return None
    if packet in _BATCH_NORM:
        return _meta_batch_norm(*args)
    if kwargs:
        return None
    if func is aten.addmm.default:
        return _meta_addmm(*args) if all(isinstance(a, torch.Tensor) and a.is_meta for a in args[:3]) else None
    if packet is aten.convolution:
        return _meta_convolution(*args)
    if func in _SAME_SHAPE_BINARY:
        return _meta_binary(*args)
    if func in _UNARY_LIKE:
        return _meta_unary(*args)
    if func in _INPLACE_UNARY:
        return _meta_inplace(*args)
    if func is aten.mean.dim:
        return _meta_mean_dim(*args)
    return None


FAST_META_OPS: tuple[Callable, ...] = (*_BATCH_NORM, aten.convolution, *_SAME_SHAPE_BINARY, *_UNARY_LIKE,
                                       *_INPLACE_UNARY, aten.addmm.default, aten.mean.dim, aten.cat.default)
# checked first, as most ops are not fast: the packet of each op above (batch norm and convolution are packets)
_FAST_PACKETS = frozenset(getattr(op, "overloadpacket", op) for op in FAST_META_OPS)


# --- 5. op groups of the receptive-field rules (looked up now: a missing op fails at import) -------
CONVOLUTION_OPS = (aten.convolution, aten._convolution)
ADAPTIVE_POOL_OPS = (aten._adaptive_avg_pool2d, aten.adaptive_avg_pool2d, aten.adaptive_max_pool2d)

__all__ = ["DispatchMode", "count_flops", "storage_of", "fast_meta", "FAST_META_OPS", "flop_registry",
           "CONVOLUTION_OPS", "ADAPTIVE_POOL_OPS"]
