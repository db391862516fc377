"""What a run is, in words: its folder name read back, its label, its status, the reading of its
curves, and which runs a new visitor sees first. The Train, Compare and Inspect pages and the CLI
ask here; ui/ only draws the answers.

Owns: parsing run-folder names (runs.new_run_dir writes them: YYYYmmdd-HHMMSS-<slug>-<hex>), the
run label ('twoconv · digits · lr 0.05 · 03:15:02 #3fa2'), the status a list shows (the queue's word
first, then the run's own end event, then its folder: running or interrupted), the diagnosis of a
finished run's curves (overfit check, bias against variance) and the default selection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from explorer.training.runs import load_run, read_json
from explorer.units import format_value

_RUN_NAME = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-(.*?)(?:-([0-9a-f]{4,}))?$")
DEFAULT_SELECTED = 3        # a new session overlays at most this many of its owner's latest runs


@dataclass(frozen=True)
class RunName:
    """A run folder's name read back (every part "" when the name is not one new_run_dir made)."""

    folder: str                 # the whole folder name
    date: str                   # "2026-11-22"
    time: str                   # "03:15:02"
    slug: str                   # the network's name as a slug, e.g. "lenet5"
    suffix: str                 # the random hex suffix, e.g. "3fa2c1d8"

    @property
    def started(self) -> str:
        """'2026-11-22 03:15:02', or '' for a folder named otherwise."""
        return f"{self.date} {self.time}" if self.date else ""


def parse_run_name(name: str) -> RunName:
    m = _RUN_NAME.match(str(name))
    if not m:
        return RunName(folder=str(name), date="", time="", slug="", suffix="")
    return RunName(folder=str(name), date=f"{m[1]}-{m[2]}-{m[3]}", time=f"{m[4]}:{m[5]}:{m[6]}", slug=m[7],
                   suffix=m[8] or "")


def short_label(folder: str, network: str) -> str:
    """'lenet5 03:02:10 #52ec' for the run folder 20261122-030210-lenet5-52ec...; the folder otherwise."""
    name = parse_run_name(folder)
    if not name.date or not name.suffix:
        return folder
    return f"{network} {name.time} #{name.suffix[:4]}"


def json_object(path: Path) -> dict[str, Any]:
    """A run file's JSON object, or {} when it is missing or not an object (visitors write these)."""
    data = read_json(path)
    return data if isinstance(data, dict) else {}


def _whole(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def run_label(run_dir: Path) -> str:
    """'twoconv · digits · lr 0.05 · 03:15:02 #3fa2': network, dataset, learning rate, start time
    and the folder's suffix (two runs launched in the same second with the same settings differ)."""
    run_dir = Path(run_dir)
    spec, cfg = json_object(run_dir / "spec.json"), json_object(run_dir / "config.json")
    name = parse_run_name(run_dir.name)
    when = f"{name.time}" + (f" #{name.suffix[:4]}" if name.suffix else "") if name.time else run_dir.name
    lr = cfg.get("lr")
    lr_text = [f"lr {format_value(lr)}"] if isinstance(lr, (int, float)) and not isinstance(lr, bool) else []
    return " · ".join([str(spec.get("name", run_dir.name))[:80], str(cfg.get("dataset", "?"))[:40]] + lr_text + [when])


def run_epochs(run_dir: Path) -> int | None:
    """The epochs a run was set to train for (its config.json), None when unknown."""
    value = _whole(json_object(Path(run_dir) / "config.json").get("epochs"), -1)
    return value if value >= 0 else None


def run_overfit(run_dir: Path) -> int:
    """The overfit-mode image count of a run (0: a normal run)."""
    return max(0, _whole(json_object(Path(run_dir) / "config.json").get("overfit")))


def run_status(run_dir: Path, job_status: str | None = None, end: Mapping[str, Any] | None = None) -> str:
    """The status to show: the queue's (job_status) when it knows the run, else the run's own end
    event ("done"/"error"), else its folder (heartbeat and process: running or interrupted)."""
    if job_status:
        return job_status
    if end is not None:
        status = end.get("status")
        return status if isinstance(status, str) and status else "failed"
    record = load_run(Path(run_dir))
    return "unreadable" if record is None else record.status


def diagnosis(last_epoch: Mapping[str, Any] | None, overfit: int = 0) -> tuple[str, str] | None:
    """(kind, sentence) reading a finished run's last epoch: the overfit check when overfit > 0,
    else bias against variance. kind: "success", "warning" or "info"; None before an epoch ends."""
    if last_epoch is None:
        return None
    train, val = last_epoch["train_acc"], last_epoch["val_acc"]
    if overfit:
        if train >= 0.999 or val >= 0.999:
            return "success", (f"All {overfit} images are fitted (100%): the network and the training loop can "
                               f"learn. Switch overfit mode off for a real run.")
        return "warning", (f"Only {max(train, val):.0%} of the {overfit} images are fitted; a working setup "
                           f"reaches 100%. Train for more epochs, change the learning rate, or check the network.")
    if train - val > 0.1:
        return "warning", (f"Train accuracy {train:.1%} is {100 * (train - val):.0f} points above validation "
                           f"{val:.1%}: the network overfits (high variance). More data, augmentation, dropout "
                           f"or weight decay help.")
    if train < 0.6:
        return "info", (f"Train accuracy over the last epoch is only {train:.1%}: the network underfits (high "
                        f"bias). Train longer, tune the learning rate, or make the network bigger.")
    return "info", (f"Train {train:.1%} (over the last epoch) vs validation {val:.1%}: a small gap, so no strong "
                    f"overfitting. More epochs or a bigger network may still help.")


def default_selection(folders: Iterable[str], owners: Mapping[str, str | None], owner: str | None,
                      limit: int = DEFAULT_SELECTED) -> list[str]:
    """The runs a new session overlays before anyone picks: this owner's latest `limit` runs, or
    when it has none, the latest run on the server. Newest first (folder names sort by start time)."""
    newest = sorted(folders, reverse=True)
    own = [f for f in newest if owner is not None and owners.get(f) == owner]
    return own[:limit] if own else newest[:1]


def shown_runs(selected: Sequence[str], exists: Iterable[str], limit: int) -> list[str]:
    """The runs whose cards and curves the live panel draws: the selected ones that still exist,
    in selection order, at most `limit` (one list for both, so a card never outlives its curves)."""
    present = set(exists)
    return [n for n in dict.fromkeys(selected) if n in present][:limit]


__all__ = ["RunName", "parse_run_name", "short_label", "json_object", "run_label", "run_epochs", "run_overfit",
           "run_status", "diagnosis", "default_selection", "shown_runs", "DEFAULT_SELECTED"]
