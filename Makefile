# Two commands on a fresh Debian machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run headless test lint system-deps benchmark-deps lock clean screenshots bundle package

run: $(STAMP)
	$(BIN)/controlroom $(ARGS)

headless: $(STAMP)
	$(BIN)/controlroom --headless $(ARGS)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen QT_API=pyside6 PYQTGRAPH_QT_LIB=PySide6 \
		$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check backend app ui tests benchmarks packaging
	$(BIN)/mypy

# The PyInstaller bundle alone (dist/controlroom/), then the tarball and the .deb with it.
bundle: $(STAMP)
	$(BIN)/python packaging/package.py bundle

package: $(STAMP)
	$(BIN)/python packaging/package.py all

system-deps:
	@bash packaging/system-deps.sh

# The peers the benchmarks measure against in the same run (sox, ffmpeg).
benchmark-deps:
	@bash packaging/system-deps.sh benchmark

$(STAMP): requirements.lock pyproject.toml packaging/system-deps.sh
	@bash packaging/system-deps.sh
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Control Room needs Python >= 3.11; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Re-pin after changing dependencies in pyproject.toml.
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -e '.[test]'
	.lockvenv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) build dist *.egg-info
