"""CNN Architecture Explorer core: specs, blocks, analysis, presets. Never imports streamlit.

    >>> import explorer
    >>> a = explorer.analyze(explorer.load_preset("vgg16"))
    >>> a.totals.params
    138357544
"""

from explorer.analysis import Analysis, LayerRow, MemoryBreakdown, Totals, analyze
from explorer.build import build
from explorer.presets import list_presets, load_preset, preset_names
from explorer.spec import SPEC_FORMAT, BlockSpec, NetworkSpec, SpecError, spec_from_dict, spec_from_json

__all__ = ["Analysis", "LayerRow", "MemoryBreakdown", "Totals", "analyze", "build", "list_presets", "load_preset",
           "preset_names", "SPEC_FORMAT", "BlockSpec", "NetworkSpec", "SpecError", "spec_from_dict",
           "spec_from_json"]
