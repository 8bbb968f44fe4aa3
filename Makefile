# Two commands do everything: `make pipeline` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-$(shell sha1sum requirements.txt | cut -c1-12)
PROFILE ?= default
ARGS ?=

.PHONY: venv lint test test-fast pipeline data lab strip

venv: $(STAMP)

# (Re)install only when requirements.txt changes; the .pth file puts the project root on the
# venv's path so `import lib` works from notebooks/, tests and papermill kernels alike.
$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'facial_kd_project.pth').write_text('$(CURDIR)\n')"
	@rm -f $(VENV)/.requirements-*
	@touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Everything, slow end-to-end tests included (as CI runs it).
test: lint
	$(PY) -m pytest

test-fast: lint
	$(PY) -m pytest -m "not slow"

pipeline: venv
	$(PY) -m lib.pipeline --profile $(PROFILE) $(ARGS)

data: venv
	$(PY) -m lib.data.synthetic --out data/synthetic --train 2000 --test 200 --seed 0 --workers $$(nproc)

lab: venv
	$(VENV)/bin/jupyter lab --notebook-dir=$(CURDIR)

# Remove outputs from the stored notebooks (tests fail on notebooks stored with outputs).
strip: venv
	$(VENV)/bin/jupyter nbconvert --log-level=WARN --clear-output --inplace notebooks/*.ipynb
