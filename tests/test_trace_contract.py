"""The tracer's contract with torch (explorer/core/torch_internals.py): each private torch API it
relies on still exists and behaves as the trace assumes. A failure names the API and what changed,
so a torch upgrade that breaks the trace says where to look instead of giving wrong numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from explorer.core import torch_internals as ti

aten = torch.ops.aten
ROOT = Path(__file__).resolve().parents[1]
TORCH = f"torch {torch.__version__}"


def test_dispatch_mode_sees_aten_ops_and_can_answer_them():
    seen = []

    class Recorder(ti.DispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(func.overloadpacket)
            return func(*args, **(kwargs or {}))

    x = torch.empty(2, 3, 8, 8, device="meta")
    w = torch.empty(4, 3, 3, 3, device="meta")
    with Recorder():
        out = F.conv2d(x, w) + 1
    assert aten.convolution in seen and aten.add in seen, (
        f"{TORCH}: torch.utils._python_dispatch.TorchDispatchMode no longer shows aten.convolution / aten.add "
        f"to a mode (saw {seen}); the trace's MAC count and receptive fields depend on it")
    assert out.shape == (2, 4, 6, 6)


@pytest.mark.parametrize("packet", [aten.convolution, aten.mm, aten.addmm, aten.bmm, aten.baddbmm,
                                    aten._scaled_dot_product_efficient_attention,
                                    aten._scaled_dot_product_flash_attention])
def test_flop_registry_has_a_shape_formula(packet):
    entry = ti.flop_registry.get(packet)
    assert entry is not None, (f"{TORCH}: torch.utils.flop_counter.flop_registry has no formula for {packet}; "
                               f"MACs of that op would be counted as 0")
    assert callable(getattr(entry, "__wrapped__", None)), (
        f"{TORCH}: flop_registry[{packet}] has no __wrapped__ (functools.wraps of shape_wrapper); the trace "
        f"falls back to the public call, which gives the same numbers but slower: update "
        f"explorer/core/torch_internals.count_flops")


def _public_flops(fn, *tensors) -> int:
    with FlopCounterMode(display=False) as counter:
        fn(*tensors)
    return counter.get_total_flops()


def _recorded_flops(fn, *tensors) -> int:
    """Every op's FLOPs by torch_internals.count_flops (the trace's fast path)."""
    total = []

    class Count(ti.DispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            total.append(ti.count_flops(func.overloadpacket, args, kwargs, out) or 0)
            return out

    with Count():
        fn(*tensors)
    return sum(total)


CASES = {
    "conv2d": (lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=2), (3, 4, 17, 17), (6, 2, 3, 3)),
    "linear (addmm)": (lambda x, w: F.linear(x, w, torch.empty(7, device="meta")), (5, 11), (7, 11)),
    "matmul (bmm)": (torch.matmul, (2, 3, 5, 6), (2, 3, 6, 4)),
    "baddbmm": (lambda a, b: torch.baddbmm(torch.empty(4, 5, 6, device="meta"), a, b), (4, 5, 3), (4, 3, 6)),
}


@pytest.mark.parametrize("case", CASES)
def test_fast_flop_formulas_equal_flop_counter_mode(case):
    fn, *shapes = CASES[case]
    tensors = [torch.empty(s, device="meta") for s in shapes]
    public = _public_flops(fn, *tensors)
    assert public > 0
    assert _recorded_flops(fn, *tensors) == public, (
        f"{TORCH}: flop_registry[...].__wrapped__ called with shapes (explorer/core/torch_internals.count_flops) "
        f"no longer gives FlopCounterMode's count for {case}; the formulas' signature changed")


def test_an_entry_without_wrapped_is_called_the_public_way(monkeypatch):
    fn, *shapes = CASES["conv2d"]
    tensors = [torch.empty(s, device="meta") for s in shapes]
    public = _public_flops(fn, *tensors)
    entry = ti.flop_registry[aten.convolution]
    monkeypatch.setitem(ti.flop_registry, aten.convolution, lambda *a, **k: entry(*a, **k))  # no __wrapped__
    assert _recorded_flops(fn, *tensors) == public


def test_storage_identity_is_shared_by_views_and_distinct_otherwise():
    a = torch.empty(4, 6, device="meta")
    view, other = a.view(24)[2:], torch.empty(4, 6, device="meta")
    assert ti.storage_of(a) is ti.storage_of(view), (
        f"{TORCH}: views no longer share one Tensor.untyped_storage() object (storage PyObject preservation); "
        f"the trace de-duplicates saved tensors by it (explorer/core/torch_internals.storage_of)")
    assert ti.storage_of(a) is not ti.storage_of(other)
    assert ti.storage_of(a).data_ptr() == ti.storage_of(other).data_ptr() == 0  # why data_ptr cannot key meta
    packed = []
    x = torch.empty(2, 5, device="meta", requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(ti.storage_of(t)) or t, lambda t: t):
        y = x.sigmoid()  # saves its output
    assert any(s is ti.storage_of(y) for s in packed), (
        f"{TORCH}: the tensor saved_tensors_hooks packs does not share its storage object with the op's output")


def _meta_cases():
    x = torch.empty(2, 8, 9, 7, device="meta")
    c = torch.empty(8, device="meta")
    w = torch.empty(16, 4, 3, 3, device="meta")
    return {
        "aten.native_batch_norm (training)": (aten.native_batch_norm.default, (x, c, c, c, c, True, 0.1, 1e-5)),
        "aten.native_batch_norm (eval)": (aten.native_batch_norm.default, (x, c, c, c, c, False, 0.1, 1e-5)),
        "aten._native_batch_norm_legit": (aten._native_batch_norm_legit.default, (x, c, c, c, c, True, 0.1, 1e-5)),
        "aten.convolution": (aten.convolution.default, (x, w, None, [2, 1], [1, 0], [1, 2], False, [0, 0], 2)),
        "aten.add.Tensor": (aten.add.Tensor, (x, torch.empty_like(x))),
        "aten.mul.Tensor": (aten.mul.Tensor, (x, torch.empty_like(x))),
        "aten.bfloat16 batch norm": (aten.native_batch_norm.default,
                                     (x.bfloat16(), c, c, c, c, True, 0.1, 1e-5)),
        "aten.relu": (aten.relu.default, (x,)),
        "aten.tanh (bfloat16)": (aten.tanh.default, (x.bfloat16(),)),
        "aten.hardtanh (ReLU6)": (aten.hardtanh.default, (x, 0.0, 6.0)),
        "aten.gelu": (aten.gelu.default, (x,)),
        "aten.leaky_relu": (aten.leaky_relu.default, (x, 0.2)),
        "aten.elu": (aten.elu.default, (x,)),
        "aten.hardswish": (aten.hardswish.default, (x,)),
        "aten.relu (channels_last)": (aten.relu.default, (x.contiguous(memory_format=torch.channels_last),)),
        "aten.hardtanh_ (in place)": (aten.hardtanh_.default, (x, 0.0, 6.0)),
        "aten.addmm (linear)": (aten.addmm.default, (c, torch.empty(5, 12, device="meta"),
                                                     torch.empty(8, 12, device="meta").t())),
        "aten.mean.dim (global average pool)": (aten.mean.dim, (x, [-1, -2], True)),
        "aten.mean.dim (flat)": (aten.mean.dim, (x, [2, 3])),
        "aten.cat (channels)": (aten.cat.default, ([x, torch.empty(2, 3, 9, 7, device="meta")], 1)),
    }


def _on_cpu(arg):
    """A zero CPU tensor with the meta tensor's shape, dtype and strides (views and channels_last kept)."""
    if isinstance(arg, (list, tuple)):
        return type(arg)(map(_on_cpu, arg))
    if not isinstance(arg, torch.Tensor):
        return arg
    return torch.empty_strided(arg.shape, arg.stride(), dtype=arg.dtype).zero_()


@pytest.mark.parametrize("case", list(_meta_cases()))
def test_fast_meta_kernels_match_torchs_cpu_kernels(case):
    """The reference is torch's CPU kernel on the same shapes: what the saved-tensor bytes must match
    (torch's own meta kernel gives batch norm (C,) statistics in eval mode where CPU gives empty ones)."""
    func, args = _meta_cases()[case]
    ours, theirs = ti.fast_meta(func, args, {}), func(*map(_on_cpu, args))
    assert ours is not None, f"fast_meta declined {case}"
    ours, theirs = (ours,) if isinstance(ours, torch.Tensor) else ours, \
        (theirs,) if isinstance(theirs, torch.Tensor) else theirs
    describe = lambda ts: [(tuple(t.shape), t.dtype, t.stride()) for t in ts]  # noqa: E731
    assert describe(ours) == describe(theirs), (
        f"{TORCH}: {case} (its schema or outputs) changed: torch's CPU kernel gives {describe(theirs)}, "
        f"explorer/core/torch_internals.fast_meta gives {describe(ours)}")


def test_fast_meta_declines_what_it_does_not_cover():
    x = torch.empty(2, 4, 5, 5, device="meta")
    w = torch.empty(4, 4, 3, 3, device="meta")
    transposed = (x, w, None, [1, 1], [0, 0], [1, 1], True, [0, 0], 1)
    assert ti.fast_meta(aten.convolution.default, transposed, {}) is None
    assert ti.fast_meta(aten.add.Tensor, (x, torch.empty(4, 1, 1, device="meta")), {}) is None  # broadcasting
    assert ti.fast_meta(aten.add.Tensor, (torch.empty(2, 4), torch.empty(2, 4)), {}) is None  # real tensors
    assert ti.fast_meta(aten.relu.default, (torch.empty(2, 4, dtype=torch.long, device="meta"),), {}) is None
    assert ti.fast_meta(aten.mean.dim, (x, [2, 3], False), {"dtype": torch.float64}) is None
    assert ti.fast_meta(aten.cat.default, ([x, torch.empty(2, 4, 6, 6, device="meta")], 1), {}) is None  # sizes
    assert ti.fast_meta(aten.addmm.default, (torch.empty(3, device="meta"), x[0, 0], x[0, 0]), {}) is None


def test_the_trace_of_common_networks_never_imports_dynamo():
    """6.: explorer's dispatch modes are not wrapped for Dynamo, and the fast meta kernels answer
    the ops whose torch meta kernels would import it (a second of a process's first analysis)."""
    import subprocess
    import sys

    code = ("import sys; from explorer.core.analysis import analyze; from explorer.core.presets import load_preset; "
            "[analyze(load_preset(p)) for p in ('lenet5', 'resnet18', 'mobilenet_v2', 'densenet121', 'vgg16')]; "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False", (
        f"{TORCH}: tracing imported torch._dynamo: TorchDispatchMode._should_skip_dynamo or an op's meta "
        f"kernel changed; see explorer/core/torch_internals.py item 6")


@pytest.mark.parametrize("path", ["explorer/core/trace.py", "explorer/core/analysis.py"])
def test_private_torch_names_live_only_in_torch_internals(path):
    source = (ROOT / path).read_text()
    private = re.findall(r"\btorch(?:\.\w+)*\._\w+|\baten\._\w+|\._cdata\b|__wrapped__|_python_dispatch", source)
    assert not private, f"{path} uses private torch APIs {private}: move them to explorer/core/torch_internals.py"


def test_the_internal_aten_ops_of_the_receptive_field_rules_exist_and_are_reached():
    """F.conv2d and F.adaptive_avg_pool2d reach a dispatch mode as ops of these groups."""
    seen = set()

    class Recorder(ti.DispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add(func.overloadpacket)
            return func(*args, **(kwargs or {}))

    with Recorder():
        x = torch.empty(1, 2, 9, 9, device="meta")
        F.adaptive_avg_pool2d(F.conv2d(x, torch.empty(2, 2, 3, 3, device="meta")), 3)
    for group, name in ((ti.CONVOLUTION_OPS, "CONVOLUTION_OPS"), (ti.ADAPTIVE_POOL_OPS, "ADAPTIVE_POOL_OPS")):
        assert seen & set(group), (f"{TORCH}: none of {name} {group} reached the dispatch mode (saw {seen}); "
                                   f"the receptive-field rule for it in explorer/core/trace.py no longer applies")
