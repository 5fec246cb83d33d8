"""Two KD recipes against each other, paired by seed: which one distils better.

Two studies of benchmarks.paper_table that differ only in the KD recipe share their teacher
and their plain runs, so recipe B's distilled student minus recipe A's, seed by seed (same
initial weights, data order and augmentation), isolates the recipe:

    python -m benchmarks.recipe_compare benchmarks/results/paper_table_kl/table.json \
        benchmarks/results/paper_table/table.json --out benchmarks/results/paper_table

writes recipe_compare.json and recipe_compare.md in --out: per student, the paired mIoU
difference (mean ± sd, 95 % interval, per seed) and the per-class IoU difference.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.paper_report import STUDENTS, per_class_delta, write_files
from benchmarks.seed_stats import format_interval, format_mean_sd, paired_gain
from training.errors import UserError, run_cli

# What two studies must share for their distilled runs to be paired.
SHARED = ("dataset", "split", "input_size", "epochs", "teacher_output_stride", "schedule")


def _kd_runs(table: dict, student: str) -> list[dict]:
    return sorted((r for r in table["rows"] if r["role"] == "student"
                   and r["student"] == student and r["kd"]), key=lambda r: r["seed"])


def compare(a: dict, b: dict) -> dict:
    """Recipe b minus recipe a, per student, paired by seed."""
    for key in SHARED:
        if a.get(key) != b.get(key):
            raise UserError(f"the two studies differ in {key}: {a.get(key)!r} against "
                            f"{b.get(key)!r}; only the KD recipe may differ")
    if a["recipe"]["tag"] == b["recipe"]["tag"]:
        raise UserError(f"both studies use the KD recipe {a['recipe']['tag']}: nothing to compare")
    students = {}
    for short in STUDENTS:
        runs_a, runs_b = _kd_runs(a, short), _kd_runs(b, short)
        seeds = sorted({r["seed"] for r in runs_a} & {r["seed"] for r in runs_b})
        if not seeds:
            continue
        runs_a = [r for r in runs_a if r["seed"] in seeds]
        runs_b = [r for r in runs_b if r["seed"] in seeds]
        students[short] = {"seeds": seeds,
                           "miou_a": [r["miou"] for r in runs_a],
                           "miou_b": [r["miou"] for r in runs_b],
                           "difference": paired_gain([r["miou"] for r in runs_b],
                                                     [r["miou"] for r in runs_a]),
                           "per_class_difference": per_class_delta(runs_b, runs_a)}
    if not students:
        raise UserError("the two studies share no distilled student and seed")
    return {"a": a["recipe"], "b": b["recipe"], "machine": b["machine"],
            "shared": {key: b.get(key) for key in SHARED}, "students": students}


def markdown(report: dict) -> str:
    a, b = report["a"]["tag"], report["b"]["tag"]
    shared = report["shared"]
    lines = [f"KD recipe `{b}` minus `{a}`, paired by seed (same initial weights, data order and "
             f"augmentation; the same teacher). Dataset `{shared['dataset']}` "
             f"({shared['split']} split), {shared['input_size'][0]}x{shared['input_size'][1]}, "
             f"schedule `{shared['schedule']}`. Measured on {report['machine']['machine']} "
             f"({', '.join(report['machine']['cpu_flags'])}).", "",
             f"| student | seeds | `{a}` mIoU | `{b}` mIoU | difference (mean ± sd) | "
             "95 % interval |", "|---|---|---|---|---|---|"]
    for short, s in report["students"].items():
        d = s["difference"]
        lines.append(f"| {STUDENTS[short]} | {', '.join(map(str, s['seeds']))} | "
                     + ", ".join(f"{v:.1f}" for v in s["miou_a"]) + " | "
                     + ", ".join(f"{v:.1f}" for v in s["miou_b"])
                     + f" | {format_mean_sd(d, 2, signed=True)} | {format_interval(d)} |")
    names = list(next(iter(report["students"].values()))["per_class_difference"])
    lines += ["", "Per-class IoU, the second recipe minus the first (mean over seeds):", "",
              "| student | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for short, s in report["students"].items():
        cells = [f"{v:+.1f}" if v is not None else "—"
                 for v in s["per_class_difference"].values()]
        lines.append(f"| {STUDENTS[short]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# What compare() and markdown() read from each table.json.
REQUIRED = ("recipe", "rows", "machine", *SHARED)


def _load(path: Path) -> dict:
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the study table {path}: {error}") from None
    missing = [key for key in REQUIRED if not isinstance(table, dict) or key not in table]
    if missing:
        raise UserError(f"{path} is not a benchmarks.paper_table table.json (no "
                        f"{', '.join(missing)})")
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Compare the distilled students of two "
                                                 "paper_table studies, paired by seed.")
    parser.add_argument("a", type=Path, help="table.json of the first recipe (the baseline)")
    parser.add_argument("b", type=Path, help="table.json of the second recipe")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for recipe_compare.json and recipe_compare.md")
    args = parser.parse_args(argv)
    report = compare(_load(args.a), _load(args.b))
    text = markdown(report)
    written = write_files(args.out, {"recipe_compare.json": json.dumps(report, indent=2),
                                     "recipe_compare.md": text}, {})
    print(text, end="")
    print("wrote " + ", ".join(map(str, written)), file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
