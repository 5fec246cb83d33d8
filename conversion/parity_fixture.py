"""The suite's parity fixture: a MobileNetV2-Lite student whose predictions are confident.

A parity check on an undecided model proves nothing: where fp32's top-1 and top-2 logits
almost tie, int8 rounding alone swaps them, so a barely trained model fails the int8 gate
however good the converter is, and passes it by luck on another CPU. This fixture is trained
by the project's own training code (`training.fit.run` with `RECIPE`) and committed
(tests/fixtures/parity_student.pth), so every machine tests the same weights: oneDNN picks
other convolution kernels on other CPUs (see `training/machine.py`), and the same recipe ends
with other weights on each.

How we know it is confident: `tests/test_parity_fixture.py` asserts that its confident-pixel
share on the held-out frames (`conversion.parity`: margin above a few int8 output steps)
stays above a floor that the old 8-epoch fixture did not reach, and
`python -m benchmarks.parity_margins` regenerates it under every oneDNN kernel set and several
seeds and reports how far each clears the gate (benchmarks/results/parity_margins.md).

Why output stride 8 and label smoothing: at the suite's 64x128 input an OS16 model predicts
on a 4x8 grid that is bilinearly upsampled, so every class boundary is a wide strip of near
ties. Rounding the int8 output alone (a perfect converter) flipped 0.9-1.6 % of the pixels of
OS16 fixtures however long they trained, and their full-int8 agreement ranged 0.968-0.987
with recipe and seed. OS8 halves those strips, and label smoothing 0.1 bounds the logits
(a range of about 8 instead of 17), so an int8 output step is small against the margins.
The result is decided, not accurate (val mIoU about 10): parity needs the former. The
shipped students are OS16 without smoothing; the converters treat both alike, only the
dilation rates differ.

Regenerate after changing `RECIPE` or the student's layers (a test fails until you do):

    python -m tests.parity_fixture --out tests/fixtures/parity_student.pth

This module is the recipe and the suite's exports, shared by the tests and
`benchmarks.parity_margins`; `tests/parity_fixture.py` is the command that regenerates it.
"""
from __future__ import annotations

import time
from pathlib import Path

from conversion.export_settings import TARGETS, ExportSettings
from training.io import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "parity_student.pth"
DATASET = "synthetic:size=64x128,train=48,val=16,test=16,seed=0"
INPUT_SIZE = (64, 128)
MAX_BYTES = 5 * 2 ** 20
RECIPE = {"dataset": DATASET, "input_size": list(INPUT_SIZE),
          "model": "deeplabv3lite_mobilenetv2", "output_stride": 8, "epochs": 30,
          "batch_size": 8, "lr": 5e-3, "lr_schedule": "poly", "label_smoothing": 0.1,
          "workers": 0,
          "name": "parity_fixture"}
# The exports the suite gates the fixture with (tests/conftest.py and
# benchmarks.parity_margins both run exactly these), as ExportSettings fields; each is
# measured with the gate's default thresholds.
SUITE_EXPORTS = {
    "all": {"targets": list(TARGETS), "calib_count": 32, "parity_count": 16,
            "coreml_variants": ["fp16", "palettized"], "threads": 2},
    "folded": {"targets": ["tflite"], "calib_count": 32, "parity_count": 16,
               "fold_normalization": True, "fold_argmax": True, "int16": True, "threads": 2},
    "litert": {"targets": ["tflite"], "converter": "litert-torch", "calib_count": 32,
               "parity_count": 16, "threads": 2},
}
# Keys a compact checkpoint keeps: enough to rebuild, export, evaluate and trace the model.
KEPT = ("format", "arch", "model", "dataset", "config", "epoch", "metrics")


def suite_export(name: str, checkpoint: Path, out: Path) -> ExportSettings:
    """The settings of the suite's export `name` for `checkpoint`, written to `out`."""
    return ExportSettings(**SUITE_EXPORTS[name], checkpoint=checkpoint, out=out)


def fixture_config(seed: int = 0, progress: bool = False) -> dict:
    from training.config import DEFAULTS
    return dict(DEFAULTS, **RECIPE, seed=seed, progress=progress)


def train_fixture(work: Path, seed: int = 0, progress: bool = False) -> tuple[Path, float]:
    """Train the recipe into `work`; returns (last.pth, training seconds)."""
    from training import fit
    started = time.perf_counter()
    summary = fit.run(dict(fixture_config(seed, progress), output_dir=str(work)))
    return Path(summary["last"]), time.perf_counter() - started


def compact(checkpoint: Path, out: Path) -> Path:
    """`checkpoint` without optimizer state, its floating-point tensors stored as fp16.

    fp16 halves the file (the student's fp32 weights take 8.5 MB; the suite keeps fixtures
    under MAX_BYTES). The model loads them back into fp32 parameters unchanged, so the
    fixture *is* these rounded weights: every test measures them, not the fp32 originals.
    """
    from training.checkpoint import load_checkpoint
    from training.io import atomic_save
    state = load_checkpoint(checkpoint)
    small = {key: state[key] for key in KEPT if key in state}
    small["model"] = {name: tensor.half() if tensor.is_floating_point() else tensor
                      for name, tensor in state["model"].items()}
    atomic_save(small, out)
    return out
