# Two entry points for a fresh machine (see README): `make run VIDEO=...` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
V2M    := $(VENV)/bin/v2m
STAMP  := $(VENV)/.installed
MODELS := $(VENV)/.default-models
VIEWER := $(VENV)/.viewer
VIDEO  ?=
OUT    ?= out
ARGS   ?=
# Test processes (pytest-xdist, whole files per process): CI and the reference machine have 2 cores.
JOBS   ?= 2

.PHONY: setup models run test test-fast bench

setup: $(STAMP) $(VIEWER)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The report's 3D viewer: three.js from the npm registry, bundled once. Optional: without npm the
# report shows everything else and says how to add it (and its browser tests skip).
$(VIEWER): $(STAMP)
	@$(V2M) models setup-viewer && touch $(VIEWER) \
	  || echo "setup: no 3D viewer for reports (needs npm); everything else works"

# The licence-free path's files: BlazePose models from the mediapipe wheel on PyPI, Anny's cache.
models: $(MODELS)

$(MODELS): $(STAMP)
	$(V2M) models setup-default
	touch $(MODELS)

run: setup models
	@test -n "$(VIDEO)" || { echo "usage: make run VIDEO=path/to/video.mp4 [OUT=out] [ARGS='--device cuda']"; exit 2; }
	$(V2M) run $(VIDEO) --out $(OUT) $(ARGS)

test: setup
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile $(ARGS)

test-fast: setup
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile -m "not slow" $(ARGS)

bench: setup
	$(V2M) bench --json $(OUT)/bench.json $(ARGS)
