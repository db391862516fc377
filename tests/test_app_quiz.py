"""AppTest flows of the Quiz page: answer, check, see the working and the score; a shared link
opens the same quiz; a damaged link is a message, never an exception."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer import analyze, load_preset
from explorer.classroom.quiz import QuizSettings, make_questions
from explorer.core.share import encode_spec
from ui import state

APP = str(Path(__file__).resolve().parents[1] / "app.py")
K = state.W_QUIZ


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_quiz(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.switch_page("pages/quiz.py")
    return ok(at.run())


def test_current_network_quiz_checks_answers_and_scores():
    at = open_quiz()  # the default network, LeNet-5: hide output shape and params for all rows
    assert at.text_input(key=f"{K}a.current.0.output_shape") is not None
    at.text_input(key=f"{K}a.current.0.output_shape").set_value("28x28x6")
    at.text_input(key=f"{K}a.current.0.params").set_value("150")  # forgot the biases
    submit = [b for b in at.button if b.label == "Check answers"][0]
    at = ok(submit.click().run())
    successes = [s.value for s in at.success]
    errors = [e.value.replace("\\", "") for e in at.error]  # the page escapes Markdown
    assert any("28x28x6" in s for s in successes)
    assert any("156" in e and "(5*5*1)*6 + 6 = 156" in e for e in errors)
    score = [m for m in at.metric if m.label == "Score"][0]
    assert score.value.startswith("1 / ")


def test_shared_link_opens_the_same_quiz():
    settings = QuizSettings(columns=("memory",), rows="random", fraction=0.25, seed=3, table="memtable")
    at = open_quiz(net=encode_spec(load_preset("vgg16")), quiz=settings.to_query())
    assert at.radio(key=f"{K}table").value == "memtable"
    assert at.multiselect(key=f"{K}cols").value == ["memory"]
    boxes = [t for t in at.text_input if t.key.startswith(f"{K}a.current.")]
    expected = make_questions(analyze(load_preset("vgg16")), settings)
    assert [b.key for b in boxes] == [f"{K}a.current.{q.row}.memory" for q in expected]
    assert len(expected) == round(0.25 * 21)  # 21 rows below INPUT: 13 conv, 5 pool, 3 FC


def test_damaged_quiz_link_is_a_message():
    at = open_quiz(quiz="params.all.30.0.\u202e<b>x</b>")
    assert any("could not be read" in w.value for w in at.warning)


def test_ready_made_conv_arithmetic_quiz():
    at = open_quiz(quizset="conv_arithmetic")
    assert at.radio(key=f"{K}source").value == "conv_arithmetic"
    key = f"{K}a.conv_arithmetic.3.0.output_shape"  # 7x7 input, 3x3 filter, stride 3
    at.text_input(key=key).set_value("doesn't fit")
    forms = [b for b in at.button if b.label == "Check answers"]
    at = ok(forms[3].click().run())
    assert any("correct" in s.value for s in at.success)
