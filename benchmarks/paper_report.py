"""The paper-style table of benchmarks.paper_table: rows, goals, Markdown, JSON and plots.

Kept apart from the stage runner so that the table can be rebuilt from saved results alone.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from training.io import atomic_write_text

# The paper's Table (Cityscapes, ImageNet-initialised, full resolution), for comparison only.
PAPER = {
    "teacher_r50": {"gflops": 25.9, "memory_mb": 780, "miou": 75.4},
    "r18_kd": {"gflops": 15.5, "memory_mb": 470, "miou": 73.2},
    "mnv2_kd": {"gflops": 9.1, "memory_mb": 310, "miou": 71.9},
}
LABELS = {"teacher_r50": "DeepLabv3 R50 (teacher)",
          "r18_plain": "DeepLabv3-Lite R18, no KD", "r18_kd": "DeepLabv3-Lite R18, KD",
          "mnv2_plain": "DeepLabv3-Lite MNv2, no KD", "mnv2_kd": "DeepLabv3-Lite MNv2, KD"}
GOALS = {"kd_gain": 1.0, "mnv2_gap": 3.5, "mnv2_flops_ratio": 0.35, "int8_drop": 1.0}


def _entry(entries: list[dict], precision: str) -> dict:
    return next((e for e in entries if e.get("precision") == precision), {})


def build_table(stages: list[str], rows: list[dict], exports: dict[str, list[dict]],
                timings: dict[str, dict], args) -> dict:
    """One row per training stage, in stage order, plus the goal verdicts."""
    table_rows = []
    for stage, row in zip(stages, rows, strict=True):  # evaluated in stage order
        entries = exports.get(stage, [])
        fp32, int8 = _entry(entries, "fp32"), _entry(entries, "int8")
        table_rows.append({
            "stage": stage, "label": LABELS.get(stage, stage), "model": row["model"],
            "kd": stage.endswith("_kd"), "checkpoint": row["checkpoint"],
            "epoch": row.get("epoch"), "gflops": row["gflops"], "params_m": row["params_m"],
            "peak_mem_mb": row["peak_mem_mb"], "size_mb": row["size_mb"],
            "miou": row["miou"], "mae_50": row["mae_50"], "mae_50_95": row["mae_50_95"],
            "per_class_iou": row["per_class_iou"],
            "latency_ms_torch_fp32": row["latency_ms"],
            "latency_ms_tflite_fp32": fp32.get("latency_ms"),
            "latency_ms_tflite_int8": int8.get("latency_ms"),
            "size_mb_tflite_fp32": fp32.get("size_mb"), "size_mb_tflite_int8": int8.get("size_mb"),
            "miou_tflite_int8": int8.get("miou_artifact"),
            "miou_reference_parity": int8.get("miou_reference"),
            "agreement_int8": int8.get("agreement"), "int8_passed_gate": int8.get("passed"),
            "train_wall_s": timings[stage].get("train_wall_s"),
            "train_images_per_s": _median(timings[stage].get("images_per_s") or []),
            "paper": PAPER.get(stage),
        })
    return {"dataset": args.dataset, "split": "val", "input_size": list(args.input_size),
            "epochs": {"teacher": args.teacher_epochs, "students": args.epochs},
            "batch_size": args.batch_size, "device": args.device, "threads": args.threads,
            "initialisation": "from scratch (no ImageNet weights offline)",
            "calibration_images": args.calib_count, "rows": table_rows,
            "goals": goals(table_rows)}


def _median(values: list) -> float | None:
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def goals(rows: list[dict]) -> list[dict]:
    """The issue's goals, each with the measured value and met / missed."""
    by = {row["stage"]: row for row in rows}
    teacher, verdicts = by["teacher_r50"], []
    for short in ("r18", "mnv2"):
        gain = by[f"{short}_kd"]["miou"] - by[f"{short}_plain"]["miou"]
        verdicts.append({"goal": f"{short} KD gain >= +{GOALS['kd_gain']} mIoU",
                         "value": gain, "met": gain >= GOALS["kd_gain"]})
    gap = teacher["miou"] - by["mnv2_kd"]["miou"]
    ratio = by["mnv2_kd"]["gflops"] / teacher["gflops"]
    verdicts.append({"goal": f"MNv2-Lite (KD) within {GOALS['mnv2_gap']} mIoU of the teacher",
                     "value": gap, "met": gap <= GOALS["mnv2_gap"]})
    verdicts.append({"goal": f"MNv2-Lite FLOPs <= {GOALS['mnv2_flops_ratio']}x the teacher's",
                     "value": ratio, "unit": "x", "met": ratio <= GOALS["mnv2_flops_ratio"]})
    for row in rows:
        if row["miou_tflite_int8"] is None or row["miou_reference_parity"] is None:
            continue
        # Both mIoUs come from the same parity pass (same val images, same resize).
        drop = row["miou_reference_parity"] - row["miou_tflite_int8"]
        verdicts.append({"goal": f"{row['stage']} int8 TFLite within {GOALS['int8_drop']} "
                                 f"mIoU of fp32", "value": drop, "met": drop <= GOALS["int8_drop"]})
    return verdicts


def _f(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _int8_pair(row: dict) -> str:
    """Both from the parity pass (same images, same resize), so their difference is int8's."""
    if row["miou_tflite_int8"] is None:
        return "—"
    return f"{_f(row['miou_reference_parity'])} → {_f(row['miou_tflite_int8'])}"


def markdown(table: dict) -> str:
    height, width = table["input_size"]
    lines = [f"Dataset `{table['dataset']}` ({table['split']} split), {height}x{width}, "
             f"teacher {table['epochs']['teacher']} / students {table['epochs']['students']} "
             f"epochs, batch {table['batch_size']}, {table['initialisation']}; latency on "
             f"{table['threads']} CPU threads.", "",
             "| model | GFLOPs | params (M) | peak mem (MB) | mIoU | mAE@0.5 | mAE@0.5:0.95 "
             "| fp32 ms (PyTorch) | fp32 ms (TFLite) | int8 ms (TFLite) "
             "| mIoU PyTorch fp32 → TFLite int8 | size fp32 / int8 (MB) |", "|" + "---|" * 12]
    for row in table["rows"]:
        sizes = f"{_f(row['size_mb_tflite_fp32'], 2)} / {_f(row['size_mb_tflite_int8'], 2)}" \
            if row["size_mb_tflite_fp32"] else f"{_f(row['size_mb'], 1)} (state dict)"
        lines.append(f"| {row['label']} | {_f(row['gflops'], 2)} | {_f(row['params_m'], 2)} "
                     f"| {_f(row['peak_mem_mb'], 0)} | {_f(row['miou'])} | {_f(row['mae_50'], 3)} "
                     f"| {_f(row['mae_50_95'], 3)} | {_f(row['latency_ms_torch_fp32'])} "
                     f"| {_f(row['latency_ms_tflite_fp32'])} | {_f(row['latency_ms_tflite_int8'])} "
                     f"| {_int8_pair(row)} | {sizes} |")
    lines += ["", "The paper (Cityscapes, ImageNet-initialised, full resolution):", "",
              "| model | GFLOPs | memory (MB) | mIoU |", "|---|---|---|---|"]
    lines += [f"| {LABELS[stage]} | {paper['gflops']} | {paper['memory_mb']} | {paper['miou']} |"
              for stage, paper in PAPER.items()]
    lines += ["", "| goal | measured | verdict |", "|---|---|---|"]
    lines += [f"| {goal['goal']} | " + (f"{goal['value']:.3f}x" if goal.get("unit") == "x" else
                                         f"{goal['value']:+.2f} mIoU")
              + f" | {'met' if goal['met'] else 'missed'} |" for goal in table["goals"]]
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path) -> None:
    """mIoU per student with and without KD and in int8, the teacher as a line; and mIoU
    against GFLOPs."""
    rows = {row["stage"]: row for row in table["rows"]}
    figure = Figure(figsize=(11, 4))
    bars, scatter = figure.subplots(1, 2)
    students = ("r18", "mnv2")
    for offset, (suffix, label) in enumerate((("_plain", "no KD"), ("_kd", "KD"))):
        values = [rows[s + suffix]["miou"] for s in students]
        bars.bar([i + offset * 0.27 for i in range(len(students))], values, width=0.27,
                 label=label)
    int8 = [rows[s + "_kd"]["miou_tflite_int8"] for s in students]
    if all(v is not None for v in int8):
        bars.bar([i + 0.54 for i in range(len(students))], int8, width=0.27,
                 label="KD, int8 TFLite (parity pass)")
    bars.axhline(rows["teacher_r50"]["miou"], color="k", linestyle="--", label="R50 teacher")
    bars.set_xticks([i + 0.27 for i in range(len(students))], ["ResNet-18-Lite", "MNv2-Lite"])
    bars.set_ylabel("val mIoU (%)")
    bars.set_title("what distillation and int8 change")
    bars.legend(fontsize=8)
    for index, row in enumerate(table["rows"]):
        scatter.scatter(row["gflops"], row["miou"], color=f"C{index}", s=60,
                        marker="*" if row["stage"] == "teacher_r50" else "o", label=row["label"])
    scatter.set_xscale("log")
    scatter.xaxis.set_minor_formatter(NullFormatter())  # log-axis minor labels overlap
    scatter.xaxis.set_major_formatter(ScalarFormatter())
    scatter.set_xlabel(f"GFLOPs at {table['input_size'][0]}x{table['input_size'][1]}")
    scatter.set_ylabel("val mIoU (%)")
    scatter.set_title("accuracy vs cost")
    scatter.grid(alpha=0.3)
    scatter.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")


def write(table: dict, out: Path) -> list[Path]:
    """Render everything first, then replace each file atomically: a failure leaves the
    previous table whole."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {"table.json": json.dumps(table, indent=2), "table.md": markdown(table)}
    figure = out / ".summary.png.tmp"
    plot(table, figure)
    for name, text in texts.items():
        atomic_write_text(out / name, text)
    os.replace(figure, out / "summary.png")
    return [out / name for name in (*texts, "summary.png")]
