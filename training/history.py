"""A run's per-epoch log, metrics.csv: written by the trainer, read by reports and studies.

    log = EpochLog(run_dir)          # creates metrics.csv with its header, or appends
    log.append({"epoch": 1, "val_miou": 31.2, ...})
    epochs = read_history(run_dir / HISTORY_FILE)

A resumed run keeps the columns its file started with, so a file written before a column
existed stays a valid CSV; the reader drops cells it cannot read as numbers.
"""
from __future__ import annotations

import csv
from pathlib import Path

HISTORY_FILE = "metrics.csv"
FIELDS = ("epoch", "step", "lr", "train_loss", "train_hard_loss", "train_kd_loss", "train_miou",
          "val_miou", "val_mae_50", "val_mae_50_95", "val_pixel_acc", "images_per_s",
          "epoch_time_s")


class EpochLog:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / HISTORY_FILE
        self.fields = FIELDS
        if self.path.exists():
            with open(self.path, newline="") as stream:
                self.fields = tuple(next(csv.reader(stream), None) or FIELDS)
        else:
            with open(self.path, "w", newline="") as stream:
                csv.writer(stream).writerow(FIELDS)

    def append(self, row: dict) -> None:
        with open(self.path, "a", newline="") as stream:
            csv.writer(stream).writerow(["" if row.get(k) is None else row[k]
                                         for k in self.fields])


def read_history(path: Path) -> list[dict[str, float]]:
    """metrics.csv as one dict per epoch; cells that are empty or not numbers are dropped, so
    columns this reader does not know about (or that only some epochs have) do no harm."""
    with open(path, newline="") as stream:
        epochs = []
        for record in csv.DictReader(stream):
            numbers = {}
            for key, text in record.items():
                try:
                    numbers[key] = float(text)
                except (TypeError, ValueError):
                    continue
            epochs.append(numbers)
    return epochs
