"""Every page on a 1024x768 projector and a 1920x1080 screen, in a real browser: nothing scrolls
sideways, the layer table (each of its column sets) and the Compare page's architecture diff fit
their container, and headline numbers are whole and on screen. Screenshots of each page at both
sizes go to tests/artifacts/layout-<page>-<width>x<height>.png for a person to look at."""

from __future__ import annotations

import pytest

from explorer import load_preset
from explorer.core.share import encode_spec
from explorer.training.config import TrainConfig
from explorer.training.loop import train
from explorer.training.runs import new_run_dir
from tests.e2e.support import ARTIFACTS, chromium, needs_chromium, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]
SIZES = [(1024, 768), (1920, 1080)]
PAGES = {"build": "", "train": "train", "inspect": "inspect", "compare": "compare", "sweep": "sweep",
         "zoo": "zoo", "quiz": "quiz", "challenge": "challenge"}
# Glide's grid (st.dataframe) scrolls inside .dvn-scroller: wider content than box = sideways scroll.
TABLES = """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')].map(t => {
    const s = t.querySelector('.dvn-scroller');
    return s ? {scroll: s.scrollWidth, client: s.clientWidth, box: t.getBoundingClientRect().width} : null;
}).filter(Boolean)"""
# The page itself never scrolls sideways; nor does the main column.
PAGE_OVERFLOW = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const doc = document.scrollingElement;
    return {doc: doc.scrollWidth - doc.clientWidth, main: main ? main.scrollWidth - main.clientWidth : 0};
}"""
# A headline number is whole when its text fits its box and the box lies inside the window.
METRICS = """() => [...document.querySelectorAll('[data-testid="stMetricValue"], [data-testid="stMetricLabel"]')]
    .map(e => { const r = e.getBoundingClientRect();
                return {text: e.innerText, clipped: e.scrollWidth > e.clientWidth + 1,
                        outside: r.left < 0 || r.right > window.innerWidth + 1}; })
    .filter(m => m.clipped || m.outside)"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """A server whose runs folder holds two finished runs of different networks (for the diff)."""
    runs = tmp_path_factory.mktemp("runs")
    for preset in ("lenet5", "twoconv"):
        summary = train(load_preset(preset), TrainConfig(dataset="digits", epochs=1, lr=0.05, device="cpu"),
                        new_run_dir(runs, preset))
        assert summary["status"] == "completed", summary
    with running_app("layout-server.log", env={"CNN_EXPLORER_RUNS": str(runs)}) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _open(browser, url: str, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height}, locale="en-US")
    page.set_default_timeout(90_000)
    page.goto(url)
    page.locator("h1").first.wait_for()
    _settle(page)
    return page


def _settle(page) -> None:
    """Until the script run ends (the status widget goes), no placeholder skeleton is left and the
    layout settles."""
    page.wait_for_timeout(500)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"], "
                           "[data-testid=\"stSkeleton\"]')", timeout=90_000)
    page.wait_for_timeout(1200)


def _fits(page, where: str) -> None:
    assert page.get_by_test_id("stException").count() == 0, where
    assert page.evaluate(PAGE_OVERFLOW) == {"doc": 0, "main": 0}, where
    assert page.evaluate(METRICS) == [], where


@pytest.mark.parametrize("width, height", SIZES)
@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_fits(app, browser, name, width, height):
    page = _open(browser, f"{app}/{PAGES[name]}", width, height)
    if name == "build":
        page.get_by_text("61,706 parameters").wait_for()
        _settle(page)
    _fits(page, f"{name} at {width}x{height}")
    page.screenshot(path=str(ARTIFACTS / f"layout-{name}-{width}x{height}.png"))
    page.close()


@pytest.mark.parametrize("width, height", SIZES)
def test_layer_table_fits_in_each_column_set(app, browser, width, height):
    """VGG-16 has the widest numbers (102,764,544 parameters in one layer)."""
    page = _open(browser, f"{app}/?net={encode_spec(load_preset('vgg16'))}", width, height)
    page.get_by_text("138,357,544").first.wait_for()
    for columns in ("Costs", "Shares", "Formulas") + (("All",) if width >= 1920 else ()):
        page.get_by_test_id("stButtonGroup").get_by_text(columns, exact=True).click()
        _settle(page)
        tables = page.evaluate(TABLES)
        assert len(tables) == 1, tables
        assert tables[0]["scroll"] <= tables[0]["client"] + 1, (columns, tables)
        _fits(page, f"{columns} at {width}x{height}")
        page.screenshot(path=str(ARTIFACTS / f"layout-layers-{columns.lower()}-{width}x{height}.png"))
    page.close()


@pytest.mark.parametrize("width, height", SIZES)
def test_compare_diff_fits(app, browser, width, height):
    page = _open(browser, f"{app}/compare", width, height)
    page.get_by_role("tab", name="Architecture diff").click()
    page.get_by_text("Layers are paired by what they are").wait_for()
    _settle(page)
    tables = page.evaluate(TABLES)
    assert len(tables) == 3, tables  # the runs table (its Summary columns), the totals of A and B, the diff
    for t in tables:
        assert t["scroll"] <= t["client"] + 1, tables
    _fits(page, f"compare diff at {width}x{height}")
    page.get_by_test_id("stDataFrame").last.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"layout-compare-diff-{width}x{height}.png"))
    page.close()
