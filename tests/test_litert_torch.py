"""The second TFLite converter, litert-torch, end to end on the parity fixture (gate included),
its PT2E QAT path, and the upstream pitfalls it is known for.

litert-torch is an optional extra; `make test` installs it (and sets SEGKIT_REQUIRE_TOOLS=1,
so its absence fails there); elsewhere these skip with the command that installs it.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conversion import contract as contracts
from conversion import export
from conversion.parity import DEFAULT_THRESHOLDS, precision_class
from conversion.tflite_export import SHIPPED, file_suffix
from conversion.tflite_ops import op_counts
from tests.conftest import run_suite_export
from training.errors import run_cli

NAME = "deeplabv3lite_mobilenetv2"
HAVE_EXTRA = importlib.util.find_spec("litert_torch") is not None
if not HAVE_EXTRA and os.environ.get("SEGKIT_REQUIRE_TOOLS") == "1":
    raise RuntimeError("litert-torch is missing, and make test needs it: pip install -e "
                       "'.[litert]'")
needs_extra = pytest.mark.skipif(not HAVE_EXTRA, reason="the optional extra is not installed: "
                                                        "pip install -e '.[litert]'")


def _tensor_dtypes(path: Path) -> set[str]:
    from ai_edge_litert.interpreter import Interpreter
    return {np.dtype(t["dtype"]).name for t in
            Interpreter(model_path=str(path)).get_tensor_details()}


@pytest.fixture(scope="module")
def litert_export(parity_student, tmp_path_factory) -> Path:
    return run_suite_export("litert", parity_student,
                            tmp_path_factory.mktemp("litert") / "artifacts")


@needs_extra
@pytest.mark.parametrize("precision", SHIPPED)
def test_every_variant_passes_the_same_gate_with_the_same_contract(litert_export, precision):
    path = litert_export / f"{NAME}_{file_suffix(precision)}.tflite"
    contract = contracts.load_contract(path)
    assert contract["export"]["converter"]["name"] == "litert-torch"
    assert contract["export"]["converter"]["version"] == "0.10.0"
    assert contract["export"]["onnx_opset"] is None  # no ONNX hop
    assert contract["input"]["layout"] == "NHWC" and contract["output"]["layout"] == "NHWC"
    limits = DEFAULT_THRESHOLDS[precision_class(precision)]
    assert contract["parity"]["passed"] and contract["parity"]["agreement"] >= limits["agreement"]
    # Hybrid (dynamic-range) kernels are partly outside XNNPACK, from either converter.
    assert contract["export"]["xnnpack_fully_delegated"] is (precision != "dynamic-int8")
    assert contract["export"]["gpu_delegate"]["compatible"] is True


@needs_extra
def test_full_int8_has_int8_io_and_really_int8_kernels(litert_export):
    """litert-torch issue 499: an int8 recipe that leaves the model in float."""
    path = litert_export / f"{NAME}_int8.tflite"
    contract = contracts.load_contract(path)
    for side in ("input", "output"):
        assert contract[side]["dtype"] == "int8" and contract[side]["quantization"]["scale"] > 0
    assert contract["export"]["quantization"] == "per-channel PT2E static PTQ"
    assert contract["export"]["calibration"]["count"] == 32
    assert "int8" in _tensor_dtypes(path)
    ops = op_counts(path)
    assert ops["CONV_2D"] >= 40 and ops.get("QUANTIZE", 0) > 0
    assert path.stat().st_size < 0.35 * (litert_export / f"{NAME}_fp32.tflite").stat().st_size


@needs_extra
def test_no_broadcast_and_a_loadable_resize_from_either_converter(litert_export,
                                                                  exported_student):
    """ASPP's pooling branch is a bilinear resize (no BROADCAST_TO, which litert-torch's
    output failed to load with and no GPU delegate takes), and the resizes load and run
    (litert-torch issue 158: align_corners=True resizes that convert, then fail to load)."""
    from conversion.runtimes import LiteRTRuntime
    for folder in (litert_export, exported_student):
        for precision in ("fp32", "int8"):
            path = folder / f"{NAME}_{file_suffix(precision)}.tflite"
            ops = op_counts(path)
            assert "BROADCAST_TO" not in ops and ops["RESIZE_BILINEAR"] >= 1, (path, ops)
            LiteRTRuntime(path).invoke(np.zeros(contracts.load_contract(path)["input"]["shape"],
                                                np.int8 if precision == "int8" else np.float32))


@needs_extra
def test_qat_program_converts_without_calibration(parity_student, tmp_path):
    from training import quantize
    program = tmp_path / "qat.pt2"
    result = quantize.main(["--checkpoint", str(parity_student), "--mode", "qat",
                            "--converter", "litert-torch", "--finetune-epochs", "1",
                            "--out", str(program)])
    assert program.is_file() and result["qat_pt2e_int8_miou"] > 0
    out = tmp_path / "qat_export"
    # The point here is the path (no calibration, ranges from QAT), not one epoch's accuracy.
    export.main(["--target", "tflite", "--converter", "litert-torch", "--checkpoint",
                 str(parity_student), "--qat-program", str(program), "--parity-count", "8",
                 "--out", str(out), "--threshold", "int8.agreement=0",
                 "--threshold", "int8.miou_drop=100"])
    report = json.loads((out / "parity.json").read_text())
    assert report["calibration"] is None and report["reference"]["runtime"] == "pytorch-pt2e-qat"
    contract = contracts.load_contract(out / f"{NAME}_int8.tflite")
    assert contract["export"]["calibration"] is None
    assert contract["export"]["quantization"].startswith("per-channel PT2E QAT")
    assert [e["precision"] for e in report["artifacts"]] == ["int8"]


def test_bad_converter_and_a_missing_extra_are_one_line(parity_student, tmp_path, capsys,
                                                        monkeypatch):
    with pytest.raises(SystemExit) as stopped:
        export.main(["--target", "tflite", "--converter", "tflite-magic"])
    assert stopped.value.code == 2
    assert "invalid choice: 'tflite-magic'" in capsys.readouterr().err
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(SystemExit) as stopped:
        run_cli(export.main, ["--target", "tflite", "--converter", "litert-torch",
                              "--checkpoint", str(parity_student), "--out", str(tmp_path)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --converter litert-torch needs the optional extra: pip install -e " \
                  "'.[litert]'"
