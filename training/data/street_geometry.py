"""Pinhole camera and a canvas that paints image, labels and depth in one stroke.

The synthetic scenes are laid out in metres (x to the right, y up, z forward from the
camera) and projected with a pinhole camera looking along the road. Every shape is drawn
into the colour image, the label map and the depth map together, which is what makes the
labels pixel-exact: there is no second rasterisation that could disagree with the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

Color = tuple[int, int, int]
Point = tuple[float, float]
SKY_DEPTH = 1.0e4  # metres; "infinitely far" for fog, finite so that exp() stays tame


@dataclass(frozen=True)
class Camera:
    """A level pinhole camera: the horizon is a row and the vanishing point sits on it."""

    focal: float  # pixels per metre at one metre of depth
    cx: float  # column of the vanishing point
    horizon: float  # row of the horizon
    height: float  # metres above the road

    def project(self, x: float, y: float, z: float) -> Point:
        return (self.cx + self.focal * x / z, self.horizon + self.focal * (self.height - y) / z)

    def pixels_per_metre(self, z: float) -> float:
        return self.focal / z

    def ground_row(self, z: float) -> float:
        return self.horizon + self.focal * self.height / z


@dataclass
class Light:
    """A light source that only shows at night (head/tail lights, street lamps, windows)."""

    u: float
    v: float
    radius: float  # pixels
    color: Color


def shade(color: Sequence[float], factor: float) -> Color:
    return tuple(int(min(255, max(0, c * factor))) for c in color)  # type: ignore[return-value]


class Canvas:
    """Colour, label and depth images of one scene, drawn together shape by shape.

    Each shape is rasterised once, as a shape id into an integer image; its colour, class and
    depth live in tables indexed by that id. Pixels no shape covers (id 0) keep the base
    arrays the canvas started from. One rasterisation per shape is both exact and fast.
    """

    def __init__(self, rgb: np.ndarray, label: np.ndarray, depth: np.ndarray):
        self._base = (rgb, label, depth)
        height, width = label.shape
        self._ids = Image.new("I", (width, height), 0)
        self._draw = ImageDraw.Draw(self._ids)
        self._colors: list[Color] = [(0, 0, 0)]
        self._classes: list[int] = [0]
        self._depths: list[float] = [0.0]
        self.lights: list[Light] = []
        self.lit_windows: list[list[Point]] = []

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, PIL's order."""
        return self._ids.size

    def _new_shape(self, cls: int, color: Color, depth: float) -> int:
        self._colors.append(color)
        self._classes.append(cls)
        self._depths.append(depth)
        return len(self._colors) - 1

    def polygon(self, points: Sequence[Point], cls: int, color: Color, depth: float) -> None:
        self._draw.polygon(points, fill=self._new_shape(cls, color, depth))

    def ellipse(self, box: Sequence[float], cls: int, color: Color, depth: float) -> None:
        x0, y0, x1, y1 = box
        if x1 - x0 < 1 or y1 - y0 < 1:  # PIL refuses boxes of zero size
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            box = (cx - 0.5, cy - 0.5, cx + 0.5, cy + 0.5)
        self._draw.ellipse(box, fill=self._new_shape(cls, color, depth))

    def line(
        self, points: Sequence[Point], width: float, cls: int, color: Color, depth: float
    ) -> None:
        self._draw.line(points, fill=self._new_shape(cls, color, depth), width=max(1, round(width)))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(HxWx3 uint8 colours, HxW uint8 labels, HxW float32 depth) of everything drawn."""
        ids = np.asarray(self._ids)
        drawn = ids > 0
        shape_ids = ids[drawn]
        rgb, label, depth = (a.copy() for a in self._base)
        rgb[drawn] = np.asarray(self._colors, np.uint8)[shape_ids]
        label[drawn] = np.asarray(self._classes, np.uint8)[shape_ids]
        depth[drawn] = np.asarray(self._depths, np.float32)[shape_ids]
        return rgb, label, depth


class WorldPen:
    """Draws shapes given in metres on a plane of constant depth or along a side plane."""

    def __init__(self, canvas: Canvas, camera: Camera):
        self.canvas = canvas
        self.camera = camera

    def quad_at_depth(
        self, x0: float, x1: float, y0: float, y1: float, z: float, cls: int, color: Color
    ) -> None:
        """An upright rectangle facing the camera."""
        self.polygon([(x0, y0, z), (x1, y0, z), (x1, y1, z), (x0, y1, z)], cls, color, z)

    def polygon(
        self, points3d: Sequence[tuple[float, float, float]], cls: int, color: Color, depth: float
    ) -> None:
        self.canvas.polygon([self.camera.project(*p) for p in points3d], cls, color, depth)

    def flat_polygon(
        self, points2d: Sequence[Point], x: float, z: float, cls: int, color: Color
    ) -> None:
        """A 2-D outline (offsets in metres, y up) placed upright at (x, z)."""
        self.polygon([(x + px, py, z) for px, py in points2d], cls, color, z)

    def disc(
        self, x: float, y: float, z: float, rx: float, ry: float, cls: int, color: Color
    ) -> None:
        u, v = self.camera.project(x, y, z)
        s = self.camera.pixels_per_metre(z)
        self.canvas.ellipse((u - rx * s, v - ry * s, u + rx * s, v + ry * s), cls, color, z)

    def segment(
        self,
        a: tuple[float, float],
        b: tuple[float, float],
        x: float,
        z: float,
        width: float,
        cls: int,
        color: Color,
    ) -> None:
        """A thick line between two points (offsets in metres) of an upright plane at (x, z)."""
        points = [self.camera.project(x + px, py, z) for px, py in (a, b)]
        self.canvas.line(points, width * self.camera.pixels_per_metre(z), cls, color, z)

    def box(
        self,
        x0: float,
        x1: float,
        y0: float,
        y1: float,
        z0: float,
        z1: float,
        cls: int,
        color: Color,
    ) -> None:
        """A box aligned with the road: the faces a camera at x=0 and y=height can see."""
        cam = self.camera
        if x0 > 0:  # right of the camera: its left side shows
            self.polygon(
                [(x0, y0, z0), (x0, y0, z1), (x0, y1, z1), (x0, y1, z0)],
                cls,
                shade(color, 0.72),
                z0,
            )
        elif x1 < 0:
            self.polygon(
                [(x1, y0, z0), (x1, y0, z1), (x1, y1, z1), (x1, y1, z0)],
                cls,
                shade(color, 0.72),
                z0,
            )
        if y1 < cam.height:  # below eye level: the top shows
            self.polygon(
                [(x0, y1, z0), (x1, y1, z0), (x1, y1, z1), (x0, y1, z1)],
                cls,
                shade(color, 1.12),
                z0,
            )
        self.quad_at_depth(x0, x1, y0, y1, z0, cls, color)
