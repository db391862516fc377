"""CNN Architecture Explorer: the Streamlit entry point (`streamlit run app.py`).

Routing and page configuration only; each page lives in pages/ and the logic in ui/ and explorer/.
"""

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see explorer/__main__.py

import streamlit as st  # noqa: E402

from ui import display, state  # noqa: E402

# The icon is a file of this project: nothing is fetched from the internet for it.
ASSETS = Path(__file__).with_name("assets")
st.set_page_config(page_title="CNN Architecture Explorer", page_icon=str(ASSETS / "icon.png"), layout="wide")
st.set_option("client.toolbarMode", "minimal")  # no "Deploy" button in a classroom
st.set_option("client.showErrorDetails", "type")  # never a traceback on screen (the log keeps it)
st.html(ASSETS / "style.css")
state.init(entry=True)  # shared by every page: the spec (from ?net= on a session's first run), history, settings

pages = [st.Page("pages/build.py", title="Build", icon=":material/construction:", default=True),
         st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
         st.Page("pages/inspect.py", title="Inspect", icon=":material/visibility:"),
         st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:"),
         st.Page("pages/sweep.py", title="Sweep", icon=":material/tune:"),
         st.Page("pages/zoo.py", title="Zoo", icon=":material/pets:"),
         st.Page("pages/quiz.py", title="Quiz", icon=":material/quiz:"),
         st.Page("pages/challenge.py", title="Challenge", icon=":material/emoji_events:")]
page = st.navigation(pages)
display.text_size()  # under the page list, on every page
page.run()
