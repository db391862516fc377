"""Block families; importing this package registers every block type in explorer.registry.

The import order is the palette order: plain layers first, composite blocks last.
"""

from explorer.blocks import conv  # noqa: F401  (conv, sepconv, mlpconv)
from explorer.blocks import pool  # noqa: F401
from explorer.blocks import norm  # noqa: F401
from explorer.blocks import regularize  # noqa: F401
from explorer.blocks import activation  # noqa: F401
from explorer.blocks import linear  # noqa: F401
from explorer.blocks import residual  # noqa: F401
from explorer.blocks import inception  # noqa: F401
from explorer.blocks import densenet  # noqa: F401
from explorer.blocks import mobile  # noqa: F401
