"""Presets: every one loads, round-trips, builds and analyses; those that mirror a torchvision
model match it exactly (parameter count, MACs within 1% of the published figure, and for a few,
the same logits with torchvision's weights loaded through explorer.core.weights).

Reference: torchvision itself (an independent implementation), built on the meta device where
only shapes matter and on the CPU, with random weights, for the equivalence checks.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import explorer
from explorer.core.build import build
from explorer.core.presets import PRESET_DIR, preset_info, preset_names
from explorer.core.shapes import infer_shapes
from explorer.core.spec import NetworkSpec
from explorer.core.tvmodels import published_figures, torchvision_model
from explorer.core.weights import load_torchvision_weights, map_torchvision_state_dict

PRESETS = preset_names()
MIRRORS = [n for n in PRESETS if preset_info(n).mirrors]
SMALL = [n for n in PRESETS if len(preset_info(n).input) == 3 and max(preset_info(n).input[1:]) <= 32]
# Shape warnings that are part of the original design (the first layer skips the last pixel row):
EXPECTED_WARNINGS = {"nin", "squeezenet1_0"}
# Checked for identical logits on a real image (kept to four: real weights cost time on a CPU).
LOGIT_CHECKS = ["alexnet", "vgg16", "resnet18", "resnet50"]


def meta_build(spec: NetworkSpec) -> nn.Module:
    with torch.device("meta"):
        return build(spec)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_expected_presets_exist():
    expected = {"lenet5", "twoconv", "alexnet", "vgg11", "vgg16", "vgg19", "googlenet", "resnet18", "resnet34",
                "resnet50", "densenet121", "mobilenet_v2", "squeezenet1_0", "nin", "zfnet", "cifar_compact",
                "gapnet", "resnet_cifar"}
    assert expected <= set(PRESETS)
    mirrors = {"alexnet", "vgg11", "vgg16", "vgg19", "googlenet", "resnet18", "resnet34", "resnet50", "densenet121",
               "mobilenet_v2", "squeezenet1_0"}
    assert mirrors <= set(MIRRORS) and set(LOGIT_CHECKS) <= mirrors


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_round_trips_builds_and_analyses(name):
    info = preset_info(name)
    spec = explorer.load_preset(name)
    assert info.title and spec.description, "every preset has a title and a one-sentence description"
    assert all(isinstance(t, str) for t in info.tags) and info.tags
    raw = json.loads((PRESET_DIR / f"{name}.json").read_text())
    assert isinstance(raw.get("year", 2000), int)

    assert NetworkSpec.from_json(spec.to_json()) == spec
    assert NetworkSpec.from_json(spec.to_json(indent=None)) == spec

    model = meta_build(spec)
    analysis = explorer.analyze(spec)
    assert analysis.output_shape == (spec.num_classes,)
    assert analysis.totals.params == count(model) > 0
    assert analysis.totals.macs > 0
    assert len(analysis.rows) == len(infer_shapes(spec).instances)
    assert bool(analysis.warnings) == (name in EXPECTED_WARNINGS), analysis.warnings


@pytest.mark.parametrize("name", SMALL)
def test_small_preset_shapes_match_a_real_forward_pass(name):
    spec = explorer.load_preset(name)
    plan = infer_shapes(spec)
    torch.manual_seed(0)
    model = build(spec, plan).eval()
    seen: dict[str, tuple[int, ...]] = {}
    for child_name, child in model.named_children():
        child.register_forward_hook(lambda m, i, o, n=child_name: seen.__setitem__(n, tuple(o.shape[1:])))
    with torch.no_grad():
        out = model(torch.randn(2, *spec.input))
    assert tuple(out.shape) == (2, spec.num_classes) and torch.isfinite(out).all()
    assert seen == {inst.name: inst.out_shape for inst in plan.instances}


@pytest.mark.parametrize("name", MIRRORS)
def test_mirror_matches_torchvision(name):
    info = preset_info(name)
    assert info.mirrors == name
    spec = explorer.load_preset(name)
    figures = published_figures(name)
    assert spec.input == (3, figures.input_size, figures.input_size) and spec.num_classes == 1000

    reference = torchvision_model(name)  # meta device: shapes only
    assert count(reference) == figures.params
    analysis = explorer.analyze(spec)
    assert analysis.totals.params == count(reference)
    assert analysis.totals.macs == pytest.approx(figures.gmacs * 1e9, rel=0.01)

    # Layer for layer the same tensors in the same order (kind, shape and dtype checked pairwise).
    model = meta_build(spec)
    mapped = map_torchvision_state_dict(model, reference.state_dict())
    assert list(mapped) == list(model.state_dict())


@pytest.mark.slow  # real weights on the CPU: about 6 s for the four
@pytest.mark.parametrize("name", LOGIT_CHECKS)
def test_torchvision_weights_give_the_same_logits(name):
    torch.manual_seed(0)
    reference = torchvision_model(name, device="cpu").eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so a misplaced norm shows
        for m in reference.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model = load_torchvision_weights(meta_build(explorer.load_preset(name)), reference.state_dict()).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected, got = reference(x), model(x)
    assert got.shape == (1, 1000)
    assert expected.abs().max() > 1e-3  # a real signal, not zeros
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_mapping_names_the_first_mismatch():
    resnet18 = meta_build(explorer.load_preset("resnet18"))
    with pytest.raises(ValueError, match="state entries"):
        map_torchvision_state_dict(resnet18, torchvision_model("resnet34").state_dict())
    vgg16 = meta_build(explorer.load_preset("vgg16"))
    with pytest.raises(ValueError, match=r"classifier\.6\.weight.*linear3\.weight.*1000x4096"):
        map_torchvision_state_dict(vgg16, torchvision_model("vgg16", num_classes=10).state_dict())
    renamed = {k.replace("bias", "other"): v for k, v in torchvision_model("vgg16").state_dict().items()}
    with pytest.raises(ValueError, match=r"entry 1: .*'other'.*'bias'"):
        map_torchvision_state_dict(vgg16, renamed)


def test_loading_into_a_real_model_copies_the_weights():
    spec = explorer.load_preset("squeezenet1_0")
    torch.manual_seed(0)
    reference = torchvision_model("squeezenet1_0", device="cpu")
    model = load_torchvision_weights(build(spec), reference.state_dict())
    for (_, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
