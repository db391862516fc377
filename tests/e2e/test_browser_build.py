"""End to end in headless Chromium: start `streamlit run app.py`, pick VGG-16, find its
parameter count, add a block through the sidebar and see the totals and the table change.
Screenshots go to tests/artifacts/ (git-ignored). Never runs `playwright install`: it drives the
system Chromium at /usr/bin/chromium and is skipped when that is missing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
STREAMLIT = Path(sys.executable).with_name("streamlit")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Chromium at {CHROMIUM} (apt install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = _free_port()
    log = open(ARTIFACTS.joinpath("streamlit.log") if ARTIFACTS.mkdir(parents=True, exist_ok=True) is None
               else os.devnull, "w")
    proc = subprocess.Popen(
        [str(STREAMLIT), "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start; see {ARTIFACTS / 'streamlit.log'}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        yield b
        b.close()


def _choose(page, scope, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox. Right after a rerun the first click on a combobox
    can only focus it, so click again until the option list shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = scope.get_by_role("combobox", name=label)
    for _ in range(4):
        box.click()
        try:
            page.get_by_role("option", name=option).click(timeout=3_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    pytest.fail(f"could not choose {option!r} in {label!r}")


def _wait_rows(page, rows: int) -> None:
    """Wait until the layer table has `rows` rows (the grid is a canvas; aria-rowcount counts the
    header too)."""
    page.wait_for_function(
        "n => document.querySelector('[data-testid=stDataFrame] [role=grid]')"
        "?.getAttribute('aria-rowcount') === String(n)", arg=rows + 1)


def test_vgg16_then_add_a_block(app_url, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 1000}, locale="en-US")
    page.set_default_timeout(60_000)
    page.goto(app_url)
    page.get_by_text("61,706").wait_for()  # LeNet-5 opens by default
    page.screenshot(path=ARTIFACTS / "build_default.png")

    _choose(page, page, "Start from a preset", "VGG-16 (2014)")
    page.get_by_text("138,357,544").wait_for()
    page.get_by_text("15.47 GMACs").wait_for()
    _wait_rows(page, 40)
    assert page.get_by_role("heading", level=1).first.inner_text().strip() == "VGG-16"  # not "(edited)"
    page.screenshot(path=ARTIFACTS / "build_vgg16.png")

    sidebar = page.get_by_test_id("stSidebar")
    _choose(page, sidebar, "Block type", "Linear (fully connected)")
    sidebar.get_by_role("spinbutton", name="Output features").fill("100")
    sidebar.get_by_role("button", name="Add block").click()
    # a linear layer 1000 -> 100 at the end: 1000*100 weights + 100 biases more
    page.get_by_text("138,457,644").wait_for()
    _wait_rows(page, 41)
    page.screenshot(path=ARTIFACTS / "build_vgg16_added.png")

    page.set_viewport_size({"width": 1500, "height": 2300})  # the page scrolls inside; show it all
    for tab in ("Memory table", "Charts", "Training memory", "PyTorch code"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(1500)
        assert page.get_by_test_id("stException").count() == 0
        page.screenshot(path=ARTIFACTS / f"build_vgg16_{tab.lower().replace(' ', '_')}.png")
    assert "net=" in page.url  # the address bar is the share link
    page.close()


def test_shared_link_opens_the_same_network(app_url, browser):
    from explorer import load_preset
    from explorer.share import share_url

    page = browser.new_page(viewport={"width": 1500, "height": 1000}, locale="en-US")
    page.set_default_timeout(60_000)
    page.goto(share_url(app_url + "/", load_preset("resnet18")))
    page.get_by_text("11,689,512").wait_for()  # torchvision resnet18's parameter count
    page.goto(app_url + "/?net=garbage$$")
    page.get_by_text("Could not open the shared link").wait_for()
    page.get_by_text("61,706").wait_for()
    page.screenshot(path=ARTIFACTS / "build_bad_link.png")
    page.close()
