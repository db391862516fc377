"""Quiz page widgets: choose what to hide, type answers, see the verdicts and the working.

Every decision (which cells, how an answer is judged, the working text) comes from explorer.classroom.quiz;
this module draws widgets and keeps the answers in session state. A quiz is shared as the page's
address: ?net=<network>&quiz=<settings>, or ?quizset=<ready-made name>.
"""

from __future__ import annotations

import streamlit as st

from explorer.core.analysis import Analysis, analyze
from explorer.errors import UserError
from explorer.classroom.quiz import (COLUMNS, MEMORY_TOLERANCE, Question, QuizSettings, check, load_ready_made,
                           make_questions, ready_made_names, score)
from explorer.core.share import QUERY_KEY, encode_spec
from explorer.core.spec import NetworkSpec
from explorer.text import markdown_plain
from ui import state

QUIZ_PARAM, QUIZSET_PARAM = "quiz", "quizset"   # query parameters of a shared quiz
CURRENT = "Current network"


@st.cache_data(max_entries=32, show_spinner=False)
def _analysis(spec_json: str) -> Analysis:
    return analyze(NetworkSpec.from_json(spec_json))


def analysis_of(spec: NetworkSpec) -> Analysis:
    """The network's analysis (cached by its JSON; the cost budget applies as on the Build page)."""
    return _analysis(spec.to_json(indent=None))


def _link_settings() -> QuizSettings | None:
    text = st.query_params.get(QUIZ_PARAM)
    if text is None:
        return None
    try:
        return QuizSettings.from_query(text)
    except UserError as e:
        st.warning(f"This quiz link could not be read: {markdown_plain(str(e))} Pick the settings below.")
        return None


def choose_source() -> str:
    """CURRENT or the name of a ready-made quiz (a ?quizset= link preselects it)."""
    names = ready_made_names()
    options = [CURRENT, *names]
    linked = st.query_params.get(QUIZSET_PARAM)
    if linked in names and state.QUIZ_SOURCE not in st.session_state:
        st.session_state[state.QUIZ_SOURCE] = linked
    titles = {n: load_ready_made(n).title for n in names}
    return st.radio("Quiz on", options, key=state.QUIZ_SOURCE, horizontal=True,
                    format_func=lambda o: titles.get(o, o))


def choose_settings() -> QuizSettings:
    """The hide-what widgets, starting from the link's settings when the page was opened by one."""
    linked = _link_settings()
    if linked is not None and state.QUIZ_COLS not in st.session_state:
        st.session_state.update({state.QUIZ_COLS: list(linked.columns), state.QUIZ_ROWS: linked.rows,
                                 state.QUIZ_FRACTION: int(linked.fraction * 100), state.QUIZ_SEED: linked.seed,
                                 state.QUIZ_TABLE: linked.table})
    c1, c2, c3 = st.columns([3, 2, 2])
    table = c2.radio("Table", ("layers", "memtable"), key=state.QUIZ_TABLE, horizontal=True,
                     format_func={"layers": "Layers", "memtable": "cs231n memory table"}.get)
    allowed = [c for c in COLUMNS if table == "layers" or c in ("output_shape", "params", "memory")]
    cols = c1.multiselect("Hide these columns", allowed, default=[c for c in ("output_shape", "params")],
                          key=state.QUIZ_COLS, format_func=COLUMNS.get)
    rows = c3.radio("Rows", ("all", "random"), key=state.QUIZ_ROWS, horizontal=True,
                    format_func={"all": "All rows", "random": "Random rows"}.get)
    fraction, seed = 30, 0
    if rows == "random":
        fraction = c3.slider("Share of rows hidden (%)", 5, 100, 30, 5, key=state.QUIZ_FRACTION)
        seed = c3.number_input("Draw (seed)", 0, 999_999, 0, key=state.QUIZ_SEED,
                               help="The same number gives every student the same rows")
    return QuizSettings(columns=tuple(c for c in cols if c in allowed) or ("output_shape",), rows=rows,
                        fraction=fraction / 100, seed=int(seed), table=table).checked()


def share_link(spec: NetworkSpec, settings: QuizSettings) -> None:
    base = (st.context.url or "").split("?", 1)[0]
    try:
        st.code(f"{base}?{QUERY_KEY}={encode_spec(spec)}&{QUIZ_PARAM}={settings.to_query()}", language=None)
    except UserError as e:
        st.caption(f"This network is too large for a link: {markdown_plain(str(e))}")


def rules() -> None:
    st.caption(f"Shapes and counts must be exact (shapes as H x W x C or C x H x W; counts may use commas "
               f"and K/M/G). Memory is right within {MEMORY_TOLERANCE:.0%} or the rounding you typed "
               f"(3.2M covers 3.15M to 3.25M). A stride that doesn't fit: answer \"doesn't fit\" or the size "
               f"PyTorch gives. The memory table counts weights without biases, as the slide does; the "
               f"full count is accepted too.")


def _given(analysis: Analysis, table: str, row: int) -> str:
    """What the row shows without hidden cells: its label and input."""
    if table == "memtable":
        return ""
    r = analysis.rows[row]
    return f"in {'x'.join(map(str, r.input_shape))}"


def _answer_key(key: str, q: Question) -> str:
    return state.quiz_answer(key, q.row, q.column)


def quiz_form(key: str, analysis: Analysis, settings: QuizSettings) -> None:
    """One form per quiz part: a line per row with an answer box per hidden cell; after "Check
    answers" (a callback sets the flag before the rerun) each box shows its verdict, and a score."""
    questions = make_questions(analysis, settings)
    by_row: dict[int, list[Question]] = {}
    for q in questions:
        by_row.setdefault(q.row, []).append(q)
    checked_key = state.quiz_checked(key)
    checked = st.session_state.get(checked_key, False)
    widths = [2, *([3] * len(settings.columns))]
    with st.form(state.quiz_form(key), border=False):
        for col, name in zip(st.columns(widths)[1:], settings.columns):
            col.markdown(f"**{COLUMNS[name]}**")
        verdicts = []
        for row, qs in by_row.items():
            cells = st.columns(widths)
            cells[0].markdown(f"{markdown_plain(qs[0].row_label)}  \n:gray[{_given(analysis, settings.table, row)}]")
            for q in qs:
                cell = cells[1 + settings.columns.index(q.column)]
                cell.text_input(COLUMNS[q.column], key=_answer_key(key, q), max_chars=64,
                                label_visibility="collapsed", placeholder="?")
                if checked:
                    verdict = check(q, st.session_state.get(_answer_key(key, q), ""))
                    verdicts.append(verdict)
                    show = cell.success if verdict.correct else cell.error if verdict.answered else cell.info
                    show(markdown_plain(verdict.message))
        st.form_submit_button("Check answers", type="primary", on_click=st.session_state.__setitem__,
                              args=(checked_key, True))
    if checked:
        right, asked = score(verdicts)
        st.metric("Score", f"{right} / {asked}")
