"""The analysis against independent references: torchvision's published figures, torchinfo,
a real CPU forward pass with autograd, and the receptive fields in the literature."""

import math

import pytest
import torch
import torchinfo
from torch import nn

from explorer import NetworkSpec, analyze
from explorer.core.analysis import OPTIMIZER_STATE
from explorer.core.tvmodels import published_figures, torchvision_model

MIRRORED = ["alexnet", "vgg16", "resnet18", "resnet50", "googlenet", "densenet121", "mobilenet_v2",
            "squeezenet1_0"]


def tv(name, size=224, **kw):
    return analyze(torchvision_model(name), (3, size, size), name=name, **kw)


def test_vgg16_reference_points():
    a = tv("vgg16")
    assert a.totals.params == 138_357_544
    assert a.totals.macs == 15_470_264_320          # torchvision publishes 15.47 (GMACs)
    assert a.totals.flops == 2 * a.totals.macs
    first = a.rows[0]
    assert first.output_shape == (64, 224, 224) and first.activations == 224 * 224 * 64
    assert first.params == (3 * 3 * 3) * 64 + 64
    fc1 = next(r for r in a.rows if r.type == "Linear")
    assert fc1.params == 7 * 7 * 512 * 4096 + 4096   # 102,760,448 weights + bias


@pytest.mark.parametrize("name", MIRRORED)
def test_torchvision_published_params_and_macs(name):
    figures = published_figures(name)
    a = tv(name, figures.input_size)
    assert a.totals.params == figures.params
    assert a.totals.macs == pytest.approx(figures.gmacs * 1e9, rel=0.01)


def test_inception_v3_at_299_matches_published_macs():
    figures = published_figures("inception_v3")
    a = tv("inception_v3", 299)
    assert a.totals.macs == pytest.approx(figures.gmacs * 1e9, rel=0.01)
    # torchvision's published count includes the auxiliary classifier, built here without it
    aux = sum(p.numel() for p in torchvision_model("inception_v3").parameters()) < figures.params
    assert aux and a.totals.params == 23_834_568


def test_leaf_shapes_and_params_agree_with_torchinfo():
    model = torchvision_model("resnet18", device="cpu")
    info = torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0, depth=10)
    leaves = [layer for layer in info.summary_list if layer.is_leaf_layer and layer.executed]
    ours = [r for r in tv("resnet18").rows]
    assert info.total_params == tv("resnet18").totals.params
    assert [tuple(layer.output_size[1:]) for layer in leaves] == [r.output_shape for r in ours]


def test_receptive_fields_from_the_literature():
    vgg = {r.name: r for r in tv("vgg16").rows}
    assert vgg["features.28"].receptive_field == (196, 196)   # conv5_3
    assert vgg["features.30"].receptive_field == (212, 212)   # pool5 (Araujo et al., Distill 2019)
    assert vgg["features.30"].jump == (32, 32)
    alex = {r.name: r for r in tv("alexnet").rows}
    assert alex["features.12"].receptive_field == (195, 195)  # pool5 (Araujo et al., Distill 2019)


def _real_saved_bytes(model, x):
    """Bytes autograd saves in a real CPU forward, unique storages, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen, total = set(), 0

    def pack(t):
        nonlocal total
        s = t.untyped_storage()
        if s.data_ptr() not in params and s.data_ptr() not in seen and s.nbytes():
            seen.add(s.data_ptr())
            total += s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return total


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "googlenet", "squeezenet1_0"])
def test_saved_tensors_on_meta_match_a_real_forward(name):
    torch.manual_seed(0)
    model = torchvision_model(name, device="cpu").train()
    x = torch.randn(2, 3, 64, 64)
    real = _real_saved_bytes(model, x)
    meta = analyze(torchvision_model(name), (3, 64, 64), batch=2).totals.memory.saved_activations
    assert meta == real


def test_real_weights_and_meta_give_the_same_analysis():
    real = analyze(torchvision_model("resnet18", device="cpu"), (3, 64, 64), batch=3)
    meta = analyze(torchvision_model("resnet18"), (3, 64, 64), batch=3)
    assert real.to_dict() == meta.to_dict()


def test_memory_scales_with_batch_and_dtype():
    spec = NetworkSpec.from_dict({"input": [3, 32, 32], "blocks": [
        {"type": "conv", "out_channels": 16, "kernel": 3, "padding": 1}, {"type": "batchnorm"},
        {"type": "relu"}, {"type": "gap"}, {"type": "linear", "out_features": 10}]})
    one, eight = analyze(spec, batch=1), analyze(spec, batch=8)
    assert eight.totals.activation_bytes == 8 * one.totals.activation_bytes
    assert eight.totals.params == one.totals.params and eight.totals.macs == one.totals.macs
    assert eight.totals.memory.saved_activations > 7 * one.totals.memory.saved_activations
    half = analyze(spec, batch=8, dtype="bfloat16")
    assert half.totals.param_bytes * 2 == eight.totals.param_bytes
    assert half.totals.activation_bytes * 2 == eight.totals.activation_bytes
    p = one.totals.trainable_params * 4
    for opt, factor in OPTIMIZER_STATE.items():
        assert analyze(spec, optimizer=opt).totals.memory.optimizer_state == factor * p
    m = one.totals.memory
    assert m.total == (m.parameters + m.buffers + m.gradients + m.optimizer_state + m.saved_activations
                       + m.workspace) == one.totals.train_memory_bytes


def test_ten_billion_parameters_are_analysed_without_allocating():
    spec = NetworkSpec.from_dict({"input": [100_000], "num_classes": 100_000, "blocks": [
        {"type": "linear", "out_features": 100_000, "bias": False}]})
    a = analyze(spec, batch=256)
    assert a.totals.params == 10_000_000_000
    assert a.totals.macs == 10_000_000_000
    assert a.totals.memory.parameters == 40_000_000_000  # bytes, never allocated


def test_vgg16_at_batch_256_does_not_allocate():
    a = tv("vgg16", batch=256)
    assert a.totals.activation_bytes == 256 * 4 * a.totals.activations
    assert a.totals.train_memory_bytes > 10 * 2**30   # tens of GiB: fine on the meta device


def test_residual_rf_is_the_largest_branch_and_se_sees_everything():
    spec = NetworkSpec.from_dict({"input": [3, 32, 32], "blocks": [
        {"type": "residual", "out_channels": 8}, {"type": "se", "reduction": 4}]})
    res, se = analyze(spec).rows
    assert res.receptive_field == (5, 5)      # two 3x3 convs; the identity path sees 1x1
    assert se.receptive_field == (36, 36)     # global pooling: 5 + (32 - 1) * 1


def test_spec_rows_have_block_indices_and_detail_rows():
    spec = NetworkSpec.from_dict({"input": [3, 32, 32], "blocks": [
        {"type": "conv", "repeat": 2}, {"type": "residual", "out_channels": 64}]})
    a = analyze(spec)
    assert [r.block_index for r in a.rows] == [0, 0, 1]
    inner = [r for r in a.detail_rows if r.block_index == 1]
    assert [r.type for r in inner][:3] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert sum(r.params for r in inner) == a.rows[2].params
    assert math.prod(a.rows[-1].output_shape) == a.rows[-1].activations


def test_shared_module_params_are_counted_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x))

    a = analyze(Twice(), (3, 8, 8))
    assert a.totals.params == 84 and sum(r.params for r in a.rows) == 84
    assert [r.macs for r in a.rows] == [8 * 8 * 3 * 27] * 2


@pytest.mark.parametrize("name", explorer_presets := __import__("explorer").preset_names())
def test_block_by_block_composition_equals_one_whole_trace(name):
    """Specs are traced block by block (cached) and composed; the result must equal one trace
    of the whole built network: saved tensors shared at block boundaries counted once, receptive
    fields composed exactly."""
    from explorer import build, load_preset

    spec = load_preset(name)
    composed = analyze(spec, batch=3)
    with torch.device("meta"):
        model = build(spec)
    whole = analyze(model, spec.input, batch=3)
    a, b = composed.totals.to_dict(), whole.totals.to_dict()
    for key in ("activations", "activation_bytes"):  # rows differ by design: blocks vs leaf layers
        a.pop(key), b.pop(key)
    assert a == b
    assert [(r.name, r.output_shape, r.receptive_field, r.jump, r.params, r.macs, r.saved_bytes)
            for r in composed.detail_rows] == \
           [(r.name, r.output_shape, r.receptive_field, r.jump, r.params, r.macs, r.saved_bytes)
            for r in whole.rows]


@pytest.mark.parametrize(("module", "shape", "out", "macs"), [
    (nn.Conv2d(3, 8, 3), (3, 16, 16), (8, 14, 14), 14 * 14 * 8 * 3 * 3 * 3),
    (nn.Linear(20, 5), (20,), (5,), 20 * 5),
    (nn.ReLU(), (4, 6, 6), (4, 6, 6), 0),
])
def test_a_bare_leaf_module_is_its_own_row(module, shape, out, macs):
    a = analyze(module, shape, batch=3)
    (row,) = a.rows
    assert row.type == type(module).__name__ and row.name == type(module).__name__
    assert row.output_shape == out and row.input_shape == shape
    assert row.params == a.totals.params == sum(p.numel() for p in module.parameters())
    assert row.macs == a.totals.macs == macs
    assert row.activations == a.totals.activations == math.prod(out)
