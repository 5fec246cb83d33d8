"""Lays out and draws one synthetic street scene: its colours, labels and depth.

The world is a straight street seen from a car: the road and its lanes, kerbs, sidewalks,
verges, facades or open fields on each side, then the things that stand in it. The road and
the sky are painted per pixel with numpy (their labels follow from each pixel's ground
position); everything that stands up is drawn back to front through the Canvas.
Appearance (texture, light, weather) is applied afterwards by `training.data.appearance`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training.data import materials as paint
from training.data import street_objects as things
from training.data.labels import CITYSCAPES_ID as ID
from training.data.street_geometry import SKY_DEPTH, Camera, Canvas, Color, WorldPen, shade
from training.preprocessing import IGNORE_INDEX

FAR = 250.0  # metres: facades end here; the skyline stands behind
OBJECTS_FAR = 60.0  # metres: nothing small is placed further away


@dataclass
class Band:
    """A strip of ground along the road, from x0 to x1 metres (camera at x=0)."""

    x0: float
    x1: float
    cls: int
    color: Color
    tile: float  # paving or cobble size in metres; 0 for a plain surface


@dataclass
class Side:
    sign: int  # -1 left, +1 right
    road_edge: float  # |x| of the kerb
    sidewalk: tuple[float, float]  # |x| range people and poles stand in
    facade: float | None  # |x| of the building line; None for an open field
    yard_barrier: int | None  # wall or fence class along the back of the sidewalk


@dataclass
class RenderedScene:
    image: np.ndarray  # HxWx3 uint8, flat colours before appearance effects
    label: np.ndarray  # HxW uint8 train ids
    depth: np.ndarray  # HxW float32 metres
    canvas: Canvas  # keeps the lights and lit windows for night scenes


@dataclass
class Street:
    bands: list[Band]
    sides: list[Side]
    lane_lines: list[tuple[float, bool]]  # (x, solid): the solid one splits the directions
    lanes: list[tuple[float, bool]]  # (centre x, traffic comes towards the camera)


def _side(rng: np.random.Generator, sign: int, edge: float) -> tuple[list[Band], Side]:
    """The ground strips of one side, outward from the kerb, and where things may stand."""
    bands: list[Band] = []

    def strip(a: float, b: float, cls: int, color: Color, tile: float = 0.0) -> None:
        lo, hi = sorted((sign * a, sign * b))
        bands.append(Band(lo, hi, cls, color, tile))

    x = edge
    if rng.random() < 0.3:  # a grass verge between the road and the sidewalk
        width = rng.uniform(0.8, 2.5)
        strip(x, x + width, ID["terrain"], paint.grass_color(rng))
        x += width
    walk_color, kerb = paint.paving_color(rng), rng.uniform(0.12, 0.3)
    strip(x, x + kerb, ID["sidewalk"], shade(walk_color, rng.uniform(0.6, 1.4)))
    walk = (x + kerb, x + kerb + rng.uniform(1.5, 4.5))
    strip(*walk, ID["sidewalk"], walk_color, rng.choice([0.0, rng.uniform(0.3, 0.8)]))
    strip(walk[1], 1e4, ID["terrain"], paint.grass_color(rng))
    yard = rng.choice([0.0, rng.uniform(0.5, 4.0)])
    facade = walk[1] + yard if rng.random() < 0.75 else None
    barrier = None
    if (yard > 0.5 or facade is None) and rng.random() < 0.45:
        barrier = ID["wall"] if rng.random() < 0.5 else ID["fence"]
    return bands, Side(sign, edge, walk, facade, barrier)


def _layout(rng: np.random.Generator) -> Street:
    lanes, lane_w = int(rng.integers(2, 5)), rng.uniform(2.8, 3.6)
    ego_lane = int(
        rng.integers(lanes // 2, lanes)
    )  # traffic keeps right; lanes left of centre come at us
    left_edge, right_edge = (ego_lane + 0.5) * lane_w, (lanes - ego_lane - 0.5) * lane_w
    bands = [
        Band(
            -left_edge,
            right_edge,
            ID["road"],
            paint.asphalt_color(rng),
            rng.choice([0.0, 0.0, 0.0, 0.25]),
        )
    ]
    sides = []
    for sign, edge in ((-1, left_edge), (1, right_edge)):
        side_bands, side = _side(rng, sign, edge)
        bands += side_bands
        sides.append(side)
    lines = [(-left_edge + i * lane_w, i == lanes // 2) for i in range(1, lanes)]
    centres = [(-left_edge + (i + 0.5) * lane_w, i < lanes // 2) for i in range(lanes)]
    return Street(sorted(bands, key=lambda b: b.x0), sides, lines, centres)


def _paint_sky(rgb: np.ndarray, rng: np.random.Generator, horizon_row: int) -> None:
    top = np.array(
        paint.hsv(rng.uniform(0.5, 0.7), rng.uniform(0.0, 0.7), rng.uniform(0.45, 0.95)), np.float32
    )
    low = np.array(
        paint.hsv(rng.uniform(0.0, 0.7), rng.uniform(0.0, 0.3), rng.uniform(0.6, 1.0)), np.float32
    )
    t = np.linspace(0.0, 1.0, max(horizon_row, 1), dtype=np.float32)[:, None, None]
    rgb[:horizon_row] = (top * (1 - t) + low * t).astype(np.uint8)


def _paint_ground(rgb, label, depth, cam: Camera, rng, street: Street) -> None:
    bands = street.bands
    height, width = label.shape
    first = int(np.floor(cam.horizon)) + 1
    v = np.arange(first, height, dtype=np.float32)[:, None] + 0.5
    z = cam.focal * cam.height / (v - cam.horizon)
    x = (np.arange(width, dtype=np.float32)[None, :] + 0.5 - cam.cx) * z / cam.focal
    z_full = np.broadcast_to(z, x.shape)
    which = np.searchsorted(np.array([b.x0 for b in bands[1:]], np.float32), x, side="right")
    classes = np.array([b.cls for b in bands], np.uint8)[which]
    colors = np.array([b.color for b in bands], np.uint8)[which]
    for k, band in enumerate(bands):
        if band.tile > 0:  # joints between slabs or cobbles, whatever class the band has
            on = which == k
            joint = (np.abs((x[on] / band.tile) % 1 - 0.5) > 0.44) | (
                np.abs((z_full[on] / band.tile) % 1 - 0.5) > 0.44
            )
            on[on] = joint
            colors[on] = colors[on] // 4 * 3
    road = classes == ID["road"]
    marking = np.array(
        paint.hsv(rng.uniform(0.1, 0.17), rng.uniform(0.0, 0.7), rng.uniform(0.75, 1.0)), np.uint8
    )
    phase, period = rng.uniform(0, 12), rng.uniform(8, 14)
    for line_x, solid in street.lane_lines:
        dashes = np.ones_like(z, bool) if solid else (z + phase) % period < 0.4 * period
        colors[road & (np.abs(x - line_x) < 0.08) & dashes] = marking
    if rng.random() < 0.35:  # a zebra crossing
        z0 = rng.uniform(8, 30)
        rows = np.flatnonzero((z[:, 0] > z0) & (z[:, 0] < z0 + rng.uniform(3, 5)))
        if rows.size:
            band = slice(rows[0], rows[-1] + 1)
            stripes = road[band] & ((x[band] + phase) % 1.0 < 0.5)
            colors[band][stripes] = marking
    rgb[first:] = colors
    label[first:] = classes
    depth[first:] = z


def _draw_facades(pen: WorldPen, rng, side: Side) -> None:
    if side.facade is None:
        return
    x = side.sign * side.facade
    cam, (width, _) = pen.camera, pen.canvas.size
    enters_view = cam.focal * side.facade / max(cam.cx, width - cam.cx)  # depth at the image border
    segments, z = [], max(0.5, 0.7 * enters_view)
    while z < FAR:
        length = rng.uniform(8, 30)
        if rng.random() > 0.15:
            segments.append((z, z + length, rng.uniform(6, 28)))
        z += length
    for z0, z1, top in reversed(segments):  # far to near: nearer fronts cover farther walls
        rng = child_rng(
            rng
        )  # windows stop at sub-pixel size; keep the parent stream resolution-free
        wall = paint.facade_color(rng)
        depth = rng.uniform(8, 20)
        pen.polygon(
            [
                (x, 0, z0),
                (x + side.sign * depth, 0, z0),
                (x + side.sign * depth, top, z0),
                (x, top, z0),
            ],
            ID["building"],
            shade(wall, 0.8),
            z0,
        )
        pen.polygon([(x, 0, z0), (x, 0, z1), (x, top, z1), (x, top, z0)], ID["building"], wall, z0)
        _draw_windows(pen, rng, x, z0, z1, top)


def _draw_windows(pen: WorldPen, rng, x: float, z0: float, z1: float, top: float) -> None:
    floor, bay = rng.uniform(2.8, 4.0), rng.uniform(1.8, 4.0)
    win_h, win_w = floor * rng.uniform(0.35, 0.65), bay * rng.uniform(0.3, 0.7)
    glass = paint.glass_color(rng)
    focal = pen.camera.focal
    for zc in np.arange(z0 + bay / 2, z1 - bay / 2, bay):
        if focal * abs(x) * (1 / (zc - win_w / 2) - 1 / (zc + win_w / 2)) < 1.5:
            break  # windows further on would be narrower than a pixel
        for yc in np.arange(rng.uniform(1.5, 3.5), top - floor / 2, floor):
            corners = [
                (x, yc, zc - win_w / 2),
                (x, yc, zc + win_w / 2),
                (x, yc + win_h, zc + win_w / 2),
                (x, yc + win_h, zc - win_w / 2),
            ]
            pen.polygon(corners, ID["building"], glass, zc)
            if rng.random() < 0.3:
                pen.canvas.lit_windows.append([pen.camera.project(*c) for c in corners])


def _draw_skyline(canvas: Canvas, cam: Camera, rng) -> None:
    width, _ = canvas.size
    u = 0.0
    while u < width:
        w = width * rng.uniform(0.02, 0.1)
        rise = cam.focal * rng.uniform(0.0, 0.12)
        hazy = paint.hsv(
            rng.random(), rng.uniform(0.0, 0.25), rng.uniform(0.35, 0.75)
        )  # distance mutes colour
        if rng.random() < 0.5:
            canvas.polygon(
                [
                    (u, cam.horizon + 1),
                    (u + w, cam.horizon + 1),
                    (u + w, cam.horizon - rise),
                    (u, cam.horizon - rise),
                ],
                ID["building"],
                hazy,
                FAR * 1.2,
            )
        else:
            canvas.ellipse(
                (u, cam.horizon - rise, u + w, cam.horizon + rise * 0.3 + 1),
                ID["vegetation"],
                paint.foliage_color(rng),
                FAR * 1.2,
            )
        u += w * rng.uniform(0.6, 1.0)


def _draw_barrier(pen: WorldPen, rng, side: Side) -> None:
    x, height = side.sign * side.sidewalk[1], rng.uniform(0.7, 2.0)
    color = paint.concrete_color(rng) if side.yard_barrier == ID["wall"] else paint.metal_color(rng)
    z0, z1 = rng.uniform(2, 15), rng.uniform(30, 120)
    if side.yard_barrier == ID["wall"]:
        pen.polygon(
            [(x, 0, z0), (x, 0, z1), (x, height, z1), (x, height, z0)], ID["wall"], color, z0
        )
        return
    # A board or mesh fence: a solid panel (gaps are finer than a pixel at our sizes), with posts.
    pen.polygon(
        [(x, 0.05, z0), (x, 0.05, z1), (x, height, z1), (x, height, z0)], ID["fence"], color, z0
    )
    post = shade(color, rng.uniform(0.5, 0.8))
    for z in np.arange(z1, z0, -rng.uniform(2.0, 3.5)):
        pen.polygon(
            [(x, 0, z), (x, 0, z + 0.15), (x, height + 0.1, z + 0.15), (x, height + 0.1, z)],
            ID["fence"],
            post,
            z,
        )


def child_rng(rng: np.random.Generator) -> np.random.Generator:
    return np.random.default_rng(rng.integers(2**63))


@dataclass
class Placement:
    """Something standing at (x, z) that draws itself with its own random stream."""

    x: float
    z: float
    draw: Callable
    rng: np.random.Generator

    def visible(self, cam: Camera, width: int, reach: float = 4.0, length: float = 13.0) -> bool:
        """Could any of it (within reach metres sideways, length deep) land in the frame?"""
        us = [
            cam.cx + cam.focal * (self.x + dx) / z
            for z in (self.z, self.z + length)
            for dx in (-reach, reach)
        ]
        return max(us) >= 0 and min(us) < width


def _place_things(rng, street: Street) -> list[Placement]:
    """Everything that stands in the street, in no particular order."""
    placed: list[Placement] = []

    def put(fn, x, z, *args):
        placed.append(Placement(x, z, lambda pen, r: fn(pen, r, x, z, *args), child_rng(rng)))

    for side in street.sides:
        near, far = side.sidewalk
        toward = -side.sign
        for z in np.arange(rng.uniform(4, 15), OBJECTS_FAR, rng.uniform(15, 30)):
            put(things.draw_streetlight, side.sign * (near + 0.4), z, toward)
        if rng.random() < 0.6:
            for z in np.arange(rng.uniform(3, 10), OBJECTS_FAR, rng.uniform(6, 15)):
                put(things.draw_tree, side.sign * rng.uniform(near + 0.5, far + 0.3), z)
        for z in rng.uniform(4, 30, size=rng.integers(0, 3)):
            put(things.draw_sign_post, side.sign * (near + rng.uniform(0.2, 0.7)), z)
        if rng.random() < 0.4:
            z = rng.uniform(6, 30)
            put(things.draw_traffic_light, side.sign * (near + 0.3), z, toward)
        for z in rng.uniform(3, 30, size=rng.integers(0, 7)):
            put(things.draw_person, side.sign * rng.uniform(near + 0.3, far - 0.2), z)
        for z in rng.uniform(4, 30, size=rng.integers(0, 2)):
            put(things.draw_bicycle, side.sign * rng.uniform(near + 0.4, far - 0.3), z, False)
        if rng.random() < 0.4:  # parked cars along the kerb
            for z in np.arange(rng.uniform(3, 12), OBJECTS_FAR, rng.uniform(5.5, 12)):
                put(things.draw_car, side.sign * (side.road_edge - 1.1), z, False)
        for z in rng.uniform(5, 40, size=rng.integers(0, 2)):
            put(things.draw_bicycle, side.sign * (side.road_edge - rng.uniform(0.6, 1.6)), z, True)
    for lane_x, facing in street.lanes:
        z = rng.uniform(6, 20) if abs(lane_x) < 1.0 else rng.uniform(3, 15)
        while z < OBJECTS_FAR:
            kind = rng.choice(
                [things.draw_car, things.draw_truck, things.draw_bus], p=[0.74, 0.13, 0.13]
            )
            put(kind, lane_x + rng.normal(0, 0.2), z, facing)
            z += rng.uniform(12, 40)
    return placed


def _draw_ego_hood(canvas: Canvas, rng) -> None:
    """The bonnet of the recording car, labelled ignore as Cityscapes labels 'ego vehicle'."""
    width, height = canvas.size
    top = height * rng.uniform(0.88, 0.95)
    arc = [
        (u, top + (height - top) * 0.6 * (2 * u / width - 1) ** 2)
        for u in np.linspace(0, width, 16)
    ]
    canvas.polygon(arc + [(width, height), (0, height)], IGNORE_INDEX, paint.any_color(rng), 1.0)


def render_street_scene(rng: np.random.Generator, height: int, width: int) -> RenderedScene:
    cam = Camera(
        focal=width * rng.uniform(0.75, 1.05),
        cx=width * rng.uniform(0.4, 0.6),
        horizon=height * rng.uniform(0.36, 0.5),
        height=rng.uniform(1.2, 1.7),
    )
    street = _layout(rng)
    rgb = np.zeros((height, width, 3), np.uint8)
    label = np.full((height, width), ID["sky"], np.uint8)
    depth = np.full((height, width), SKY_DEPTH, np.float32)
    _paint_sky(rgb, rng, int(np.floor(cam.horizon)) + 1)
    _paint_ground(rgb, label, depth, cam, rng, street)
    canvas = Canvas(rgb, label, depth)
    pen = WorldPen(canvas, cam)
    _draw_skyline(canvas, cam, rng)
    for side in street.sides:
        _draw_facades(pen, rng, side)
    for side in street.sides:
        if side.yard_barrier is not None:
            _draw_barrier(pen, rng, side)
    for thing in sorted(_place_things(rng, street), key=lambda p: -p.z):  # back to front
        if thing.visible(cam, width):
            thing.draw(pen, thing.rng)
    if rng.random() < 0.25:
        _draw_ego_hood(canvas, rng)
    image, label, depth = canvas.arrays()
    return RenderedScene(image, label, depth, canvas)
