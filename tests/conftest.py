"""Shared test setup. OpenMP passive waiting must be set before torch is imported (see
explorer/__main__.py): spinning threads make CPU training crawl while other processes run."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
