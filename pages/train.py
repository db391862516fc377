"""Train page: pick a dataset and hyperparameters, launch the current network, watch it learn.

Data flow: the NetworkSpec from the Build page (ui.state) + the TrainConfig edited in the sidebar
-> a check before launch (the network adapted to the dataset, or a message saying what to
change) -> the shared job queue starts a `python -m explorer train` process -> its
metrics.jsonl is polled about once a second by a fragment (progress, live curves, warnings)
-> the run list; selected runs are overlaid. Everything drawn lives in ui.train_views.
"""

import streamlit as st

from ui import state, views
from ui import train_views as tv
from ui import transfer_views as trv  # [transfer]

state.init()
tv.init()
spec, cfg = state.spec(), tv.config()

with views.guarded("the training settings"):
    tv.settings_sidebar(cfg)
    tv.owner_code_input()

with views.guarded("the page"):
    handle = tv.queue_handle()
    jobs = handle.jobs()
    tv.header(spec, cfg, jobs, handle)
    check = tv.preflight(spec, cfg)
    tv.preflight_view(spec, cfg, check)
    trv.panel(spec, cfg)  # [transfer] start from trained weights; the course's table
    tv.launch_button(check)
    live, runs = st.container(), st.container()
    with runs:  # first, so a change of selection reaches the live panel in the same run
        tv.runs_table(jobs)
    with live:
        tv.live_panel(handle)

state.sync_url()
