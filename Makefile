# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test web-demo web-deps profile preview clean-runs android-assets ios-assets

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,litert]'
	@touch $(STAMP)

# The main job on the embedded synthetic dataset: teacher -> KD student -> report -> export,
# then a 5-second overlay clip of unseen scenes in every weather, through the int8 student.
CLIP_SCENES := synthetic:size=192x384,train=0,val=0,test=25,seed=1,condition=clear+rain+fog+snow+night
demo: $(STAMP)
	$(PY) -m training.distill
	$(PY) -m conversion.export --target all
	$(PY) -m conversion.run artifacts/quickstart_student/deeplabv3lite_mobilenetv2_int8.tflite \
		--input "$(CLIP_SCENES)" --split test --fps 5 --overlays --legend --out runs/quickstart_clip

# The web demo's npm packages, exactly as package-lock.json pins them (no browser download).
web-deps:
	cd web_demo && npm ci --no-audit --no-fund

# The Kotlin core of android_demo is compiled and unit-tested with Debian's kotlinc + JUnit 4;
# the web demo runs in Debian's headless Chromium. SEGKIT_REQUIRE_TOOLS=1: a missing tool fails.
test: $(STAMP) web-deps
	@command -v kotlinc >/dev/null && test -x /usr/bin/chromium || \
		(apt-get update -q && apt-get install -y -q kotlin junit4 chromium)
	SEGKIT_REQUIRE_TOOLS=1 $(PY) -m pytest -q

# Serve web_demo/ with the newest export (make demo writes one) at http://127.0.0.1:8000.
web-demo: web-deps
	cd web_demo && node server.mjs --port 8000

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
