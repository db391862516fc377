"""Full analysis latency: explorer.analyze against torchinfo.summary + fvcore FlopCountAnalysis.

Same models, same process, interleaved repetitions, medians. The explorer side starts from the
spec (building the meta model is included); the baseline gets an already-built real model (its
construction and weight initialisation are NOT counted), so the ratio is conservative.

Two explorer timings:
- cold: the per-block trace cache is cleared before every run (a first analysis);
- edit: one block's width changes between runs, as in the builder (only the blocks the edit
  touches are traced again; the rest come from the cache).

    .venv/bin/python bench/analysis_latency.py [--repeats 7]
Prints, per model, both medians and the ratio baseline / explorer (higher is better for us).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch  # noqa: E402
import torchinfo
from fvcore.nn import FlopCountAnalysis

warnings.filterwarnings("ignore")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
import explorer  # noqa: E402
from explorer.core.analysis import clear_cache  # noqa: E402
from explorer.core.tvmodels import torchvision_model


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", default="vgg16,resnet50")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians of {args.repeats} runs")
    for name in args.models.split(","):
        spec = explorer.load_preset(name)
        model = torchvision_model(name, device="cpu").eval()
        x = torch.randn(1, 3, 224, 224)

        def ours():
            clear_cache()
            return explorer.analyze(spec, batch=1)

        widths = iter(range(1, 10**6))

        def edited():
            # change the width of the first conv (the next block's input changes too)
            block = spec.blocks[0].with_values(out_channels=64 + next(widths))  # never seen before
            return explorer.analyze(spec.with_blocks((block, *spec.blocks[1:])), batch=1)

        def baseline():
            torchinfo.summary(model, input_data=x, verbose=0)
            flops = FlopCountAnalysis(model, x)
            flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return flops.total()

        ours(), edited(), baseline()  # warm up all three
        ours_t, edit_t, base_t = [], [], []
        for _ in range(args.repeats):
            ours_t.append(timed(ours))
            edit_t.append(timed(edited))
            base_t.append(timed(baseline))
        a, e, b = (statistics.median(t) for t in (ours_t, edit_t, base_t))
        check = ours()
        print(f"{name:9s} torchinfo+fvcore {b * 1e3:7.1f} ms | explorer cold {a * 1e3:6.1f} ms "
              f"(ratio {b / a:5.1f}x) | explorer edit {e * 1e3:6.1f} ms (ratio {b / e:6.1f}x) | "
              f"{check.totals.params:,} params, {check.totals.macs / 1e9:.2f} GMACs")


if __name__ == "__main__":
    main()
