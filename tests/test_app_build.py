"""AppTest tests of the Build page: every sidebar flow edits the spec in session state, the page
redraws without an exception, and errors appear as messages (never tracebacks)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer import load_preset
from explorer.core.share import decode_spec, encode_spec
from explorer.core.spec import MAX_SPEC_BYTES, NetworkSpec
from tests.shown import shown
from ui import state

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_app(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    return ok(at.run())


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def spec_of(at: AppTest) -> NetworkSpec:
    return at.session_state[state.SPEC]


def editor_key(at: AppTest, name: str) -> str:
    return f"ed.{at.session_state[state.GEN]}.{at.session_state[state.SELECTED]}.{name}"


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label))


def caption(at: AppTest) -> str:
    """The captions of the page, joined (the exact totals sit under the compact headline numbers)."""
    return " ".join(c.value for c in at.caption)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def load(at: AppTest, preset: str) -> AppTest:
    return ok(at.selectbox(key=state.PRESET_PICK).select(preset).run())


@pytest.fixture(scope="module")
def warm():
    """The first run pays for importing torch; later ones are fast."""
    open_app()


def test_opens_on_the_default_preset(warm):
    at = open_app()
    assert spec_of(at) == load_preset(state.DEFAULT_PRESET)
    assert metric(at, "Parameters") == "61.7K" and "61,706 parameters" in caption(at)
    assert not at.error
    assert shown(at.title[0].value) == "LeNet-5"
    table = at.dataframe[0].value
    assert list(table["Layer"])[:3] == ["conv1", "tanh1", "avgpool1"]
    assert table["Params"].sum() == 61_706


def test_preset_vgg16(warm):
    at = load(open_app(), "vgg16")
    assert spec_of(at) == load_preset("vgg16")
    assert metric(at, "Parameters") == "138M" and "138,357,544 parameters" in caption(at)
    assert metric(at, "MACs") == "15.5G" and "15,470,264,320 MACs per image" in caption(at)
    assert at.selectbox(key=state.PRESET_PICK).value is None  # ready to pick again


def test_add_at_the_end(warm):
    at = open_app()
    n = len(spec_of(at).blocks)
    at.pills(key="add.family").set_value("regularization").run()
    at.selectbox(key="add.type.regularization").select("dropout").run()
    at.number_input(key="add.dropout.p").set_value(0.25)
    ok(button(at, "Add block").click().run())
    blocks = spec_of(at).blocks
    assert len(blocks) == n + 1 and blocks[-1].type == "dropout" and blocks[-1].get("p") == 0.25
    assert at.session_state[state.SELECTED] == n  # the new block is ready to edit
    assert list(at.dataframe[0].value["Layer"])[-1] == "dropout1"


def test_insert_after_a_block(warm):
    at = open_app()
    before = spec_of(at).blocks
    at.selectbox(key="add.type.layers").select("conv").run()
    at.number_input(key="add.conv.out_channels").set_value(8)
    at.number_input(key="add.conv.padding").set_value(2)
    position = next(s for s in at.selectbox if s.key and s.key.startswith("add.pos."))
    position.select(1)  # after block 1 (the first conv)
    ok(button(at, "Add block").click().run())
    blocks = spec_of(at).blocks
    assert len(blocks) == len(before) + 1
    assert blocks[1].type == "conv" and blocks[1].values == {"out_channels": 8, "padding": 2}
    assert blocks[0] == before[0] and blocks[2:] == before[1:]


def test_edit_a_field_updates_the_table(warm):
    at = open_app()
    ok(at.number_input(key=editor_key(at, "out_channels")).set_value(12).run())
    assert spec_of(at).blocks[0].get("out_channels") == 12
    assert at.dataframe[0].value["Output shape"][0] == "12×28×28"
    assert metric(at, "Parameters") != "61.7K"


def test_edit_padding_same_and_repeat(warm):
    at = open_app()
    ok(at.checkbox(key=editor_key(at, "padding") + ".same").check().run())
    assert spec_of(at).blocks[0].get("padding") == "same"
    assert at.dataframe[0].value["Output shape"][0] == "6×32×32"
    ok(at.number_input(key=editor_key(at, "repeat")).set_value(2).run())
    assert spec_of(at).blocks[0].repeat == 2


def test_invalid_edit_shows_error_beside_the_block(warm):
    at = open_app()
    ok(at.number_input(key=editor_key(at, "kernel")).set_value(40).run())  # larger than the 32x32 input
    errors = [shown(e.value) for e in at.sidebar.error]
    assert any("Block 1 (conv)" in e and "kernel" in e for e in errors), errors
    assert at.error  # also in the main area
    assert at.metric  # the last valid numbers stay on the page
    assert "Traceback" not in str(at.main)
    ok(button(at, "Undo").click().run())
    assert not at.error


def test_error_in_a_later_block_offers_to_show_it(warm):
    at = open_app()
    ok(at.number_input(key=editor_key(at, "stride")).set_value(4).run())  # block 7's 5x5 conv no longer fits
    assert at.session_state[state.SELECTED] == 0
    ok(next(b for b in at.sidebar.button if b.label.startswith("Show block")).click().run())
    bad = at.session_state[state.SELECTED]
    assert spec_of(at).blocks[bad].type in ("conv", "avgpool")
    assert any(f"Block {bad + 1}" in shown(e.value) for e in at.sidebar.error)


def test_move_duplicate_delete(warm):
    at = open_app()
    original = spec_of(at).blocks
    ok(at.button(key="b.Move down").click().run())
    assert spec_of(at).blocks[:2] == (original[1], original[0])
    assert at.session_state[state.SELECTED] == 1
    ok(at.button(key="b.Move up").click().run())
    assert spec_of(at).blocks == original
    ok(at.button(key="b.Duplicate").click().run())
    assert spec_of(at).blocks == (original[0],) + original
    assert at.session_state[state.SELECTED] == 1  # the copy
    ok(at.button(key="b.Delete").click().run())
    assert spec_of(at).blocks == original
    ok(at.button(key="b.Delete").click().run())  # the selection stays at position 1 (tanh)
    assert spec_of(at).blocks == original[:1] + original[2:]


def test_undo_redo(warm):
    at = open_app()
    original = spec_of(at)
    assert button(at, "Undo").disabled and button(at, "Redo").disabled
    ok(at.button(key="b.Delete").click().run())
    ok(at.button(key="b.Delete").click().run())
    assert len(spec_of(at).blocks) == len(original.blocks) - 2
    ok(button(at, "Undo").click().run())
    ok(button(at, "Undo").click().run())
    assert spec_of(at) == original and button(at, "Undo").disabled
    ok(button(at, "Redo").click().run())
    assert len(spec_of(at).blocks) == len(original.blocks) - 1
    load(at, "twoconv")
    assert button(at, "Redo").disabled  # a new change drops the redo history
    ok(button(at, "Undo").click().run())
    assert len(spec_of(at).blocks) == len(original.blocks) - 1


def test_settings_change_memory_not_params(warm):
    at = open_app()
    before = metric(at, "Training memory")
    at.number_input(key=state.W_BATCH).set_value(256)
    ok(at.selectbox(key=state.W_OPTIMIZER).select("adam").run())
    assert metric(at, "Parameters") == "61.7K" and "61,706 parameters" in caption(at)
    assert "batch 256" in caption(at)
    assert metric(at, "Training memory") != before


def test_input_and_classes(warm):
    at = open_app()
    g = at.session_state[state.GEN]
    last = len(spec_of(at).blocks) - 1
    ok(next(s for s in at.selectbox if s.key and s.key.startswith("sel.")).select(last).run())
    g = at.session_state[state.GEN]
    ok(at.number_input(key=f"cls.{g}").set_value(26).run())
    assert spec_of(at).num_classes == 26 and spec_of(at).blocks[-1].get("out_features") == 26
    assert at.number_input(key=editor_key(at, "out_features")).value == 26  # the editor shows it too
    g = at.session_state[state.GEN]
    ok(at.number_input(key=f"in.{g}.0").set_value(3).run())
    assert spec_of(at).input == (3, 32, 32)


def test_import_spec(warm):
    at = open_app()
    spec = load_preset("resnet_cifar")
    at.file_uploader(key=state.UPLOAD).set_value(("mine.json", spec.to_json().encode(), "application/json"))
    ok(at.run())
    assert spec_of(at) == spec
    assert any("Imported" in s.value for s in at.sidebar.success)
    ok(button(at, "Undo").click().run())
    assert spec_of(at) == load_preset(state.DEFAULT_PRESET)


@pytest.mark.parametrize("content, expected", [
    (b"{not json", "not valid JSON"),
    (json.dumps({"blocks": [{"type": "conv", "kernal": 3}]}).encode(), "kernel"),
    (json.dumps({"blocks": [{"type": "warp"}]}).encode(), "unknown block type"),
    (b" " * (MAX_SPEC_BYTES + 1), "bytes"),
    (b"\xff\xfe", "UTF-8"),
])
def test_bad_import_shows_error(warm, content, expected):
    at = open_app()
    at.file_uploader(key=state.UPLOAD).set_value(("bad.json", content, "application/json"))
    ok(at.run())
    errors = [shown(e.value) for e in at.sidebar.error]
    assert any(expected.lower() in e.lower() for e in errors), errors
    assert spec_of(at) == load_preset(state.DEFAULT_PRESET)
    assert metric(at, "Parameters") == "61.7K" and "61,706 parameters" in caption(at)


def test_share_link_round_trip(warm):
    at = load(open_app(), "alexnet")
    at = ok(at.button(key="b.Delete").click().run())  # an edited network, not just a preset name
    token = at.query_params["net"]
    assert decode_spec(token) == spec_of(at)
    other = open_app(net=token)  # what a student sees when opening the teacher's link
    assert spec_of(other) == spec_of(at)
    assert any("shared link" in s.value for s in other.success)
    assert metric(other, "Parameters") == metric(at, "Parameters")


@pytest.mark.parametrize("token", ["not-base64!!", "AAAA", encode_spec(load_preset("vgg16"))[:-40],
                                   "A" * 20_000])
def test_bad_share_link_shows_message_and_default(warm, token):
    at = open_app(net=token)
    assert spec_of(at) == load_preset(state.DEFAULT_PRESET)
    assert any("Could not open the shared link" in shown(e.value) for e in at.error)
    assert decode_spec(at.query_params["net"]) == spec_of(at)  # the URL now holds the default


def test_tabs_render(warm):
    at = load(open_app(), "googlenet")
    for tab in ("Memory table", "Charts", "Training memory", "PyTorch code"):
        at.session_state[state.VIEW] = tab
        ok(at.run())
        assert not at.error, tab
    at.session_state[state.VIEW] = "Memory table"
    ok(at.run())
    assert "TOTAL params" in at.main.code[0].value
    at.session_state[state.VIEW] = "PyTorch code"
    ok(at.run())
    assert "class Googlenet(nn.Module)" in at.main.code[0].value


def test_empty_network(warm):
    at = open_app()
    for _ in range(len(spec_of(at).blocks)):
        ok(at.button(key="b.Delete").click().run())
    assert spec_of(at).blocks == ()
    assert any("empty" in i.value for i in at.sidebar.info)
    ok(button(at, "Add block").click().run())
    assert [b.type for b in spec_of(at).blocks] == ["conv"]


def test_optional_stride_can_be_set_and_cleared(warm):
    at = open_app()
    ok(next(s for s in at.selectbox if s.key and s.key.startswith("sel.")).select(2).run())  # avgpool
    auto = at.checkbox(key=editor_key(at, "stride") + ".auto")
    assert auto.value and at.number_input(key=editor_key(at, "stride")).disabled
    ok(auto.uncheck().run())
    assert spec_of(at).blocks[2].get("stride") == 2  # explicit now, same value as the kernel
    ok(at.number_input(key=editor_key(at, "stride")).set_value(1).run())
    assert spec_of(at).blocks[2].get("stride") == 1
    assert at.dataframe[0].value["Output shape"][2] == "6×27×27"
    ok(at.checkbox(key=editor_key(at, "stride") + ".auto").check().run())
    assert spec_of(at).blocks[2] == load_preset(state.DEFAULT_PRESET).blocks[2]


def test_unreadable_list_field_shows_error_and_keeps_spec(warm):
    at = load(open_app(), "nin")
    before = spec_of(at)
    ok(at.text_input(key=editor_key(at, "channels")).input("192, lots").run())
    assert spec_of(at) == before
    assert any("whole numbers" in shown(e.value) for e in at.sidebar.error)
    ok(at.text_input(key=editor_key(at, "channels")).input("96, 96").run())
    assert spec_of(at).blocks[0].get("channels") == [96, 96]
    assert not at.sidebar.error


def test_every_block_type_can_be_added_and_edited(warm):
    from explorer.core.registry import REGISTRY, block_types

    at = load(open_app(), "cifar_compact")
    for type_name in block_types():
        family = REGISTRY[type_name].family
        at.pills(key="add.family").set_value(family).run()
        at.selectbox(key=f"add.type.{family}").select(type_name).run()
        ok(button(at, "Add block").click().run())
        assert spec_of(at).blocks[-1].type == type_name
        assert "Traceback" not in str(at.main)
    assert len(spec_of(at).blocks) == len(load_preset("cifar_compact").blocks) + len(block_types())


def test_add_a_pool_with_its_own_stride(warm):
    at = load(open_app(), "twoconv")
    at.pills(key="add.family").set_value("pooling").run()
    at.selectbox(key="add.type.pooling").select("maxpool").run()
    at.checkbox(key="add.maxpool.stride.auto").uncheck()
    at.number_input(key="add.maxpool.stride").set_value(1)
    at.number_input(key="add.maxpool.kernel").set_value(3)
    next(s for s in at.selectbox if s.key and s.key.startswith("add.pos.")).select(1)
    ok(button(at, "Add block").click().run())
    assert spec_of(at).blocks[1].values == {"kernel": 3, "stride": 1}
    assert at.dataframe[0].value["Output shape"][1] == "16×26×26"


def test_diagram_tab_draws_the_network_with_its_branches():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[state.SPEC] = load_preset("resnet18")
    at.session_state[state.VIEW] = "Diagram"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    charts = at.get("graphviz_chart")
    assert len(charts) == 1
    dot = charts[0].proto.spec
    assert dot.count("subgraph cluster_") == 8 and 'label="identity"' in dot


def test_a_hostile_network_name_is_plain_text_everywhere():
    name = "**bold** [link](http://example.com) :red[x] $x$ <b>"
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["net"] = encode_spec(NetworkSpec.from_dict({**load_preset("lenet5").to_dict(), "name": name}))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    title = at.title[0].value
    assert shown(title) == name and "**" not in title and "](" not in title and ":red[" not in title
    notice = next(s.value for s in at.success if "shared link" in s.value)
    assert "**" + name not in notice and shown(notice.replace("**", "")).count(name) == 1


def test_new_empty_network_drops_blocks_name_and_description():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[state.SPEC] = load_preset("vgg16")
    at.run()
    at = at.button(key="b.new").click().run()
    assert not at.exception, [e.value for e in at.exception]
    spec = at.session_state[state.SPEC]
    assert spec.blocks == () and spec.name == "network" and spec.description == ""
    assert spec.input == (3, 224, 224) and spec.num_classes == 1000
    assert "vgg" not in decode_spec(at.query_params["net"][0] if isinstance(at.query_params["net"], list)
                                    else at.query_params["net"]).name.lower()
    at = at.button(key="b.undo").click().run()
    assert at.session_state[state.SPEC] == load_preset("vgg16")


def test_large_text_switch_scales_every_page():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not any("font-size: 125%" in h.value for h in at.get("html"))
    at = at.toggle(key=state.LARGE_TEXT).set_value(True).run()
    assert not at.exception
    assert any("html { font-size: 125%; }" in str(h.proto) for h in at.get("html"))
    at.switch_page("pages/quiz.py")
    at = at.run()
    assert at.session_state[state.LARGE_TEXT] and any("font-size: 125%" in str(h.proto) for h in at.get("html"))
