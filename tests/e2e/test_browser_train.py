"""End to end in headless Chromium: start `streamlit run app.py` with its runs folder in a tmp dir,
open the Train page, launch a short CPU run of LeNet-5 on the offline 8x8 digits (20 epochs, a few seconds), watch the
progress and the live curves appear (above the run's card) and the run complete, then launch a
second run and see both overlaid, both cards kept and the line styles still explained; a new
session opens on the latest run's curves. Screenshots go to tests/artifacts/ (git-ignored). Never runs `playwright install`: it
drives the system Chromium at /usr/bin/chromium and is skipped when that is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.support import ARTIFACTS, choose, chromium, needs_chromium, running_app

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def app_url(runs_dir):
    with running_app("streamlit_train.log", {"CNN_EXPLORER_RUNS": str(runs_dir), "OMP_NUM_THREADS": "1"}) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b



def _no_exception(page) -> None:
    assert page.get_by_test_id("stException").count() == 0


def _one_chart(page) -> None:
    """Exactly one chart shows once the page settles (a rerun briefly keeps the old one, hidden)."""
    page.wait_for_function("document.querySelectorAll('[data-testid=stPlotlyChart]').length === 1")


def _shot(page, name: str) -> None:
    """Screenshot without a tooltip: move the mouse away and take the focus off the last button."""
    page.mouse.move(0, 0)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.wait_for_timeout(600)  # let the progress bar finish its animation
    page.screenshot(path=ARTIFACTS / name)


def _boxes(*locators, tries: int = 40) -> list[dict]:
    """Bounding boxes of elements the live panel redraws about once a second: a box read while
    its element is being replaced is None, so read them all again until every one is there."""
    for _ in range(tries):
        for loc in locators:
            loc.wait_for()
        boxes = [loc.bounding_box() for loc in locators]
        if all(boxes):
            return boxes
        locators[0].page.wait_for_timeout(250)
    raise AssertionError(f"no bounding box after {tries} tries: {boxes}")


def test_train_watch_and_overlay(app_url, browser, runs_dir):
    page = browser.new_page(viewport={"width": 1500, "height": 1100}, locale="en-US")
    page.set_default_timeout(90_000)
    page.goto(app_url)
    page.get_by_text("61,706").wait_for()  # the Build page opens on LeNet-5
    page.get_by_role("link", name="Train").click()
    page.get_by_role("heading", name="Train LeNet-5").wait_for()
    page.get_by_text("zero-padded from 28x28 to 32x32").wait_for()  # MNIST 5k, the default
    sidebar = page.get_by_test_id("stSidebar")
    choose(page, sidebar, "Dataset", "Digits 8x8 (offline)")
    page.get_by_text("resized from 8x8 to 32x32").wait_for()
    epochs = sidebar.get_by_role("spinbutton", name="Epochs")
    epochs.fill("20")
    epochs.press("Enter")
    page.get_by_text(" · 20 epochs, batch 32").wait_for()  # LeNet-5's digits recipe
    _shot(page, "train_ready.png")

    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text(" of 20 · step ").wait_for()  # the progress bar of the live panel
    page.get_by_test_id("stPlotlyChart").first.wait_for()  # the curves, drawn while it runs
    page.get_by_text("Time left").wait_for()  # shown while the run goes
    chart, card = _boxes(page.get_by_test_id("stPlotlyChart").first, page.get_by_text("Run folder ").first)
    assert chart["y"] < card["y"] and chart["y"] < 1100, (chart, card)   # the curves in view, above the card
    page.get_by_text("Validation (per epoch)", exact=False).first.wait_for()
    _shot(page, "train_running.png")
    page.get_by_text("Completed: Finished all epochs").wait_for()
    page.get_by_text("Loss (cross-entropy)").first.wait_for()
    _one_chart(page)
    _no_exception(page)
    page.set_viewport_size({"width": 1500, "height": 1900})  # the page scrolls inside; show it all
    page.wait_for_timeout(1500)
    _shot(page, "train_completed.png")

    # a second run with a lower learning rate: launched runs join the selection, so both overlay
    page.set_viewport_size({"width": 1500, "height": 1100})
    sidebar.get_by_role("slider", name="Learning rate").press("ArrowLeft")
    page.get_by_text("at learning rate 0.05").wait_for()  # the recipe starts at 0.0757
    epochs.fill("8")
    epochs.press("Enter")
    page.get_by_text(" · 8 epochs, batch 32").wait_for()
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("lr 0.05").first.wait_for()
    page.get_by_text("Epoch 8 of 8 · step 360 of 360 · 100%").wait_for()  # the second run's card
    page.get_by_text("Completed: Finished all epochs").nth(1).wait_for()   # the first run's card stays
    page.get_by_text("lr 0.0757", exact=False).first.wait_for()
    page.get_by_text("One colour per run").wait_for()
    page.get_by_text("Line style").first.wait_for()   # the line-style key beside the runs in the legend
    _one_chart(page)
    _no_exception(page)
    assert len(list(runs_dir.glob("2*"))) == 2
    page.set_viewport_size({"width": 1500, "height": 1900})
    page.wait_for_timeout(1500)
    _shot(page, "train_overlay.png")
    page.close()

    # a new session: no run picked yet, so the latest run's curves show instead of an empty chart
    fresh = browser.new_page(viewport={"width": 1500, "height": 1100}, locale="en-US")
    fresh.set_default_timeout(90_000)
    fresh.goto(app_url + "/train")
    fresh.get_by_role("heading", name="Train LeNet-5").wait_for()
    fresh.get_by_test_id("stPlotlyChart").first.wait_for()
    fresh.get_by_text("Completed: Finished all epochs").first.wait_for()
    _no_exception(fresh)
    fresh.close()
