"""Spec validation and JSON round trip: every bad input is a SpecError that names the place."""

import json

import pytest

from explorer import NetworkSpec, SpecError, analyze
from explorer.core.registry import block_types, get_block
from explorer.core.shapes import infer_shapes
from explorer.core.spec import MAX_SPEC_BYTES, BlockSpec
from explorer.errors import ConfigError


def spec(blocks, input=(3, 32, 32), **kw):
    return NetworkSpec.from_dict({"input": list(input), "blocks": blocks, **kw})


def test_round_trip_keeps_everything():
    s = spec([{"type": "conv", "out_channels": 8, "kernel": 3, "padding": "same"},
              {"type": "mlpconv", "channels": [4, 4], "kernel": 3, "padding": 1, "repeat": 2},
              {"type": "gap"}, {"type": "linear", "out_features": 10}], name="x", num_classes=10)
    again = NetworkSpec.from_json(s.to_json())
    assert again == s
    assert again.to_dict()["format"] == "cnn-explorer/spec@1"
    assert again.blocks[1].repeat == 2 and again.blocks[1].get("channels") == [4, 4]


@pytest.mark.parametrize("blocks, field, words", [
    ([{"type": "convv"}], "type", "Did you mean 'conv'"),
    ([{"type": "conv", "kernal": 3}], "kernal", "did you mean 'kernel'"),
    ([{"type": "conv", "kernel": "3"}], "kernel", "must be an integer"),
    ([{"type": "conv", "kernel": 3.0}], "kernel", "must be an integer"),
    ([{"type": "conv", "kernel": True}], "kernel", "must be an integer"),
    ([{"type": "conv", "out_channels": 0}], "out_channels", "at least 1"),
    ([{"type": "dropout", "p": 1.5}], "p", "at most"),
    ([{"type": "conv", "padding": "valid"}], "padding", "\"same\""),
    ([{"type": "relu", "repeat": 0}], "repeat", "from 1"),
    ([{"type": "mlpconv", "channels": []}], "channels", "non-empty list"),
    ([{"type": "inception", "branch3_kernel": 7}], "branch3_kernel", "one of"),
    (["conv"], None, "must be an object"),
    ([{"kernel": 3}], "type", "no 'type'"),
])
def test_field_errors_name_block_and_field(blocks, field, words):
    with pytest.raises(SpecError) as info:
        spec(blocks)
    err = info.value
    assert err.block_index == 0
    assert err.field == field
    assert words in str(err)
    assert str(err).startswith("block 0")


@pytest.mark.parametrize("data, words", [
    ([], "must be a JSON object"),
    ({"input": [3, 32]}, "'input' must be"),
    ({"input": [3, 0, 32]}, "positive and at most"),
    ({"num_classes": 0}, "num_classes"),
    ({"blocks": {}}, "'blocks' must be a list"),
    ({"format": "other@2"}, "unknown format"),
    ({"layers": []}, "unknown key"),
])
def test_whole_spec_errors(data, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(")):
        NetworkSpec.from_dict(data)


def test_malformed_and_oversized_json():
    with pytest.raises(SpecError, match="not valid JSON"):
        NetworkSpec.from_json("{bad")
    with pytest.raises(SpecError, match="limit"):
        NetworkSpec.from_json(b" " * (MAX_SPEC_BYTES + 1))
    with pytest.raises(SpecError, match="UTF-8"):
        NetworkSpec.from_json(b"\xff\xfe{}")


def test_kernel_larger_than_padded_input_is_an_error():
    with pytest.raises(SpecError) as info:
        infer_shapes(spec([{"type": "conv", "kernel": 3, "padding": 1}, {"type": "maxpool", "kernel": 2},
                           {"type": "conv", "kernel": 9}], input=(3, 7, 7)))
    err = info.value
    assert (err.block_index, err.block_type, err.field) == (2, "conv", "kernel")
    assert "larger than its padded input (3 + 2*0 = 3)" in str(err)


def test_stride_that_does_not_fit_warns_cs231n_example():
    # 7x7 input, 3x3 filter: stride 1 -> 5, stride 2 -> 3, stride 3 -> (7-3)/3+1 = 2.33 "doesn't fit".
    for stride, size, warned in ((1, 5, False), (2, 3, False), (3, 2, True)):
        plan = infer_shapes(spec([{"type": "conv", "out_channels": 1, "kernel": 3, "stride": stride}],
                                 input=(1, 7, 7)))
        assert plan.output_shape == (1, size, size)
        assert bool(plan.instances[0].warnings) == warned
    assert "2.33" in plan.instances[0].warnings[0] and "dropped" not in plan.instances[0].warnings[0]
    assert len(plan.instances[0].warnings) == 1  # one message, not one per axis


def test_linear_on_a_feature_map_says_add_flatten():
    with pytest.raises(SpecError, match="add a 'flatten'") as info:
        infer_shapes(spec([{"type": "linear"}]))
    assert info.value.block_index == 0


def test_groups_must_divide_channels():
    with pytest.raises(SpecError, match="divisible by groups") as info:
        infer_shapes(spec([{"type": "conv", "out_channels": 8, "groups": 2}]))
    assert info.value.field == "groups"


def test_same_padding_needs_stride_one():
    with pytest.raises(SpecError, match="needs stride 1"):
        infer_shapes(spec([{"type": "conv", "stride": 2, "padding": "same"}]))
    plan = infer_shapes(spec([{"type": "conv", "kernel": 4, "padding": "same"}]))
    assert plan.output_shape[1:] == (32, 32)


def test_repeat_expands_into_named_copies():
    plan = infer_shapes(spec([{"type": "conv", "out_channels": 4, "kernel": 3, "stride": 2, "padding": 1, "repeat": 3}]))
    assert [i.name for i in plan.instances] == ["conv1", "conv2", "conv3"]
    assert plan.output_shape == (4, 4, 4)


def test_class_count_mismatch_is_a_warning_and_with_num_classes_fixes_it():
    s = spec([{"type": "flatten"}, {"type": "linear", "out_features": 10}], num_classes=10)
    assert not infer_shapes(s).warnings
    s5 = s.with_num_classes(5)
    assert infer_shapes(s5).output_shape == (5,) and not infer_shapes(s5).warnings
    wrong = spec([{"type": "flatten"}, {"type": "linear", "out_features": 7}], num_classes=10)
    assert "num_classes is 10" in infer_shapes(wrong).warnings[0]


def test_every_block_type_has_a_schema_with_help():
    for name in block_types():
        block = get_block(name)
        assert block.title and block.description
        for f in block.fields:
            assert f.help, f"{name}.{f.name} has no help text"
            if f.default is not None and not f.required:
                assert f.check(f.default) == f.default or f.kind == "float"


def test_blockspec_is_hashable_and_editable():
    b = BlockSpec.make("conv", out_channels=8)
    assert hash(b) == hash(BlockSpec.make("conv", out_channels=8))
    assert b.with_values(kernel=5).to_dict() == {"type": "conv", "out_channels": 8, "kernel": 5}


def test_analysis_settings_errors_are_config_errors_not_tracebacks():
    with pytest.raises(ConfigError, match="batch"):
        analyze(spec([{"type": "relu"}]), batch=0)
    with pytest.raises(ConfigError, match="dtype"):
        analyze(spec([{"type": "relu"}]), dtype="int8")
    with pytest.raises(ConfigError, match="optimizer"):
        analyze(spec([{"type": "relu"}]), optimizer="lion")


def test_json_text_round_trip_is_stable():
    s = spec([{"type": "conv"}])
    assert json.loads(s.to_json()) == json.loads(NetworkSpec.from_json(s.to_json()).to_json())
