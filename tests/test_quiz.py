"""Quiz mode (issue 13, deliverable 2): hidden cells, answers judged as the module states, the
working shown with numbers, ready-made quizzes, links that survive hostile text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import analyze, load_preset
from explorer.errors import ConfigError
from explorer.classroom.quiz import (COLUMNS, QuizSettings, check, load_ready_made, make_questions, ready_made_names,
                           score)

FUZZ_CASES = 2000


@pytest.fixture(scope="module")
def vgg_questions():
    s = QuizSettings(columns=("output_shape", "memory", "params"), table="memtable")
    return make_questions(analyze(load_preset("vgg16")), s)


def _q(questions, label, column, nth=0):
    return [q for q in questions if q.row_label == label and q.column == column][nth]


def test_vgg16_memory_table_first_conv(vgg_questions):
    mem = _q(vgg_questions, "CONV3-64", "memory")
    assert mem.expected == (224 * 224 * 64,)
    assert check(mem, "3.2M").correct and check(mem, "3,211,264").correct and check(mem, "3.21 M").correct
    assert not check(mem, "3.3M").correct and not check(mem, "1.6M").correct
    params = _q(vgg_questions, "CONV3-64", "params")
    assert check(params, "1,728").correct and check(params, "1792").correct  # weights, or with biases
    wrong = check(params, "1,729")
    assert not wrong.correct and "(3*3*3)*64 = 1,728" in wrong.message
    shape = _q(vgg_questions, "CONV3-64", "output_shape")
    assert check(shape, "[224x224x64]").correct and check(shape, "64, 224, 224").correct
    assert not check(shape, "224x224x32").correct


def test_vgg16_first_fc_and_the_row_count(vgg_questions):
    fc = _q(vgg_questions, "FC", "params")
    assert check(fc, "102,760,448").correct and "7*7*512" in fc.working.replace(",", "")
    assert not any(q.row_label == "INPUT" for q in vgg_questions)  # the input row is given


def test_conv_arithmetic_quiz():
    quiz = load_ready_made("conv_arithmetic")
    parts = {p.caption: make_questions(analyze(p.spec), p.settings) for p in quiz.parts}
    ten = parts["32x32x3 input, ten 5x5 filters, stride 1, pad 2"]
    assert check(_q(ten, "conv1 (conv)", "output_shape"), "32x32x10").correct
    assert check(_q(ten, "conv1 (conv)", "params"), "760").correct
    s2 = _q(parts["7x7 input, one 3x3 filter, stride 2"], "conv1 (conv)", "output_shape")
    assert check(s2, "3x3x1").correct and not check(s2, "doesn't fit").correct
    s3 = _q(parts["7x7 input, one 3x3 filter, stride 3"], "conv1 (conv)", "output_shape")
    assert check(s3, "doesn't fit").correct and check(s3, "does not fit").correct
    assert check(s3, "2x2x1").correct and not check(s3, "3x3x1").correct
    assert "2.33" in check(s3, "3x3x1").message
    stack = parts["Three stacked 3x3 convolutions (stride 1, pad 1): what does each see?"]
    rfs = [q for q in stack if q.column == "receptive_field"]
    assert [check(q, str(n)).correct for q, n in zip(rfs, (3, 5, 7))] == [True, True, True]
    assert "5 + (3 - 1) x 1 = 7" in check(rfs[2], "9").message
    macs = _q(parts["1x1 convolution: 56x56x64 input, 32 filters"], "conv1 (conv)", "macs")
    assert check(macs, str(56 * 56 * 64 * 32)).correct and not check(macs, "6.4M").correct  # MACs are exact


def test_random_rows_follow_the_seed():
    a = analyze(load_preset("vgg16"))
    one = make_questions(a, QuizSettings(("params",), rows="random", fraction=0.3, seed=7))
    two = make_questions(a, QuizSettings(("params",), rows="random", fraction=0.3, seed=7))
    other = make_questions(a, QuizSettings(("params",), rows="random", fraction=0.3, seed=8))
    assert [q.row for q in one] == [q.row for q in two] != [q.row for q in other]
    assert len(one) == round(0.3 * len(a.rows))


def test_score_and_links():
    s = QuizSettings(columns=("macs", "receptive_field"), rows="random", fraction=0.25, seed=42)
    assert QuizSettings.from_query(s.to_query()) == s
    assert score([check(q, "0") for q in make_questions(analyze(load_preset("lenet5")), s)])[1] > 0
    for bad in ["", "x", "params.all.30.0", "bogus.all.30.0.layers", "params.some.30.0.layers",
                "params.all.0.0.layers", "params.all.30.0.pie", "macs.all.30.0.memtable", "a" * 500]:
        with pytest.raises(ConfigError):
            QuizSettings.from_query(bad)


def test_every_ready_made_quiz_loads_and_has_questions():
    assert {"vgg16_memory", "conv_arithmetic"} <= set(ready_made_names())
    for name in ready_made_names():
        quiz = load_ready_made(name)
        assert quiz.title and quiz.parts
        for part in quiz.parts:
            assert make_questions(analyze(part.spec), part.settings)


@settings(max_examples=FUZZ_CASES)
@given(st.text(max_size=200))
def test_links_never_raise_anything_but_config_errors(text):
    try:
        QuizSettings.from_query(text)
    except ConfigError:
        pass


@settings(max_examples=FUZZ_CASES)
@given(st.text(max_size=100), st.sampled_from(list(COLUMNS)))
def test_any_answer_is_judged_without_raising(text, column):
    questions = [q for q in make_questions(analyze(load_preset("lenet5")),
                                           QuizSettings(columns=tuple(COLUMNS))) if q.column == column]
    verdict = check(questions[0], text)
    assert isinstance(verdict.correct, bool) and verdict.message
