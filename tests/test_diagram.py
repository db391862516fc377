"""The network diagram (issue 13, deliverable 1): DOT for every block type that Graphviz accepts,
branches for composite blocks, shapes on edges, colour by share, the selection, hostile names."""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest

from explorer import NetworkSpec, analyze, load_preset
from explorer.charts.diagram import HIGH, SELECTED_COLOR, DiagramOptions, dot_to_svg, network_dot
from explorer.core.registry import block_types, get_block
from tests.test_blocks import cases

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed "
                                                                    "(make test installs it as root)")


def _spec(type_name, shape, extra) -> NetworkSpec:
    return NetworkSpec.from_dict({"name": f"one {type_name}", "input": list(shape), "num_classes": 10,
                                  "blocks": [{"type": type_name, **extra}]})


@pytest.mark.parametrize("type_name, shape, extra", list(cases()))
def test_every_block_type_draws(type_name, shape, extra):
    spec = _spec(type_name, shape, extra)
    dot = network_dot(analyze(spec), spec)
    assert dot.startswith("digraph network {") and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    if get_block(type_name).branches is not None:
        assert "subgraph cluster_n0 {" in dot
    if shutil.which("dot"):
        assert dot_to_svg(dot).lstrip().startswith(b"<?xml")


def test_composite_blocks_are_drawn_with_their_branches():
    spec = NetworkSpec.from_dict({"input": [64, 28, 28], "blocks": [
        {"type": "residual", "out_channels": 64}, {"type": "residual", "out_channels": 128, "stride": 2},
        {"type": "inception"}, {"type": "se"}, {"type": "gap"}, {"type": "linear", "out_features": 10}]})
    dot = network_dot(analyze(spec), spec)
    cluster = lambda i: dot.split(f"subgraph cluster_n{i} {{")[1].split("\n}")[0]  # noqa: E731
    assert 'label="identity"' in cluster(0) and "1x1 conv s2" not in cluster(0)      # identity shortcut
    assert "1x1 conv s2 → 128" in cluster(1) and 'label="identity"' not in cluster(1)  # projection shortcut
    assert cluster(2).count(" -> n2_m;") == 4 and 'label="concat"' in cluster(2)       # four paths, concat
    assert 'label="×"' in cluster(3) and "sigmoid" in cluster(3)                        # SE scales channels


def test_edges_carry_the_tensor_shapes_and_the_largest_block_is_darkest():
    spec = load_preset("lenet5")
    a = analyze(spec)
    dot = network_dot(a, spec)
    edges = re.findall(r'-> \w+ \[label="([^"]+)"\]', dot)
    assert edges[0] == "1×32×32" and "6×28×28" in edges and edges[-1] == "10"
    biggest = max(range(len(a.rows)), key=lambda i: a.rows[i].params)
    darkest = "#{:02x}{:02x}{:02x}".format(*HIGH)
    assert re.search(rf'n{biggest} \[[^\]]*fillcolor="{darkest}"', dot)
    by_macs = network_dot(a, spec, DiagramOptions(color_by="macs"))
    busiest = max(range(len(a.rows)), key=lambda i: a.rows[i].macs)
    assert re.search(rf'n{busiest} \[[^\]]*fillcolor="{darkest}"', by_macs)


def test_the_selected_block_is_outlined_in_every_copy():
    spec = load_preset("resnet18")
    a = analyze(spec)
    chosen = next(r.block_index for r in a.rows if r.type == "residual")
    dot = network_dot(a, spec, DiagramOptions(selected=chosen))
    copies = sum(1 for r in a.rows if r.block_index == chosen)
    assert copies >= 2 and dot.count(SELECTED_COLOR) == copies


@pytest.mark.parametrize("name", ['x"; node [label=pwned] "', "back\\slash", "\u202eevil", "<b>html</b>", "a\nb",
                                  "nul\x00", "\ud800"])
def test_hostile_names_stay_one_dot_string(name):
    spec = NetworkSpec.from_dict({"input": [1, 8, 8],  # built directly: the loader refuses "\n" in names
                                  "blocks": [{"type": "flatten"}, {"type": "linear", "out_features": 10}]})
    spec = dataclasses.replace(spec, name=name)
    dot = network_dot(dataclasses.replace(analyze(spec), name=name), spec)
    graph_line = dot.splitlines()[1]
    assert len(re.findall(r'(?<!\\)"', graph_line)) == 6  # label, fontname, bgcolor: the name stays inside
    if shutil.which("dot"):
        svg = dot_to_svg(dot).decode()
        assert "<title>pwned</title>" not in svg and svg.count('class="node"') == 4  # input, 2 blocks, output


@needs_dot
def test_resnet50_draws_every_bottleneck_quickly_enough_to_show():
    spec = load_preset("resnet50")
    a = analyze(spec)
    dot = network_dot(a, spec)
    assert dot.count("subgraph cluster_") == sum(1 for r in a.rows if r.type == "bottleneck") == 16
    assert b"BOTTLENECK&#45;2048" in dot_to_svg(dot)  # Graphviz writes '-' as &#45;


def test_torchvision_models_draw_as_a_chain():
    import torchvision

    a = analyze(torchvision.models.resnet18(), (3, 64, 64), name="resnet18")
    dot = network_dot(a)
    assert "subgraph" not in dot and dot.count("->") == len(a.rows) + 1


def test_every_composite_block_type_has_branches():
    composite = [t for t in block_types() if get_block(t).family == "composite"]
    assert composite and all(get_block(t).branches is not None for t in composite)
