"""Shared pieces of the browser tests: start `streamlit run app.py` on a free port, launch the
system Chromium (never `playwright install`), pick a selectbox option."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
STREAMLIT = Path(sys.executable).with_name("streamlit")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"needs Chromium at {CHROMIUM} (apt install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_process(log_path: Path, env: dict[str, str] | None = None, start_timeout: float = 90):
    """Yield (url, process) of a fresh `streamlit run app.py` on a free loopback port, its output in
    log_path; RuntimeError when it does not answer its health check within start_timeout seconds.
    Used by the browser tests and by bench/classroom_load.py."""
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(STREAMLIT), "run", "app.py", "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {log_path}")
                time.sleep(0.25)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def running_app(log_name: str, env: dict[str, str] | None = None):
    """Yield the URL of a fresh app server; its output goes to tests/artifacts/<log_name>."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        try:
            url, _ = stack.enter_context(app_process(ARTIFACTS / log_name, env, start_timeout=60))
        except RuntimeError as e:  # only a server that did not start; a test's own errors pass through
            pytest.fail(str(e))
        yield url


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def choose(page, scope, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox. Right after a rerun the first click on a combobox
    can only focus it, so click again until the option list shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = scope.get_by_role("combobox", name=label)
    for _ in range(4):
        box.click()
        try:
            page.get_by_role("option", name=option).first.click(timeout=3_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    pytest.fail(f"could not choose {option!r} in {label!r}")
