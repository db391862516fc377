"""CNN Architecture Explorer core: specs, blocks, analysis, presets. Never imports streamlit.

    >>> import explorer
    >>> a = explorer.analyze(explorer.load_preset("vgg16"))
    >>> a.totals.params
    138357544
"""

from explorer.core.analysis import Analysis, LayerRow, MemoryBreakdown, Totals, analyze
from explorer.core.build import build
from explorer.core.presets import list_presets, load_preset, preset_names
from explorer.core.spec import SPEC_FORMAT, BlockSpec, NetworkSpec, SpecError, spec_from_dict, spec_from_json

__all__ = ["Analysis", "LayerRow", "MemoryBreakdown", "Totals", "analyze", "build", "list_presets", "load_preset",
           "preset_names", "SPEC_FORMAT", "BlockSpec", "NetworkSpec", "SpecError", "spec_from_dict",
           "spec_from_json"]
