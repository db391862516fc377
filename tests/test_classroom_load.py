"""The classroom load benchmark's machinery at N=2 (bench/classroom_load.py): two browser sessions
edit the Build page of one real server and every edit's latency is measured; two sessions submit
tiny training runs and none is lost. No timing threshold: the numbers depend on the machine."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.e2e.support import needs_chromium

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("classroom_load", ROOT / "bench" / "classroom_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_edit_plan_always_changes_what_the_caption_shows(bench):
    plan = bench.edit_plan(8)
    shown = [(bench.DEFAULT_BATCH, bench._expected_params(6))] + [(batch, params) for _, _, params, batch in plan]
    assert all(a != b for a, b in zip(shown, shown[1:]))
    assert [label for label, *_ in plan[:2]] == [bench.BATCH_LABEL, bench.FILTERS_LABEL]
    assert bench._expected_params(6) == "61,706"  # LeNet-5 as shipped


def test_percentile(bench):
    assert bench.percentile([1, 2, 3, 4, 5], 50) == 3
    assert bench.percentile([1.0, 2.0], 95) == pytest.approx(1.95)
    assert bench.percentile([7.0], 95) == 7.0


@pytest.mark.parametrize("client", ["ws", pytest.param("browser", marks=[pytest.mark.browser, needs_chromium])])
def test_two_sessions_every_edit_measured(bench, tmp_path, client):
    with bench.app_server(tmp_path, tmp_path / "streamlit.log") as (url, pid):
        results = bench.run_edits(url, pid, [2], edits=3, think=0.1, client=client)
    [r] = results
    assert r.sessions == 2 and r.lost == []
    assert len(r.latencies_ms) == 2 * 3 and all(v > 0 for v in r.latencies_ms)
    assert len(r.first_show_ms) == 2
    assert r.rss_kib > 0 and r.peak_kib > 0 and r.hwm_kib > 0  # the kernel updates VmHWM lazily: no order


def test_two_sessions_jobs_none_lost(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_EXPLORER_MAX_QUEUED_PER_SESSION", "1")
    result = bench.run_jobs(tmp_path, sessions=2, per_session=2, epochs=1, timeout=600)
    assert result.submitted == 4
    # each session may have one waiting job; the first submission may have started already
    assert len(result.accepted) in (2, 3) and result.refused == {"per-session limit": 4 - len(result.accepted)}
    assert result.problems == []
    assert result.statuses == {"completed": len(result.accepted)} and result.run_folders == len(result.accepted)
