"""Bad input: one clear line on stderr, exit status 2, and nothing written."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conversion import export
from conversion.pipeline import ExportRun, ExportSettings
from training.errors import UserError, run_cli


def _fails(argv, capsys, out: Path | None = None) -> str:
    with pytest.raises(SystemExit) as stopped:
        run_cli(export.main, argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    if out is not None:
        assert not out.exists(), f"{out} was created"
    return err


def _args(checkpoint, out, *extra):
    return ["--target", "tflite", "--checkpoint", str(checkpoint), "--out", str(out),
            "--calib-count", "8", "--parity-count", "4", *extra]


def test_unknown_architecture(tmp_path, capsys):
    checkpoint = tmp_path / "alien.pth"
    torch.save({"format": 1, "model": {}, "arch": {"name": "segformer_b9", "num_classes": 19},
                "dataset": {}, "config": {}}, checkpoint)
    err = _fails(_args(checkpoint, tmp_path / "out"), capsys, tmp_path / "out")
    assert "unknown model 'segformer_b9'" in err


def test_calibration_set_smaller_than_n(parity_student, tmp_path, capsys):
    out = tmp_path / "out"
    err = _fails(_args(parity_student, out, "--calib-count", "1000"), capsys, out)
    assert "fewer than --calib-count 1000" in err and "48 images" in err


@pytest.mark.parametrize("shape, message", [
    ((8, 64, 128, 4), "4 channels"),  # RGBA frames
    ((8, 64, 128), "(N, H, W, 3)"),  # grey frames
    ((3, 64, 128, 3), "holds 3 images, fewer than --calib-count 8"),
])
def test_bad_calibration_array(parity_student, tmp_path, capsys, shape, message):
    frames = tmp_path / "frames.npy"
    np.save(frames, np.zeros(shape, np.uint8))
    out = tmp_path / "out"
    err = _fails(_args(parity_student, out, "--calib", str(frames)), capsys, out)
    assert message in err


def test_unwritable_output_directory(parity_student, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    err = _fails(_args(parity_student, blocker / "out"), capsys, blocker / "out")
    assert "not writable" in err
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_read_only_output_directory(parity_student, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    err = _fails(_args(parity_student, locked / "out"), capsys, locked / "out")
    assert "not writable" in err


def test_input_size_not_divisible_by_the_output_stride(parity_student, tmp_path, capsys):
    out = tmp_path / "out"
    err = _fails(_args(parity_student, out, "--input-size", "60", "128"), capsys, out)
    assert "not divisible by the output stride 8" in err  # the parity fixture is OS8


def test_missing_default_checkpoint_says_how_to_make_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _fails(["--target", "onnx"], capsys, tmp_path / "artifacts")
    assert "python -m training.distill" in err and "--checkpoint" in err


def test_held_out_set_smaller_than_m(parity_student, tmp_path, capsys):
    out = tmp_path / "out"
    err = _fails(_args(parity_student, out, "--parity-data",
                       "synthetic:size=64x128,train=8,val=2,test=0"), capsys, out)
    assert "2 images not used for calibration, fewer than --parity-count 4" in err


def test_held_out_data_with_other_classes(parity_student, tmp_path, capsys):
    camvid = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"
    if not camvid.is_dir():
        pytest.skip(f"no CamVid copy at {camvid}")
    out = tmp_path / "out"
    # Calibrating a Cityscapes-class model on CamVid frames is allowed; judging it on
    # CamVid labels is not.
    err = _fails(_args(parity_student, out, "--calib", f"camvid:{camvid}"), capsys, out)
    assert "has 11 classes" in err and "--parity-data" in err


@pytest.mark.parametrize("granularity", ["per-channel", "per-tensor"])
def test_int8_weight_granularity_reaches_onnx2tf(tmp_path, monkeypatch, granularity):
    """--int8-weights travels from the CLI to the onnx2tf child's quant_type."""
    from conversion import child_process, tflite_export
    settings = export.settings_from(["--target", "tflite", "--int8-weights", granularity])
    assert settings.weight_granularity == granularity
    seen = {}

    def fake_run(command, **kwargs):
        seen["command"] = command
        return type("Done", (), {"returncode": 1})()

    monkeypatch.setattr(child_process.subprocess, "run", fake_run)
    with pytest.raises(child_process.ConversionError):
        tflite_export.convert_to_tflite(tmp_path / "m.onnx", tmp_path, np.zeros((1, 8, 8, 3)),
                                        fold_normalization=False,
                                        weight_granularity=settings.weight_granularity)
    command = seen["command"]
    assert command[command.index("--quant-type") + 1] == granularity


def test_unknown_int8_weight_granularity_is_refused():
    with pytest.raises(SystemExit):
        export.build_parser().parse_args(["--target", "tflite", "--int8-weights", "per-row"])


@pytest.mark.parametrize("flags, fields", [
    (["--coreml-variants", "fp16,gold"], {"coreml_variants": ["fp16", "gold"]}),
    (["--opset", "16"], {"opset": 16}),
    (["--threads", "0"], {"threads": 0}),
    (["--threshold", "int8.agreement=2"], {"thresholds": {"int8": {"agreement": 2}}}),
    (["--qat-program", "qat.pt2"], {"qat_program": Path("qat.pt2")}),
    (["--converter", "litert-torch", "--int8-weights", "per-tensor"],
     {"converter": "litert-torch", "weight_granularity": "per-tensor"}),
])
def test_settings_built_directly_refuse_what_the_cli_refuses(tmp_path, capsys, flags, fields):
    """A benchmark that builds ExportSettings gets the CLI's error, word for word."""
    err = _fails(["--target", "tflite", *flags], capsys)
    with pytest.raises(UserError) as refused:
        ExportSettings(targets=["tflite"], **fields)
    assert err == f"error: {refused.value}"


def test_settings_changed_after_they_were_built_are_checked_again(tmp_path):
    settings = ExportSettings(targets=["onnx"], checkpoint=tmp_path / "none.pth")
    settings.coreml_variants = []
    with pytest.raises(UserError, match="--coreml-variants: unknown empty list"):
        ExportRun(settings)
