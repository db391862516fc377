"""Block families; importing this package registers every block type in explorer.core.registry.

Each module registers its types (everything about a type lives in its BlockDef there). The
modules named in _ORDER load first, in the palette's order: plain layers first, composite blocks
last; any other module here (a new family file) loads after them, so adding one needs no edit here.
"""

import importlib
import pkgutil

_ORDER = ("conv", "pool", "norm", "regularize", "activation", "linear", "residual", "inception", "densenet",
          "mobile")
_OTHERS = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_") and m.name not in _ORDER)

for _name in (*_ORDER, *_OTHERS):
    importlib.import_module(f"{__name__}.{_name}")
