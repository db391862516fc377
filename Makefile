# Two commands do everything on a fresh machine (Python 3.11, root for the browser packages):
#   make run   install what is missing into .venv and start the app (offline default network)
#   make test  install what is missing (and Chromium for the browser tests) and run all tests
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
PORT ?= 8501
# OpenMP threads that spin while waiting make CPU training 10-100x slower on a shared machine.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: run test install browser bench gpu-wheels clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# Debian's Chromium for the Playwright browser tests (never `playwright install`), and Graphviz's
# `dot` for the diagram's SVG download (the diagram itself draws in the browser without it).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/dot ]; then \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver graphviz; \
	  else echo "note: chromium or graphviz is missing and this is not root: browser tests (and SVG) are skipped"; fi; \
	fi

run: install
	$(BIN)/streamlit run app.py --server.headless true --server.port $(PORT)

test: install browser
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/analysis_latency.py

# Wheels for a lent GPU machine (Python 3.12 with PyTorch, no network; /work/.library/device):
# what the training and the recipe search need beyond its own packages. bench/gpu_session.sh uses them.
GPU_WHEELS := optuna==5.0.0 alembic==1.20.1 sqlalchemy==2.1.9 colorlog==6.12.0 Mako==1.4.3 mlxtend==0.25.0
gpu-wheels: install
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .whl $(GPU_WHEELS)

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
