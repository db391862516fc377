"""The registry contract: every registered block type carries every fact the app asks of it, and a
block type registered in one place (here, inside a test) works everywhere: validation, analysis,
the budget, export to standalone source, interpretation, the architecture diff and the sidebar.

References are independent of the registry's own formulas: a real forward pass on CPU, PyTorch's
parameter count, and the exported source executed in a fresh namespace.
"""

import dataclasses
import math

import pytest
import torch
from torch import nn

from explorer import NetworkSpec, analyze, build
from explorer.compare.results import architecture_diff
from explorer.core.blocks._common import spatial
from explorer.core.budget import check_spec
from explorer.core.export import to_pytorch_source
from explorer.core.registry import (FAMILIES, ROLES, BlockCost, BlockDef, Field, block_types, get_block, register,
                                    registered, unregister)
from explorer.core.spec import BlockSpec, SpecError
from explorer.interpret import explain

SPATIAL_INPUT = (8, 12, 12)
FLAT_INPUT = (16,)


def _input_for(type_name: str) -> tuple[int, ...]:
    return FLAT_INPUT if get_block(type_name).input_kind == "flat" else SPATIAL_INPUT


def _spec(blocks: list[dict], shape: tuple[int, ...], name: str = "contract") -> NetworkSpec:
    return NetworkSpec.from_dict({"name": name, "input": list(shape), "blocks": blocks})


def _run_exported(spec: NetworkSpec) -> nn.Module:
    """Execute the exported source in a fresh namespace and instantiate its network class."""
    namespace = {"__name__": "exported"}
    exec(compile(to_pytorch_source(spec), "<export>", "exec"), namespace)
    classes = [v for k, v in namespace.items() if isinstance(v, type) and issubclass(v, nn.Module)
               and getattr(v, "name", None) == spec.name]
    assert len(classes) == 1, "the export defines exactly one network class"
    return classes[0]()


def _check_everywhere(type_name: str, blocks: list[dict], shape: tuple[int, ...]) -> None:
    """Analysis, build, a real forward pass and the exported source agree on `blocks`."""
    spec = _spec(blocks, shape, name=f"contract-{type_name}")
    analysis = analyze(spec, batch=2)
    row = next(r for r in analysis.rows if r.type == type_name)
    definition = get_block(type_name)
    assert row.label.startswith(definition.short), (row.label, definition.short)
    assert row.formula and "None" not in row.formula
    torch.manual_seed(0)
    ours = build(spec).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        out = ours(x)
    assert tuple(out.shape[1:]) == analysis.output_shape, "formula shape differs from a real forward pass"
    params = sum(p.numel() for p in ours.parameters())
    assert analysis.totals.params == params
    cost = check_spec(spec)  # the blocks' own cost formulas (BlockDef.cost)
    assert cost.params == params, "the budget's parameter count differs from the built module"
    assert cost.layers == len(analysis.detail_rows), "the budget's leaf count differs from the traced calls"
    assert cost.macs >= analysis.totals.macs, "the budget's MACs are not an upper bound"
    exported = _run_exported(spec).eval()
    assert sum(p.numel() for p in exported.parameters()) == params
    exported.load_state_dict(ours.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(exported(x), out)


# --- every registered type -----------------------------------------------------------------------
@pytest.mark.parametrize("type_name", block_types())
def test_every_type_builds_analyses_exports_and_runs(type_name):
    _check_everywhere(type_name, [{"type": type_name}], _input_for(type_name))


@pytest.mark.parametrize("type_name", block_types())
def test_every_type_names_itself_for_the_ui(type_name):
    definition = get_block(type_name)
    assert definition.title and definition.description
    assert definition.short and definition.short == definition.short.upper()
    assert definition.family in FAMILIES and definition.role in ROLES
    assert definition.diff_kind()
    for f in definition.fields:
        assert f.ui_label and f.ui_short and f.help, f.name


@pytest.mark.parametrize("type_name", block_types())
def test_every_role_holds_on_a_real_forward_pass(type_name):
    """What explorer.interpret assumes of a role is true of the module the block builds."""
    definition = get_block(type_name)
    shape = _input_for(type_name)
    torch.manual_seed(0)
    module = definition.build(shape, definition.defaults()).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        out = module(x)
    params = sum(p.numel() for p in module.parameters())
    role = definition.role
    if role == "identity_in_eval":
        torch.testing.assert_close(out.reshape(2, -1), x.reshape(2, -1))
    elif role in ("activation", "norm"):
        assert out.shape == x.shape and (role == "norm" or params == 0)
    elif role == "feature":
        assert out.dim() == 4 and params > 0
    elif role in ("pool", "adaptive_pool"):
        assert params == 0 and out.shape[0] == 2 and out.shape[1] == x.shape[1]
        if role == "adaptive_pool":  # its output size does not depend on the input size
            with torch.no_grad():
                bigger = module(torch.randn(2, shape[0], 2 * shape[1], 2 * shape[2]))
            assert bigger.shape == out.shape
    elif role == "classifier":
        assert x.dim() == 2 and out.dim() == 2 and params > 0
    else:  # a role added to ROLES needs its check here
        pytest.fail(f"no check for role {role!r}")


@pytest.mark.parametrize("type_name", [t for t in block_types() if get_block(t).classes_field])
def test_a_new_class_count_resizes_the_field_the_block_names(type_name):
    field = get_block(type_name).classes_field
    many = get_block(type_name).field(field).kind == "ints"   # a list of widths: the last is the output
    spec = _spec([{"type": type_name, field: [16, 10] if many else 10}], _input_for(type_name))
    resized = spec.with_num_classes(7)
    assert resized.blocks[-1].get(field) == ([16, 7] if many else 7)
    assert analyze(resized).output_shape[0] == 7


def test_the_registry_refuses_what_it_cannot_serve():
    conv = get_block("conv")
    with pytest.raises(ValueError, match="registered twice"):
        register(conv)
    with pytest.raises(ValueError, match="unknown role"):
        register(BlockDef(**{**conv.__dict__, "type": "conv_x", "role": "decoration"}))
    with pytest.raises(ValueError, match="unknown family"):
        register(BlockDef(**{**conv.__dict__, "type": "conv_x", "family": "misc"}))
    with pytest.raises(ValueError, match="classes_field"):
        register(BlockDef(**{**conv.__dict__, "type": "conv_x", "classes_field": "width"}))
    with pytest.raises(ValueError, match="cost formula"):
        register(BlockDef(**{**conv.__dict__, "type": "conv_x", "cost": None}))
    with pytest.raises(TypeError, match="cost"):  # no default: every type states its budget cost
        BlockDef(**{k: v for k, v in conv.__dict__.items() if k != "cost"})
    with pytest.raises(KeyError, match="unknown block type"):
        unregister("conv_x")
    assert "conv_x" not in block_types()


# --- a block type added in one place --------------------------------------------------------------
class ChannelScale(nn.Module):
    """y = gamma * x with one learned gamma per channel (a batch norm without the normalising)."""

    def __init__(self, channels: int, init: float = 1.0):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), init))

    def forward(self, x):
        return x * self.gamma  # (N, C, H, W) * (C, 1, 1)


SCALE = BlockDef(
    type="scale", title="Channel scale", family="normalization", short="SCALE", role="norm",
    description="Multiplies each channel by a learned number.",
    fields=(Field("init", "float", 1.0, "starting value of every gamma", min=0.0, max=10.0,
                  label="Initial scale", short="g0"),),
    output_shape=lambda s, p, warn: spatial(s, "scale"),
    build=lambda s, p: ChannelScale(s[0], p["init"]),
    formula=lambda i, o, p: f"params {i[0]} (one gamma per channel)",
    elementwise=True,
    export=lambda i, p, m: f"ChannelScale({i[0]}, {p['init']})", export_support=(ChannelScale,),
    cost=lambda c, p: BlockCost(1, c or 0),  # one module, one gamma per channel
)


def test_a_block_registered_in_one_place_works_everywhere():
    ui_sidebar = pytest.importorskip("ui.sidebar")
    blocks = [{"type": "conv", "out_channels": 6, "kernel": 3, "padding": 1}, {"type": "scale", "init": 2.0},
              {"type": "relu"}, {"type": "gap"}, {"type": "linear", "out_features": 3}]
    with registered(SCALE):
        _check_everywhere("scale", blocks, SPATIAL_INPUT)              # analysis, budget, export, forward
        spec = _spec(blocks, SPATIAL_INPUT)
        (row,) = [r for r in analyze(spec).rows if r.type == "scale"]
        assert (row.params, row.label, row.elementwise) == (6, "SCALE", True)
        # interpretation: a norm continues the conv's chain; CAM still sees gap -> linear
        model = build(spec)
        labels = [c.label for c in explain.layer_choices(model)]
        assert any("conv1 → scale → relu" in label for label in labels), labels
        assert explain.cam_info(model).applies
        # the sidebar: palette family, field label, one-line summary
        assert "scale" in ui_sidebar.types_in_family("normalization")
        assert ui_sidebar.field_help(SCALE.field("init")).startswith("Starting value of every gamma")
        summary = ui_sidebar.block_summary(1, BlockSpec.make("scale", init=2.0), {1: "6×12×12"})
        assert summary == "2. Channel scale g0=2 → 6×12×12"
        # the diff pairs it with another normalisation as one replaced layer
        other = _spec([blocks[0], {"type": "batchnorm"}, *blocks[2:]], SPATIAL_INPUT)
        diff = architecture_diff(spec, analyze(spec), other, analyze(other))
        assert list(diff["Change"]).count("replaced") == 1
    assert "scale" not in block_types()
    with pytest.raises(SpecError, match="unknown block type"):
        _spec(blocks, SPATIAL_INPUT)


def test_every_row_label_and_fold_comes_from_the_registry():
    """The adaptive pool's size-keeping rule lives once: a 7x7 pool on a 7x7 map folds, on 8x8 not."""
    for size, folds in ((7, True), (8, False)):
        spec = _spec([{"type": "adaptiveavgpool", "output_size": 7}], (3, size, size))
        (row,) = analyze(spec).rows
        assert row.elementwise is folds and row.label == "ADAPTIVEPOOL7"
    assert math.prod(analyze(_spec([{"type": "gap"}], SPATIAL_INPUT)).output_shape) == SPATIAL_INPUT[0]


def test_a_type_registered_again_is_not_served_a_stale_trace():
    """The analysis caches each block's trace; a new definition under the same type name (here one
    that applies two scales) must be traced anew, not served the old definition's trace."""
    twice = dataclasses.replace(
        SCALE, build=lambda s, p: nn.Sequential(ChannelScale(s[0], p["init"]), ChannelScale(s[0], p["init"])),
        cost=lambda c, p: (2, 2 * (c or 0)))  # a plain (layers, params) tuple is accepted too
    blocks = [{"type": "scale"}]
    channels = SPATIAL_INPUT[0]
    for definition, leaves in ((SCALE, 1), (twice, 2), (SCALE, 1)):
        with registered(definition):
            spec = _spec(blocks, SPATIAL_INPUT)
            analysis = analyze(spec)
            assert (analysis.totals.params, len(analysis.detail_rows)) == (leaves * channels, leaves)
            cost = check_spec(spec)
            assert (cost.params, cost.layers) == (leaves * channels, leaves)
