"""explorer.compare.zoo: the explainers' numbers (from explorer.analyze on small specs) against values
computed by hand, torchvision's published figures, per-depth profiles, and the zoo charts."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer import analyze, load_preset
from explorer.charts import compare as charts
from explorer.compare import zoo


# --- explainers: every number comes from the analysis; the hand values are typed here only -----
@pytest.mark.parametrize("c", [256, 64, 3])
def test_two_3x3_against_one_5x5(c):
    e = zoo.stacked_convs(channels=c, n=2, size=56)
    assert e.b.params == 2 * (3 * 3 * c * c + c)
    assert e.a.params == 5 * 5 * c * c + c
    assert e.b.macs == 2 * 56 * 56 * c * 3 * 3 * c  # bias excluded
    assert e.a.macs == 56 * 56 * c * 5 * 5 * c
    assert e.a.receptive_field == e.b.receptive_field == 5
    assert (e.a.conv_layers, e.b.conv_layers) == (1, 2)


def test_the_course_numbers_for_c_256():
    e = zoo.stacked_convs(channels=256)
    assert e.b.params == 1_180_160   # 2*(3*3*256*256 + 256)
    assert e.a.params == 1_638_656   # 5*5*256*256 + 256
    assert e.b.layer_params() == [("conv1", 590_080), ("conv2", 590_080)]  # the "~590K" of the slides
    assert e.params_ratio == pytest.approx(1_638_656 / 1_180_160)


def test_three_3x3_against_one_7x7():
    e = zoo.stacked_convs(channels=256, n=3)
    assert e.b.params == 3 * (9 * 256 * 256 + 256) == 1_770_240
    assert e.a.params == 49 * 256 * 256 + 256 == 3_211_520
    assert e.a.receptive_field == e.b.receptive_field == 7


def test_googlenet_bottleneck():
    e = zoo.bottleneck()  # 28x28x192 -> 28x28x32, 5x5, through 16 channels
    assert e.a.macs == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400
    assert e.b.layer_macs() == [("conv1", 28 * 28 * 16 * 192), ("conv2", 28 * 28 * 32 * 5 * 5 * 16)]
    assert [m for _, m in e.b.layer_macs()] == [2_408_448, 10_035_200]
    assert e.b.macs == 12_443_648
    assert e.a.params == 5 * 5 * 192 * 32 + 32 == 153_632
    assert e.b.params == (192 * 16 + 16) + (5 * 5 * 16 * 32 + 32) == 15_920
    assert e.macs_ratio == pytest.approx(9.68, abs=0.01)  # "about tenfold"
    assert e.a.analysis.output_shape == e.b.analysis.output_shape == (32, 28, 28)


def test_bottleneck_follows_its_knobs():
    e = zoo.bottleneck(in_channels=256, reduce_to=32)
    assert e.a.macs == 28 * 28 * 32 * 25 * 256
    assert e.b.macs == 28 * 28 * 32 * 256 + 28 * 28 * 32 * 25 * 32


@pytest.mark.parametrize("c,f", [(512, 3), (64, 5), (32, 7)])
def test_depthwise_separable(c, f):
    e = zoo.separable(in_channels=c, out_channels=c, size=14, kernel=f)
    assert e.a.params == f * f * c * c
    assert [p for _, p in e.b.layer_params()] == [f * f * c, c * c]
    assert e.b.macs == 14 * 14 * (f * f * c + c * c)
    assert e.b.macs / e.a.macs == pytest.approx(1 / c + 1 / f**2)  # MobileNet's cost ratio
    assert e.a.receptive_field == e.b.receptive_field == f


def test_mobilenet_figures():
    e = zoo.separable()
    assert (e.a.params, e.b.params) == (2_359_296, 266_752)
    assert (e.a.macs, e.b.macs) == (462_422_016, 52_283_392)


# --- the zoo --------------------------------------------------------------------------------------
def test_classics_with_published_figures():
    models = {m.name: m for m in zoo.zoo_models()}
    for name in ("alexnet", "vgg16", "googlenet", "resnet50", "densenet121", "mobilenet_v2", "squeezenet1_0",
                 "inception_v3", "efficientnet_b0"):
        assert name in models
    assert models["alexnet"].params == 61_100_840 and models["alexnet"].year == 2012
    assert models["vgg16"].params == 138_357_544 and models["vgg16"].gmacs == pytest.approx(15.47)
    assert models["googlenet"].acc1 == pytest.approx(69.778)
    assert models["inception_v3"].input_size == 299
    assert all(0 < m.acc1 < m.acc5 < 100 and m.params > 0 and m.gmacs > 0 for m in models.values())
    assert len(zoo.zoo_models(include_all=True)) > len(models)


def test_presets_that_mirror_zoo_models():
    models = {m.name: m for m in zoo.zoo_models()}
    assert models["alexnet"].preset == "alexnet" and models["resnet101"].preset is None
    for m in models.values():
        if m.preset in ("alexnet", "vgg16", "googlenet", "resnet18", "squeezenet1_0", "mobilenet_v2"):
            assert analyze(load_preset(m.preset)).totals.params == m.params, m.name


def test_zoo_frame():
    frame = zoo.zoo_frame(zoo.zoo_models())
    assert len(frame) == len(zoo.zoo_models())
    row = frame.set_index("torchvision").loc["squeezenet1_0"]
    assert row["Top-1 per M params"] == pytest.approx(row["Top-1 (%)"] / (row["Params"] / 1e6))
    assert row["Preset"] == "squeezenet1_0"


def test_analyze_zoo_model_matches_published_figures():
    a = zoo.analyze_zoo_model("resnet101")
    m = zoo.zoo_model("resnet101")
    assert a.totals.params == m.params
    assert a.totals.macs / 1e9 == pytest.approx(m.gmacs, abs=0.001)


def test_depth_profiles():
    vgg = zoo.depth_profile(zoo.analyze_zoo_model("vgg16"))
    assert len(vgg) == 16  # 13 convs + 3 fully connected
    assert list(vgg["depth"]) == list(range(1, 17))
    assert vgg["cumulative_params"].iloc[-1] == 138_357_544  # no batch norm: every weight is conv/linear
    assert vgg["activations"].iloc[0] == 64 * 224 * 224  # cs231n: CONV3-64 memory 224*224*64 = 3.2M
    assert vgg["params"].iloc[13] == 7 * 7 * 512 * 4096 + 4096  # the first FC, the heaviest layer
    resnet = zoo.depth_profile(zoo.analyze_zoo_model("resnet18"))
    assert len(resnet) == 21  # 17 convs + 3 downsampling 1x1 convs + fc


def test_zoo_charts():
    frame = zoo.zoo_frame(zoo.zoo_models())
    fig = charts.zoo_bubbles(frame, highlight=("alexnet",), labels=zoo.LABELED)
    assert fig.layout.xaxis.type == "log"
    assert sum(len(t.x) for t in fig.data) == len(frame)
    texts = [t for trace in fig.data for t in trace.text]
    assert "AlexNet" in texts and "VGG-13" not in texts  # VGG-13 is hover-only
    profiles = {"VGG-16": zoo.depth_profile(zoo.analyze_zoo_model("vgg16"))}
    assert len(charts.depth_profiles(profiles).data) == 2
    bars = charts.explainer_bars(zoo.bottleneck())
    assert sum(t.y[0] for t in bars.data if t.x[0] == "1×1 to 16, then 5×5" and t.xaxis == "x2") == 12_443_648


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_auxiliary_heads_are_stated_with_their_counts(name):
    """The notes' numbers are the constructors' (aux_logits=True minus False) and the published ones."""
    import torch
    import torchvision.models as tvm

    def count(aux: bool) -> int:
        with torch.device("meta"):
            model = tvm.get_model(name, weights=None, aux_logits=aux, init_weights=False)
        return sum(p.numel() for p in model.parameters())

    with_aux, without = count(True), count(False)
    m = zoo.zoo_model(name)
    assert f"{with_aux - without:,} parameters" in m.note
    assert zoo.analyze_zoo_model(name).totals.params == without
    if name == "inception_v3":   # its published count includes the head; the note says so
        assert m.params == with_aux and f"{with_aux:,}" in m.note and f"{without:,}" in m.note
    else:                        # googlenet's leaves both heads out
        assert m.params == without and "left out of the published figures" in m.note
    frame = zoo.zoo_frame(zoo.zoo_models()).set_index("torchvision")
    assert frame.loc[name, "Note"] == m.note and frame.loc["resnet50", "Note"] == ""
    readme = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    assert f"{with_aux - without:,}" in readme  # the README states the left-out head too


def test_zoo_analyses_regnets_and_vit_h_14_at_their_published_figures():
    for name in ("regnet_y_400mf", "vit_h_14"):
        a, m = zoo.analyze_zoo_model(name), zoo.zoo_model(name)
        assert a.totals.params == m.params and a.input_shape == (3, m.input_size, m.input_size)
        assert a.totals.macs / 1e9 == pytest.approx(m.gmacs, rel=1e-3)
