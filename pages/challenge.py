"""Challenge page: the class challenge (best accuracy under a parameter budget, or the course
score), with nicknames, submissions through the shared queue and a live leaderboard.

Data flow: the teacher's rules (explorer.classroom.challenge, RUNS/challenge.json) -> a student's network
from the Build page, fitted to the dataset and checked against the budget -> a run in the shared
job queue, recorded under the nickname -> the leaderboard reads the runs folder every 5 s.
"""

import streamlit as st

from ui import challenge_views, state, train_views, views

state.init()
train_views.init()
st.title("Class challenge", anchor=False)
with views.guarded("the challenge"):
    challenge = challenge_views.current()
    for kind, text in state.pop_notices():
        getattr(st, kind, st.info)(text)
    challenge_views.header(challenge)
    if challenge is not None:
        challenge_views.student(challenge)
        challenge_views.leaderboard(challenge)
    challenge_views.teacher(challenge)
