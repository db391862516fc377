"""AppTest tests of the Inspect page: a real (short) CPU run is inspected through every tab, the
class and layer choosers, a validation image and uploads (good, broken, a bomb); the current
untrained network works too, and CAM says clearly when it does not apply. Never a traceback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer.interpret.images import MAX_PIXELS
from explorer.core.spec import NetworkSpec
from explorer.training.config import TrainConfig
from explorer.training.loop import train
from ui import inspect_views as iv
from ui import state
from tests.shown import shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")
K = state.W_INSPECT
SPEC = NetworkSpec.from_dict({
    "format": "cnn-explorer/spec@1", "name": "tinygap", "input": [3, 32, 32], "num_classes": 6,
    "blocks": [{"type": "conv", "out_channels": 8, "kernel": 3, "padding": 1}, {"type": "relu"},
               {"type": "maxpool", "kernel": 2},
               {"type": "conv", "out_channels": 16, "kernel": 3, "padding": 1}, {"type": "relu"},
               {"type": "gap"}, {"type": "linear", "out_features": 6}]})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs directory with one short real run (2 epochs on shapes, a few seconds) and one that
    has not saved a checkpoint yet (it must not be offered)."""
    root = tmp_path_factory.mktemp("runs")
    summary = train(SPEC, TrainConfig(dataset="shapes", epochs=2, batch_size=64, lr=0.01, optimizer="adam",
                                      weight_decay=0.0, device="cpu"), root / "20260101-120000-tinygap-ab12")
    assert summary["status"] == "completed", summary
    (root / "20260102-120000-queued-cd34").mkdir()
    return root


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_inspect(runs_dir: Path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[state.RUNS_DIR] = str(runs_dir)
    return ok(at.switch_page("pages/inspect.py").run())


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def by_label(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_a_run_opens_on_gradcam_with_cam(runs):
    at = open_inspect(runs)
    run_dir = str(runs / "20260101-120000-tinygap-ab12")
    assert at.selectbox(key=K + "source").value == run_dir                  # the newest run with a checkpoint
    assert at.selectbox(key=K + "source").options[-1] == "Current network (untrained)"
    assert len(at.selectbox(key=K + "source").options) == 2                 # the queued run is not offered
    assert at.title[0].value == "Inspect · tinygap"
    assert not at.error
    text = captions(at)
    assert "trained on shapes" in text
    assert "Peak at row" in text and "pointing game" in text
    assert "r = 1.000" in text and "the same map" in text                     # CAM = Grad-CAM at relu2
    layer = by_label(at.selectbox, "Layer")
    assert layer.value == "relu2"
    cls = by_label(at.selectbox, "Class")
    assert cls.value == -1 and cls.options[0].startswith("predicted: ")


def test_class_layer_and_image_choices(runs):
    at = open_inspect(runs)
    ok(by_label(at.selectbox, "Class").select(4).run())                     # "ring", whatever is predicted
    assert by_label(at.selectbox, "Class").value == 4
    ok(by_label(at.selectbox, "Layer").select("conv1").run())
    text = captions(at)
    assert "choose layer relu2 to see them agree" in text
    ok(at.sidebar.number_input[0].set_value(17).run())
    assert not at.error
    at.session_state[K + "tab"] = "Feature maps"
    ok(at.run())
    assert "for validation image #17 (true class: " in captions(at)


def test_every_tab_renders(runs):
    at = open_inspect(runs)
    for tab in iv.TABS:
        at.session_state[K + "tab"] = tab
        ok(at.run())
        assert not at.error, tab
    at.session_state[K + "tab"] = "Validation set"
    ok(at.run())
    assert at.metric[0].label == "Validation accuracy (top-1)"
    assert at.subheader[0].value.startswith("Misclassified:") and "of 600" in at.subheader[0].value
    at.session_state[K + "tab"] = "Filters"
    ok(at.run())
    assert "8 filters of 3×3×3 shown in RGB" in at.markdown[0].value or \
        any("8 filters of 3×3×3" in m.value for m in at.markdown)
    at.session_state[K + "tab"] = "Feature maps"
    ok(at.run())
    assert "relu1: 8 maps of 32×32" in captions(at)


def test_uploads_good_and_bad(runs):
    at = open_inspect(runs)
    ok(at.sidebar.segmented_control[0].set_value("Upload").run())
    assert any("Upload an image" in i.value for i in at.info)
    uploader = at.sidebar.file_uploader[0]
    ok(uploader.set_value(("red.png", png(Image.new("RGB", (90, 60), (220, 20, 20))), "image/png")).run())
    assert not at.error and "Peak at row" not in captions(at)                # no mask for an upload
    assert any("predicted: " in o for o in by_label(at.selectbox, "Class").options)
    ok(at.sidebar.file_uploader[0].set_value(("notes.png", b"this is text", "image/png")).run())
    assert any("Cannot use notes.png" in shown(e.value) and "not an image" in shown(e.value) for e in at.error)
    side = int(MAX_PIXELS ** 0.5) + 100
    ok(at.sidebar.file_uploader[0].set_value(("bomb.png", png(Image.new("1", (side, side))), "image/png")).run())
    assert any("decompression bomb" in e.value for e in at.error)


def test_the_untrained_network_and_a_cam_note(runs):
    at = open_inspect(runs)
    ok(at.selectbox(key=K + "source").select(iv.UNTRAINED).run())           # LeNet-5, the default spec
    assert at.selectbox(key=K + "dataset").value == "mnist5k"
    assert "untrained" in captions(at) and "zero-padded" in captions(at)
    assert by_label(at.selectbox, "Layer").value == "tanh2"
    assert any("CAM does not apply" in i.value and "Grad-CAM" in i.value for i in at.info)
    at.session_state[K + "tab"] = "Filters"
    ok(at.run())
    assert "random initial weights" in captions(at)
    assert any("6 filters of 1×5×5 shown in grey" in m.value for m in at.markdown)
    assert "PyTorch's default random initialisation" in captions(at)
    ok(at.selectbox(key=K + "init").select("he").run())                      # the same network, He's weights
    assert "He (Kaiming normal) initialisation, seed 0" in captions(at) and not at.error


def test_no_runs_yet(tmp_path):
    at = open_inspect(tmp_path / "empty")
    assert at.selectbox(key=K + "source").value == iv.UNTRAINED
    assert any("No trained runs yet" in c.value for c in at.sidebar.caption)
    assert at.title[0].value.startswith("Inspect · ")


def test_the_class_box_belongs_to_the_image_shown(runs):
    """The box showed the previous image's prediction in the browser: it is now one widget per image,
    so choosing another image gives a fresh box that starts at (and names) that image's prediction."""
    at = open_inspect(runs)
    first = by_label(at.selectbox, "Class")
    ok(first.select(4).run())
    ok(at.sidebar.number_input[0].set_value(7).run())
    second = by_label(at.selectbox, "Class")
    assert second.key != first.key and second.value == -1 and second.options[0].startswith("predicted: ")


def test_a_dark_on_light_drawing_is_inverted_for_an_mnist_network(runs):
    """MNIST digits are white on black; a pen drawing on paper is inverted automatically, with a note."""
    at = open_inspect(runs)
    ok(at.selectbox(key=K + "source").select(iv.UNTRAINED).run())           # LeNet-5 on mnist5k
    ok(at.sidebar.segmented_control[0].set_value("Upload").run())
    drawing = Image.new("L", (64, 64), 255)
    drawing.paste(0, (28, 8, 36, 56))                                        # a black "1" on white paper
    ok(at.sidebar.file_uploader[0].set_value(("one.png", png(drawing), "image/png")).run())
    assert "Inverted automatically" in shown(captions(at) + " ".join(c.value for c in at.sidebar.caption))
    ok(at.sidebar.radio(key=K + "colours").set_value("as uploaded").run())
    assert "Inverted automatically" not in shown(" ".join(c.value for c in at.sidebar.caption))


def test_should_invert_only_a_light_background_for_a_dark_trained_network():
    import torch

    from explorer.interpret.images import should_invert

    paper = torch.full((1, 8, 8), 250, dtype=torch.uint8)
    night = torch.zeros((1, 8, 8), dtype=torch.uint8)
    assert should_invert(paper, 0.13) and not should_invert(night, 0.13)
    assert not should_invert(paper, 0.8) and not should_invert(paper, None)
    assert not should_invert(torch.full((3, 8, 8), 250, dtype=torch.uint8), 0.13)  # colour: left alone
