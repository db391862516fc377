"""Named network specs, stored as data: one JSON file per preset in this folder.

Each file is a normal spec (format cnn-explorer/spec@1) plus optional preset metadata:
  "title": shown in menus, "year", "mirrors": the torchvision model it reproduces exactly
  (parameter count, and MACs within 1%), "notes": what differs from the paper, if anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from explorer.core.spec import NetworkSpec, SpecError, spec_from_dict

PRESET_DIR = Path(__file__).parent
_META_KEYS = ("title", "year", "mirrors", "notes", "tags")


@dataclass(frozen=True)
class PresetInfo:
    name: str
    title: str
    year: int | None
    mirrors: str | None         # torchvision model name it reproduces, if any
    notes: str
    tags: tuple[str, ...]
    input: tuple[int, ...]
    num_classes: int
    description: str


@lru_cache(maxsize=None)
def _load(name: str) -> tuple[PresetInfo, NetworkSpec]:
    path = PRESET_DIR / f"{name}.json"
    data = json.loads(path.read_text())
    meta = {k: data.pop(k) for k in _META_KEYS if k in data}
    try:
        spec = spec_from_dict({**data, "name": name})
    except SpecError as e:  # a broken preset file is a bug in this package
        raise RuntimeError(f"preset {name}: {e}") from None
    info = PresetInfo(name=name, title=meta.get("title", name), year=meta.get("year"),
                      mirrors=meta.get("mirrors"), notes=meta.get("notes", ""),
                      tags=tuple(meta.get("tags", ())), input=spec.input, num_classes=spec.num_classes,
                      description=spec.description)
    return info, spec


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def list_presets() -> list[PresetInfo]:
    return [_load(n)[0] for n in preset_names()]


def preset_info(name: str) -> PresetInfo:
    _check(name)
    return _load(name)[0]


def load_preset(name: str) -> NetworkSpec:
    """The preset as a NetworkSpec (immutable; edit with the NetworkSpec helpers)."""
    _check(name)
    return _load(name)[1]


def _check(name: str) -> None:
    if not isinstance(name, str) or name not in preset_names():
        import difflib

        close = difflib.get_close_matches(str(name), preset_names(), n=3)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise SpecError(f"unknown preset {name!r}.{hint} Presets: {', '.join(preset_names())}",
                        )
