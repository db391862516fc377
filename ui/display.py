"""Display settings shared by every page: the large-text switch for projectors.

Owns the one widget app.py draws on every page (under the page list) and the CSS it injects.
"""

from __future__ import annotations

import streamlit as st

from ui import state

LARGE_SCALE = 1.25   # root font size factor: every rem-sized text and gap grows by this much
# With large text a row of four headline cards is too narrow on a 1024-px projector: two by two.
_ROW = '[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stMetric"])'
TWO_BY_TWO = (f"{_ROW} {{ flex-wrap: wrap; }} "
              f"{_ROW} > [data-testid=\"stColumn\"] {{ min-width: calc(50% - 1rem); }}")


def text_size() -> None:
    """A sidebar switch; when on, every page renders LARGE_SCALE times larger (for the back row)."""
    on = st.sidebar.toggle("Large text (projector)", key=state.LARGE_TEXT,
                           help="Everything on every page grows by a quarter, for a projector or the back row")
    if on:
        st.html(f"<style>html {{ font-size: {100 * LARGE_SCALE:.0f}%; }} {TWO_BY_TWO}</style>")
