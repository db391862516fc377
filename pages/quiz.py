"""Quiz page: practise the arithmetic the course drills on any network or a ready-made quiz.

Data flow: the current network (ui.state) or a ready-made quiz (explorer.classroom.quiz, assets/quizzes)
-> analysis -> explorer.classroom.quiz.make_questions hides cells -> answers typed in a form -> verdicts
with the working (explorer.classroom.quiz.check). The address (?net=&quiz= or ?quizset=) shares the quiz.
"""

import streamlit as st

from explorer.classroom.quiz import load_ready_made
from explorer.text import markdown_plain
from ui import quiz_views, state, views

state.init()
st.title("Quiz", anchor=False)
source = quiz_views.choose_source()
with views.guarded("the quiz"):
    if source == quiz_views.CURRENT:
        spec = state.spec()
        settings = quiz_views.choose_settings()
        st.subheader(markdown_plain(spec.name), anchor=False)
        quiz_views.rules()
        quiz_views.quiz_form("current", quiz_views.analysis_of(spec), settings)
        with st.expander("Share this quiz"):
            quiz_views.share_link(spec, settings)
    else:
        quiz = load_ready_made(source)
        st.write(markdown_plain(quiz.intro))
        quiz_views.rules()
        for i, part in enumerate(quiz.parts):
            st.subheader(markdown_plain(part.caption), anchor=False)
            quiz_views.quiz_form(f"{source}.{i}", quiz_views.analysis_of(part.spec),
                                 part.settings)
        st.caption(f"Share: this page's address with ?{quiz_views.QUIZSET_PARAM}={source}")
