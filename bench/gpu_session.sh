#!/usr/bin/env bash
# One prepared run for a lent GPU machine (/work/.library/device: one call, 15 minutes of device
# time in all, Python 3.12 with its own PyTorch, no network). Run it from the repository root with
# the wheels `make gpu-wheels` downloads carried along:
#   device run  carry=[".whl"]  timeout_s=600  command="bash bench/gpu_session.sh"
# It measures, in order, each step's output under $OUT (what comes back, at most 8 files):
#   1. throughput.txt  bench/train_throughput.py --device cuda (explorer's loop against a DataLoader loop)
#   2. memory.txt      bench/gpu_memory.py (predicted training memory beside torch.cuda.max_memory_allocated)
#   3. tests.txt       the tests that need CUDA (skipped on the CPU machines and in CI)
#   4. search.txt and recipes.tgz: the recipe search on the GPU (--device cuda) for the pairs still
#      on their family default and those whose searched recipe reached under SEARCH_BELOW (default
#      0.6; a new recipe replaces one only when it does at least as well), until SEARCH_MINUTES
#      (default 5) have passed; recipes.tgz holds explorer/search/recipes/ to merge back (its
#      recipes.json and the new sweep files).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}" || { echo "installing the carried wheels failed"; exit 1; }
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
python3 -c "import sys, torch; torch.cuda.is_available() or sys.exit('bench/gpu_session.sh: no CUDA GPU here'); \
print('torch', torch.__version__, 'on', torch.cuda.get_device_name())" || exit 1
python3 bench/train_throughput.py --device cuda 2>&1 | tee "$OUT/throughput.txt"
python3 bench/gpu_memory.py 2>&1 | tee "$OUT/memory.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_training.py tests/test_data.py -k "gpu or cuda" 2>&1 | tail -20 \
  | tee "$OUT/tests.txt"
stop=$(date -u -d "+${SEARCH_MINUTES:-5} min" +%H:%M)
python3 -m explorer.search.recipe_search --device cuda --below "${SEARCH_BELOW:-0.6}" \
  --budget-seconds "${SEARCH_BUDGET:-90}" --stop-at "$stop" \
  2>&1 | tee "$OUT/search.txt"
tar czf "$OUT/recipes.tgz" explorer/search/recipes
python3 -m explorer.search.recipe_search --list 2>&1 | tail -1 | tee -a "$OUT/search.txt"
