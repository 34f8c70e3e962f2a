# Two commands matter: `make reproduce` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Where an unpacked copy of the real datasets may be found (used by `make data`).
MIRROR ?= ../shared/data

.PHONY: setup reproduce test unit pairs nbval checkpoints notebooks sync lab lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the project with its dependencies

reproduce: setup  ## execute every notebook, print a table, write figures/RESULTS.md
	$(BIN)/python -m diffcf.reproduce

test: setup  ## unit tests, jupytext pair check, nbval regression check of every notebook
	$(BIN)/python -m pytest -q tests
	$(BIN)/python -m diffcf.reproduce --check-pairs
	$(BIN)/python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/*.ipynb

checkpoints: setup  ## retrain every named model and rewrite data/checkpoints + manifest
	$(BIN)/python -m diffcf.zoo train

notebooks: setup  ## re-execute the notebooks and store their outputs (the nbval reference)
	$(BIN)/python -m diffcf.reproduce --update-notebooks

sync: setup  ## after editing notebooks/*.py: update the paired .ipynb (keeps outputs)
	$(BIN)/jupytext --sync notebooks/[0-9]*.py

lab: setup
	$(BIN)/jupyter lab notebooks

lint: setup
	$(BIN)/ruff check lib tests benchmarks notebooks/*.py

clean:
	rm -rf build .pytest_cache
