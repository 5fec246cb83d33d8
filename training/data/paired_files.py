"""Datasets stored as (image file, mask file) pairs, read strictly.

A wrong label is worse than a crash: every failure here (unreadable file, image and mask of
different sizes, a mask value or colour the class table does not know) raises DataError
with the file's path, and nothing is guessed or clipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.base import DataError, SegmentationDataset
from training.preprocessing import IGNORE_INDEX

Color = tuple[int, int, int]


def read_image(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB, or DataError naming the file."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... for broken files
        raise DataError(f"cannot read image {path}: {error}") from error


def read_mask(path: Path) -> Image.Image:
    try:
        with Image.open(path) as mask:
            mask.load()
            return mask
    except Exception as error:
        raise DataError(f"cannot read mask {path}: {error}") from error


def _describe(values: Sequence, limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" ... ({len(values)} in all)" if len(values) > limit else "")


class IndexMaskDecoder:
    """Maps stored mask values through a lookup table; -1 entries are values that must not occur."""

    def __init__(self, table: np.ndarray, allowed: str):
        self.table = np.asarray(table, dtype=np.int64)
        self.allowed = allowed  # said in the error message

    @classmethod
    def identity(cls, num_classes: int, stored_ignore: int = IGNORE_INDEX) -> IndexMaskDecoder:
        """Values 0..num_classes-1 are classes, stored_ignore becomes our ignore index."""
        table = np.full(max(256, stored_ignore + 1), -1, dtype=np.int64)
        table[:num_classes] = np.arange(num_classes)
        table[stored_ignore] = IGNORE_INDEX
        return cls(table, f"0..{num_classes - 1} or {stored_ignore} (ignore)")

    def __call__(self, mask: Image.Image, path: Path) -> np.ndarray:
        if mask.mode in ("RGB", "RGBA"):
            raise DataError(f"mask {path} is a colour image; expected one class index per pixel")
        values = np.asarray(mask).astype(np.int64)
        if values.ndim != 2:
            raise DataError(
                f"mask {path} has shape {values.shape}; expected a single-channel image"
            )
        outside = (values < 0) | (values >= len(self.table))
        mapped = np.where(outside, -1, self.table[np.clip(values, 0, len(self.table) - 1)])
        if (mapped < 0).any():
            bad = np.unique(values[mapped < 0])
            raise DataError(
                f"mask {path} has values outside the class set: {_describe(bad.tolist())}; "
                f"allowed: {self.allowed}"
            )
        return mapped


class ColorMaskDecoder:
    """Maps each pixel's RGB colour to its class through the palette; unknown colours fail."""

    def __init__(self, palette: Sequence[Color], ignore_color: Color | None = None):
        codes = [_pack(np.asarray(c)) for c in palette]
        classes = list(range(len(palette)))
        if ignore_color is not None:
            codes.append(_pack(np.asarray(ignore_color)))
            classes.append(IGNORE_INDEX)
        order = np.argsort(codes)
        self.codes = np.asarray(codes, dtype=np.int64)[order]
        self.classes = np.asarray(classes, dtype=np.int64)[order]

    def __call__(self, mask: Image.Image, path: Path) -> np.ndarray:
        codes = _pack(np.asarray(mask.convert("RGB")))
        slot = np.clip(np.searchsorted(self.codes, codes), 0, len(self.codes) - 1)
        known = self.codes[slot] == codes
        if not known.all():
            bad = [tuple(int(v) for v in _unpack(c)) for c in np.unique(codes[~known])]
            raise DataError(
                f"mask {path} has colours that are not in the palette: {_describe(bad)}"
            )
        return self.classes[slot]


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _unpack(code: int) -> tuple[int, int, int]:
    return (code >> 16) & 255, (code >> 8) & 255, code & 255


class AutoMaskDecoder:
    """Index masks (L, P, I) through one decoder, colour masks (RGB) through another."""

    def __init__(self, index: IndexMaskDecoder, color: ColorMaskDecoder):
        self.index, self.color = index, color

    def __call__(self, mask: Image.Image, path: Path) -> np.ndarray:
        return (self.color if mask.mode in ("RGB", "RGBA") else self.index)(mask, path)


class PairedFiles(SegmentationDataset):
    """Images and their masks from explicit file pairs."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        decode_mask: Callable[[Image.Image, Path], np.ndarray],
        transform: Callable | None = None,
        description: str = "dataset",
    ):
        super().__init__(transform)
        if not pairs:
            raise DataError(f"{description} is empty: no image/mask pairs found")
        self.pairs = [(Path(image), Path(mask)) for image, mask in pairs]
        self.decode_mask = decode_mask

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path)
        mask = read_mask(mask_path)
        if (mask.width, mask.height) != (image.shape[1], image.shape[0]):
            raise DataError(
                f"image {image_path} is {image.shape[1]}x{image.shape[0]} but its mask "
                f"{mask_path} is {mask.width}x{mask.height}"
            )
        return image, self.decode_mask(mask, mask_path)
