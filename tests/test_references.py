"""torchvision models against outside references: torchvision's published `num_params` and `_ops`
(GMACs per image at the weights' input size) and torch.utils.flop_counter on the same model.
Defects fixed here: the RegNets (constructors that need real tensors), vit_h_14's 518 px weights,
Swin-V2's batch-independent position-bias MLP, and refusals within the budget for real weights."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from explorer import analyze
from explorer.cli import main
from explorer.core import tvmodels
from explorer.core.tvmodels import analysis_model, classification_models, published_figures, torchvision_model
from explorer.errors import BudgetError

REGNETS = [n for n in classification_models() if n.startswith("regnet_")]
OVER_BUDGET = "regnet_y_128gf"  # 644,812,894 published parameters > 200 M (Budget.max_weight_params)


def _slow_if_large(name: str):
    big = published_figures(name).params > 50_000_000  # ~1-3 s each to build on the CPU
    return pytest.param(name, marks=pytest.mark.slow) if big else name


def test_fifteen_regnets_and_one_over_the_budget():
    assert len(REGNETS) == 15 and OVER_BUDGET in REGNETS
    with pytest.raises(NotImplementedError):  # why they need the CPU: widths computed with .tolist()
        torchvision_model("regnet_x_400mf")


@pytest.mark.parametrize("name", [_slow_if_large(n) for n in REGNETS if n != OVER_BUDGET])
def test_regnets_match_their_published_figures(name):
    figures = published_figures(name)
    a = analyze(analysis_model(name), (3, figures.input_size, figures.input_size), name=name)
    assert a.totals.params == figures.params
    assert a.totals.macs == pytest.approx(figures.gmacs * 1e9, rel=1e-3)  # _ops has 3 decimals


def test_the_largest_regnet_is_refused_before_anything_is_built(monkeypatch):
    built = []
    real = tvmodels.torchvision_model
    monkeypatch.setattr(tvmodels, "torchvision_model", lambda *a, **k: built.append(a) or real(*a, **k))
    with pytest.raises(BudgetError) as e:
        analysis_model(OVER_BUDGET)
    assert e.value.limit == "max_weight_params" and e.value.value == 644_812_894
    assert "CNN_EXPLORER_MAX_WEIGHT_PARAMS" in str(e.value) and "meta device" in str(e.value)
    assert [a[2] for a in built] == ["meta"]  # tried on meta, never on the CPU


def test_more_classes_count_against_the_weights_budget():
    with pytest.raises(BudgetError) as e:  # 5,495,976 x 100,000 / 1000: an upper bound of the head's growth
        analysis_model("regnet_x_400mf", num_classes=100_000)
    assert e.value.value == 549_597_600
    model = analysis_model("regnet_x_400mf", num_classes=10)
    assert model.fc.out_features == 10 and not next(model.parameters()).is_meta


def test_regnets_through_the_cli(monkeypatch, capsys):
    assert main(["analyze", "--torchvision", "regnet_x_400mf", "--format", "json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["params"] == published_figures("regnet_x_400mf").params
    assert main(["analyze", "--torchvision", OVER_BUDGET]) == 2
    assert "CNN_EXPLORER_MAX_WEIGHT_PARAMS" in capsys.readouterr().err
    monkeypatch.setenv("CNN_EXPLORER_MAX_WEIGHT_PARAMS", "1000000")  # the owner's lower limit
    assert main(["analyze", "--torchvision", "regnet_x_400mf"]) == 2
    assert "5,495,976 parameters" in capsys.readouterr().err


def test_vit_h_14_is_built_for_the_518_px_of_its_weights(capsys):
    figures = published_figures("vit_h_14")
    assert figures.input_size == 518 and tvmodels.size_argument("vit_h_14") == "image_size"
    assert main(["analyze", "--torchvision", "vit_h_14", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["input"] == [3, 518, 518]
    assert out["totals"]["params"] == figures.params == 633_470_440  # a 37x37+1-row position embedding
    assert out["totals"]["macs"] == pytest.approx(figures.gmacs * 1e9, rel=1e-4)
    # at 224 px it is the model of torchvision's 224 px weights (SWAG_LINEAR)
    import torchvision.models as tvm

    linear = tvm.ViT_H_14_Weights.IMAGENET1K_SWAG_LINEAR_V1.meta
    assert main(["analyze", "--torchvision", "vit_h_14", "--input", "3,224,224", "--format", "json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["params"] == linear["num_params"]
    assert totals["macs"] == pytest.approx(linear["_ops"] * 1e9, rel=1e-4)


def test_maxvit_takes_its_size_as_a_pair():
    assert tvmodels.size_argument("maxvit_t") == "input_size"
    assert tvmodels.size_argument("resnet50") is None and tvmodels.size_argument("swin_v2_t") is None
    figures = published_figures("maxvit_t")
    a = analyze(analysis_model("maxvit_t", image_size=224), (3, 224, 224))
    assert a.totals.params == figures.params
    assert a.totals.macs == pytest.approx(figures.gmacs * 1e9, rel=1e-3)


def _flop_counter_macs(name: str, batch: int, size: int) -> int:
    """MACs of the whole batch by torch.utils.flop_counter (FLOPs / 2) on the meta device."""
    model = torchvision_model(name).train()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(batch, 3, size, size, device="meta"))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("batch", [1, 4])
def test_swin_v2_position_bias_mlp_is_counted_once_per_batch(batch):
    """The position-bias MLP (cpb_mlp) runs on a fixed (1, 15, 15, 2) coordinate table whatever the
    batch: at batch 1 all of it is one image's work (it was halved: the trace runs 2 images)."""
    figures = published_figures("swin_v2_t")
    a = analyze(torchvision_model("swin_v2_t"), (3, 256, 256), batch=batch)
    assert a.totals.macs == _flop_counter_macs("swin_v2_t", batch, 256) // batch
    if batch == 1:
        assert a.totals.macs == pytest.approx(figures.gmacs * 1e9, rel=1e-4)
    rows = {r.name: r for r in a.rows}
    first = rows["features.1.0.attn.cpb_mlp.0"]  # Linear(2, 512) on 15 x 15 positions
    assert first.macs == 15 * 15 * 2 * 512 // batch


def test_networks_without_fixed_work_have_the_same_macs_per_image_at_every_batch():
    one, four = (analyze(torchvision_model("resnet18"), (3, 64, 64), batch=b) for b in (1, 4))
    assert one.totals.macs == four.totals.macs == _flop_counter_macs("resnet18", 4, 64) // 4
