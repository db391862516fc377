"""End to end in headless Chromium: start `streamlit run app.py`, pick VGG-16, find its
parameter count, add a block through the sidebar and see the totals and the table change.
Screenshots go to tests/artifacts/ (git-ignored). Never runs `playwright install`: it drives the
system Chromium at /usr/bin/chromium and is skipped when that is missing."""

from __future__ import annotations

import pytest

from tests.e2e.support import ARTIFACTS, choose, chromium, needs_chromium, running_app

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def app_url():
    with running_app("streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b



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

    choose(page, page, "Start from a preset", "VGG-16 (2014)")
    page.get_by_text("138,357,544").wait_for()
    page.get_by_text("15,470,264,320 MACs per image").wait_for()  # exact, under the compact 15.5G
    _wait_rows(page, 40)
    assert page.get_by_role("heading", level=1).first.inner_text().strip() == "VGG-16"  # not "(edited)"
    page.screenshot(path=ARTIFACTS / "build_vgg16.png")

    sidebar = page.get_by_test_id("stSidebar")
    choose(page, sidebar, "Block type", "Linear (fully connected)")
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
    from explorer.core.share import share_url

    page = browser.new_page(viewport={"width": 1500, "height": 1000}, locale="en-US")
    page.set_default_timeout(60_000)
    page.goto(share_url(app_url + "/", load_preset("resnet18")))
    page.get_by_text("11,689,512").wait_for()  # torchvision resnet18's parameter count
    page.goto(app_url + "/?net=garbage$$")
    page.get_by_text("Could not open the shared link").wait_for()
    page.get_by_text("61,706").wait_for()
    page.screenshot(path=ARTIFACTS / "build_bad_link.png")
    page.close()


def test_a_page_address_as_the_first_request_still_routes_through_app(browser):
    """/train as the server's very first request: Streamlit's old pages-folder mode would run
    pages/train.py alone (no navigation titles, no layout); the page re-routes through app.py."""
    with running_app("streamlit_first_request.log") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(f"{url}/train")
        nav = page.get_by_test_id("stSidebarNav")
        nav.get_by_text("Inspect", exact=True).wait_for()  # the title, not the file name "inspect"
        assert "Build" in nav.inner_text() and "Zoo" in nav.inner_text()
        page.get_by_role("heading", name="Train LeNet-5").wait_for()
        page.screenshot(path=ARTIFACTS / "first_request_train.png")
