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

.PHONY: run test install browser bench clean

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

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
