"""web_demo/ on LiteRT.js: its JS core against the golden vectors, and the page end to end in
headless Chromium on a real export of the parity fixture.

`make test` installs what these need (`apt-get install chromium`, `npm ci` in web_demo/) and
sets SEGKIT_REQUIRE_TOOLS=1, so a missing tool fails there with the command that installs it;
run by hand without them, the tests skip with that command as the reason.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conversion import apps
from conversion.contract import load_contract
from conversion.runtimes import LiteRTRuntime, TorchRuntime
from training.checkpoint import model_from_checkpoint

WEB = Path(__file__).resolve().parents[1] / "web_demo"
CHROMIUM = os.environ.get("SEGKIT_CHROMIUM", "/usr/bin/chromium")
NAME = "deeplabv3lite_mobilenetv2"


def _need(available: bool, what: str) -> None:
    if available:
        return
    if os.environ.get("SEGKIT_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{what} is missing, and make test needs it")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="module")
def node() -> str:
    _need(shutil.which("node") is not None, "node (Node.js 20+)")
    _need((WEB / "node_modules" / "@litertjs" / "core").is_dir(),
          "web_demo/node_modules (run `npm ci` in web_demo/)")
    return shutil.which("node")


def test_js_core_reproduces_the_golden_vectors_bit_for_bit(node):
    done = subprocess.run([node, "--test", "tests/"], cwd=WEB, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 6" in done.stdout


@pytest.fixture(scope="module")
def browser_run(node, exported_student, tmp_path_factory):
    _need(Path(CHROMIUM).exists(), f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    out = tmp_path_factory.mktemp("web")
    frame = apps.GOLDEN_DIR / "input_rgb.u8"
    files = [f"{NAME}_fp32.tflite", f"{NAME}_int8.tflite"]
    done = subprocess.run(
        [node, "tests/browser.mjs", "--models", str(exported_student), "--frame", str(frame),
         "--files", ",".join(files), "--out", str(out / "result.json"),
         "--screenshot", str(out / "page.png"), "--sample", "street_0_clear.png"],
        cwd=WEB, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    pixels = np.frombuffer(frame.read_bytes(), np.uint8).reshape(1, 64, 128, 3)
    return json.loads((out / "result.json").read_text()), pixels, out


def test_the_page_loads_without_console_errors(browser_run):
    result, _, out = browser_run
    assert result["ready"] is True and result["errors"] == []
    assert result["console"]["error"] == []
    assert result["crossOriginIsolated"] is True
    assert (out / "page.png").stat().st_size > 10_000  # the screenshot of a segmented frame


def test_int8_class_map_is_identical_to_ai_edge_litert(browser_run, exported_student):
    result, pixels, _ = browser_run
    path = exported_student / f"{NAME}_int8.tflite"
    runtime = LiteRTRuntime(path, threads=1)
    runtime.input_spec, runtime.output_spec = (load_contract(path)[k] for k in
                                               ("input", "output"))
    python = runtime(pixels).argmax(1)[0].ravel()
    browser = np.array(result["models"][path.name]["classes"])
    assert browser.shape == python.shape
    np.testing.assert_array_equal(browser, python)
    assert len(np.unique(browser)) >= 3


def test_fp32_agrees_with_pytorch(browser_run, exported_student, parity_student):
    result, pixels, _ = browser_run
    torch_classes = TorchRuntime(model_from_checkpoint(parity_student), (64, 128))(pixels)
    browser = np.array(result["models"][f"{NAME}_fp32.tflite"]["classes"])
    assert (browser == torch_classes.argmax(1)[0].ravel()).mean() >= 0.999


def test_webgpu_is_asked_for_and_falls_back_to_wasm_here(browser_run):
    result, _, _ = browser_run
    for model in result["models"].values():
        assert model["backend"] == "wasm" and model["webgpu_request"] == {"backend": "wasm"}


def test_the_page_says_so_for_another_schema_version_or_no_model(node, exported_student,
                                                                 tmp_path):
    _need(Path(CHROMIUM).exists(), f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    future = tmp_path / "future"
    future.mkdir()
    model = f"{NAME}_int8.tflite"
    shutil.copy(exported_student / model, future / model)
    contract = json.loads((exported_student / f"{model}.json").read_text())
    (future / f"{model}.json").write_text(json.dumps(dict(contract, schema_version=2)))
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, files in ((future, model), (empty, "")):
        out = tmp_path / f"{folder.name}.json"
        done = subprocess.run([node, "tests/browser.mjs", "--models", str(folder), "--files",
                               files, "--out", str(out)], cwd=WEB, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(out.read_text())
        if folder is future:
            assert "contract schema version 2; this page reads version 1" in \
                result["models"][model]["error"]
        else:
            assert "no model in the export folder" in result["status"]
