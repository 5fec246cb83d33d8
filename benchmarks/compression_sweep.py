"""Compression sweep: which pruning or quantization buys how much speed for how much mIoU.

    python -m benchmarks.compression_sweep --checkpoint S.pth --teacher T.pth \
        --finetune-epochs 10 [--export] [--out benchmarks/results/compression_NAME]

Rows: the unpruned student; structured and unstructured pruning at each --ratios, each
KD-fine-tuned from --teacher; and QAT of the unpruned student (its PTQ counterpart is the
first row's int8 column). Each row has fp32 mIoU, simulated-int8 (PTQ) mIoU, GFLOPs, params,
fp32 weight size, gzip-compressed size (where unstructured zeros pay off), PyTorch latency, and
with --export the int8 TFLite file's size, latency and mIoU from `conversion.export` (slow:
about two minutes a model here). Writes rows.json, rows.csv and pareto.png into --out.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import csv
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import torch

from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.compression import runs
from training.errors import run_cli
from training.validation import evaluate_model
from training.models import count_parameters
from training.profiling import count_flops, measure_latency_ms, state_dict_size_mb
from training.io import atomic_write_text, prepare_output_dir


def gzip_size_mb(model) -> float:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(gzip.compress(buffer.getvalue(), 6)) / 2 ** 20


def export_int8(checkpoint: Path, out: Path) -> dict:
    """conversion.export in its own process (TensorFlow and torch.export do not mix well).

    Absolute paths: conversion.export fails on a relative --out (calibration.npy not found).
    """
    command = [sys.executable, "-m", "conversion.export", "--target", "tflite", "--checkpoint",
               str(checkpoint.resolve()), "--out", str(out.resolve()), "--calib-count", "32"]
    done = subprocess.run(command, capture_output=True, text=True)
    report = out / "parity.json"
    if not report.is_file():
        return {"tflite_error": (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
    int8 = [a for a in json.loads(report.read_text())["artifacts"] if a["precision"] == "int8"]
    if not int8:
        return {"tflite_error": "no int8 artifact"}
    return {"tflite_int8_latency_ms": int8[0]["latency_ms"], "tflite_int8_size_mb":
            int8[0]["size_mb"], "tflite_int8_miou": int8[0]["miou_artifact"],
            "tflite_int8_passed": int8[0]["passed"]}


def measure(name: str, path: Path, args) -> dict:
    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(checkpoint)
    train, val, spec = runs.loaders(checkpoint, path)
    calibration = runs.first_batches(train, 4)
    size = tuple(checkpoint["config"]["input_size"])
    row = {"variant": name, "checkpoint": str(path),
           "miou": evaluate_model(model, val, spec.num_classes, spec.ignore_index,
                                  progress=False)["miou"],
           "ptq_int8_miou": runs.int8_miou(model, calibration, val, spec),
           "pt2e_int8_miou": runs.pt2e_int8_miou(model, calibration, val, spec),
           "gflops": count_flops(model, size) / 1e9, "params_m": count_parameters(model) / 1e6,
           "size_mb": state_dict_size_mb(model), "gzip_mb": gzip_size_mb(model),
           "torch_latency_ms": measure_latency_ms(model, size, threads=args.threads)}
    if args.export:
        row.update(export_int8(path, args.out / "export" / name))
    print(json.dumps(row), file=sys.stderr)
    return row


def pareto_plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    latency = "tflite_int8_latency_ms" if all("tflite_int8_latency_ms" in r for r in rows) \
        else "torch_latency_ms"
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, x, label in ((axes[0], latency, latency.replace("_", " ")),
                           (axes[1], "gzip_mb", "weights, gzip-compressed (MB)")):
        for row in rows:
            axis.scatter(row[x], row["miou"], s=25)
            axis.annotate(row["variant"], (row[x], row["miou"]), fontsize=7)
        axis.set_xlabel(label)
        axis.set_ylabel("mIoU (fp32)")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="trained student")
    parser.add_argument("--teacher", default=None, help="KD teacher for every fine-tune")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.2, 0.4, 0.6])
    parser.add_argument("--methods", nargs="+", default=["structured", "unstructured"])
    parser.add_argument("--importance", default="l1")
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--export", action="store_true", help="int8 TFLite per row (slow)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/compression_sweep"))
    args = parser.parse_args(argv)
    prepare_output_dir(args.out, "--out")
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "checkpoints"
    teacher = args.teacher if args.finetune_epochs else None
    rows = [measure("unpruned", args.checkpoint, args)]
    for method in args.methods:
        for ratio in args.ratios:
            name = f"{method}_{ratio:g}"
            runs.prune_checkpoint(args.checkpoint, method, args.importance, ratio,
                                  finetune_epochs=args.finetune_epochs, teacher=teacher,
                                  out=work / f"{name}.pth")
            rows.append(measure(name, work / f"{name}.pth", args))
    runs.quantization_aware_training(args.checkpoint, max(args.finetune_epochs, 1),
                                     args.teacher, out=work / "qat.pth")
    rows.append(measure("qat", work / "qat.pth", args))

    size = load_checkpoint(args.checkpoint)["config"]["input_size"]
    atomic_write_text(args.out / "rows.json",
                      json.dumps({"input_size": size, "rows": rows}, indent=2))
    with open(args.out / "rows.csv", "w", newline="") as stream:
        fields = sorted({key for row in rows for key in row}, key=lambda k: (k != "variant", k))
        writer = csv.DictWriter(stream, fields)
        writer.writeheader()
        writer.writerows(rows)
    pareto_plot(rows, args.out / "pareto.png")
    print(f"wrote {args.out}/rows.json, rows.csv, pareto.png", file=sys.stderr)
    return rows


if __name__ == "__main__":
    run_cli(main)
