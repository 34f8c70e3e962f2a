# Two commands matter: `make reproduce` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Where a local copy of the real datasets may be found (one folder per registered dataset, used by
# `make data`), and the data root.
MIRROR ?= ../shared/data
export DIFFCF_DATA ?= $(CURDIR)/data
LINT   := lib tests benchmarks notebooks/*.py
# JupyterLab's settings overrides for this venv: .py notebooks open as notebooks (`make lab`).
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: setup data data-if-mirror reproduce test checkpoints notebooks sync lab lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the project with its dependencies

data: setup  ## link every registered dataset found in $(MIRROR)/<name> into $(DIFFCF_DATA) (diffcf/data/registry.py)
	$(BIN)/python -m diffcf.data.fetch --all --mirror-root $(MIRROR)

# Used by reproduce/test: assemble the datasets a mirror has and the data root lacks; silent otherwise.
data-if-mirror: setup
	@if [ -d "$(MIRROR)" ]; then \
		$(BIN)/python -m diffcf.data.fetch --all --mirror-root $(MIRROR) --if-missing; fi

reproduce: setup data-if-mirror  ## execute every notebook, print a table, write figures/RESULTS.md
	$(BIN)/python -m diffcf.reproduce

test: setup data-if-mirror  ## ruff, unit tests, jupytext pair check, nbval regression check of every notebook
	$(BIN)/ruff check $(LINT)
	$(BIN)/python -m pytest -q tests
	$(BIN)/python -m diffcf.reproduce --check-pairs
	$(BIN)/python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/*.ipynb

checkpoints: setup  ## retrain every named model and rewrite data/checkpoints + manifest
	$(BIN)/python -m diffcf.zoo train

notebooks: setup  ## re-execute the notebooks and store their outputs (the nbval reference)
	$(BIN)/python -m diffcf.reproduce --update-notebooks

sync: setup  ## after editing notebooks/*.py: update the paired .ipynb (keeps outputs)
	$(BIN)/jupytext --sync notebooks/[0-9]*.py

lab: setup  ## JupyterLab on notebooks/; a double click opens a .py source as a notebook (Jupytext)
	$(BIN)/jupytext-config --settings-file $(LAB_OVERRIDES) set-default-viewer python
	$(BIN)/jupyter lab notebooks

lint: setup  ## ruff, as `make test` runs it
	$(BIN)/ruff check $(LINT)

clean:
	rm -rf build .pytest_cache
