"""AppTest flows of the Challenge page: the teacher's code unlocks the rules, a student takes a
nickname and submits the current network through the queue, the leaderboard lists it; another
session cannot take the same nickname; a network over the budget cannot be submitted."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.classroom import challenge as cr
from explorer import load_preset
from explorer.training.jobs import JobQueue
from ui import state

APP = str(Path(__file__).resolve().parents[1] / "app.py")
K = state.W_CHALLENGE
CODE = "teach-me"


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv(cr.TEACHER_CODE_ENV, CODE)
    monkeypatch.setenv("CNN_EXPLORER_RUNS", str(tmp_path))
    return tmp_path


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_page(runs: Path, spec=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[state.RUNS_DIR] = str(runs)
    if spec is not None:
        at.session_state[state.SPEC] = spec
    at.switch_page("pages/challenge.py")
    return ok(at.run())


def test_teacher_sets_a_challenge_and_a_student_submits(runs):
    at = open_page(runs)
    assert any("No challenge is running" in i.value for i in at.info)
    at.text_input(key=K + "code").set_value("wrong")
    at = ok(at.run())
    assert not [b for b in at.button if b.label == "Start this challenge"]
    at.text_input(key=K + "code").set_value(CODE)
    at = ok(at.run())
    at = ok([b for b in at.button if b.label == "Start this challenge"][0].click().run())
    challenge = cr.current_challenge(runs)
    assert challenge is not None and challenge.dataset == "mnist5k" and challenge.max_params == 20_000
    cr.set_challenge(runs, dataclasses.replace(challenge, max_params=25_000), CODE)  # twoconv: 20,490

    student = open_page(runs, load_preset("twoconv"))  # another browser session
    student.text_input(key=K + "nick").set_value("<b>Ada</b>")
    student = ok(student.run())
    assert student.session_state[state.CHALLENGE_NICK] == "<b>Ada</b>"
    submit = [b for b in student.button if b.label == "Submit this network"][0]
    assert not submit.disabled
    student = ok(submit.click().run())
    assert [s.value for s in student.success], [e.value for e in student.error]
    (nick, run), = cr.submissions(runs, challenge)
    assert nick == "<b>Ada</b>" and (runs / run / "spec.json").exists()
    job = JobQueue(runs).job_for_run(runs / run)
    assert job is not None and job.owner == student.session_state[state.TRAIN_OWNER]
    frames = [d.value for d in student.dataframe]
    assert frames and list(frames[-1]["Nickname"]) == ["<b>Ada</b>"]
    JobQueue(runs).cancel(job.id)  # leave no training process behind


def test_a_taken_nickname_and_an_over_budget_network_are_refused(runs):
    challenge = cr.new_challenge("t", "mnist5k", 1, 1_000, time.time() + 600)
    cr.set_challenge(runs, challenge, CODE)
    cr.claim_nickname(runs, challenge, "Grace", "someone-else")
    at = open_page(runs, load_preset("lenet5"))  # 61,706 parameters: over the 1,000 budget
    at.text_input(key=K + "nick").set_value("grace")
    at = ok(at.run())
    assert at.session_state[state.CHALLENGE_NICK] is None
    assert any("taken" in e.value for e in at.error)
    submit = [b for b in at.button if b.label == "Submit this network"][0]
    assert submit.disabled
    assert any("over" in c.value for c in at.caption)
