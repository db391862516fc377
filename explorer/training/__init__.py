"""Training: TrainConfig, the loop (one run in one process), run directories, the job queue."""

from explorer.training.config import TrainConfig
from explorer.training.runs import DEFAULT_RUNS_DIR, RunRecord, list_runs, load_run, read_metrics

__all__ = ["TrainConfig", "DEFAULT_RUNS_DIR", "RunRecord", "list_runs", "load_run", "read_metrics"]
