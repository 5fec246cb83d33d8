"""The evaluation figures, drawn with matplotlib's Agg canvas.

Figures are built from `matplotlib.figure.Figure` on an explicit `FigureCanvasAgg`, never
through pyplot, so nothing depends on (or changes) the process's pyplot backend or keeps
figures alive after they are saved.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from training.data.labels import colorize
from training.models import TEACHER
from training.preprocessing import MEAN, STD

Color = tuple[int, int, int]

# Training-curve panels: (title, [(metrics.csv column, legend suffix)]); missing columns skip.
CURVE_PANELS = (
    ("loss", [("train_loss", "train"), ("val_loss", "val")]),
    ("val mIoU (%)", [("val_miou", "")]),
    ("val mAE (%) ↓", [("val_mae_50", "@0.5"), ("val_mae_50_95", "@0.5:0.95")]),
    ("learning rate", [("lr", "")]),
)


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110, bbox_inches="tight")


def plot_confusion(matrix: torch.Tensor, class_names: Sequence[str], name: str,
                   path: Path) -> None:
    """Row-normalised (each ground-truth class sums to 100 %), so rare classes stay legible."""
    counts = matrix.double().numpy()
    totals = counts.sum(1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0) * 100
    size = len(class_names)
    figure = Figure(figsize=(0.42 * size + 3, 0.42 * size + 2))
    axes = figure.add_subplot()
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=100)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="% of the class's pixels")
    axes.set_xticks(range(size), class_names, rotation=90, fontsize=8)
    axes.set_yticks(range(size), class_names, fontsize=8)
    axes.set_xlabel("prediction")
    axes.set_ylabel("ground truth")
    axes.set_title(f"{name}: confusion matrix (row-normalised %)")
    if size <= 30:
        for (row, column), value in np.ndenumerate(share):
            if value >= 0.5:
                axes.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=6,
                          color="white" if value > 60 else "black")
    _save(figure, path)


def denormalise(image: torch.Tensor) -> np.ndarray:
    """A normalised CHW float tensor back to an HWC image in [0, 1]."""
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return (image.float() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def plot_overlays(images: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                  columns: Sequence[tuple[str, Sequence[torch.Tensor], Sequence[Color]]],
                  truth_palette: Sequence[Color], class_names: Sequence[str],
                  path: Path) -> None:
    """One row per sample: image | ground truth | one column per (title, predictions,
    palette). Ignored pixels are black; the legend lists the classes that appear."""
    titles = ["image", "ground truth"] + [title for title, _, _ in columns]
    rows = len(images)
    aspect = images[0].shape[-2] / images[0].shape[-1]
    figure = Figure(figsize=(2.6 * len(titles), 2.6 * aspect * rows + 0.6))
    grid = figure.subplots(rows, len(titles), squeeze=False,
                           gridspec_kw={"wspace": 0.04, "hspace": 0.06, "left": 0.01,
                                        "right": 0.99, "bottom": 0.02, "top": 0.92})
    seen = set()
    for index, (image, mask) in enumerate(zip(images, masks)):
        panels = [denormalise(image), colorize(mask.numpy(), truth_palette)]
        labels = [mask] + [predictions[index] for _, predictions, _ in columns]
        panels += [colorize(predictions[index].numpy(), palette)
                   for _, predictions, palette in columns]
        for label in labels:
            seen.update(int(value) for value in label.unique() if value < len(class_names))
        for axes, panel, title in zip(grid[index], panels, titles):
            axes.imshow(panel, interpolation="nearest")
            axes.set_axis_off()
            if index == 0:
                axes.set_title(title, fontsize=9)
    handles = [Patch(color=np.asarray(truth_palette[c]) / 255, label=class_names[c])
               for c in sorted(seen)] + [Patch(color="black", label="ignored")]
    figure.legend(handles=handles, loc="upper center", ncol=min(len(handles), 7), fontsize=8,
                  bbox_to_anchor=(0.5, 0.0), frameon=False)
    _save(figure, path)


def plot_curves(histories: dict[str, list[dict[str, float]]], path: Path) -> bool:
    """One panel per known metrics.csv column group, one line colour per run. Returns False
    (and writes nothing) when no run has any of the known columns."""
    panels = [(title, series) for title, series in CURVE_PANELS
              if any(column in epoch for epochs in histories.values() for epoch in epochs
                     for column, _ in series)]
    if not panels:
        return False
    figure = Figure(figsize=(4.2 * len(panels), 3.4))
    grid = figure.subplots(1, len(panels), squeeze=False)[0]
    colours = [f"C{index}" for index in range(len(histories))]
    for axes, (title, series) in zip(grid, panels):
        for colour, (run, epochs) in zip(colours, histories.items()):
            for (column, suffix), style in zip(series, ("-", "--")):
                points = [(epoch.get("epoch", number + 1), epoch[column])
                          for number, epoch in enumerate(epochs) if column in epoch]
                if points:
                    x, y = zip(*points)
                    axes.plot(x, y, style, color=colour, marker=".",
                              label=f"{run} {suffix}".strip())
        axes.set_title(title)
        axes.set_xlabel("epoch")
        if title == "learning rate":
            axes.set_yscale("log")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    _save(figure, path)
    return True


def plot_accuracy_vs_cost(rows: Sequence[dict], path: Path) -> None:
    """mIoU against GFLOPs and against CPU latency: the trade-off the students are about."""
    figure = Figure(figsize=(10, 4))
    grid = figure.subplots(1, 2)
    for axes, (key, label) in zip(grid, (("gflops", "GFLOPs"), ("latency_ms", "latency (ms)"))):
        for index, row in enumerate(rows):
            marker = "*" if row["model"] == TEACHER else "o"
            axes.scatter(row[key], row["miou"], marker=marker, s=120 if marker == "*" else 50,
                         color=f"C{index}", label=f"{row['name']} ({row['model']})")
            axes.annotate(row["name"], (row[key], row["miou"]), textcoords="offset points",
                          xytext=(5, 5), fontsize=8)
        values = [row[key] for row in rows if row[key] > 0]
        if values and max(values) / min(values) > 10:  # teacher vs students: orders apart
            axes.set_xscale("log")
        axes.set_xlabel(label)
        axes.set_ylabel("mIoU (%)")
        axes.set_title(f"accuracy vs {label.split(' ')[0]}")
        axes.grid(alpha=0.3)
    grid[0].legend(fontsize=7, loc="best")
    _save(figure, path)
