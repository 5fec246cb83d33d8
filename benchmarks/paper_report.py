"""The paper-style table of benchmarks.paper_table: rows, seeds, goals, Markdown, JSON, plots.

Kept apart from the stage runner so that the table can be rebuilt from saved results alone
(`python -m benchmarks.paper_report benchmarks/results/paper_table/table.json` re-renders
table.md and summary.png). The students are summarised over seeds as mean ± sd, with the KD
gain paired per seed (benchmarks.seed_stats).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from matplotlib.figure import Figure

from benchmarks.seed_stats import format_interval, format_mean_sd, mean_sd, paired_gain
from training.io import atomic_write_text
from training.errors import run_cli

# The paper's Table (Cityscapes, ImageNet-initialised, full resolution), for comparison only.
PAPER = {"teacher": {"gflops": 25.9, "memory_mb": 780, "miou": 75.4},
         "r18": {"gflops": 15.5, "memory_mb": 470, "miou": 73.2},
         "mnv2": {"gflops": 9.1, "memory_mb": 310, "miou": 71.9}}
STUDENTS = {"r18": "DeepLabv3-Lite R18", "mnv2": "DeepLabv3-Lite MNv2"}
GOALS = {"kd_gain": 1.0, "teacher_gap": 5.0, "mnv2_gap": 3.5, "mnv2_flops_ratio": 0.35,
         "int8_drop": 1.0}
METRICS = ("miou", "mae_50", "mae_50_95")


def _entry(entries: list[dict], precision: str) -> dict:
    return next((e for e in entries if e.get("precision") == precision), {})


def stage_row(name: str, stage: dict, row: dict, entries: list[dict], done: dict) -> dict:
    fp32, int8 = _entry(entries, "fp32"), _entry(entries, "int8")
    config = done["config"]
    return {
        "stage": name, "role": stage["role"], "student": stage.get("student"),
        "seed": stage.get("seed"), "kd": stage["distill"], "alpha": stage.get("alpha"),
        "temperature": stage.get("temperature"), "schedule": config["lr_schedule"],
        "bf16": config["bf16"], "channels_last": config["channels_last"],
        "model": row["model"], "checkpoint": row["checkpoint"], "epoch": row.get("epoch"),
        "gflops": row["gflops"], "params_m": row["params_m"], "peak_mem_mb": row["peak_mem_mb"],
        "size_mb": row["size_mb"], "miou": row["miou"], "mae_50": row["mae_50"],
        "mae_50_95": row["mae_50_95"], "per_class_iou": row["per_class_iou"],
        "latency_ms_torch_fp32": row["latency_ms"],
        "latency_ms_tflite_fp32": fp32.get("latency_ms"),
        "latency_ms_tflite_int8": int8.get("latency_ms"),
        "size_mb_tflite_fp32": fp32.get("size_mb"), "size_mb_tflite_int8": int8.get("size_mb"),
        "miou_tflite_int8": int8.get("miou_artifact"),
        "miou_reference_parity": int8.get("miou_reference"),
        "agreement_int8": int8.get("agreement"), "int8_passed_gate": int8.get("passed"),
        "train_wall_s": done.get("train_wall_s"), "stage_wall_s": done.get("stage_wall_s"),
        "train_images_per_s": _median(done.get("images_per_s") or []),
        "val_miou_per_epoch": done.get("val_miou_per_epoch"),
    }


def summarize_seeds(rows: list[dict]) -> dict:
    """Per student: mean ± sd of each metric with and without KD, and the paired KD gain."""
    summary = {}
    for short in STUDENTS:
        runs = {kd: sorted((r for r in rows if r["role"] == "student" and r["student"] == short
                            and r["kd"] == kd), key=lambda r: r["seed"]) for kd in (False, True)}
        if not runs[False]:
            continue
        seeds = [r["seed"] for r in runs[False]]
        assert seeds == [r["seed"] for r in runs[True]], (short, seeds)
        summary[short] = {
            "seeds": seeds,
            "plain": {m: mean_sd([r[m] for r in runs[False]]) for m in METRICS},
            "kd": {m: mean_sd([r[m] for r in runs[True]]) for m in METRICS},
            "kd_gain": paired_gain([r["miou"] for r in runs[True]],
                                   [r["miou"] for r in runs[False]]),
        }
    return summary


def build_table(stages: dict, rows: list[dict], exports: dict[str, list[dict]],
                done: dict[str, dict], args, extra: dict) -> dict:
    """Every stage's row, the seed summary, the schedule comparison, the KD grid, the goals."""
    table_rows = [stage_row(name, stage, row, exports.get(name, []), done[name])
                  for (name, stage), row in zip(stages.items(), rows, strict=True)]
    teachers = [r for r in table_rows if r["role"] == "teacher"]
    study_teacher = next(r for r, (_, s) in zip(table_rows, stages.items())
                         if s["role"] == "teacher" and s["study"])
    wall = [r["stage_wall_s"] or 0.0 for r in table_rows if r["role"] != "grid"
            and (r["role"] == "student" or r is study_teacher)]
    study_wall = sum(wall) + (extra.get("evaluation_wall_s") or 0.0) + \
        sum(v or 0.0 for v in extra.get("export_wall_s", {}).values())
    table = {"dataset": args.dataset, "split": "val", "input_size": list(args.input_size),
             "epochs": {"teacher": args.teacher_epochs, "students": args.epochs},
             "seeds": args.seeds, "schedule": args.schedule, "batch_size": args.batch_size,
             "device": args.device, "threads": args.threads, "bf16_requested": args.bf16,
             "bf16_used": study_teacher["bf16"],
             "initialisation": "from scratch (no ImageNet weights offline)",
             "calibration_images": args.calib_count, **extra,
             "study_wall_s": study_wall,
             "teacher": study_teacher["stage"], "rows": table_rows,
             "schedules": [{"schedule": r["schedule"], "miou": r["miou"], "stage": r["stage"],
                            "val_miou_per_epoch": r["val_miou_per_epoch"],
                            "train_wall_s": r["train_wall_s"]} for r in teachers],
             "seed_summary": summarize_seeds(table_rows),
             "kd_grid": [{"student": r["student"], "alpha": r["alpha"],
                          "temperature": r["temperature"], "miou": r["miou"]}
                         for r in table_rows if r["kd"] and r["seed"] == 0
                         and r["student"] == getattr(args, "kd_grid", None)]}
    table["goals"] = goals(table)
    return table


def _median(values: list) -> float | None:
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def goals(table: dict) -> list[dict]:
    """The issues' goals, each with the measured value and met / missed."""
    by = {row["stage"]: row for row in table["rows"]}
    teacher, verdicts = by[table["teacher"]], []
    for short, summary in table["seed_summary"].items():
        gain = summary["kd_gain"]
        low = gain["ci_low"]
        verdicts.append({"goal": f"{short} paired KD gain >= +{GOALS['kd_gain']} mIoU, 95 % "
                                 f"interval above 0", "value": gain["mean"], "ci_low": low,
                         "met": gain["mean"] >= GOALS["kd_gain"] and low is not None and low > 0})
        best = max(summary["plain"]["miou"]["mean"], summary["kd"]["miou"]["mean"])
        gap = teacher["miou"] - best
        verdicts.append({"goal": f"teacher >= {short} + {GOALS['teacher_gap']} mIoU",
                         "value": gap, "met": gap >= GOALS["teacher_gap"]})
    if "mnv2" in table["seed_summary"]:
        mnv2 = table["seed_summary"]["mnv2"]["kd"]["miou"]["mean"]
        verdicts.append({"goal": f"MNv2-Lite (KD) within {GOALS['mnv2_gap']} mIoU of the "
                                 f"teacher", "value": teacher["miou"] - mnv2,
                         "met": teacher["miou"] - mnv2 <= GOALS["mnv2_gap"]})
        student = next(r for r in table["rows"] if r["student"] == "mnv2")
        ratio = student["gflops"] / teacher["gflops"]
        verdicts.append({"goal": f"MNv2-Lite FLOPs <= {GOALS['mnv2_flops_ratio']}x the "
                                 f"teacher's", "value": ratio, "unit": "x",
                         "met": ratio <= GOALS["mnv2_flops_ratio"]})
    for row in table["rows"]:
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
    if row["miou_tflite_int8"] is None:
        return "—"
    return f"{_f(row['miou_reference_parity'])} → {_f(row['miou_tflite_int8'])}"


def seed_tables(table: dict) -> list[str]:
    """The study's table (mean ± sd over seeds) and the paired KD gains: what the README shows."""
    teacher = next(r for r in table["rows"] if r["stage"] == table["teacher"])
    lines = ["| model | GFLOPs | params (M) | mIoU | mAE@0.5 | mAE@0.5:0.95 | per seed (mIoU) |",
             "|---|---|---|---|---|---|---|",
             f"| DeepLabv3 R50 (teacher, {teacher['schedule']}) | {_f(teacher['gflops'], 2)} | "
             f"{_f(teacher['params_m'], 2)} | {_f(teacher['miou'])} | {_f(teacher['mae_50'])} | "
             f"{_f(teacher['mae_50_95'])} | trained once |"]
    for short, summary in table["seed_summary"].items():
        first = next(r for r in table["rows"] if r["student"] == short)
        for variant, label in (("plain", "no KD"), ("kd", "KD")):
            values = summary[variant]
            seeds = ", ".join(f"{v:.1f}" for v in values["miou"]["values"])
            lines.append(f"| {STUDENTS[short]}, {label} | {_f(first['gflops'], 2)} | "
                         f"{_f(first['params_m'], 2)} | {format_mean_sd(values['miou'])} | "
                         f"{format_mean_sd(values['mae_50'])} | "
                         f"{format_mean_sd(values['mae_50_95'])} | {seeds} |")
    lines += ["", "| student | KD gain, paired (mean ± sd) | 95 % interval | per seed |",
              "|---|---|---|---|"]
    for short, summary in table["seed_summary"].items():
        gain = summary["kd_gain"]
        lines.append(f"| {STUDENTS[short]} | {format_mean_sd(gain, 2)} | "
                     f"{format_interval(gain)} | "
                     + ", ".join(f"{d:+.2f}" for d in gain["differences"]) + " |")
    return lines


def markdown(table: dict) -> str:
    height, width = table["input_size"]
    machine = table.get("machine", {})
    lines = [f"Dataset `{table['dataset']}` ({table['split']} split), {height}x{width}, teacher "
             f"{table['epochs']['teacher']} / students {table['epochs']['students']} epochs, "
             f"{table['seeds']} seed(s) per student, schedule `{table['schedule']}`, batch "
             f"{table['batch_size']}, bf16 {'on' if table['bf16_used'] else 'off'} "
             f"(--bf16 {table['bf16_requested']}), {table['initialisation']}. Measured on "
             f"{machine.get('machine', '?')} ({', '.join(machine.get('cpu_flags', []))}); "
             f"study wall time {table['study_wall_s'] / 60:.0f} min (teacher, students, "
             f"evaluation, export).", ""]
    lines += seed_tables(table)
    lines += ["", "Seed-0 students in detail (latency on "
              f"{table['threads']} CPU threads; int8 calibrated on "
              f"{table['calibration_images']} train images):", "",
              "| model | peak mem (MB) | mIoU | fp32 ms (PyTorch) | fp32 ms (TFLite) | "
              "int8 ms (TFLite) | mIoU PyTorch fp32 → TFLite int8 | size fp32 / int8 (MB) |",
              "|" + "---|" * 8]
    for row in table["rows"]:
        if row["role"] == "student" and row["seed"] == 0:
            sizes = f"{_f(row['size_mb_tflite_fp32'], 2)} / {_f(row['size_mb_tflite_int8'], 2)}"
            lines.append(f"| {row['stage']} | {_f(row['peak_mem_mb'], 0)} | {_f(row['miou'])} | "
                         f"{_f(row['latency_ms_torch_fp32'])} | "
                         f"{_f(row['latency_ms_tflite_fp32'])} | "
                         f"{_f(row['latency_ms_tflite_int8'])} | {_int8_pair(row)} | {sizes} |")
    if len(table["schedules"]) > 1:
        lines += ["", "Teacher learning-rate schedules at equal epochs:", "",
                  "| schedule | val mIoU (best epoch) | training min |", "|---|---|---|"]
        lines += [f"| {s['schedule']}{' (the study)' if s['stage'] == table['teacher'] else ''}"
                  f" | {_f(s['miou'])} | {_f((s['train_wall_s'] or 0) / 60, 0)} |"
                  for s in table["schedules"]]
    if table["kd_grid"]:
        alphas = sorted({g["alpha"] for g in table["kd_grid"]})
        temperatures = sorted({g["temperature"] for g in table["kd_grid"]})
        cell = {(g["alpha"], g["temperature"]): g["miou"] for g in table["kd_grid"]}
        student = table["kd_grid"][0]["student"]
        plain = next(r["miou"] for r in table["rows"] if r["student"] == student
                     and not r["kd"] and r["seed"] == 0)
        lines += ["", f"KD alpha x temperature, {STUDENTS[student]}, seed 0 (no KD: "
                      f"{plain:.1f}):", "",
                  "| alpha \\ T | " + " | ".join(f"{t:g}" for t in temperatures) + " |",
                  "|---|" + "---|" * len(temperatures)]
        lines += [f"| {a:g} | " + " | ".join(_f(cell.get((a, t))) for t in temperatures) + " |"
                  for a in alphas]
    lines += ["", "The paper (Cityscapes, ImageNet-initialised, full resolution): GFLOPs / "
              "memory MB / mIoU " + "; ".join(f"{k} {v['gflops']} / {v['memory_mb']} / "
                                              f"{v['miou']}" for k, v in PAPER.items()) + ".",
              "", "| goal | measured | verdict |", "|---|---|---|"]
    for goal in table["goals"]:
        value = f"{goal['value']:.3f}x" if goal.get("unit") == "x" else \
            f"{goal['value']:+.2f} mIoU"
        if goal.get("ci_low") is not None:
            value += f" (interval low {goal['ci_low']:+.2f})"
        lines.append(f"| {goal['goal']} | {value} | {'met' if goal['met'] else 'missed'} |")
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path) -> None:
    """Per student: every seed's mIoU with and without KD (means as bars), the teacher as a
    line; and the teachers' val mIoU per epoch for each schedule."""
    figure = Figure(figsize=(11, 4))
    bars, curves = figure.subplots(1, 2)
    summary = table["seed_summary"]
    for offset, (variant, label) in enumerate((("plain", "no KD"), ("kd", "KD"))):
        xs = [i + offset * 0.35 for i in range(len(summary))]
        bars.bar(xs, [s[variant]["miou"]["mean"] for s in summary.values()], width=0.35,
                 label=label, alpha=0.7)
        for x, s in zip(xs, summary.values()):
            bars.scatter([x] * s[variant]["miou"]["n"], s[variant]["miou"]["values"],
                         color="k", s=12, zorder=3)
    teacher = next(r for r in table["rows"] if r["stage"] == table["teacher"])
    bars.axhline(teacher["miou"], color="k", linestyle="--", label="R50 teacher")
    bars.set_xticks([i + 0.175 for i in range(len(summary))], [STUDENTS[s] for s in summary])
    bars.set_ylabel("val mIoU (%)")
    bars.set_title(f"students over {table['seeds']} seed(s): mean and each seed")
    bars.legend(fontsize=8)
    for schedule in table["schedules"]:
        values = schedule["val_miou_per_epoch"] or []
        curves.plot(range(1, len(values) + 1), values, label=schedule["schedule"])
    curves.set_xlabel("teacher epoch")
    curves.set_ylabel("val mIoU (%)")
    curves.set_title("teacher learning-rate schedules")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=8)
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Re-render table.md and summary.png from a "
                                                 "saved table.json.")
    parser.add_argument("table", type=Path)
    args = parser.parse_args(argv)
    table = json.loads(args.table.read_text())
    table["goals"] = goals(table)
    written = write(table, args.table.parent)
    print("wrote " + ", ".join(map(str, written)), file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
