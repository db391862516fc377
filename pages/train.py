"""Train page: pick a dataset and hyperparameters, launch the current network, watch it learn.
The settings start from the recipe of the current network and dataset (explorer.search.recipes),
loaded again whenever either changes; the sidebar says where they come from.

Data flow: the NetworkSpec from the Build page (ui.state) + the TrainConfig edited in the sidebar
-> the run's plan (explorer.training.plan: the network adapted to the dataset, device, precision,
predicted memory, or a message saying what to change) -> the shared job queue starts a
`python -m explorer train` process -> its metrics.jsonl is polled about once a second by a
fragment -> the selected runs' curves (near the top, in view while a run trains) and cards ->
where the weights start from (ui.transfer_views: a run or weights file, what to freeze) ->
how the network was fitted and the warnings -> the run list. Everything drawn lives in
ui.train_views.
"""

import streamlit as st

from ui import state, views
from ui import train_views as tv
from ui import transfer_views as trv

state.init()
tv.init()
spec = state.spec()

with views.guarded("the training settings"):
    tv.follow_recipe(spec)     # a new network or dataset: its recipe, as `train --preset P --dataset D`
    tv.settings_sidebar(spec, tv.config())
    tv.owner_code_input()
cfg = tv.config()

with views.guarded("the page"):
    handle = tv.queue_handle()
    jobs = handle.jobs()
    tv.header(spec, cfg, jobs, handle)
    check = tv.preflight(spec, cfg)
    tv.preflight_view(spec, cfg, check)          # one line and the Train button
    live, transfer, notes, runs = st.container(), st.container(), st.container(), st.container()
    with runs:  # first, so a change of selection reaches the live panel in the same run
        tv.runs_table(jobs)
    with live:
        tv.live_panel(handle)
    with transfer:  # start from trained weights; the course's table (collapsed until used)
        trv.panel(spec, cfg)
    with notes:
        tv.preflight_notes(check)

state.sync_url()
