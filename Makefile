# Two commands matter: `make reproduce` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Where a local copy of the real datasets may be found (used by `make data`), and the data root.
MIRROR ?= ../shared/data
export DIFFCF_DATA ?= $(CURDIR)/data

.PHONY: setup data data-if-mirror reproduce test checkpoints notebooks sync lab lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the project with its dependencies

data: setup  ## link the datasets from $(MIRROR) into $(DIFFCF_DATA) in their original layout
	$(BIN)/python -m diffcf.data.fetch mnist --mirror $(MIRROR)/mnist

# Used by reproduce/test: link the data when a mirror is there and the data root lacks it.
data-if-mirror: setup
	@if [ -d "$(MIRROR)/mnist" ] && [ ! -e "$(DIFFCF_DATA)/mnist/t10k-images-idx3-ubyte.gz" ]; then \
		$(MAKE) --no-print-directory data; fi

reproduce: setup data-if-mirror  ## execute every notebook, print a table, write figures/RESULTS.md
	$(BIN)/python -m diffcf.reproduce

test: setup data-if-mirror  ## unit tests, jupytext pair check, nbval regression check of every notebook
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
