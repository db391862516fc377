"""Compare page: every training run side by side.

Data flow: the run folders under ui.compare_views.runs_dir() (a session override, else
$CNN_EXPLORER_RUNS, else ./runs) -> explorer.compare.results.runs_frame (accuracy, size, speed, the
course's efficiency score accuracy / (params / 100K), the Pareto front per dataset) -> the
sortable table with a CSV download, then tabs: accuracy against parameters, overlaid curves,
a layer-by-layer diff of two runs' networks, and the best-accuracy-under-a-budget leaderboard.
"""

from ui import compare_views as cv
from ui import state, views

state.init()

with views.guarded("the page"):
    root = cv.runs_dir()
    frame = cv.load(root)
    cv.header(root, frame)
    cv.unreadable(root)
    if frame.empty:
        cv.empty(root)
    else:
        frame = cv.dataset_filter(frame)
        cv.table(frame)
        cv.tabs(frame)

state.sync_url()
