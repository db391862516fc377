"""Classroom pages in a real browser at projector sizes: the Build page's headline numbers are never
cut off at 1024x768, 1440x900 or 1920x1080, the diagram draws offline, a quiz is answered and checked, the
Challenge page opens. Screenshots go to tests/artifacts/ for a person to look at."""

from __future__ import annotations

import pytest

from explorer import load_preset
from explorer.core.share import encode_spec
from tests.e2e.support import ARTIFACTS, chromium, needs_chromium, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]
SIZES = [(1024, 768), (1440, 900), (1920, 1080)]
# A metric value is cut off when its text is wider than its box (Streamlit ends it with "...").
METRIC_PARTS = ", ".join(f'[data-testid="{t}"]{d}' for t in ("stMetricValue", "stMetricLabel") for d in ("", " *"))
CLIPPED = f"""() => [...document.querySelectorAll('{METRIC_PARTS}')]
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    with running_app("classroom-server.log", env={"CNN_EXPLORER_RUNS": str(runs)}) as url:
        yield url


def _wait_for_app(page) -> None:
    """Until the Build page shows its four headline numbers (the title comes earlier)."""
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stMetricValue\"]').length === 4",
                           timeout=60_000)
    page.wait_for_timeout(800)  # fonts and layout settle


@pytest.mark.parametrize("width, height", SIZES)
@pytest.mark.parametrize("preset", ["vgg16", "lenet5", "resnet50"])
def test_headline_numbers_are_whole_at_projector_sizes(app, preset, width, height):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(f"{app}/?net={encode_spec(load_preset(preset))}")
        _wait_for_app(page)
        values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
        assert len(values) == 4 and all(v.strip() for v in values)
        assert page.evaluate(CLIPPED) == []
        page.screenshot(path=str(ARTIFACTS / f"build-{preset}-{width}x{height}.png"))


def test_diagram_draws_offline_with_branches(app):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{app}/?net={encode_spec(load_preset('resnet18'))}")
        _wait_for_app(page)
        page.get_by_role("tab", name="Diagram").click()
        svg = page.locator('[data-testid="stGraphVizChart"] svg')
        svg.wait_for(timeout=30_000)
        assert svg.locator("g.cluster").count() == 8  # one box per residual block
        page.screenshot(path=str(ARTIFACTS / "build-diagram-1440x900.png"))


def test_quiz_checks_an_answer(app):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        page.goto(f"{app}/quiz?quizset=conv_arithmetic")
        page.get_by_text("Convolution arithmetic").first.wait_for(timeout=60_000)
        box = page.get_by_placeholder("?").first  # 32x32x3 input, ten 5x5 filters: the output shape
        box.fill("32x32x10")
        box.press("Enter")
        page.get_by_role("button", name="Check answers").first.click()
        page.get_by_text("correct: 32x32x10").first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "quiz-1024x768.png"), full_page=True)


def test_challenge_page_opens(app):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        page.goto(f"{app}/challenge")
        page.get_by_text("No challenge is running").wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "challenge-1024x768.png"))


def test_the_page_icon_comes_from_this_server(app):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(app)
        _wait_for_app(page)
        icons = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
        assert icons and all(i.startswith(app) or i.startswith("data:") for i in icons), icons
        assert all(r.startswith(app) or r.startswith("data:") or r.startswith("ws://127.0.0.1") for r in requests), \
            sorted({r.split("/")[2] for r in requests if not r.startswith(app)})


def test_large_text_keeps_the_headline_numbers_whole_at_1024(app):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        page.goto(f"{app}/?net={encode_spec(load_preset('resnet50'))}")
        _wait_for_app(page)
        page.get_by_text("Large text (projector)").click()
        page.wait_for_function("getComputedStyle(document.documentElement).fontSize === '20px'", timeout=30_000)
        page.wait_for_timeout(800)
        assert page.evaluate(CLIPPED) == []
        page.screenshot(path=str(ARTIFACTS / "build-large-text-1024x768.png"))
