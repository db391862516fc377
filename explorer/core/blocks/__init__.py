"""Block families; importing this package registers every block type in explorer.core.registry.

The import order is the palette order: plain layers first, composite blocks last.
"""

from explorer.core.blocks import conv  # noqa: F401  (conv, sepconv, mlpconv)
from explorer.core.blocks import pool  # noqa: F401
from explorer.core.blocks import norm  # noqa: F401
from explorer.core.blocks import regularize  # noqa: F401
from explorer.core.blocks import activation  # noqa: F401
from explorer.core.blocks import linear  # noqa: F401
from explorer.core.blocks import residual  # noqa: F401
from explorer.core.blocks import inception  # noqa: F401
from explorer.core.blocks import densenet  # noqa: F401
from explorer.core.blocks import mobile  # noqa: F401
