"""Every registered block against independent references: a real CPU forward pass for shapes,
sum(numel) for parameters, fvcore for MACs, and the exported PyTorch source for structure."""

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import conv_flop_count, get_shape

from explorer import NetworkSpec, analyze, build
from explorer.core.export import to_pytorch_source
from explorer.core.registry import block_types, get_block

SPATIAL_INPUT = (8, 12, 12)
FLAT_INPUT = (16,)

VARIANTS = {
    "conv": [{"kernel": 5, "padding": "same"}, {"dilation": 2, "padding": 2, "stride": 2},
             {"out_channels": 8, "groups": 4}, {"bias": False, "kernel": 1}, {"kernel": 4, "padding": "same"}],
    "maxpool": [{"kernel": 3, "stride": 2, "ceil_mode": True}, {"kernel": 3, "stride": 2, "padding": 1}],
    "avgpool": [{"kernel": 3, "stride": 2, "ceil_mode": True}],
    "adaptiveavgpool": [{"output_size": 5}],
    "residual": [{"out_channels": 16, "stride": 2}, {"out_channels": 8}],
    "bottleneck": [{"out_channels": 32, "stride": 2, "groups": 2}, {"out_channels": 8, "mid_channels": 4}],
    "inception": [{"branch3_kernel": 3, "norm": False}],
    "invres": [{"stride": 2, "expand_ratio": 1}, {"out_channels": 8, "expand_ratio": 2}],
    "sepconv": [{"stride": 2, "norm": False}],
    "mlpconv": [{"channels": [6], "kernel": 3, "padding": "same"}],
    "denseblock": [{"num_layers": 2, "growth_rate": 4, "drop_rate": 0.2}],
    "transition": [{"compression": 0.25}],
    "leakyrelu": [{"negative_slope": 0.1}],
    "batchnorm": [{"affine": False}],
}


def cases():
    for name in block_types():
        block = get_block(name)
        inputs = [FLAT_INPUT] if block.input_kind == "flat" else [SPATIAL_INPUT]
        if block.input_kind == "any":
            inputs.append(FLAT_INPUT)
        for shape in inputs:
            for extra in [{}] + VARIANTS.get(name, []):
                yield pytest.param(name, shape, extra, id=f"{name}-{'x'.join(map(str, shape))}-{extra}")


def _conv_mode_handle(inputs, outputs):
    """fvcore has no handle for aten::_convolution_mode (conv with padding="same"); use its formula."""
    return conv_flop_count(get_shape(inputs[0]), get_shape(inputs[1]), get_shape(outputs[0]))


def make_spec(name, shape, extra):
    return NetworkSpec.from_dict({"name": f"t-{name}", "input": list(shape),
                                  "blocks": [{"type": name, **extra}]})


@pytest.mark.parametrize("name, shape, extra", list(cases()))
def test_block_matches_real_forward_params_and_fvcore(name, shape, extra):
    spec = make_spec(name, shape, extra)
    analysis = analyze(spec, batch=2)
    (row,) = analysis.rows
    torch.manual_seed(0)
    model = build(spec).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        out = model(x)
    assert tuple(out.shape[1:]) == row.output_shape, "formula shape differs from a real forward pass"
    assert row.params == sum(p.numel() for p in model.parameters())
    assert analysis.totals.params == row.params
    flops = FlopCountAnalysis(model, x).set_op_handle("aten::_convolution_mode", _conv_mode_handle)
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = flops.by_operator()  # fvcore's "flops" are MACs, for the whole batch of 2
    reference = sum(v for k, v in by_op.items() if k in ("conv", "linear", "addmm", "matmul", "bmm",
                                                         "_convolution_mode"))
    assert row.macs * 2 == reference, f"MACs per image {row.macs} vs fvcore {reference / 2}"
    assert row.formula and "None" not in row.formula
    assert row.activations == out[0].numel()


@pytest.mark.parametrize("name, shape, extra", list(cases()))
def test_exported_source_rebuilds_the_same_network(name, shape, extra):
    spec = make_spec(name, shape, extra)
    source = to_pytorch_source(spec)
    namespace = {"__name__": "exported"}
    exec(compile(source, "<export>", "exec"), namespace)
    exported = namespace[f"T{name.capitalize()}"]()
    ours = build(spec)
    assert [(k, tuple(v.shape)) for k, v in exported.state_dict().items()] == \
           [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    exported.load_state_dict(ours.state_dict())
    exported.eval(), ours.eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), ours(x))


@pytest.mark.parametrize("name, shape, extra", [c for c in cases() if len(c.values[1]) == 3])
def test_block_trains_the_same_in_channels_last_memory(name, shape, extra):
    """Runs train in channels_last on the CPU and on CUDA (explorer.training.plan): every block gives
    the same outputs and input gradients in that layout as in contiguous memory."""
    spec = make_spec(name, shape, extra)
    torch.manual_seed(0)
    model = build(spec).train()
    x = torch.randn(3, *shape, requires_grad=True)
    with torch.no_grad():
        draws = [torch.manual_seed(seed) and model(x) for seed in (1, 2)]
    if not torch.equal(*draws):  # dropout, noise: random numbers are drawn in memory order, so
        model.eval()             # another layout draws others; compare their evaluation mode
    torch.manual_seed(1)
    out = model(x)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    last = model.to(memory_format=torch.channels_last)
    x_last = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    torch.manual_seed(1)
    out_last = last(x_last)
    (grad_last,) = torch.autograd.grad(out_last.square().sum(), x_last)
    for ours, reference in ((out_last, out), (grad_last, grad)):  # summation order differs: float32 noise
        scale = reference.abs().max().item()
        torch.testing.assert_close(ours, reference, rtol=1e-3, atol=1e-4 * max(scale, 1.0))
