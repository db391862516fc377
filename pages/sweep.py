"""Sweep page: search architectures and hyperparameters around the current network (Optuna,
coarse to fine); every trial is an ordinary run. Widgets in ui/sweep_views.py, logic in
explorer/search/."""

from ui import state, views
from ui import sweep_views as sv

state.init()
sv.follow_to_builder()

with views.guarded("the page"):
    root = sv.runs_dir()
    sv.header()
    sweep = sv.uploaded() or sv.setup(state.spec())
    sv.launch_button(sweep, root)
    sweep_id = sv.pick(root)
    if sweep_id:
        sv.watch(root, sweep_id)

state.sync_url()
