"""Drawing a class map for people: the overlay, the class map at the frame's size, the indexed
mask PNG and the legend.

Everything here works on uint8 arrays and lookup tables. At 512x1024 the float and int32
blending it replaces cost more than the int8 model itself, and the whole frame goes through
these functions once per frame.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


class Painter:
    """Paints class maps over frames at one opacity, rounded as the apps round (source over):

        out = (rgb * (255 - alpha) + colour * alpha + 127) // 255,  alpha = round(opacity * 255)

    That value depends only on (class, channel, pixel value), so it is one table lookup: the
    table has 256 entries per class and channel, and one more "class" that leaves the pixel as
    it is, for class indices the palette has no colour for."""

    def __init__(self, palette, opacity: float):
        palette = np.asarray(palette, np.int64)
        if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) < 1:
            raise ValueError(f"palette must be (K, 3) colours, got shape {palette.shape}")
        if not 0 <= opacity <= 1:
            raise ValueError(f"opacity must be within 0..1, got {opacity}")
        self.palette = palette.astype(np.uint8)
        self.alpha = round(opacity * 255)
        value = np.arange(256)
        blended = (value * (255 - self.alpha) + palette[:, :, None] * self.alpha + 127) // 255
        keep = np.broadcast_to(value, (1, 3, 256))
        self._table = np.concatenate([blended, keep]).astype(np.uint8).ravel()
        # Index = (class * 3 + channel) * 256 + value; uint16 holds it for up to 84 classes.
        self._index_dtype = np.uint16 if len(self._table) <= 1 << 16 else np.uint32
        self._channel = np.arange(3, dtype=self._index_dtype) * 256

    def __call__(self, rgb: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) frame and (H, W) class map of the same size -> the painted frame."""
        if rgb.shape[:2] != classes.shape:
            raise ValueError(f"class map {classes.shape} is not at the frame's size "
                             f"{rgb.shape[:2]}")
        count = len(self.palette)
        if classes.max(initial=0) >= count:  # no colour: the pixel stays as it is
            classes = np.minimum(classes, count)
        index = (classes.astype(self._index_dtype) * (3 * 256))[..., None] + self._channel
        index += rgb
        return np.take(self._table, index)


def to_frame_size(classes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A model-size class map at the frame's size (H, W): each frame pixel takes the class at
    its centre's position in the model input (nearest). The same array when sizes agree."""
    height, width = classes.shape
    if (height, width) == tuple(size):
        return classes
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.intp),
                      height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.intp), width - 1)
    # Two 1-D takes: rows first (a copy of whole rows), then columns; one fancy index over
    # both axes builds an (H, W) index and is several times slower.
    return np.take(np.take(classes, rows, axis=0), cols, axis=1)


def mask_image(classes: np.ndarray, palette) -> Image.Image:
    """The class map as an indexed-colour PNG image: pixel = class index, shown in the
    contract's palette."""
    if classes.max(initial=0) > 255:
        raise ValueError("an indexed PNG holds class indices up to 255")
    image = Image.fromarray(classes.astype(np.uint8, copy=False), mode="P")
    image.putpalette(np.asarray(palette, np.uint8).ravel().tolist())
    return image


def legend_strip(names: list[str], palette, width: int = 640) -> Image.Image:
    """One row per class: its colour and name."""
    columns, row = 4, 22
    image = Image.new("RGB", (width, row * ((len(names) + columns - 1) // columns) + 4),
                      "white")
    draw = ImageDraw.Draw(image)
    for index, name in enumerate(names):
        x, y = (index % columns) * width // columns + 4, (index // columns) * row + 4
        draw.rectangle([x, y, x + 14, y + 14], fill=tuple(int(v) for v in palette[index]),
                       outline="black")
        draw.text((x + 20, y + 2), name, fill="black")
    return image


def class_counts(classes: np.ndarray, count: int) -> np.ndarray:
    """Pixels per class 0..count-1 (indices beyond are not counted)."""
    return np.bincount(classes.ravel(), minlength=count)[:count]
