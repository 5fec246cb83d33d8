# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test profile preview clean-runs

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The main job on the embedded synthetic dataset: teacher -> KD student -> report.
demo: $(STAMP)
	$(PY) -m training.distill

test: $(STAMP)
	$(PY) -m pytest -q

profile: $(STAMP)
	$(PY) -m training.profile --input-size 512 1024 --json benchmarks/results/profile_512x1024.json

preview: $(STAMP)
	$(PY) -m training.data.preview --out docs/synthetic_preview.png

clean-runs:
	rm -rf runs artifacts
