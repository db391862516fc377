"""Worst-case analysis time under the cost budget, as a ratio to VGG-16 analysed the same way.

Each case runs in a fresh subprocess (so its peak RSS is its own) with a cold trace cache, after one
untimed analysis of LeNet-5 (torch's one-time start-up is not the spec's cost):
- vgg16: the baseline (the preset, 40 leaf layers);
- dense: dense blocks of 128 layers up to max_layers (each layer concatenates all earlier maps:
  the most aten work per leaf of any block);
- distinct: 500 blocks of convolutions (repeat 5) whose shapes all differ, so nothing comes
  from the per-block trace cache;
- inception: inception modules of distinct widths up to max_layers;
- refused: the issue's reproducer (500 dense blocks of 128 layers, repeat 64): refused by the budget;
- unbudgeted (with --unbudgeted N): N copies of one such dense block with the budget lifted
  (what the server did before the budget; N=8 is 7,168 leaf layers).

    .venv/bin/python bench/budget_worst_case.py [--unbudgeted 8]
Prints seconds and peak RSS per case, and each case's time / VGG-16's time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DENSE = {"type": "denseblock", "num_layers": 128, "growth_rate": 1024, "bn_size": 16}


def specs(max_layers: int) -> dict[str, dict]:
    per_dense = 7 * 128
    dense = [{**DENSE, "growth_rate": 1 + i} for i in range(max_layers // per_dense)]
    rest = (max_layers - per_dense * len(dense)) // 7
    if rest:
        dense.append({**DENSE, "num_layers": rest, "growth_rate": 7})
    distinct = [{"type": "conv", "out_channels": 1 + i, "kernel": 1, "repeat": min(5, max_layers // 500)}
                for i in range(500)]
    inception = [{"type": "inception", "ch1x1": 1 + i, "ch3x3red": 2, "ch3x3": 2, "ch5x5red": 2, "ch5x5": 2,
                  "pool_proj": 2} for i in range(min(500, max_layers // 19))]
    return {"dense": {"input": [3, 16, 16], "blocks": [{"type": "conv", "out_channels": 8}] + dense},
            "distinct": {"input": [3, 16, 16], "blocks": distinct},
            "inception": {"input": [3, 16, 16], "blocks": inception},
            "refused": {"input": [3, 8, 8], "blocks": [{"type": "conv", "out_channels": 8}]
                        + [{**DENSE, "repeat": 64}] * 499}}


CHILD = """
import json, resource, sys, time
from explorer import analyze, load_preset
from explorer.core.analysis import clear_cache
from explorer.errors import BudgetError
analyze(load_preset("lenet5"))  # one-time start-up costs (dispatch tables, lazy imports) are not timed
clear_cache()
from explorer.core.spec import spec_from_dict
data = json.loads(sys.stdin.read())
from explorer.core.budget import check_spec
spec = load_preset("vgg16") if data is None else spec_from_dict(data)
start = time.perf_counter()
try:
    check_spec(spec)
except BudgetError:
    pass
check = time.perf_counter() - start
start = time.perf_counter()
try:
    a = analyze(spec)
    result = f"{len(a.detail_rows)} leaf layers"
except BudgetError as e:
    result = f"refused: {e.limit} {e.value:,} > {e.maximum:,}"
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "check": check, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "result": result}))
"""


def run(data, env: dict[str, str] | None = None, timeout: float = 3600) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(data), capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=timeout)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unbudgeted", type=int, default=0, metavar="N",
                        help="also analyse N copies of one 128-layer dense block with the budget lifted")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from explorer.core.budget import current

    max_layers = current().max_layers
    base = run(None)
    print(f"max_layers {max_layers:,}; vgg16 baseline {base['seconds']:.3f} s, peak RSS {base['rss_mib']:.0f} MiB")
    cases = specs(max_layers)
    if args.unbudgeted:
        cases["unbudgeted"] = {"input": [3, 8, 8], "blocks": [{"type": "conv", "out_channels": 8},
                                                             {**DENSE, "repeat": args.unbudgeted}]}
    for name, data in cases.items():
        lifted = {f"CNN_EXPLORER_MAX_{k}": str(10**18) for k in ("LAYERS", "PARAMS", "MACS", "ACTIVATIONS")}
        lifted = lifted if name == "unbudgeted" else None
        r = run(data, lifted)
        print(f"{name:10s} {r['seconds']:8.3f} s (budget check {r['check'] * 1000:5.1f} ms) {r['rss_mib']:6.0f} MiB peak "
              f"{r['seconds'] / base['seconds']:7.1f} x vgg16  ({r['result']})")


if __name__ == "__main__":
    main()
