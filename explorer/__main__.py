"""`python -m explorer ...`: see explorer/cli.py."""

import os
import sys

# OpenMP threads that spin while waiting make CPU training 10-100x slower when another process
# (the app, a test runner) shares the cores; passive waiting costs nothing when the CPU is free.
# It must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from explorer.cli import main  # noqa: E402

sys.exit(main())
