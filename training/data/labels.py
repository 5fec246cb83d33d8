"""Class tables: names, colours and id mappings for the datasets we read.

Cityscapes comes from cityscapesscripts' official label table so that our train ids and
palette can never drift from the benchmark's; CamVid's table is copied from the README of
the SegNet release it ships in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from cityscapesscripts.helpers.labels import labels as _CITYSCAPES_LABELS

from training.preprocessing import IGNORE_INDEX

Color = tuple[int, int, int]

_TRAIN_LABELS = sorted(
    (label for label in _CITYSCAPES_LABELS if 0 <= label.trainId < IGNORE_INDEX),
    key=lambda label: label.trainId,
)
CITYSCAPES_CLASSES: list[str] = [label.name for label in _TRAIN_LABELS]
CITYSCAPES_PALETTE: list[Color] = [tuple(label.color) for label in _TRAIN_LABELS]
# Train ids by name, so the scene renderer reads "car" rather than a magic 13.
CITYSCAPES_ID: dict[str, int] = {label.name: label.trainId for label in _TRAIN_LABELS}


def cityscapes_label_id_to_train_id() -> np.ndarray:
    """A 256-entry lookup table from gtFine labelIds to train ids.

    Ids the benchmark ignores (trainId 255 or -1) map to ignore; values that are not label
    ids at all map to -1 so that the reader can reject them instead of guessing.
    """
    table = np.full(256, -1, dtype=np.int64)
    for label in _CITYSCAPES_LABELS:
        if 0 <= label.id < 256:
            table[label.id] = label.trainId if 0 <= label.trainId < IGNORE_INDEX else IGNORE_INDEX
    return table


# CamVid as released with SegNet: 11 classes, index 11 is void (README of the release).
CAMVID_CLASSES: list[str] = [
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
]
CAMVID_PALETTE: list[Color] = [
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
]
CAMVID_VOID = 11


def colorize(
    mask: np.ndarray, palette: Sequence[Color], ignore_color: Color = (0, 0, 0)
) -> np.ndarray:
    """Paint an HxW label map with the palette (ignore and unknown values get ignore_color)."""
    lut = np.tile(np.asarray(ignore_color, dtype=np.uint8), (256, 1))
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    return lut[np.asarray(mask).clip(0, 255).astype(np.uint8)]
