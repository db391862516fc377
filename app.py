"""CNN Architecture Explorer: the Streamlit entry point (`streamlit run app.py`).

Routing and page configuration only; each page lives in pages/ and the logic in ui/ and explorer/.
"""

from pathlib import Path

import streamlit as st

from ui import state

st.set_page_config(page_title="CNN Architecture Explorer", page_icon=":material/neurology:", layout="wide")
st.set_option("client.toolbarMode", "minimal")  # no "Deploy" button in a classroom
st.set_option("client.showErrorDetails", "type")  # never a traceback on screen (the log keeps it)
st.html(Path(__file__).with_name("assets").joinpath("style.css"))
state.init()  # shared by every page: the spec (from ?net= on a session's first run), history, settings

pages = [st.Page("pages/build.py", title="Build", icon=":material/construction:", default=True)]
st.navigation(pages).run()
