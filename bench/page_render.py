"""How long one script run of the Build page takes for VGG-16 (AppTest, no browser).

    .venv/bin/python bench/page_render.py [--runs 15] [--target-ms 300] [--strict]

Prints the median over several runs of:
- rerun:  the page redrawn with nothing changed (analysis served from st.cache_data);
- edit:   an edit that changes the analysis key (the batch size), so VGG-16 is analysed again;
- block:  an edit of a block (the first conv's filter count): new spec, new analysis;
- charts: a rerun with the Charts tab open (four Plotly figures built and serialised);
and the first run of a fresh session (imports torch, cold cache) for reference.
The ratio against the 300 ms target is what matters; --strict exits 1 when a median misses it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from explorer import load_preset  # noqa: E402
from explorer.core.share import QUERY_KEY, encode_spec  # noqa: E402
from ui import state  # noqa: E402


def timed(at: AppTest) -> float:
    start = time.perf_counter()
    at.run()
    elapsed = (time.perf_counter() - start) * 1000
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception[0].value}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--target-ms", type=float, default=300.0)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a median misses the target")
    args = parser.parse_args()

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params[QUERY_KEY] = encode_spec(load_preset("vgg16"))
    first = timed(at)
    params = next(m for m in at.metric if m.label == "Parameters")
    assert params.value == "138M" and "138,357,544" in params.help, (params.value, params.help)

    results: dict[str, list[float]] = {"rerun": [], "edit": [], "block": [], "charts": []}
    for _ in range(args.runs):
        results["rerun"].append(timed(at))
    for i in range(args.runs):
        at.number_input(key=state.W_BATCH).set_value(2 + i)
        results["edit"].append(timed(at))
    for i in range(args.runs):
        key = f"ed.{at.session_state[state.GEN]}.{at.session_state[state.SELECTED]}.out_channels"
        at.number_input(key=key).set_value(32 + i)
        results["block"].append(timed(at))
    at.session_state[state.VIEW] = "Charts"
    for _ in range(args.runs):
        results["charts"].append(timed(at))

    print(f"Build page, VGG-16 (3x224x224), AppTest script run, {args.runs} runs each")
    print(f"  first run (cold: imports, empty cache)  {first:8.1f} ms")
    missed = False
    for name, times in results.items():
        median = statistics.median(times)
        ratio = median / args.target_ms
        missed |= ratio > 1
        print(f"  {name:<7} median {median:7.1f} ms  (min {min(times):6.1f}, max {max(times):6.1f})  "
              f"ratio to {args.target_ms:.0f} ms target: {ratio:.2f}")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    raise SystemExit(main())
