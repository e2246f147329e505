# rxpipe: `make run` starts the app, `make test` runs every test. Both build .venv from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench nab clean browser screenshot fresh-kernels

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) fresh-kernels
	$(BIN)/rxpipe run

# numba keys a cached kernel on its own file only, and the fused detector pass inlines the step
# functions of other kernel modules: after an edit to one of those, its cache would run the old
# code. Drop every kernel cache older than the newest kernel source.
fresh-kernels:
	@newest=$$(ls -t rxpipe/kernels/*.py | head -n 1); \
	find rxpipe -path '*__pycache__*' \( -name '*.nbi' -o -name '*.nbc' \) ! -newer "$$newest" -delete

lint: $(STAMP)
	$(BIN)/ruff check rxpipe tests bench panel_app
	$(BIN)/ruff format --check rxpipe tests bench panel_app

typecheck: $(STAMP)
	$(BIN)/mypy

# The browser tests drive Debian's chromium (never a downloaded browser): installed when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: lint typecheck browser fresh-kernels
	$(BIN)/python -m pytest tests rxpipe panel_app; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

unit: $(STAMP) fresh-kernels
	$(BIN)/python -m pytest tests/unit rxpipe panel_app

bench: $(STAMP) fresh-kernels
	$(BIN)/python -m bench

# rxpipe's ensemble on the NAB subset, scored by ../shared/tools/nab_score.py -> bench/results/nab.json
nab: $(STAMP) fresh-kernels
	$(BIN)/python -m bench nab

# The README's screenshot, taken by the browser test against a live rxpipe.
screenshot: $(STAMP) browser
	DASHBOARD_SCREENSHOT=docs/dashboard.png $(BIN)/python -m pytest -q tests/e2e/test_dashboard.py -k loads

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
	find rxpipe -path '*__pycache__*' \( -name '*.nbi' -o -name '*.nbc' \) -delete
