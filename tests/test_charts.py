"""Plotly figure builders: right data, labelled units, and the VGG-16 lesson (memory early,
parameters late) visible in the numbers the figures carry."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from explorer import analyze, load_preset, preset_names
from explorer.charts.analysis import (MEMORY_PARTS, chart_rows, macs_per_layer, memory_breakdown,
                             params_vs_activations, receptive_field_growth, shape_text)


@pytest.fixture(scope="module")
def vgg():
    return analyze(load_preset("vgg16"), batch=8)


def test_shape_text():
    assert shape_text((64, 224, 224)) == "64×224×224"
    assert shape_text((10,)) == "10"
    assert shape_text(()) == "-"


def test_params_vs_activations_vgg16_lesson(vgg):
    fig = params_vs_activations(vgg)
    assert isinstance(fig, go.Figure)
    acts, params = fig.data
    names = list(acts.x)
    assert names == list(params.x) and "relu1" not in names  # element-wise rows folded
    assert sum(params.y) == vgg.totals.params - sum(r.params for r in vgg.rows if r.elementwise)
    # memory sits in the early convolutions, parameters in the late dense layers
    assert names[max(range(len(names)), key=lambda i: acts.y[i])] in ("conv1", "conv2")
    assert names[max(range(len(names)), key=lambda i: params.y[i])] == "linear1"
    assert max(params.y) == 7 * 7 * 512 * 4096 + 4096
    assert "values" in fig.layout.yaxis.title.text and "parameters" in fig.layout.yaxis2.title.text


def test_macs_per_layer_sums_to_total(vgg):
    fig = macs_per_layer(vgg)
    assert sum(fig.data[0].y) == vgg.totals.macs
    assert "15.47 GMACs" in fig.layout.title.text and "FLOPs = 2" in fig.layout.title.text


def test_receptive_field_grows_and_shows_input_size(vgg):
    fig = receptive_field_growth(vgg)
    rf = list(fig.data[0].y)
    assert rf == sorted(rf) and rf[0] == 3
    assert rf[list(fig.data[0].x).index("maxpool5")] == 212  # the classic VGG-16 figure: pool5 sees 212x212
    assert any("input size 224" in (a.text or "") for a in fig.layout.annotations)


def test_memory_breakdown_parts(vgg):
    fig = memory_breakdown(vgg)
    bar = fig.data[0]
    mem = vgg.totals.memory
    assert len(bar.y) == len(MEMORY_PARTS) == 6
    assert sum(bar.x) * 2**20 == pytest.approx(mem.total)
    assert "batch 8" in fig.layout.title.text and "SGD with momentum" in fig.layout.title.text
    assert "MiB" in fig.layout.xaxis.title.text
    assert all("%" in t for t in bar.text)


def test_flat_input_network_has_no_input_size_line():
    from explorer.core.spec import BlockSpec, NetworkSpec

    spec = NetworkSpec(input=(20,), num_classes=3, blocks=(BlockSpec.make("linear", out_features=3),))
    a = analyze(spec)
    fig = receptive_field_growth(a)
    assert not fig.layout.shapes
    assert chart_rows(a)  # still something to draw


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_draws(name):
    a = analyze(load_preset(name))
    for build in (params_vs_activations, macs_per_layer, receptive_field_growth, memory_breakdown):
        fig = build(a)
        fig.to_json()  # serialisable for st.plotly_chart
