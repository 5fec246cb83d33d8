"""The gate: an artifact that misses its thresholds is held back, the command exits non-zero,
and what the output directory held before stays exactly as it was."""
from __future__ import annotations

import json
import os

import pytest

from conversion import export

ONNX = "deeplabv3lite_mobilenetv2_fp32.onnx"


def _export_onnx(checkpoint, out, *extra):
    return export.main(["--target", "onnx", "--checkpoint", str(checkpoint), "--parity-count",
                        "8", "--out", str(out), *extra])


def _fingerprint(path):
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, path.read_bytes()


def test_a_failing_threshold_exits_non_zero_and_leaves_the_directory_alone(
        parity_student, tmp_path):
    out = tmp_path / "artifacts"
    _export_onnx(parity_student, out)  # a passing export first
    before = {p.name: _fingerprint(p) for p in out.iterdir() if p.name != "parity.json"
              and p.name != "parity.md"}
    assert ONNX in before and ONNX + ".json" in before

    # fp32 ONNX differs from PyTorch by ~1e-6, so a zero tolerance must fail.
    with pytest.raises(SystemExit) as stopped:
        _export_onnx(parity_student, out, "--threshold", "fp32.max_abs_err=0")
    assert stopped.value.code == 1
    after = {p.name: _fingerprint(p) for p in out.iterdir() if p.name in before}
    assert after == before  # same inode, same mtime, same bytes: not replaced
    assert not [p for p in out.iterdir() if p.name.startswith(".export-")]
    artifacts = json.loads((out / "parity.json").read_text())["artifacts"]
    entry = next(e for e in artifacts if e["file"] == ONNX and not e.get("earlier_run"))
    assert entry["passed"] is False and entry["placed"] is False
    # The earlier, placed file is still there, and still listed as such.
    assert [e["passed"] for e in artifacts if e.get("earlier_run")] == [True]
    assert any("max_abs_err" in failure for failure in entry["failures"])


def test_a_failing_artifact_is_not_placed_in_a_fresh_directory(parity_student, tmp_path,
                                                               capsys):
    out = tmp_path / "fresh"
    out.mkdir()
    earlier = out / "earlier_model.tflite"
    earlier.write_bytes(b"an artifact from an earlier export")
    os.utime(earlier, ns=(1, 1))
    with pytest.raises(SystemExit) as stopped:
        _export_onnx(parity_student, out, "--threshold", "fp32.agreement=1.0",
                     "--threshold", "fp32.max_abs_err=1e-12")
    assert stopped.value.code == 1
    assert not (out / ONNX).exists() and not (out / (ONNX + ".json")).exists()
    assert earlier.read_bytes() == b"an artifact from an earlier export"
    assert earlier.stat().st_mtime_ns == 1
    assert "gate:" in capsys.readouterr().err


def test_threshold_flags_are_checked(parity_student, tmp_path, capsys):
    from training.errors import run_cli
    with pytest.raises(SystemExit) as stopped:
        run_cli(export.main, ["--target", "onnx", "--checkpoint", str(parity_student),
                              "--out", str(tmp_path / "x"), "--threshold", "int9.agreement=1"])
    assert stopped.value.code == 2
    assert "bad --threshold" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_refusal_says_whether_the_model_is_undecided_or_broken_by_quantization():
    from conversion.parity import DEFAULT_THRESHOLDS, judge
    undecided = {"precision": "int8", "agreement": 0.946, "agreement_confident": 0.998,
                 "confident_share": 0.71, "miou_drop": 0.1}
    (failure,) = judge(undecided, DEFAULT_THRESHOLDS)
    assert failure.startswith("agreement 0.9460 < 0.97 (0.9980 on the 71% of pixels where the")
    assert "undecided (undertrained), not broken by quantization" in failure
    broken = dict(undecided, agreement_confident=0.90)
    (failure,) = judge(broken, DEFAULT_THRESHOLDS)
    assert failure.endswith("quantization changed confident predictions")
    assert judge(dict(undecided, agreement=0.99), DEFAULT_THRESHOLDS) == []
