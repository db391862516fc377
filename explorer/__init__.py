"""CNN Architecture Explorer core: specs, blocks, analysis, presets. Never imports streamlit.

    >>> import explorer
    >>> a = explorer.analyze(explorer.load_preset("vgg16"))
    >>> a.totals.params
    138357544

The names below load on first use (PEP 562), so `import explorer` does not import torch: a
process can still set OpenMP's environment (OMP_WAIT_POLICY, read once when torch starts its
OpenMP runtime) after importing explorer, and `python -m explorer --help` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_WHERE = {  # public name -> the module that owns it
    "Analysis": "explorer.core.analysis", "LayerRow": "explorer.core.analysis",
    "MemoryBreakdown": "explorer.core.analysis", "Totals": "explorer.core.analysis",
    "analyze": "explorer.core.analysis", "build": "explorer.core.build",
    "list_presets": "explorer.core.presets", "load_preset": "explorer.core.presets",
    "preset_names": "explorer.core.presets", "SPEC_FORMAT": "explorer.core.spec", "BlockSpec": "explorer.core.spec",
    "NetworkSpec": "explorer.core.spec", "SpecError": "explorer.core.spec", "spec_from_dict": "explorer.core.spec",
    "spec_from_json": "explorer.core.spec",
}
__all__ = list(_WHERE)

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ below loads them
    from explorer.core.analysis import Analysis, LayerRow, MemoryBreakdown, Totals, analyze  # noqa: F401
    from explorer.core.build import build  # noqa: F401
    from explorer.core.presets import list_presets, load_preset, preset_names  # noqa: F401
    from explorer.core.spec import (SPEC_FORMAT, BlockSpec, NetworkSpec, SpecError, spec_from_dict,  # noqa: F401
                                    spec_from_json)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'explorer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value
