# Two entry points for a fresh machine (see README): `make run VIDEO=...` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
VIDEO  ?=
OUT    ?= out
ARGS   ?=

.PHONY: setup run test test-fast bench clean-cache

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: setup
	@test -n "$(VIDEO)" || { echo "usage: make run VIDEO=path/to/video.mp4 [OUT=out] [ARGS='--device cuda']"; exit 2; }
	$(VENV)/bin/v2m run $(VIDEO) --out $(OUT) $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)

test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(ARGS)

bench: setup
	$(VENV)/bin/v2m bench --json $(OUT)/bench.json $(ARGS)
