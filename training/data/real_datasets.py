"""Cityscapes, CamVid and users' own folders: where their files are and what their labels mean.

Each dataset is found by its published layout, turned into (image, mask) pairs and a mask
decoder, and read by `PairedFiles`. Missing roots, splits and files are reported when the
dataset is built; broken or mislabelled files when they are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


from training.data.base import DataError
from training.data.labels import CAMVID_CLASSES, CAMVID_VOID, Color, cityscapes_label_id_to_train_id
from training.data.paired_files import AutoMaskDecoder, ColorMaskDecoder, IndexMaskDecoder
from training.errors import UserError
from training.io import read_yaml
from training.preprocessing import IGNORE_INDEX

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{what} not found: {path} is not a directory")
    return path


# ---- Cityscapes: leftImg8bit/{split}/{city}/*_leftImg8bit.png, gtFine/{split}/{city}/*_gtFine_*


class CityscapesMaskDecoder:
    """labelIds through the official table; precomputed labelTrainIds as they are."""

    def __init__(self) -> None:
        self.label_ids = IndexMaskDecoder(
            cityscapes_label_id_to_train_id(), "Cityscapes label ids 0..33"
        )
        train_ids = np.full(256, -1, dtype=np.int64)
        train_ids[:19], train_ids[IGNORE_INDEX] = np.arange(19), IGNORE_INDEX
        self.train_ids = IndexMaskDecoder(train_ids, "train ids 0..18 or 255")

    def __call__(self, mask, path: Path) -> np.ndarray:
        decoder = self.train_ids if path.name.endswith("_labelTrainIds.png") else self.label_ids
        return decoder(mask, path)


def cityscapes_splits(root: Path) -> tuple[str, ...]:
    require_dir(root / "gtFine", "Cityscapes annotations (gtFine)")
    images = require_dir(root / "leftImg8bit", "Cityscapes images (leftImg8bit)")
    return tuple(sorted(p.name for p in images.iterdir() if p.is_dir()))


def cityscapes_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    image_dir = require_dir(root / "leftImg8bit" / split, f"Cityscapes split {split!r}")
    pairs = []
    for image in sorted(image_dir.glob("*/*_leftImg8bit.png")):
        stem = image.name[: -len("_leftImg8bit.png")]
        mask_dir = root / "gtFine" / split / image.parent.name
        # The official labelIds first; precomputed train ids where they are all there is.
        candidates = [
            mask_dir / f"{stem}_gtFine_labelIds.png",
            mask_dir / f"{stem}_gtFine_labelTrainIds.png",
        ]
        mask = next((c for c in candidates if c.is_file()), None)
        if mask is None:
            raise DataError(
                f"no annotation for {image}: expected {candidates[0]} or {candidates[1].name}"
            )
        pairs.append((image, mask))
    if not pairs:
        raise DataError(
            f"Cityscapes split {split!r} is empty: no */*_leftImg8bit.png under {image_dir}"
        )
    return pairs


# ---- CamVid, SegNet release: {split}.txt lines "train/X.png trainannot/X.png"


def camvid_splits(root: Path) -> tuple[str, ...]:
    splits = tuple(s for s in ("train", "val", "test") if (root / f"{s}.txt").is_file())
    if not splits:
        raise DataError(f"no CamVid split lists (train.txt, val.txt, test.txt) in {root}")
    return splits


def _resolve_listed(root: Path, entry: str) -> Path:
    path = Path(entry)
    if path.is_absolute() and not path.exists():
        path = Path(*path.parts[-2:])  # the SegNet tutorial lists /SegNet/CamVid/train/X.png
    return path if path.is_absolute() else root / path


def camvid_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    listing = root / f"{split}.txt"
    if not listing.is_file():
        raise DataError(f"CamVid split {split!r} not found: {listing} does not exist")
    pairs = []
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DataError(f"{listing}:{number}: expected 'image annotation', got {line!r}")
        image, mask = (_resolve_listed(root, f) for f in fields)
        for path in (image, mask):
            if not path.is_file():
                raise DataError(f"{listing}:{number}: file {path} does not exist")
        pairs.append((image, mask))
    if not pairs:
        raise DataError(f"CamVid split {split!r} is empty: {listing} lists no files")
    return pairs


def camvid_decoder() -> IndexMaskDecoder:
    return IndexMaskDecoder.identity(len(CAMVID_CLASSES), stored_ignore=CAMVID_VOID)


# ---- A user's folder: images/ + masks/ (or {split}/images + {split}/masks) + classes.yaml|json

CLASS_FILES = ("classes.yaml", "classes.yml", "classes.json")


@dataclass(frozen=True)
class FolderClasses:
    names: list[str]
    palette: list[Color]
    ignore_index: int  # the value index masks use for "unlabelled"
    ignore_color: Color | None  # the colour colour masks use for it

    def decoder(self) -> AutoMaskDecoder:
        return AutoMaskDecoder(
            IndexMaskDecoder.identity(len(self.names), self.ignore_index),
            ColorMaskDecoder(self.palette, self.ignore_color),
        )


_COLOR = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255},
          "minItems": 3, "maxItems": 3}
# What a folder dataset's classes.yaml / classes.json must hold (JSON Schema, draft 2020-12).
CLASSES_SCHEMA = {
    "type": "object", "required": ["names", "colors"], "additionalProperties": False,
    "properties": {
        "names": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
        "colors": {"type": "array", "items": _COLOR},
        "ignore_index": {"type": "integer", "minimum": 0, "maximum": 65535},
        "ignore_color": {"oneOf": [_COLOR, {"type": "null"}]},
    },
}


def _schema_problem(path: Path, raw) -> str | None:
    """The first violation of CLASSES_SCHEMA, as 'FILE: KEY: what is wrong'."""
    from jsonschema import Draft202012Validator
    error = next(iter(sorted(Draft202012Validator(CLASSES_SCHEMA).iter_errors(raw),
                             key=lambda e: list(e.absolute_path))), None)
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path) or "the file"
    value = error.instance
    if error.validator == "required":
        return f"{path}: missing {next(k for k in error.validator_value if k not in raw)!r}"
    if error.validator == "additionalProperties":
        extra = sorted(set(value) - set(CLASSES_SCHEMA["properties"]))
        known = ", ".join(CLASSES_SCHEMA["properties"])
        return f"{path}: unknown key {extra[0]!r} (known: {known})"
    wanted = {"names": "a list of class names (strings)", "colors": "a list of [r, g, b]",
              "ignore_index": "an integer", "ignore_color": "[r, g, b] or null"}
    key = str(error.absolute_path[0]) if error.absolute_path else ""
    hint = wanted.get(key, error.message)
    if key == "colors" or key == "ignore_color":
        hint += " with integers 0..255"
    return f"{path}: {where}: expected {hint}, got {value!r}"


def read_folder_classes(root: Path) -> FolderClasses:
    path = next((root / name for name in CLASS_FILES if (root / name).is_file()), None)
    if path is None:
        raise DataError(
            f"no classes file in {root}: expected one of {', '.join(CLASS_FILES)} "
            "with 'names', 'colors' and optionally 'ignore_index', 'ignore_color'"
        )
    try:
        raw = json.loads(path.read_text()) if path.suffix == ".json" else read_yaml(path)
    except (OSError, ValueError, UserError) as error:
        raise DataError(f"cannot parse classes file {path}: {error}") from error
    problem = _schema_problem(path, raw)
    if problem:
        raise DataError(f"classes file {problem}")
    names, colors = raw["names"], raw["colors"]
    if len(colors) != len(names):
        raise DataError(
            f"classes file {path}: 'colors' must hold one [r, g, b] (0..255) per name, "
            f"got {len(colors)} colours for {len(names)} names ({', '.join(names[:4])}"
            f"{', ...' if len(names) > 4 else ''})"
        )
    palette = [tuple(c) for c in colors]
    if len(set(palette)) != len(palette):
        raise DataError(
            f"classes file {path}: two classes share a colour, so colour masks would be ambiguous"
        )
    ignore_index = raw.get("ignore_index", IGNORE_INDEX)
    if 0 <= ignore_index < len(names):
        raise DataError(
            f"classes file {path}: ignore_index {ignore_index} must be outside 0..{len(names) - 1}"
        )
    ignore_color = tuple(raw["ignore_color"]) if raw.get("ignore_color") is not None else None
    if ignore_color in palette:
        raise DataError(f"classes file {path}: ignore_color {ignore_color} is also a class colour")
    return FolderClasses(list(names), palette, ignore_index, ignore_color)


def _stems(directory: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(directory.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def folder_splits(root: Path) -> tuple[str, ...]:
    per_split = tuple(s for s in ("train", "val", "test") if (root / s / "images").is_dir())
    if per_split:
        return per_split
    require_dir(root / "images", f"images folder of {root} (or train/images, val/images)")
    return ("train", "val")


def folder_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """Pairs by file stem. A flat images/ folder is split by `{split}.txt` stem lists when
    present, else deterministically: every tenth stem in sorted order is validation."""
    flat = not (root / split / "images").is_dir()
    base = root if flat else root / split
    images = _stems(require_dir(base / "images", f"images folder for split {split!r}"))
    masks = _stems(require_dir(base / "masks", f"masks folder for split {split!r}"))
    stems = sorted(images)
    if flat:
        listing = root / f"{split}.txt"
        if listing.is_file():
            stems = [s.strip() for s in listing.read_text().splitlines() if s.strip()]
            unknown = [s for s in stems if s not in images]
            if unknown:
                raise DataError(
                    f"{listing} lists stems with no image in {base / 'images'}: {unknown[:5]}"
                )
        elif split in ("train", "val"):
            stems = [s for i, s in enumerate(stems) if (i % 10 == 9) == (split == "val")]
        else:
            raise DataError(
                f"folder split {split!r} needs {listing} or a {root / split / 'images'} folder"
            )
    missing = [images[s].name for s in stems if s not in masks]
    if missing:
        raise DataError(
            f"images without a mask of the same stem in {base / 'masks'}: {', '.join(missing[:5])}"
        )
    if not stems:
        raise DataError(f"folder split {split!r} is empty: no images in {base / 'images'}")
    return [(images[s], masks[s]) for s in stems]
