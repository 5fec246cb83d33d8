"""End to end: the parity fixture -> ONNX, TFLite, CoreML; parity re-measured here.

The export runs once per session (`exported_student`, tests/conftest.py). The tests then
reopen the artifacts
through onnxruntime and ai-edge-litert, preparing inputs only from each artifact's contract,
and check the thresholds themselves instead of trusting the exporter's report.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conversion import contract as contracts
from conversion.calibration import ImageSet, load_held_out
from conversion.parity import DEFAULT_THRESHOLDS, precision_class
from conversion.runtimes import LiteRTRuntime, OnnxRuntime
from conversion.tflite_export import SHIPPED, file_suffix
from training.checkpoint import model_from_checkpoint
from training.io import file_sha256
from tests.conftest import TINY_DATASET, TINY_INPUT_SIZE, run_suite_export

REPORT_KEYS = {"file", "target", "precision", "agreement", "max_abs_err", "miou_artifact",
               "miou_reference", "size_mb", "latency_ms", "threads", "passed",
               "per_class_iou_delta", "agreement_confident", "confident_share"}
NAME = "deeplabv3lite_mobilenetv2"
TFLITE = {precision: file_suffix(precision) for precision in SHIPPED}


@pytest.fixture(scope="module")
def held_out_frames():
    """The 16 val images the exporter also used (never calibrated on)."""
    dummy = ImageSet(np.zeros((0, 1, 1, 3), np.uint8), None)
    return load_held_out(TINY_DATASET, 16, TINY_INPUT_SIZE, dummy)


@pytest.fixture(scope="module")
def torch_logits(parity_student, held_out_frames):
    from conversion.runtimes import TorchRuntime
    model = model_from_checkpoint(parity_student)
    return TorchRuntime(model, TINY_INPUT_SIZE)(held_out_frames.images)


def test_every_artifact_is_placed_with_a_valid_contract(exported_student, parity_student):
    expected = [f"{NAME}_fp32.onnx"] + [f"{NAME}_{s}.tflite" for s in TFLITE.values()] + \
        [f"{NAME}_fp16.mlpackage", f"{NAME}_pal6.mlpackage"]
    for file in expected:
        assert (exported_student / file).exists(), file
        contract = contracts.load_contract(exported_student / file)  # validates against the schema
        assert contract["artifact"]["file"] == file
        assert contract["source"]["checkpoint_sha256"] == file_sha256(parity_student)
        assert contract["classes"]["num_classes"] == 19
        assert contract["input"]["normalization"]["mean"] == [0.485, 0.456, 0.406]
        assert contract["parity"]["passed"] is True
    assert not [p for p in exported_student.iterdir() if p.name.startswith(".export-")]


def test_parity_report_has_every_key_and_marks_everything_passed(exported_student):
    report = json.loads((exported_student / "parity.json").read_text())
    assert len(report["artifacts"]) == 7
    for entry in report["artifacts"]:
        assert REPORT_KEYS <= set(entry), entry["file"]
        assert entry["passed"] and entry["placed"]
    held_out, calibration = report["held_out"], report["calibration"]
    assert held_out["split"] == "val" and calibration["split"] == "train"  # disjoint
    markdown = (exported_student / "parity.md").read_text()
    assert "Per-class IoU delta" in markdown and f"{NAME}_int8.tflite" in markdown


@pytest.mark.parametrize("precision", list(TFLITE))
def test_tflite_runs_in_ai_edge_litert_within_thresholds(exported_student, precision,
                                                         held_out_frames, torch_logits):
    path = exported_student / f"{NAME}_{TFLITE[precision]}.tflite"
    contract = contracts.load_contract(path)
    runtime = LiteRTRuntime(path, threads=2)
    assert runtime.input_spec["layout"] == "NHWC" == contract["input"]["layout"]
    assert runtime.input_spec["shape"] == [1, *TINY_INPUT_SIZE, 3] == contract["input"]["shape"]
    # Prepare inputs from the contract alone, as an app would.
    runtime.input_spec, runtime.output_spec = contract["input"], contract["output"]
    logits = runtime(held_out_frames.images)
    agreement = float((logits.argmax(1) == torch_logits.argmax(1)).mean())
    assert agreement >= DEFAULT_THRESHOLDS[precision_class(precision)]["agreement"]
    assert agreement == pytest.approx(contract["parity"]["agreement"], abs=1e-9)
    if precision in ("fp32", "fp16"):
        assert np.abs(logits - torch_logits).max() < (1e-3 if precision == "fp32" else 5e-2)


def test_full_int8_has_int8_input_and_output_and_a_small_file(exported_student):
    contract = contracts.load_contract(exported_student / f"{NAME}_int8.tflite")
    for side in ("input", "output"):
        assert contract[side]["dtype"] == "int8"
        assert contract[side]["quantization"]["scale"] > 0
    assert contract["export"]["calibration"]["count"] == 32
    assert contract["parity"]["miou_drop"] <= DEFAULT_THRESHOLDS["int8"]["miou_drop"]
    fp32 = (exported_student / f"{NAME}_fp32.tflite").stat().st_size
    assert (exported_student / f"{NAME}_int8.tflite").stat().st_size < 0.35 * fp32


def test_onnx_has_opset_17_and_matches_in_onnxruntime(exported_student, held_out_frames,
                                                      torch_logits):
    import onnx
    path = exported_student / f"{NAME}_fp32.onnx"
    model = onnx.load(str(path))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    logits = OnnxRuntime(path, threads=2)(held_out_frames.images)
    assert np.abs(logits - torch_logits).max() < 1e-3
    assert (logits.argmax(1) == torch_logits.argmax(1)).mean() >= 0.999


def _inspect(*packages: Path) -> list[dict]:
    """The spec summaries, read in a child process (coremltools imports TensorFlow)."""
    done = subprocess.run([sys.executable, "-m", "conversion.coreml_export", "inspect",
                           *map(str, packages)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout[done.stdout.index("{"):])
    return [found[str(package)] for package in packages]


def test_coreml_spec_names_shapes_dtypes_and_compressed_weights(exported_student):
    fp16, palettized = _inspect(exported_student / f"{NAME}_fp16.mlpackage",
                                exported_student / f"{NAME}_pal6.mlpackage")
    for info, file in ((fp16, "fp16"), (palettized, "pal6")):
        contract = contracts.load_contract(exported_student / f"{NAME}_{file}.mlpackage")
        (inp,), (out,) = info["inputs"], info["outputs"]
        assert inp == {"name": "image", "kind": "image", "height": 64, "width": 128,
                       "color": "RGB"}
        assert contract["input"]["kind"] == "image"
        assert contract["input"]["image_preprocessing"]["scale"] == pytest.approx(1 / 255)
        assert out["name"] == "logits" and out["shape"] == [1, 19, 64, 128]
        assert out["dtype"] == "FLOAT16" and contract["output"]["dtype"] == "float16"
    assert set(fp16["conv_weight_storage"]) == {"float16"}
    storage = palettized["conv_weight_storage"]
    assert storage.get("lut-64", 0) >= 0.9 * sum(storage.values())  # 6 bits: 64 entries
    assert palettized["weights_bytes"] < 0.5 * fp16["weights_bytes"]


@pytest.mark.skipif(platform.system() == "Darwin", reason="on macOS parity is measured instead")
def test_coreml_numeric_parity_is_skipped_off_macos_with_the_reason(exported_student):
    contract = contracts.load_contract(exported_student / f"{NAME}_fp16.mlpackage")
    assert contract["parity"]["agreement"] is None
    assert "macOS" in contract["parity"]["skipped"]


@pytest.mark.skipif(platform.system() != "Darwin",
                    reason="CoreML MLModel.predict runs only on macOS")
def test_coreml_numeric_parity_on_macos(exported_student):
    for file in ("fp16", "pal6"):
        contract = contracts.load_contract(exported_student / f"{NAME}_{file}.mlpackage")
        limit = DEFAULT_THRESHOLDS[precision_class(contract["artifact"]["precision"])]
        assert contract["parity"]["agreement"] >= limit["agreement"]


def test_folded_normalization_and_argmax_take_pixels_and_return_a_class_map(
        parity_student, tmp_path, held_out_frames, torch_logits, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative --out, as users type it
    out = tmp_path / "folded"
    run_suite_export("folded", parity_student, Path("folded"))
    name = f"{NAME}-norm-argmax"
    int8 = contracts.load_contract(out / f"{name}_int8.tflite")
    assert int8["input"]["dtype"] == "uint8" and int8["input"]["normalization"]["in_model"]
    # Anchored calibration range: camera bytes go in unchanged (scale 1, zero point 0).
    assert int8["input"]["quantization"] == {"scale": pytest.approx(1.0, abs=1e-4),
                                             "zero_point": 0}
    assert int8["output"]["semantics"] == "class_map" and int8["output"]["dtype"] == "uint8"
    assert int8["output"]["layout"] == "NHW" and int8["output"]["shape"] == [1, 64, 128]
    assert (out / f"{name}_int16x8.tflite").is_file()
    # An app's view: raw uint8 frames in, class indices out, no mean/std anywhere.
    runtime = LiteRTRuntime(out / f"{name}_int8.tflite")
    raw = held_out_frames.images[:4]
    runtime.interpreter.set_tensor(runtime._in, raw[:1])
    runtime.interpreter.invoke()
    classes = runtime.interpreter.get_tensor(runtime._out)
    assert classes.shape == (1, 64, 128) and classes.max() < 19
    fp32 = LiteRTRuntime(out / f"{name}_fp32.tflite", normalization_in_model=True)
    agreement = (fp32(held_out_frames.images) == torch_logits.argmax(1)).mean()
    assert agreement >= 0.999
    assert torch.from_numpy(classes).long().unique().numel() >= 2
