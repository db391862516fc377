"""The server's cost budget (explorer.core.budget): the limits and their environment variables, every
block type's closed-form cost (its registry entry's BlockDef.cost) against the block built on the
meta device and against the traced MACs, every preset and torchvision model admitted, refusals that
name the limit and the block, and refusal before anything is traced."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import explorer.core.analysis as analysis_module
from explorer import load_preset
from explorer.core.analysis import analyze
from explorer.core.budget import Budget, block_cost, check_module, check_spec, check_weights, current
from explorer.cli import main
from explorer.errors import BudgetError, ConfigError, SpecError
from explorer.core.presets import list_presets
from explorer.core.registry import block_types, get_block
from explorer.core.share import encode_spec
from explorer.core.spec import MAX_BLOCKS, MAX_REPEAT, NetworkSpec
from explorer.core.tvmodels import classification_models, torchvision_model
from tests.shown import shown

# The issue's reproducer: a heavy block with a large repeat, itself repeated (a few hundred
# characters as a share link). Unbudgeted, one such block took ~25 s and 1.25 GB to analyse.
DENSE = {"type": "denseblock", "num_layers": 128, "growth_rate": 1024, "bn_size": 16, "repeat": MAX_REPEAT}
BOMB = {"input": [3, 8, 8], "blocks": [{"type": "conv", "out_channels": 8}] + [DENSE] * (MAX_BLOCKS - 1)}


def leaves(module: torch.nn.Module) -> int:
    return sum(1 for m in module.modules() if next(m.children(), None) is None)


def leaf_calls(module: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """Leaf-module calls in one forward pass on the meta device (what the trace records)."""
    calls = []
    for m in module.modules():
        if next(m.children(), None) is None:
            m.register_forward_hook(lambda *args: calls.append(1))
    module.eval()(torch.empty(2, *shape, device="meta"))
    return len(calls)


# --- limits from the environment ----------------------------------------------------------------
def test_defaults_and_environment_overrides():
    assert Budget.from_env({}) == Budget()
    b = Budget.from_env({"CNN_EXPLORER_MAX_LAYERS": "100", "CNN_EXPLORER_MAX_PARAMS": "2e6",
                         "CNN_EXPLORER_MAX_MACS": "1_000_000", "CNN_EXPLORER_MAX_ACTIVATIONS": " 5000 ",
                         "CNN_EXPLORER_MAX_WEIGHT_PARAMS": "7", "CNN_EXPLORER_MAX_WEIGHT_BYTES": "8"})
    assert (b.max_layers, b.max_params, b.max_macs, b.max_activations, b.max_weight_params,
            b.max_weight_bytes) == (100, 2_000_000, 1_000_000, 5000, 7, 8)


@pytest.mark.parametrize("value", ["", "0", "-5", "abc", "1.5", "nan", "inf", "1e400", "9" * 5000, "10 MB"])
def test_a_bad_environment_value_is_a_config_error_naming_the_variable(value):
    with pytest.raises(ConfigError) as e:
        Budget.from_env({"CNN_EXPLORER_MAX_MACS": value})
    assert "CNN_EXPLORER_MAX_MACS" in str(e.value) and e.value.field == "CNN_EXPLORER_MAX_MACS"


def test_current_reads_the_environment(monkeypatch):
    monkeypatch.setenv("CNN_EXPLORER_MAX_LAYERS", "42")
    assert current().max_layers == 42


# --- the closed-form costs ----------------------------------------------------------------------
SAMPLES = {  # extra configurations beyond each type's defaults (shortcuts, groups, no norm...)
    "conv": [dict(groups=2, out_channels=8, bias=False), dict(kernel=5, padding="same", dilation=2)],
    "sepconv": [dict(norm=False)], "inception": [dict(norm=False, branch3_kernel=3)],
    "residual": [dict(out_channels=16), dict(out_channels=8, stride=2)],
    "bottleneck": [dict(out_channels=16, groups=2, mid_channels=8), dict(out_channels=8)],
    "invres": [dict(expand_ratio=1, out_channels=8), dict(out_channels=16, stride=2)],
    "batchnorm": [dict(affine=False)], "linear": [dict(bias=False)],
    "denseblock": [dict(num_layers=3, growth_rate=5, bn_size=2, drop_rate=0.2)],
    "mlpconv": [dict(channels=[7, 5], kernel=3, padding=1)],
}


def cases():
    for type_name in block_types():
        for extra in [{}] + SAMPLES.get(type_name, []):
            yield pytest.param(type_name, extra, id=f"{type_name}-{len(extra)}-{sorted(extra)}")


def sample_shape(type_name: str) -> tuple[int, ...]:
    return (8,) if get_block(type_name).input_kind == "flat" else (8, 16, 16)


@pytest.mark.parametrize(("type_name", "extra"), list(cases()))
def test_costs_match_the_block_built_on_meta(type_name, extra):
    definition = get_block(type_name)
    params = {**definition.defaults(), **extra}
    shape = sample_shape(type_name)
    with torch.device("meta"):
        module = definition.build(shape, params)
    cost = block_cost(type_name, shape[0], params)
    assert cost.layers == leaf_calls(module, shape)
    assert cost.params == sum(p.numel() for p in module.parameters())
    assert 1 <= block_cost(type_name, None, params).layers <= cost.layers


@pytest.mark.parametrize(("type_name", "extra"), list(cases()))
def test_macs_bound_the_traced_macs(type_name, extra):
    """An upper bound for every block, exact for linear layers and for convs that keep the map size."""
    shape = sample_shape(type_name)
    spec = NetworkSpec.from_dict({"input": list(shape), "blocks": [{"type": type_name, **extra}]})
    traced = analyze(spec)
    macs = check_spec(spec).macs
    assert macs >= traced.totals.macs
    if type_name == "linear" or (type_name == "conv" and traced.output_shape[1:] == shape[1:]):
        assert macs == traced.totals.macs > 0


@pytest.mark.parametrize("name", [p.name for p in list_presets()])
def test_every_preset_is_admitted_and_the_costs_agree_with_the_trace(name):
    spec = load_preset(name)
    cost = check_spec(spec)
    a = analyze(spec)
    assert cost.params == a.totals.params          # exact
    assert cost.activations == a.totals.activations  # exact: block outputs per image
    assert cost.macs >= a.totals.macs               # an upper bound
    assert cost.layers == len(a.detail_rows)        # one row per leaf-module call


def test_conv_and_linear_macs_are_exact():
    a = analyze(load_preset("vgg16"))  # only conv, linear and parameter-free blocks
    assert check_spec(load_preset("vgg16")).macs == a.totals.macs == 15_470_264_320


def buildable_torchvision_models() -> list[str]:
    names = []
    for name in classification_models():
        try:
            torchvision_model(name)
        except NotImplementedError:  # regnet's init copies values: it cannot be built on meta
            continue
        names.append(name)
    return names


@pytest.mark.slow
def test_every_torchvision_model_that_builds_is_admitted():
    names = buildable_torchvision_models()
    assert {"vit_h_14", "efficientnet_v2_l", "vgg19_bn", "convnext_large"} <= set(names)
    for name in names:
        check_module(torchvision_model(name))  # raises BudgetError if over


@pytest.mark.slow
def test_the_largest_torchvision_models_analyse_through_the_cli(capsys):
    for name in ("vit_h_14", "efficientnet_v2_l"):
        assert main(["analyze", "--torchvision", name, "--input", "3,224,224", "--format", "json"]) == 0
    capsys.readouterr()


# --- refusals -----------------------------------------------------------------------------------
def test_the_issue_reproducer_is_refused_with_the_limit_and_the_block():
    spec = NetworkSpec.from_dict(BOMB)
    with pytest.raises(BudgetError) as e:
        check_spec(spec)
    err = e.value
    assert err.limit == "max_layers" and err.value > err.maximum == Budget().max_layers
    assert err.block_index == 1 and err.block_type == "denseblock"
    assert "CNN_EXPLORER_MAX_LAYERS" in str(err) and "repeat" in str(err)
    assert isinstance(err, SpecError)


@pytest.mark.parametrize(("env", "value", "limit", "blocks"), [
    ("CNN_EXPLORER_MAX_PARAMS", "10000", "max_params", [{"type": "flatten"}, {"type": "linear", "out_features": 99}]),
    ("CNN_EXPLORER_MAX_MACS", "10000", "max_macs", [{"type": "conv", "out_channels": 512, "padding": 1}]),
    ("CNN_EXPLORER_MAX_ACTIVATIONS", "10000", "max_activations", [{"type": "conv", "out_channels": 512}]),
    ("CNN_EXPLORER_MAX_LAYERS", "10", "max_layers", [{"type": "relu", "repeat": 20}]),
])
def test_each_limit_is_named_when_it_refuses(monkeypatch, env, value, limit, blocks):
    monkeypatch.setenv(env, value)
    spec = NetworkSpec.from_dict({"input": [3, 8, 8], "blocks": [{"type": "relu"}] * 3 + blocks})
    with pytest.raises(BudgetError) as e:
        analyze(spec)
    assert e.value.limit == limit and e.value.value > e.value.maximum == int(value)
    assert e.value.block_index == 2 + len(blocks)  # the last block pushes it over, not the ReLUs
    assert env in str(e.value)


def test_the_budget_is_checked_before_anything_is_traced(monkeypatch):
    def no_trace(*args, **kwargs):
        raise AssertionError("traced a network that is over the budget")

    monkeypatch.setattr(analysis_module, "trace", no_trace)
    monkeypatch.setattr(analysis_module, "_block_trace", no_trace)
    with pytest.raises(BudgetError):
        analyze(NetworkSpec.from_dict(BOMB))
    monkeypatch.setenv("CNN_EXPLORER_MAX_LAYERS", "10")
    with pytest.raises(BudgetError) as e:
        analyze(torchvision_model("resnet18"))
    assert e.value.limit == "max_layers" and e.value.value == leaves(torchvision_model("resnet18"))


def test_modules_get_the_input_shape_limits():
    with pytest.raises(SpecError, match="input"):
        analyze(torchvision_model("resnet18"), (3, 100_000, 100_000))


def test_the_cli_refuses_with_exit_2_and_the_limit(tmp_path: Path, capsys, monkeypatch):
    path = tmp_path / "bomb.json"
    path.write_text(NetworkSpec.from_dict(BOMB).to_json())
    assert main(["analyze", "--spec", str(path)]) == 2
    assert "CNN_EXPLORER_MAX_LAYERS" in capsys.readouterr().err
    monkeypatch.setenv("CNN_EXPLORER_MAX_PARAMS", "1000")
    assert main(["analyze", "--torchvision", "resnet18"]) == 2
    assert "CNN_EXPLORER_MAX_PARAMS" in capsys.readouterr().err
    monkeypatch.setenv("CNN_EXPLORER_MAX_PARAMS", "many")
    assert main(["analyze", "--preset", "lenet5"]) == 2
    assert "CNN_EXPLORER_MAX_PARAMS" in capsys.readouterr().err


def test_num_classes_cannot_bypass_the_field_ranges(capsys):
    with pytest.raises(SpecError, match="num_classes"):
        load_preset("lenet5").with_num_classes(10**9)
    assert main(["analyze", "--preset", "lenet5", "--num-classes", "1000000000"]) == 2
    capsys.readouterr()


# --- real weights in the app process ------------------------------------------------------------
def test_real_weights_have_a_smaller_budget(monkeypatch):
    vgg = load_preset("vgg16")
    assert check_weights(vgg).params == 138_357_544
    monkeypatch.setenv("CNN_EXPLORER_MAX_WEIGHT_PARAMS", "100000000")
    with pytest.raises(BudgetError) as e:
        check_weights(vgg)
    assert e.value.limit == "max_weight_params" and "CNN_EXPLORER_MAX_WEIGHT_PARAMS" in str(e.value)
    check_spec(vgg)  # the analysis budget still admits it
    monkeypatch.setenv("CNN_EXPLORER_MAX_WEIGHT_BYTES", "1000")
    with pytest.raises(BudgetError) as e:
        check_weights(load_preset("lenet5"))
    assert e.value.limit == "max_weight_bytes"


def test_the_untrained_inspect_network_is_refused_before_it_is_built(monkeypatch):
    import sys

    from explorer.interpret.sources import load_untrained

    def no_build(*args, **kwargs):
        raise AssertionError("built real weights over the budget")

    monkeypatch.setattr(sys.modules["explorer.core.build"], "build", no_build)
    monkeypatch.setenv("CNN_EXPLORER_MAX_WEIGHT_PARAMS", "1000")
    with pytest.raises(BudgetError):
        load_untrained(load_preset("lenet5"), "digits")


def test_a_share_link_over_the_budget_opens_the_default_network():
    from streamlit.testing.v1 import AppTest

    from ui import state

    app = str(Path(__file__).resolve().parents[1] / "app.py")
    at = AppTest.from_file(app, default_timeout=60)
    token = encode_spec(NetworkSpec.from_dict({"input": [3, 8, 8], "blocks": [DENSE] * 4}))
    assert len(token) < 300  # a short link
    at.query_params.update(net=token)
    at = at.run()
    assert not at.exception
    assert at.session_state[state.SPEC] == load_preset(state.DEFAULT_PRESET)
    assert any("CNN_EXPLORER_MAX_LAYERS" in shown(e.value) for e in at.error)
