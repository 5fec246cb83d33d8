"""One description of a dataset, from one string: what every stage reads data through.

    synthetic[:size=HxW,train=N,val=N,test=N,seed=S,condition=clear|rain|fog|snow|night[+...],cache=0|1]
    cityscapes:ROOT      official leftImg8bit/ + gtFine/ layout
    camvid:ROOT          SegNet release: train.txt, val.txt (test.txt) of "image annotation" lines
    folder:ROOT          images/ + masks/ (+ classes.yaml|json), or {split}/images + {split}/masks

The spec carries the class names, palette, ignore index and splits, and builds each split's
torch Dataset. Parsing happens here and only here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from torch.utils.data import Dataset

from training.data import real_datasets as real
from training.data.base import DataError, SkipCorruptSamples
from training.data.labels import (
    CAMVID_CLASSES,
    CAMVID_PALETTE,
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    Color,
)
from training.data.paired_files import PairedFiles
from training.data.synthetic import SPLITS as SYNTHETIC_SPLITS
from training.data.synthetic import SyntheticOptions, SyntheticStreetScenes
from training.preprocessing import IGNORE_INDEX

SPEC_SYNTAX = "synthetic[:key=value,...], cityscapes:ROOT, camvid:ROOT or folder:ROOT"
FILE_KINDS = ("cityscapes", "camvid", "folder")  # the kinds read from files under a ROOT
KINDS = ("synthetic", *FILE_KINDS)


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # synthetic, cityscapes, camvid or folder
    text: str  # the spec as written, for configs and checkpoints
    class_names: list[str]
    palette: list[Color]
    splits: tuple[str, ...]
    _builder: Callable[[str, Callable | None], Dataset] = field(repr=False, compare=False)
    ignore_index: int = IGNORE_INDEX

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def build(
        self, split: str, transform: Callable | None = None, skip_corrupt: bool = False,
        replace_corrupt: bool = True,
    ) -> Dataset:
        """The split's Dataset of (image, mask) items. skip_corrupt skips broken samples and
        logs them (SkipCorruptSamples: replaced by the next good one for training, left out
        with replace_corrupt=False for evaluation; `skipped` counts them)."""
        if split not in self.splits:
            raise DataError(
                f"dataset {self.text!r} has no split {split!r}; available: {', '.join(self.splits)}"
            )
        dataset = self._builder(split, transform)
        return SkipCorruptSamples(dataset, replace=replace_corrupt) if skip_corrupt else dataset


def _parse_size(value: str) -> tuple[int, int]:
    parts = value.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise DataError(f"synthetic size must look like HEIGHTxWIDTH (e.g. 128x256), got {value!r}")
    return int(parts[0]), int(parts[1])


def _parse_int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"synthetic option {key} must be an integer, got {value!r}") from None


def parse_synthetic_options(text: str) -> SyntheticOptions:
    known = [f.name for f in fields(SyntheticOptions)]
    values: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        key = "conditions" if key == "condition" else key
        if not sep or not value:
            raise DataError(f"synthetic option {item!r} must look like key=value")
        if key not in known:
            raise DataError(
                f"unknown synthetic option {key!r}; "
                "known: size, train, val, test, seed, condition, cache"
            )
        if key in values:
            raise DataError(f"synthetic option {key!r} is given twice")
        if key == "size":
            values[key] = _parse_size(value)
        elif key == "conditions":
            values[key] = tuple(c.strip().lower() for c in value.split("+"))
        elif key == "cache":
            if value not in ("0", "1"):
                raise DataError(f"synthetic option cache must be 0 or 1, got {value!r}")
            values[key] = value == "1"
        else:
            values[key] = _parse_int(key, value)
    try:
        return SyntheticOptions(**values)
    except ValueError as error:
        raise DataError(str(error)) from None


def _synthetic_spec(text: str, options_text: str) -> DatasetSpec:
    options = parse_synthetic_options(options_text)
    splits = tuple(s for s in SYNTHETIC_SPLITS if options.count(s) > 0)
    return DatasetSpec(
        "synthetic",
        text,
        list(CITYSCAPES_CLASSES),
        list(CITYSCAPES_PALETTE),
        splits,
        lambda split, transform: SyntheticStreetScenes(split, options, transform),
    )


def _files_spec(kind: str, text: str, root: Path) -> DatasetSpec:
    real.require_dir(root, f"{kind} dataset root")
    if kind == "cityscapes":
        names, palette, splits = (
            CITYSCAPES_CLASSES,
            CITYSCAPES_PALETTE,
            real.cityscapes_splits(root),
        )
        find, decoder = real.cityscapes_pairs, real.CityscapesMaskDecoder()
    elif kind == "camvid":
        names, palette, splits = CAMVID_CLASSES, CAMVID_PALETTE, real.camvid_splits(root)
        find, decoder = real.camvid_pairs, real.camvid_decoder()
    else:
        classes = real.read_folder_classes(root)
        names, palette, splits = classes.names, classes.palette, real.folder_splits(root)
        find, decoder = real.folder_pairs, classes.decoder()

    def build(split: str, transform: Callable | None) -> Dataset:
        return PairedFiles(
            find(root, split), decoder, transform, description=f"{kind} split {split!r} in {root}"
        )

    return DatasetSpec(kind, text, list(names), list(palette), splits, build)


def _kind(text: str) -> tuple[str, str]:
    kind, _, rest = text.strip().partition(":")
    return kind.strip().lower(), rest


def names_a_dataset(text: str) -> bool:
    """Whether `text` is written as a dataset spec (its kind is known), so that an input
    that could also be a file path (`camvid:/data/camvid`) is read as one; whether the
    spec is valid is for `parse_dataset_spec` to say."""
    return _kind(text)[0] in KINDS


def parse_dataset_spec(text: str) -> DatasetSpec:
    """`synthetic:size=128x256,train=400`, `cityscapes:/data/cityscapes`, ... into a DatasetSpec."""
    kind, rest = _kind(text)
    if kind == "synthetic":
        return _synthetic_spec(text, rest)
    if kind in FILE_KINDS:
        if not rest.strip():
            raise DataError(f"dataset {kind!r} needs a root folder: '{kind}:PATH'")
        return _files_spec(kind, text, Path(rest.strip()).expanduser())
    raise DataError(f"unknown dataset {text!r}; expected {SPEC_SYNTAX}")
