"""Deployment table: the student on every runtime next to the teacher and LR-ASPP.

    python -m benchmarks.deployment_table --input-size 512 1024 --threads 2 \\
        --json benchmarks/results/deployment_512x1024.json

(`python -m conversion.benchmark` is the same command under its older name.)

Rows: the R50 teacher and the MobileNetV2-Lite student in PyTorch fp32, the student in ONNX
Runtime and as TFLite fp32 / fp16 / dynamic-range int8 / full int8, and torchvision's
`lraspp_mobilenet_v3_large` (random weights: only its latency and size are compared)
converted the same way. Columns: median latency of one batch-1 inference, file (or fp32
state dict) size, peak memory of one inference above the loaded model, argmax agreement with
the student's PyTorch fp32, and mIoU on held-out images of the student's dataset.
Conversions are cached under --work, so a second run only measures.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import functools
import gc
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from conversion.calibration import load_calibration, load_held_out
from conversion.onnx_export import DeployWrapper, export_onnx
from conversion.parity import Reference, compare
from conversion.pipeline import DEFAULT_CHECKPOINT, resolve_checkpoint
from conversion.runtimes import TorchRuntime, open_runtime
from conversion.tflite_export import SHIPPED, VARIANTS, WEIGHT_GRANULARITIES, convert_to_tflite
from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.errors import require_at_least_one, run_cli
from training.io import atomic_write_text, file_sha256, prepare_output_dir, prepare_output_file
from training.machine import machine_record
from training.models import build_model, validate_input_size
from training.profiling import measure_latency_ms, measure_peak_memory_mb, peak_memory_mb, \
    state_dict_size_mb

DEFAULT_TEACHER = Path("runs/quickstart_teacher/best.pth")
DEFAULT_WORK = Path(".cache/conversion_benchmark")  # its conversions, reused by the next run
GOALS = {"int8_vs_fp32_tflite_latency": 0.35, "int8_vs_teacher_latency": 0.05,
         "int8_vs_fp32_tflite_size": 0.3}


class LogitsOnly(nn.Module):
    """torchvision segmentation models return {"out": ...}; converters want one tensor."""

    def __init__(self, model: nn.Module, num_classes: int):
        super().__init__()
        self.model, self.num_classes = model.eval(), num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


def lraspp(num_classes: int) -> nn.Module:
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large
    torch.manual_seed(0)
    return LogitsOnly(lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                num_classes=num_classes), num_classes)


def teacher_from(path: Path | None, class_names: list[str]) -> tuple[nn.Module, str, bool]:
    """(teacher, where its weights come from, whether its mIoU on the student's data counts)."""
    if path is not None and path.is_file():
        checkpoint = load_checkpoint(path)
        same = list(checkpoint["dataset"]["class_names"]) == list(class_names)
        return model_from_checkpoint(checkpoint), str(path), same
    return build_model("deeplabv3_resnet50", num_classes=len(class_names)).eval(), \
        "random weights", False


def _model_from(kind: str, path: str | None, num_classes: int) -> nn.Module:
    """Picklable factory for the peak-memory probe (it runs in a spawned process)."""
    if kind == "checkpoint":
        return model_from_checkpoint(path)
    if kind == "teacher":
        return build_model("deeplabv3_resnet50", num_classes=num_classes)
    return lraspp(num_classes)


def _runtime_step(path: str, threads: int):
    """In the probe's child: open the artifact; the step is one inference."""
    from conversion.contract import prepare_input
    runtime = open_runtime(path, threads)
    height, width = runtime.frame_size
    x = prepare_input(np.zeros((1, height, width, 3), np.uint8), runtime.input_spec)
    return lambda: runtime.invoke(x)


def runtime_peak_memory_mb(path: Path, threads: int) -> float:
    return peak_memory_mb(_runtime_step, str(path), threads)


def convert_cached(model: nn.Module, work: Path, size, calibration: np.ndarray,
                   weight_granularity: str = "per-channel") -> dict:
    """ONNX + TFLite variants of `model` in `work`, reused when already there."""
    onnx_path = work / "model.onnx"
    expected = {p: work / "onnx2tf" / "tflite" / f"model_{VARIANTS[p][0]}.tflite"
                for p in SHIPPED}
    if not all(path.is_file() for path in [onnx_path, *expected.values()]):
        work.mkdir(parents=True, exist_ok=True)
        export_onnx(DeployWrapper(model), onnx_path, size)
        produced = convert_to_tflite(onnx_path, work / "onnx2tf", calibration,
                                     fold_normalization=False,
                                     weight_granularity=weight_granularity)
        expected = {p: produced[p] for p in SHIPPED}
    return {"onnx": onnx_path, **expected}


def row(name: str, runtime: str, precision: str, latency, size, peak, agreement=None,
        miou=None, note: str = "") -> dict:
    return {"model": name, "runtime": runtime, "precision": precision, "latency_ms": latency,
            "size_mb": size, "peak_memory_mb": peak, "agreement": agreement, "miou": miou,
            "note": note}


def run(*, checkpoint: Path | None = None, teacher: Path | None = DEFAULT_TEACHER,
        input_size=(512, 1024), threads: int = 2, calib: str | None = None,
        calib_count: int = 32, int8_weights: str = "per-channel", parity_data: str | None = None,
        images: int = 8, runs: int = 10, teacher_runs: int = 3,
        work: Path = DEFAULT_WORK) -> dict:
    """Measure every row (the flags of `main` have the same names) and summarize them."""
    require_at_least_one(threads=threads, calib_count=calib_count, images=images, runs=runs,
                         teacher_runs=teacher_runs)
    checkpoint_path = resolve_checkpoint(checkpoint)
    checkpoint = load_checkpoint(checkpoint_path)
    student = model_from_checkpoint(checkpoint)
    size = tuple(input_size)
    validate_input_size(size, student.output_stride)
    dataset = checkpoint["dataset"]
    num_classes = len(dataset["class_names"])
    calib_spec = calib or dataset["spec"]
    calibration = load_calibration(calib_spec, calib_count, size)
    held_out = load_held_out(parity_data or calib_spec, images, size, calibration)
    log = functools.partial(print, file=sys.stderr, flush=True)

    log(f"reference: student PyTorch fp32 on {images} held-out images at {size}")
    reference = Reference(TorchRuntime(student, size, threads)(held_out.images),
                          held_out.masks, num_classes, dataset["ignore_index"])
    key = f"{size[0]}x{size[1]}_{file_sha256(checkpoint_path)[:12]}_{calib_count}"
    key += "_per_tensor" * (int8_weights == "per-tensor")  # per-channel keeps old caches
    work = Path(work)
    log("converting the student (cached) ...")
    student_files = convert_cached(student, work / f"student_{key}", size, calibration.images,
                                   int8_weights)
    log("converting lraspp_mobilenet_v3_large (random weights, cached) ...")
    lr = lraspp(num_classes)
    lr_files = convert_cached(lr, work / f"lraspp_{size[0]}x{size[1]}_{num_classes}", size,
                              calibration.images)

    rows = []
    teacher, teacher_source, same_classes = teacher_from(teacher, dataset["class_names"])
    log(f"teacher ({teacher_source}): PyTorch fp32 latency ...")
    teacher_miou, note = None, teacher_source
    if same_classes:
        teacher_out = TorchRuntime(teacher, size, threads)(held_out.images)
        teacher_miou = compare(teacher_out, reference)["miou_artifact"]
    elif teacher_source != "random weights":
        note += " (other classes than the student: latency and size only)"
    factory = functools.partial(_model_from, "checkpoint", teacher_source, num_classes) \
        if teacher_source != "random weights" else \
        functools.partial(_model_from, "teacher", None, num_classes)
    rows.append(row("deeplabv3_resnet50 (teacher)", "pytorch", "fp32",
                    measure_latency_ms(teacher, size, threads, runs=teacher_runs, warmup=1),
                    state_dict_size_mb(teacher), measure_peak_memory_mb(factory, size, threads),
                    None, teacher_miou, note))
    del teacher
    gc.collect()

    name = student.arch["name"] + " (student)"
    log("student: PyTorch fp32 ...")
    rows.append(row(name, "pytorch", "fp32",
                    measure_latency_ms(student, size, threads, runs=runs),
                    state_dict_size_mb(student),
                    measure_peak_memory_mb(functools.partial(_model_from, "checkpoint",
                                                             str(checkpoint_path), num_classes),
                                           size, threads),
                    1.0, reference.metrics["miou"], str(checkpoint_path)))
    for label, files, measured in ((name, student_files, True),
                                   ("lraspp_mobilenet_v3_large", lr_files, False)):
        for precision, path in files.items():
            kind = "onnxruntime" if precision == "onnx" else "tflite"
            log(f"{label}: {kind} {precision} ...")
            runtime = open_runtime(path, threads)
            numbers = compare(runtime(held_out.images), reference) if measured else {}
            rows.append(row(label, kind, "fp32" if precision == "onnx" else precision,
                            runtime.latency_ms(runs=runs),
                            path.stat().st_size / 2 ** 20,
                            runtime_peak_memory_mb(path, threads), numbers.get("agreement"),
                            numbers.get("miou_artifact"),
                            "" if measured else "random weights: latency and size only"))
            del runtime
    return summarize(rows, size, threads, images, int8_weights)


def summarize(rows: list[dict], size, threads: int, images: int, int8_weights: str) -> dict:
    def pick(model_prefix, runtime, precision):
        return next(r for r in rows if r["model"].startswith(model_prefix)
                    and r["runtime"] == runtime and r["precision"] == precision)

    student = rows[1]["model"]
    int8, fp32 = pick(student, "tflite", "int8"), pick(student, "tflite", "fp32")
    teacher = rows[0]
    lraspp_rows = [r for r in rows if r["model"].startswith("lraspp") and r["runtime"] == "tflite"]
    fastest = min(lraspp_rows, key=lambda r: r["latency_ms"])
    ratios = {
        "int8_vs_fp32_tflite_latency": int8["latency_ms"] / fp32["latency_ms"],
        "int8_vs_teacher_latency": int8["latency_ms"] / teacher["latency_ms"],
        "int8_vs_fp32_tflite_size": int8["size_mb"] / fp32["size_mb"],
        "int8_vs_fastest_lraspp_tflite_latency": int8["latency_ms"] / fastest["latency_ms"],
    }
    goals = {k: {"value": ratios[k], "goal": f"<= {v}", "met": ratios[k] <= v}
             for k, v in GOALS.items()}
    goals["faster_than_every_lraspp_tflite"] = {
        "value": ratios["int8_vs_fastest_lraspp_tflite_latency"], "goal": "< 1 (stretch)",
        "met": ratios["int8_vs_fastest_lraspp_tflite_latency"] < 1,
        "fastest_lraspp": f"{fastest['precision']} {fastest['latency_ms']:.1f} ms"}
    return {"input_size": list(size), "threads": threads, "images": images,
            "int8_weights": int8_weights, **machine_record(),
            "load_average_at_end": list(os.getloadavg()),
            "rows": rows, "ratios": ratios, "goals": goals}


def markdown(result: dict) -> str:
    def fmt(value, digits=1):
        return "-" if value is None else f"{value:.{digits}f}"

    load = result["load_average_at_end"][0]
    shared = ": other jobs shared the CPU" if load > result["threads"] + 0.5 else ""
    lines = [f"Input {result['input_size'][0]}x{result['input_size'][1]}, "
             f"{result['threads']} threads, batch 1, {result['machine']} (1-min load average "
             f"at the end: {load:.1f}{shared})", "",
             "| model | runtime | precision | latency ms | size MB | peak MB | agreement | "
             "mIoU | note |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['model']} | {r['runtime']} | {r['precision']} | "
                     f"{fmt(r['latency_ms'])} | {fmt(r['size_mb'], 2)} | "
                     f"{fmt(r['peak_memory_mb'])} | {fmt(r['agreement'], 4)} | "
                     f"{fmt(r['miou'], 2)} | {r['note']} |")
    lines.append("")
    for name, goal in result["goals"].items():
        lines.append(f"- {name}: {goal['value']:.3f} (goal {goal['goal']}): "
                     f"{'met' if goal['met'] else 'NOT met'}")
    if not result.get("int8_dot_product_flags") and \
            not result["goals"]["int8_vs_fp32_tflite_latency"]["met"]:
        lines.append("- this CPU lists no int8 dot-product instructions (VNNI, dotprod), where "
                     "XNNPACK's int8 gains little over fp32; `python -m benchmarks.int8_probe` "
                     "measures the runtime's own int8 speed-up")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path,
                        help=f"the student (default {DEFAULT_CHECKPOINT})")
    parser.add_argument("--teacher", type=Path, default=DEFAULT_TEACHER,
                        help="teacher checkpoint for its mIoU; random weights when missing")
    parser.add_argument("--input-size", type=int, nargs=2, default=(512, 1024),
                        metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calib", help="calibration data (default: the student's dataset)")
    parser.add_argument("--calib-count", type=int, default=32)
    parser.add_argument("--int8-weights", choices=WEIGHT_GRANULARITIES,
                        default="per-channel",
                        help="the student's int8 weight scales (see conversion.export)")
    parser.add_argument("--parity-data", help="labelled held-out data (default: --calib)")
    parser.add_argument("--images", type=int, default=8, help="held-out images for agreement")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per row")
    parser.add_argument("--teacher-runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--json", type=Path, help="save the table as JSON")
    args = parser.parse_args(argv)
    prepare_output_dir(args.work, "--work")
    if args.json:
        prepare_output_file(args.json, "--json")
    result = run(checkpoint=args.checkpoint, teacher=args.teacher, input_size=args.input_size,
                 threads=args.threads, calib=args.calib, calib_count=args.calib_count,
                 int8_weights=args.int8_weights, parity_data=args.parity_data,
                 images=args.images, runs=args.runs, teacher_runs=args.teacher_runs,
                 work=args.work)
    print(markdown(result))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    run_cli(main)
