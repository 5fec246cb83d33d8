"""Hostile and mistaken input (issue 26), Python side: each defect is numbered as in the issue.

B13 a .pt2 that runs code when loaded, B12 a QAT program of another model, B11 files that are
no program at all, B10 non-finite weights, B2/B3 a contract that disagrees with its model,
B6 Ctrl-C while the imports run, and the smaller items. Every refusal is one line and exit 2,
with nothing written. (The web server's cases are in test_hostile_input_server.py.)
"""
from __future__ import annotations

import ast
import hashlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conversion import export, export_settings, run
from conversion import contract as contracts
from conversion.parity_fixture import INPUT_SIZE
from training.errors import run_cli

ROOT = Path(__file__).resolve().parents[1]
NAME = "deeplabv3lite_mobilenetv2"
FRAMES = "synthetic:size=64x128,train=0,val=0,test=2,seed=3"


def _one_line_exit_2(capsys, main, argv) -> str:
    with pytest.raises(SystemExit) as stopped:
        run_cli(main, argv)
    err = capsys.readouterr().err.strip()
    assert stopped.value.code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


# ---- QAT programs: B13, B12, B11 ---------------------------------------------------------

class _Marker:
    """Unpickling this creates `path`: the proof that a load ran code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _tiny_program(size=INPUT_SIZE, classes: int = 19):
    model = torch.nn.Conv2d(3, classes, 1).eval()
    return torch.export.export(model, (torch.zeros(1, 3, *size),))


def _recorded_program(path: Path, checkpoint: Path, size=INPUT_SIZE) -> Path:
    """A program whose record names `checkpoint`, as training.quantize writes it
    (training.compression.programs.save_program; spelled out here so that the hostile
    programs below are the same files on a commit without that module)."""
    record = {"format": 1, "kind": "pt2e-qat", "checkpoint": str(checkpoint),
              "checkpoint_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
              "input_size": list(size), "num_classes": 19}
    torch.export.save(_tiny_program(size), str(path),
                      extra_files={"segkit_program.json": json.dumps(record)})
    return path


def _rewrite(path: Path, change) -> None:
    """Rewrite members of the zip at `path`: change(relative name, bytes) -> bytes."""
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            archive.writestr(name, change(name.split("/", 1)[1], data))


def _pickled_weight(marker: Path):
    def change(name: str, data: bytes) -> bytes:
        if name.endswith("_weights_config.json"):
            config = json.loads(data)
            for meta in config["config"].values():
                meta["use_pickle"] = True
            return json.dumps(config).encode()
        if name.startswith("data/weights/weight_"):
            buffer = io.BytesIO()
            torch.save(_Marker(marker), buffer)
            return buffer.getvalue()
        return data
    return change


def _pickled_sample_inputs(marker: Path):
    def change(name: str, data: bytes) -> bytes:
        if name.startswith("data/sample_inputs/"):
            buffer = io.BytesIO()
            torch.save((_Marker(marker),), buffer)
            return buffer.getvalue()
        return data
    return change


def _export_qat(program: Path, checkpoint: Path, out: Path, *extra) -> list[str]:
    return ["--target", "tflite", "--converter", "litert-torch", "--checkpoint",
            str(checkpoint), "--qat-program", str(program), "--parity-count", "4",
            "--out", str(out), *extra]


@pytest.fixture
def no_extra_needed(monkeypatch):
    """The refusals come before litert-torch is used; they hold without the extra too."""
    monkeypatch.setattr(export_settings, "require_litert_torch", lambda: "0")


@pytest.mark.parametrize("craft", [_pickled_weight, _pickled_sample_inputs])
def test_b13_a_pt2_that_runs_code_is_refused_before_anything_is_unpickled(
        craft, parity_student, tmp_path, capsys, no_extra_needed):
    marker = tmp_path / "pwned"
    program = _recorded_program(tmp_path / "evil.pt2", parity_student)
    _rewrite(program, craft(marker))  # torch.export.load alone creates the marker
    with pytest.raises(BaseException) as stopped:
        run_cli(export.main, _export_qat(program, parity_student, tmp_path / "out"))
    assert not marker.exists(), "the program ran code"
    err = capsys.readouterr().err.strip()
    assert stopped.type is SystemExit and stopped.value.code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "--qat-program" in err
    assert not (tmp_path / "out").exists()


def test_b13_a_graph_that_calls_anything_but_operators_is_refused(parity_student, tmp_path):
    from training.compression.programs import ProgramError, load_program
    program = _recorded_program(tmp_path / "evil.pt2", parity_student)

    def change(name: str, data: bytes) -> bytes:
        return data.replace(b'"torch.ops.aten.conv2d.default"', b'"torch.os.system"') \
            if name.startswith("models/") else data
    _rewrite(program, change)
    with pytest.raises(ProgramError, match="a call of torch.os.system"):
        load_program(program, checkpoint=parity_student)


def test_b12_a_program_of_another_model_is_refused(parity_student, tmp_path, capsys,
                                                   no_extra_needed):
    unrecorded = tmp_path / "conv.pt2"
    torch.export.save(_tiny_program(), str(unrecorded))  # not written by training.quantize
    err = _one_line_exit_2(capsys, export.main,
                           _export_qat(unrecorded, parity_student, tmp_path / "out"))
    assert "does not record the checkpoint it was trained from" in err
    other = tmp_path / "other.pth"
    other.write_bytes(parity_student.read_bytes() + b"\0")  # another file, another sha256
    foreign = _recorded_program(tmp_path / "foreign.pt2", other)
    err = _one_line_exit_2(capsys, export.main,
                           _export_qat(foreign, parity_student, tmp_path / "out"))
    assert f"was trained from {other}" in err and f"not from --checkpoint {parity_student}" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("make, message", [
    (lambda path, ckpt: path.write_bytes(b""), "not a torch.export program"),
    (lambda path, ckpt: path.write_text("hello\n"), "not a torch.export program"),
    (lambda path, ckpt: path.write_bytes(
        _recorded_program(path, ckpt).read_bytes()[:5000]), "not a torch.export program"),
    (lambda path, ckpt: shutil.copyfile(ckpt, path), "is a torch.save file"),
    (lambda path, ckpt: _recorded_program(path, ckpt, (32, 64)),
     "was exported at 32x64, not at the export's 64x128"),
])
def test_b11_files_that_are_no_program_for_this_export_are_one_line(
        make, message, parity_student, tmp_path, capsys, no_extra_needed):
    program = tmp_path / "x.pt2"
    make(program, parity_student)
    err = _one_line_exit_2(capsys, export.main,
                           _export_qat(program, parity_student, tmp_path / "out"))
    assert message in err
    assert not (tmp_path / "out").exists()


def test_the_record_written_by_save_program_is_the_one_spelled_out_here(parity_student,
                                                                       tmp_path):
    from training.compression.programs import inspect_program, save_program
    save_program(_tiny_program(), tmp_path / "a.pt2", parity_student, INPUT_SIZE, 19)
    _recorded_program(tmp_path / "b.pt2", parity_student)
    assert inspect_program(tmp_path / "a.pt2", parity_student, INPUT_SIZE, 19) == \
        inspect_program(tmp_path / "b.pt2", parity_student, INPUT_SIZE, 19)


def test_b11_damaged_tensor_data_is_one_line(parity_student, tmp_path, capsys):
    from training.compression.programs import ProgramError, load_program
    program = _recorded_program(tmp_path / "x.pt2", parity_student)
    _rewrite(program, lambda name, data: data[:3] if name == "data/weights/weight_0" else data)
    with pytest.raises(ProgramError, match="cannot load --qat-program"):
        load_program(program, checkpoint=parity_student)


# ---- checkpoints: B10, unknown format, the pickle message ---------------------------------

def _edited_checkpoint(source: Path, path: Path, edit) -> Path:
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    edit(checkpoint)
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_b10_non_finite_weights_are_named_before_converting(parity_student, tmp_path, capsys,
                                                            value):
    def poison(checkpoint):
        name = next(k for k, v in checkpoint["model"].items() if v.is_floating_point())
        checkpoint["model"][name].view(-1)[0] = value
    path = _edited_checkpoint(parity_student, tmp_path / "diverged.pth", poison)
    err = _one_line_exit_2(capsys, export.main, ["--target", "onnx", "--checkpoint", str(path),
                                                 "--parity-count", "4",
                                                 "--out", str(tmp_path / "out")])
    assert f"checkpoint {path} has non-finite weights (NaN or Inf)" in err
    assert "contract" not in err and not (tmp_path / "out").exists()


def test_a_checkpoint_of_an_unknown_format_is_refused(parity_student, tmp_path, capsys):
    path = _edited_checkpoint(parity_student, tmp_path / "future.pth",
                              lambda checkpoint: checkpoint.update(format=7))
    err = _one_line_exit_2(capsys, export.main, ["--target", "onnx", "--checkpoint", str(path),
                                                 "--parity-count", "4",
                                                 "--out", str(tmp_path / "out")])
    assert "has format 7; this version of segkit reads format 1 only" in err
    assert not (tmp_path / "out").exists()


def test_the_refusing_checkpoint_message_is_whole_and_names_the_global(tmp_path):
    from training.checkpoint import load_checkpoint
    from training.errors import UserError
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "arch": {}, "payload": _Marker(tmp_path / "pwned")}, path)
    with pytest.raises(UserError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert "(it refers to io.open)" in message
    assert message.endswith("holds only tensors and plain values")
    assert not (tmp_path / "pwned").exists()


# ---- contracts against their models: B2, B3 ------------------------------------------------

@pytest.fixture(scope="module")
def onnx_export(parity_student, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "artifacts"
    export.main(["--target", "onnx", "--checkpoint", str(parity_student), "--parity-count",
                 "4", "--out", str(out)])
    return out / f"{NAME}_fp32.onnx"


def _copy_with_contract(artifact: Path, folder: Path, edit=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / artifact.name
    shutil.copyfile(artifact, copy)
    contract = json.loads(contracts.contract_path(artifact).read_text())
    if edit:
        edit(contract)
    contracts.contract_path(copy).write_text(json.dumps(contract))
    return copy


def _run_args(model: Path, out: Path, *extra) -> list[str]:
    return [str(model), "--input", FRAMES, "--split", "test", "--no-video", "--masks",
            "--out", str(out), *extra]


def _five_classes(contract: dict) -> None:
    contract["classes"].update(num_classes=5, names=contract["classes"]["names"][:5],
                               palette=contract["classes"]["palette"][:5])
    contract["output"]["shape"][1] = 5


def _smaller_input(contract: dict) -> None:
    contract["input"]["shape"][2:] = [32, 64]
    contract["export"]["input_size"] = [32, 64]


@pytest.mark.parametrize("edit, message", [
    (_five_classes, "output shape [1, 5, 64, 128], the model's is [1, 19, 64, 128]"),
    (_smaller_input, "input shape [1, 3, 32, 64], the model's is [1, 3, 64, 128]"),
])
def test_b2_b3_a_contract_that_disagrees_with_its_model_is_refused(onnx_export, tmp_path,
                                                                   capsys, edit, message):
    model = _copy_with_contract(onnx_export, tmp_path / "edited", edit)
    err = _one_line_exit_2(capsys, run.main, _run_args(model, tmp_path / "out"))
    assert f"model contract {contracts.contract_path(model)} does not describe" in err
    assert message in err
    assert not (tmp_path / "out").exists()
    good = _copy_with_contract(onnx_export, tmp_path / "good")  # the same through --compare
    err = _one_line_exit_2(capsys, run.main, _run_args(good, tmp_path / "out", "--compare",
                                                       str(model)))
    assert str(contracts.contract_path(model)) in err and message in err
    assert not (tmp_path / "out").exists()


def test_b2_a_swapped_model_file_is_refused_by_its_recorded_sha256(onnx_export, tmp_path,
                                                                   capsys):
    import onnx
    from onnx import numpy_helper
    model = _copy_with_contract(onnx_export, tmp_path / "swapped")
    graph = onnx.load(str(model))
    weight = max(graph.graph.initializer, key=lambda t: np.prod(t.dims))
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
    onnx.save(graph, str(model))  # the same input and output, other weights
    err = _one_line_exit_2(capsys, run.main, _run_args(model, tmp_path / "out"))
    assert f"{model} is not the model its contract {model.name}.json describes" in err
    assert not (tmp_path / "out").exists()
    assert "is not the model its contract" in _one_line_exit_2(capsys, contracts.main,
                                                                [str(model)])


def test_the_unedited_contract_still_runs(onnx_export, tmp_path):
    model = _copy_with_contract(onnx_export, tmp_path / "good")
    summary = run.main(_run_args(model, tmp_path / "out"))
    assert summary["frames"] == 2 and len(list((tmp_path / "out" / "masks").iterdir())) == 2


# ---- B6: Ctrl-C while an entry point imports ----------------------------------------------

def _entry_modules() -> list[Path]:
    found = []
    for package in ("training", "conversion"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if 'if __name__ == "__main__":' in path.read_text():
                found.append(path)
    return found


@pytest.mark.parametrize("path", _entry_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_b6_every_entry_point_guards_ctrl_c_before_its_first_project_import(path):
    """`exit_130_on_interrupt(__name__)` runs before any import but the standard library's."""
    body = ast.parse(path.read_text()).body
    for statement in body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) and \
                getattr(statement.value.func, "id", None) == "exit_130_on_interrupt":
            assert [a.id for a in statement.value.args if isinstance(a, ast.Name)] == \
                ["__name__"]
            return
        if isinstance(statement, ast.ImportFrom) and statement.module in (
                "__future__", "training.errors"):
            continue
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            pytest.fail(f"{path.name} imports {ast.unparse(statement)!r} before "
                        f"exit_130_on_interrupt(__name__)")
    pytest.fail(f"{path.name} never calls exit_130_on_interrupt(__name__)")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("module", ["conversion.export", "conversion.run", "training.train"])
def test_b6_ctrl_c_during_the_imports_is_one_line_and_exit_130(module):
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:  # torch is being imported
        try:
            if "libtorch_cpu" in Path(f"/proc/{process.pid}/maps").read_text():
                break
        except OSError:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err.strip() == "interrupted", (process.returncode, err)


# ---- the smaller items ----------------------------------------------------------------------

def test_refused_runs_leave_no_empty_run_folder(parity_student, tmp_path, capsys):
    from training import distill, incremental, train
    tiny = ["--input-size", "64", "128", "--batch-size", "2", "--workers", "0",
            "--no-progress"]
    _one_line_exit_2(capsys, train.main, ["--dataset", f"folder:{tmp_path / 'none'}", *tiny,
                                          "--output-dir", str(tmp_path / "runs"),
                                          "--name", "refused"])
    _one_line_exit_2(capsys, distill.main, ["--dataset", "synthetic", *tiny, "--teacher",
                                            str(tmp_path / "missing.pth"), "--output-dir",
                                            str(tmp_path / "runs"), "--name", "refused"])
    _one_line_exit_2(capsys, incremental.main, ["--checkpoint", str(parity_student),
                                                "--new-data", f"folder:{tmp_path / 'none'}",
                                                "--method", "finetune",
                                                "--out", str(tmp_path / "runs" / "step")])
    assert not (tmp_path / "runs").exists()


def test_read_only_frames_resize_without_a_warning():
    from training.data.transforms import resize_frames
    frames = np.zeros((1, 32, 64, 3), np.uint8)
    frames.flags.writeable = False  # as decoded images often are
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resize_frames(frames, (16, 32)).shape == (1, 16, 32, 3)


def test_parity_md_names_the_qat_program_as_the_reference():
    from conversion.parity import render_markdown
    report = {"checkpoint": "s.pth", "held_out": {"count": 4}, "input_size": [64, 128],
              "reference": {"runtime": "pytorch-pt2e-qat", "confidence_level": 0.1},
              "artifacts": [], "thresholds": {}}
    text = render_markdown(report, ["a", "b"])
    assert "Reference: the PT2E QAT program in PyTorch" in text and "fp32" not in text
    report["reference"]["runtime"] = "pytorch-fp32"
    assert "Reference: PyTorch fp32 on 4 held-out images" in render_markdown(report, ["a"])
