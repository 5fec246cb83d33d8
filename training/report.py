"""The evaluation report: the paper's table as Markdown, CSV and JSON, plus the figures.

`training.evaluation` turns each checkpoint into a `CheckpointResult`; `write_report` writes

    table.md  table.csv  table.json        one row per checkpoint (JSON: a list of objects)
    confusion_<name>.png                   per checkpoint, rows normalised (recall)
    overlays.png                           image | ground truth | teacher | student(s)
    curves.png                             from the metrics.csv next to each checkpoint
    accuracy_vs_cost.png                   mIoU against GFLOPs and latency

Metric values are percentages; NaN (a class absent from truth and predictions) becomes
null in JSON and "—" in the tables.
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from training import plots
from training.history import HISTORY_FILE, read_history
from training.io import json_safe
from training.models import TEACHER

# The columns every format shares, in the paper's order: (row key, Markdown header, digits).
COLUMNS = (
    ("miou", "mIoU (%)", 1),
    ("mae_50", "mAE@0.5 (%) ↓", 1),
    ("mae_50_95", "mAE@0.5:0.95 (%) ↓", 1),
    ("params_m", "params (M)", 2),
    ("gflops", "GFLOPs", 1),
    ("peak_mem_mb", "peak mem (MB)", 0),
    ("latency_ms", "latency (ms)", 1),
)


@dataclass
class Samples:
    """The first few evaluated images, kept for the overlay figure."""

    images: list[torch.Tensor] = field(default_factory=list)  # normalised CHW floats
    masks: list[torch.Tensor] = field(default_factory=list)  # HW labels
    predictions: list[torch.Tensor] = field(default_factory=list)  # HW labels


@dataclass
class CheckpointResult:
    """All the report needs about one evaluated checkpoint."""

    path: Path
    row: dict  # what goes into the tables (JSON-ready)
    confusion: torch.Tensor  # rows: ground truth, columns: prediction
    samples: Samples
    palette: list[tuple[int, int, int]]

    @property
    def is_teacher(self) -> bool:
        return self.row["model"] == TEACHER


def _cell(value, digits: int | None, missing: str = "—") -> str:
    """A table cell: `missing` for None/NaN, `digits` decimals (None: full precision)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return repr(value) if digits is None else f"{value:.{digits}f}"


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def teacher_below_student(teacher_miou: float | None, student_miou: float | None,
                          teacher: str = "the teacher") -> str | None:
    """A warning when a student scores above the teacher it was distilled from.

    That is no gain of distillation: the teacher is undertrained, and its soft labels pull
    the student toward a worse model than the labels alone would."""
    if teacher_miou is None or student_miou is None or teacher_miou >= student_miou:
        return None
    return (f"{teacher} scores {teacher_miou:.1f} val mIoU, below its student's "
            f"{student_miou:.1f}: the teacher is undertrained and its soft labels hold the "
            f"student back. Train the teacher longer (more epochs in its config, bf16 auto "
            f"on a CPU with avx512_bf16) or distil with a smaller --alpha.")


def versus_teacher(row: dict, teacher: dict | None) -> str:
    """'-1.2 mIoU, -75 % FLOPs, ...' for a student; '—' for the teacher or without costs.

    A student above its teacher is flagged, not shown as an achievement."""
    if teacher is None or row is teacher:
        return "—"
    difference = row["miou"] - teacher["miou"]
    parts = [f"{difference:+.1f} mIoU" + (" (**teacher undertrained**: it scores below this "
                                          "student)" if difference > 0 else "")]
    ratio = row.get("vs_teacher")
    if ratio:
        parts += [f"{(ratio[key] - 1) * 100:+.0f} % {label}" for key, label in
                  (("gflops", "FLOPs"), ("params_m", "params"), ("latency_ms", "latency"))]
    return ", ".join(parts)


def markdown_report(rows: list[dict], class_names: list[str]) -> str:
    """The main table, a line on how it was measured, then per-class IoU (classes as rows)."""
    teacher = next((row for row in rows if row["model"] == TEACHER), None)
    header = ["checkpoint", "model"] + [title for _, title, _ in COLUMNS] + ["vs teacher"]
    lines = [_markdown_row(header), "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["name"], row["model"]]
        cells += [_cell(row.get(key), digits) for key, _, digits in COLUMNS]
        lines.append(_markdown_row(cells + [versus_teacher(row, teacher)]))
    first = rows[0]
    height, width = first["input_size"]
    how = (f"{first['dataset']} `{first['split']}`, {first['images']} images at "
           f"{height}x{width}. mAE: share of (image, class) pairs with IoU below the "
           f"threshold (lower is better).")
    if first.get("latency_ms") is not None:
        how += (f" Latency: median batch-1 CPU forward pass, {first['threads']} threads; "
                f"peak memory: one forward pass above the loaded model.")
        shared = [f"{row['name']} from {row['cost_from']}" for row in rows
                  if row.get("cost_from") not in (None, row["name"])]
        if shared:  # a plain and a distilled run of one architecture cost the same
            how += (" Cost columns are measured once per architecture: "
                    + ", ".join(shared) + ".")
    header = ["class"] + [row["name"] for row in rows]
    lines += ["", how, "", _markdown_row(header), "|" + "---|" * len(header)]
    for name in class_names:
        lines.append(_markdown_row([name] + [_cell(row["per_class_iou"].get(name), 1)
                                             for row in rows]))
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], class_names: list[str], path: Path) -> None:
    """One line per checkpoint; per-class IoU as `iou_<class>` columns."""
    fields = ["name", "checkpoint", "model", "dataset", "split", "images"]
    fields += [key for key, _, _ in COLUMNS] + ["pixel_acc"]
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(fields + [f"iou_{name}" for name in class_names])
        for row in rows:
            values = [row.get(key) for key in fields]
            values += [row["per_class_iou"].get(name) for name in class_names]
            writer.writerow([value if isinstance(value, (str, int)) else
                             _cell(value, None, missing="") for value in values])


def file_label(name: str) -> str:
    """A row name made safe for a file name ('teacher/best' -> 'teacher_best')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "checkpoint"


def write_report(results: list[CheckpointResult], class_names: list[str], out_dir: Path,
                 json_path: Path | None = None) -> tuple[list[Path], list[str]]:
    """Write the tables and figures; return (files written, notes on what was skipped)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [result.row for result in results]
    written, notes = [], []

    def target(name: str) -> Path:
        written.append(out_dir / name)
        return out_dir / name

    target("table.md").write_text(markdown_report(rows, class_names))
    write_csv(rows, class_names, target("table.csv"))
    table_json = json.dumps(json_safe(rows), indent=2)
    target("table.json").write_text(table_json)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(table_json)
        written.append(json_path)

    for result in results:
        plots.plot_confusion(result.confusion, class_names, result.row["name"],
                             target(f"confusion_{file_label(result.row['name'])}.png"))
    _write_overlays(results, class_names, target)

    histories = {}
    for result in results:
        history_path = result.path.parent / HISTORY_FILE
        # best.pth and last.pth of one run share a metrics.csv: plot it once.
        if history_path.is_file() and history_path.resolve() not in histories:
            try:
                epochs = read_history(history_path)
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                notes.append(f"cannot read {history_path} ({exc.__class__.__name__}): "
                             f"its curves are left out")
                continue
            histories[history_path.resolve()] = (result.path.parent.name or result.row["name"],
                                                 epochs)
    curves = out_dir / "curves.png"
    if plots.plot_curves(dict(histories.values()), curves):
        written.append(curves)
    else:
        notes.append(f"no {HISTORY_FILE} with known columns next to any checkpoint: "
                     f"curves.png skipped")

    if all(row.get("gflops") is not None for row in rows):
        plots.plot_accuracy_vs_cost(rows, target("accuracy_vs_cost.png"))
    else:
        notes.append("no cost columns (--no-profile): accuracy_vs_cost.png skipped")
    return written, notes


def _write_overlays(results: list[CheckpointResult], class_names: list[str], target) -> None:
    """image | ground truth | teacher first | the others, titled by role when both exist."""
    ordered = sorted(results, key=lambda result: not result.is_teacher)  # stable: keeps order
    mixed = any(r.is_teacher for r in results) and not all(r.is_teacher for r in results)
    columns = []
    for result in ordered:
        role = ("teacher: " if result.is_teacher else "student: ") if mixed else ""
        columns.append((role + result.row["name"], result.samples.predictions, result.palette))
    samples = ordered[0].samples
    plots.plot_overlays(samples.images, samples.masks, columns, ordered[0].palette,
                        class_names, target("overlays.png"))
