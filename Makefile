# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test profile preview clean-runs android-assets ios-assets

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The main job on the embedded synthetic dataset: teacher -> KD student -> report -> export.
demo: $(STAMP)
	$(PY) -m training.distill
	$(PY) -m conversion.export --target all

# The Kotlin core of android_demo is compiled and unit-tested with Debian's kotlinc + JUnit 4.
test: $(STAMP)
	@command -v kotlinc >/dev/null || (apt-get update -q && apt-get install -y -q kotlin junit4)
	$(PY) -m pytest -q

# Copy the newest export (and its contract) into the demo apps.
android-assets: $(STAMP)
	$(PY) -m conversion.apps android

ios-assets: $(STAMP)
	$(PY) -m conversion.apps ios

profile: $(STAMP)
	$(PY) -m training.profile --input-size 512 1024 --json benchmarks/results/profile_512x1024.json

preview: $(STAMP)
	$(PY) -m training.data.preview --out docs/synthetic_preview.png

clean-runs:
	rm -rf runs artifacts
