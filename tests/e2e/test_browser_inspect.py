"""End to end in headless Chromium: train a short run on the CPU, start `streamlit run app.py` with
that runs directory, open the Inspect page and go through Grad-CAM/CAM, another class and layer,
feature maps, filters, the validation set, an upload and the untrained network. Screenshots go to
tests/artifacts/inspect_*.png (git-ignored). Drives the system Chromium at /usr/bin/chromium and
is skipped when that is missing (never runs `playwright install`)."""

from __future__ import annotations

import pytest

from tests.e2e.support import ARTIFACTS, choose, chromium, needs_chromium, running_app

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """One short real run: a small GAP network, 4 epochs on the shapes set (seconds on a CPU)."""
    from explorer.core.spec import NetworkSpec
    from explorer.training.config import TrainConfig
    from explorer.training.loop import train

    def block(c):
        return [{"type": "conv", "out_channels": c, "kernel": 3, "padding": 1, "bias": False},
                {"type": "batchnorm"}, {"type": "relu"}]
    spec = NetworkSpec.from_dict({
        "format": "cnn-explorer/spec@1", "name": "smallgap", "input": [3, 32, 32], "num_classes": 6,
        "blocks": [*block(8), {"type": "maxpool", "kernel": 2}, *block(16), *block(32), *block(32),
                   {"type": "gap"}, {"type": "linear", "out_features": 6}]})
    root = tmp_path_factory.mktemp("runs")
    summary = train(spec, TrainConfig(dataset="shapes", epochs=4, batch_size=64, lr=0.02, optimizer="adam",
                                      schedule="onecycle", weight_decay=0.0, device="cpu"),
                    root / "20260101-120000-smallgap-ab12")
    assert summary["status"] == "completed", summary
    return root


@pytest.fixture(scope="module")
def app_url(runs_dir):
    with running_app("streamlit_inspect.log", {"CNN_EXPLORER_RUNS": str(runs_dir)}) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b



def _settle(page, ms: int = 1500) -> None:
    """Wait for the rerun to finish (no 'running' widget), then for the charts to draw."""
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)
    page.wait_for_timeout(ms)
    assert page.get_by_test_id("stException").count() == 0


def test_inspect_a_short_run(app_url, browser, tmp_path):
    from PIL import Image

    page = browser.new_page(viewport={"width": 1500, "height": 1250}, locale="en-US")
    page.set_default_timeout(60_000)
    page.goto(f"{app_url}/inspect")
    page.get_by_role("heading", name="Inspect · smallgap").wait_for()
    page.get_by_text("Top-5 predictions").first.wait_for()
    page.get_by_text("pointing game").wait_for()
    page.get_by_text("r = 1.000").wait_for()                  # CAM = Grad-CAM at relu4
    _settle(page)
    page.screenshot(path=ARTIFACTS / "inspect_gradcam.png")

    choose(page, page, "Class", "ring")
    choose(page, page, "Layer", "conv2 · 16×16×16")
    page.get_by_text("choose layer relu4 to see them agree").wait_for()
    _settle(page)
    page.screenshot(path=ARTIFACTS / "inspect_gradcam_ring_conv2.png")

    page.set_viewport_size({"width": 1500, "height": 1700})   # the page scrolls inside; show more of it
    for tab in ("Feature maps", "Filters", "Validation set"):
        page.get_by_role("tab", name=tab).click()
        _settle(page, 2500)
        page.screenshot(path=ARTIFACTS / f"inspect_{tab.lower().replace(' ', '_')}.png")
    page.get_by_text("Misclassified:").wait_for()
    page.set_viewport_size({"width": 1500, "height": 1250})

    page.get_by_role("tab", name="Grad-CAM & CAM").click()
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("radio", name="Upload").click()
    _settle(page, 500)
    upload = tmp_path / "drawn.png"
    im = Image.new("RGB", (200, 200), (30, 120, 40))
    im.paste((240, 240, 240), (60, 60, 140, 140))             # a light square on green
    im.save(upload)
    sidebar.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_text("Top-5 predictions").first.wait_for()   # the upload went through
    assert page.get_by_text("Peak at row").count() == 0       # no ground-truth mask for an upload
    _settle(page)
    page.screenshot(path=ARTIFACTS / "inspect_upload.png")

    choose(page, sidebar, "Network", "Current network (untrained)")
    page.get_by_text("CAM does not apply").wait_for()         # LeNet-5: flatten and three linear layers
    _settle(page)
    page.screenshot(path=ARTIFACTS / "inspect_untrained_lenet5.png")
    page.close()
