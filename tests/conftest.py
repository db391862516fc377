"""Shared test setup. OpenMP passive waiting must be set before torch is imported (see
explorer/__main__.py): spinning threads make CPU training crawl while other processes run."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Property-based tests: the same cases on every CI run (derandomised), a fresh seed locally.
# The fuzz tests name their case counts with `FUZZ_CASES` so CI runs thousands per loader.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
