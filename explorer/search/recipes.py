"""Training recipes: the TrainConfig a preset starts from on a dataset, stored as data
(explorer/search/recipes/recipes.json) with where each came from.

Owns: reading the recipes file and recipe_config(preset, dataset). The CLI's `train` and `sweep`
and the Train page start from recipe_config; flags and widgets override it. A pair without a
recipe starts from TrainConfig's defaults.

    {"format": "cnn-explorer/recipes@1",
     "recipes": [{"preset": "lenet5", "dataset": "mnist5k", "train": {TrainConfig fields},
                  "source": "how it was found (a sweep file in this folder, a run)",
                  "measured": {"best_val_acc": 0.977, "epochs": 12, ...}}]}
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from explorer.training.config import TrainConfig

RECIPES_FILE = Path(__file__).parent / "recipes" / "recipes.json"
RECIPES_FORMAT = "cnn-explorer/recipes@1"


@lru_cache(maxsize=1)
def _recipes() -> dict[tuple[str, str], dict]:
    data = json.loads(RECIPES_FILE.read_text())
    if data.get("format") != RECIPES_FORMAT:  # a broken recipes file is a bug in this package
        raise RuntimeError(f"{RECIPES_FILE} is not {RECIPES_FORMAT}")
    out = {}
    for entry in data["recipes"]:
        TrainConfig.from_dict({**entry["train"], "dataset": entry["dataset"]})  # fails loudly when stale
        out[(entry["preset"], entry["dataset"])] = entry
    return out


def recipe(preset: str | None, dataset: str | None) -> dict | None:
    """The recipe entry for this pair (train, source, measured), or None."""
    if not preset or not dataset:
        return None
    return _recipes().get((preset, str(dataset).strip().lower()))


def recipe_values(preset: str | None, dataset: str | None) -> dict:
    """The recipe's TrainConfig fields (without dataset); {} when there is none."""
    entry = recipe(preset, dataset)
    return dict(entry["train"]) if entry else {}


def recipe_config(preset: str | None, dataset: str | None) -> TrainConfig:
    """TrainConfig for the pair: the recipe's fields over the defaults (defaults when there is none)."""
    values = recipe_values(preset, dataset)
    return TrainConfig.from_dict({**values, "dataset": dataset}) if dataset else TrainConfig()


def recipe_pairs() -> list[tuple[str, str]]:
    return sorted(_recipes())
