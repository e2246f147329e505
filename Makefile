# rxpipe: `make run` starts the app, `make test` runs every test. Both build .venv from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench nab clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rxpipe run

lint: $(STAMP)
	$(BIN)/ruff check rxpipe tests bench panel_app
	$(BIN)/ruff format --check rxpipe tests bench panel_app

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: lint typecheck
	$(BIN)/python -m pytest tests rxpipe; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit rxpipe

bench: $(STAMP)
	$(BIN)/python -m bench

# rxpipe's ensemble on the NAB subset, scored by ../shared/tools/nab_score.py -> bench/results/nab.json
nab: $(STAMP)
	$(BIN)/python -m bench nab

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
