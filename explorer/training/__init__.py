"""Training: everything from the settings of a run to its folder.

    config.py     TrainConfig (validated settings) and the optimizer table
    plan.py       plan_run: what the Train page previews and the loop runs (device, precision,
                  the network fitted to the data, predicted memory, or what blocks the launch)
    adapt.py      fitting a network to a dataset's channels, size and classes
    prepare.py    a run's data: the split, images fitted to the network, validation images
    transfer.py   starting from trained weights, freezing, discriminative rates, the course's table
    lineage.py    what a run started from, as a label
    loop.py       one run in one process: setup, epochs, steps with the sanity checks, finish
    checkpoint.py loading a finished run's weights and data (safetensors)
    runs.py       run folders: where they live (runs_root), metrics, heartbeats, records
    status.py     run names, labels, status and the diagnosis of the curves
    jobs.py       the shared job queue (SQLite): limits per visitor, fair start, cancel
    executors.py  where a job runs: a local process or a Ray actor

Never imports: streamlit, ui, interpret, compare, search, charts, classroom. (The Ray actor in
executors.py runs a job's command line through explorer.cli, as a local process would.)
"""

from explorer.training.config import TrainConfig
from explorer.training.runs import DEFAULT_RUNS_DIR, RunRecord, list_runs, load_run, read_metrics

__all__ = ["TrainConfig", "DEFAULT_RUNS_DIR", "RunRecord", "list_runs", "load_run", "read_metrics"]
