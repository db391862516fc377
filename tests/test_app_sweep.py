"""AppTest flows of the Sweep page: empty, a finished sweep (table, trade-off chart, Optuna
figures, open a trial in the builder), and launching a real one-trial sweep from the form.
Sweeps are real (tiny networks on the offline digits set); every flow must end without an
exception or an error box."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer.search.driver import run_sweep
from explorer.search.study import list_sweeps
from explorer.search.sweepfile import Budget
from tests.test_search import tiny_sweep
from ui import state
from ui import sweep_views as sv

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def open_page(runs: Path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[state.RUNS_DIR] = str(runs)
    at.switch_page("pages/sweep.py")
    return ok(at.run())


def test_empty_sweep_page(tmp_path):
    at = open_page(tmp_path)
    assert any("No sweeps yet" in i.value for i in at.info)
    assert at.button(key=sv.W_SWEEP + "launch")


def test_finished_sweep_shows_trials_figures_and_opens_in_builder(tmp_path):
    run_sweep(tiny_sweep(id="shown", budget=Budget(trials=2, max_epochs=1)), tmp_path, poll=0.1)
    at = open_page(tmp_path)
    assert at.selectbox(key=sv.SWEEP_PICK).value == "shown"
    table = at.dataframe[0].value
    assert list(table["Trial"]) == [0, 1] and set(table["State"]) == {"complete"}
    assert table["Best"].sum() == 1
    for figure in ("history", "parallel coordinates", "importances", "intermediate values"):
        ok(at.selectbox(key=sv.W_SWEEP + "figure").set_value(figure).run())
    ok(at.button(key=sv.W_SWEEP + "open_btn").click().run())
    assert "-sweep-t" in at.session_state[state.SPEC].name


def test_launch_a_sweep_from_the_page(tmp_path):
    at = open_page(tmp_path)
    at.selectbox(key=sv.W_SWEEP + "dataset").set_value("digits")
    at.number_input(key=sv.W_SWEEP + "trials").set_value(1)
    at.number_input(key=sv.W_SWEEP + "epochs").set_value(1)
    at = ok(at.multiselect(key=sv.W_SWEEP + "dims").set_value(["width", "lr"]).run())
    ok(at.button(key=sv.W_SWEEP + "launch").click().run())
    launched = at.session_state[sv.SWEEP_LAUNCHED]
    for _ in range(1200):  # the driver is its own process: wait for it to finish
        rows = [s for s in list_sweeps(tmp_path) if s["sweep"] == launched]
        if rows and rows[0]["driver"] in ("finished", "stopped"):
            break
        time.sleep(0.1)
    assert rows[0]["driver"] == "finished" and rows[0]["trials"] == 1
    ok(at.run())
