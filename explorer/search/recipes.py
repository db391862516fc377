"""Training recipes: the TrainConfig a preset starts from on a dataset, stored as data
(explorer/search/recipes/recipes.json) with where each came from.

Owns: reading the recipes file, recipe(preset, dataset) and recipe_config(preset, dataset), and
which settings a recipe sets (RECIPE_FIELDS), and adding a searched entry to it (write_recipe;
explorer.search.recipe_search finds them). The CLI's `train` and `sweep` and the Train page
start from recipe_config; flags and widgets override it. The Train page loads the pair's recipe
whenever its network or dataset changes (follow_recipe; its Reset button, load_recipe): the recipe
sets RECIPE_FIELDS, and the rest (device, data folder, validation share, seed, time limit, overfit
mode, logging, transfer learning) stays as the person set it. A pair is answered, in this order, by
  1. a searched recipe ("recipes": one per preset and dataset, found by a sweep whose file lies
     beside recipes.json, with what its run measured), else
  2. its family default ("families": one per kind of network, e.g. small networks with batch
     norm; every preset belongs to exactly one), over the dataset's augmentation default
     ("dataset_defaults": small shifts for digits, flips only where a mirror image keeps its
     class). These carry "source": "family default, not searched" and no measurements, else
  3. nothing (a network that is no preset): TrainConfig's defaults.

    {"format": "cnn-explorer/recipes@1",
     "recipes": [{"preset": "lenet5", "dataset": "mnist5k", "train": {TrainConfig fields},
                  "source": "how it was found (a sweep file in this folder, a run)",
                  "measured": {"best_val_acc": 0.977, "epochs": 12, ...}}],
     "families": [{"family": "small-bn", "presets": ["gapnet", ...], "train": {TrainConfig fields},
                   "source": "family default, not searched", "why": "where the values come from"}],
     "dataset_defaults": {"mnist5k": {"crop_padding": 2}, ...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from explorer.training.config import TrainConfig
from explorer.training.runs import write_text_atomic

RECIPES_FILE = Path(__file__).parent / "recipes" / "recipes.json"
RECIPES_FORMAT = "cnn-explorer/recipes@1"
FAMILY_SOURCE = "family default, not searched"
# What a recipe sets: how to fit the network. `train --preset P --dataset D` takes every one of these
# from recipe_config(P, D) (TrainConfig's default where the recipe leaves one out); the other
# TrainConfig fields say where and how a run goes (device, data folder, validation share, seed, time
# limit, overfit mode, logging, transfer learning) and are the person's, whatever the recipe.
RECIPE_FIELDS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "nesterov", "weight_decay", "schedule",
                 "step_epochs", "gamma", "label_smoothing", "crop_padding", "flip", "init")


@dataclass(frozen=True)
class _Book:
    """The recipes file, indexed."""

    searched: dict[tuple[str, str], dict]     # (preset, dataset) -> recipe entry
    families: dict[str, dict]                 # preset -> its family entry
    dataset_defaults: dict[str, dict]         # dataset -> TrainConfig fields (augmentation)


@lru_cache(maxsize=1)
def _book() -> _Book:
    data = json.loads(RECIPES_FILE.read_text())
    if data.get("format") != RECIPES_FORMAT:  # a broken recipes file is a bug in this package
        raise RuntimeError(f"{RECIPES_FILE} is not {RECIPES_FORMAT}")
    searched = {}
    for entry in data["recipes"]:
        TrainConfig.from_dict({**entry["train"], "dataset": entry["dataset"]})  # fails loudly when stale
        searched[(entry["preset"], entry["dataset"])] = entry
    defaults = data.get("dataset_defaults", {})
    families = {}
    for family in data.get("families", []):
        if family.get("source") != FAMILY_SOURCE:
            raise RuntimeError(f"{RECIPES_FILE}: family {family.get('family')!r} must say {FAMILY_SOURCE!r}")
        for preset in family["presets"]:
            if preset in families:
                raise RuntimeError(f"{RECIPES_FILE}: preset {preset!r} is in two families")
            families[preset] = family
        for dataset, augment in defaults.items():
            TrainConfig.from_dict({**augment, **family["train"], "dataset": dataset})
    return _Book(searched, families, defaults)


def recipe(preset: str | None, dataset: str | None) -> dict | None:
    """The recipe entry for this pair: {preset, dataset, train, source, and measured (searched) or
    family (family default)}; None for a name that is no preset or no dataset."""
    if not preset or not dataset:
        return None
    book, dataset = _book(), str(dataset).strip().lower()
    entry = book.searched.get((preset, dataset))
    if entry is not None:
        return entry
    family = book.families.get(preset)
    if family is None:
        return None
    return {"preset": preset, "dataset": dataset, "family": family["family"], "source": FAMILY_SOURCE,
            "why": family["why"], "train": {**book.dataset_defaults.get(dataset, {}), **family["train"]}}


def recipe_values(preset: str | None, dataset: str | None) -> dict:
    """The recipe's TrainConfig fields (without dataset); {} when there is none."""
    entry = recipe(preset, dataset)
    return dict(entry["train"]) if entry else {}


def recipe_source(preset: str | None, dataset: str | None) -> str:
    """Where the starting settings come from, in words, for the Train page and the CLI."""
    entry = recipe(preset, dataset)
    if entry is None:
        return "TrainConfig defaults (no recipe for this network)"
    if entry["source"] == FAMILY_SOURCE:
        return f"{FAMILY_SOURCE} ({entry['family']}: {entry['why']})"
    return entry["source"]


def recipe_summary(preset: str | None, dataset: str | None) -> str:
    """One line on where the starting settings come from (the Train page's caption; recipe_source
    has the whole story): the sweep file and what its run measured, the family, or no recipe."""
    entry = recipe(preset, dataset)
    if entry is None:
        return "TrainConfig defaults (no recipe for this network)"
    if entry["source"] == FAMILY_SOURCE:
        return f"the {entry['family']} family default (not searched for this dataset)"
    measured = entry.get("measured", {})
    acc, epochs = measured.get("best_val_acc"), measured.get("epochs", entry["train"].get("epochs"))
    result = f": {acc:.1%} validation accuracy in {epochs} epochs when measured" if acc is not None else ""
    return f"the searched recipe for {preset} on {entry['dataset']} ({entry.get('sweep', 'a sweep')}){result}"


def recipe_config(preset: str | None, dataset: str | None) -> TrainConfig:
    """TrainConfig for the pair: the recipe's fields over the defaults (defaults when there is none)."""
    values = recipe_values(preset, dataset)
    return TrainConfig.from_dict({**values, "dataset": dataset}) if dataset else TrainConfig()


def recipe_key(preset: str | None, dataset: str) -> tuple[str | None, str | None]:
    """What the starting settings of a network on a dataset depend on: (preset, dataset) for a preset;
    (None, None) for a network that is no preset, whose TrainConfig defaults depend on neither."""
    if recipe(preset, dataset) is None:
        return (None, None)
    return (preset, dataset)


def load_recipe(current: TrainConfig, preset: str | None, dataset: str) -> TrainConfig:
    """current with the pair's recipe loaded: every RECIPE_FIELDS value exactly as
    recipe_config(preset, dataset) has it (what `train --preset P --dataset D` starts from), the
    dataset, and the person's own values for every other field."""
    start = recipe_config(preset, dataset)
    return replace(current, dataset=start.dataset, **{f: getattr(start, f) for f in RECIPE_FIELDS}).validate()


def follow_recipe(current: TrainConfig, loaded: tuple[str | None, str | None] | None,
                  preset: str | None) -> tuple[TrainConfig, tuple[str | None, str | None]] | None:
    """The Train page's rule for when its settings change by themselves: when the network (by its
    preset name) or the dataset changed since the recipe was last loaded (`loaded`: recipe_key then,
    None before the first time), the settings with the new pair's recipe (load_recipe) and the new
    key; None when they still belong to the same recipe, so the person's edits stay. A network that
    is no preset keeps its edits when only the dataset changes: its defaults do not depend on it."""
    key = recipe_key(preset, current.dataset)
    if key == loaded:
        return None
    return load_recipe(current, preset, current.dataset), key


def edited_fields(current: TrainConfig, preset: str | None) -> list[str]:
    """The RECIPE_FIELDS whose value differs from the recipe of the network on current's dataset."""
    start = recipe_config(preset, current.dataset)
    return [f for f in RECIPE_FIELDS if getattr(current, f) != getattr(start, f)]


def recipe_pairs() -> list[tuple[str, str]]:
    """The (preset, dataset) pairs with a searched recipe."""
    return sorted(_book().searched)


def family_presets() -> dict[str, str]:
    """preset -> the family whose default it falls back to."""
    return {preset: family["family"] for preset, family in _book().families.items()}


def searched_entry(preset: str, dataset: str, path: Path | None = None) -> dict | None:
    """The pair's searched entry in the recipes file at path (default RECIPES_FILE), or None."""
    if path is None or Path(path) == RECIPES_FILE:
        return _book().searched.get((preset, dataset))
    entries = json.loads(Path(path).read_text())["recipes"]
    return next((e for e in entries if (e["preset"], e["dataset"]) == (preset, dataset)), None)


def write_recipe(entry: dict, path: Path | None = None) -> None:
    """Put a searched entry into the recipes file, in place of the pair's old one (else after the
    others). Checked as the reader checks it, and its sweep file must lie beside the recipes file;
    written atomically (explorer.training.runs.write_text_atomic), in the file's own layout (indent 1).
    path: another recipes file (tests); default RECIPES_FILE."""
    path = Path(path or RECIPES_FILE)
    TrainConfig.from_dict({**entry["train"], "dataset": entry["dataset"]})
    if not (path.parent / entry["sweep"]).is_file():
        raise RuntimeError(f"{entry['sweep']} is not beside {path}: commit the sweep with its recipe")
    if not 0 < entry["measured"]["best_val_acc"] <= 1:
        raise RuntimeError(f"best_val_acc must be a fraction, got {entry['measured']['best_val_acc']!r}")
    data = json.loads(path.read_text())
    pair = (entry["preset"], entry["dataset"])
    kept = [e if (e["preset"], e["dataset"]) != pair else entry for e in data["recipes"]]
    data["recipes"] = kept if entry in kept else kept + [entry]
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")  # a full disk: the old file, no temporary
    if path == RECIPES_FILE:
        _book.cache_clear()
        _book()  # the file as written reads back
