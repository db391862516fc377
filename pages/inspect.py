"""Inspect page: look inside a trained (or untrained) network.

Data flow: the sidebar picks a source (a run directory's best checkpoint and its validation split,
or the Build page's NetworkSpec with random weights and an offline dataset: explorer.interpret.sources)
and an image (a validation image by number, or an upload decoded by explorer.interpret.images) ->
explorer.interpret.explain computes Grad-CAM (captum) and CAM, .features the feature maps and
filters, .evaluate the validation-set scores -> explorer.charts.inspect draws them and
ui.inspect_views lays them out in four tabs. The network is loaded once per run and checkpoint
(st.cache_resource).
"""

import streamlit as st

from ui import inspect_views as iv
from ui import state, views

state.init()

with views.guarded("the page"):
    st.sidebar.header("Inspect")
    subject = iv.choose_subject(state.spec())
    if subject is not None:
        iv.header(subject)
        picture = iv.choose_picture(subject)   # sidebar; a bad upload is reported under the header
        iv.tabs(subject, picture)

state.sync_url()
