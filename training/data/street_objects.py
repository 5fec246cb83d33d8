"""Things that stand in a street scene: vehicles, people, bicycles, poles, signs, trees.

Each function draws one instance, in metres, at lateral position x and depth z. Colours are
drawn per instance from wide ranges (a car may be any colour, a sign's face too), so a model
has to use shape and context; only the parts' layout is class-specific.

Street furniture is oversized (poles, signs and signals about 1.5x their real size): at the
quickstart's 128x256 a real 12 cm pole is one or two pixels wide, finer than a DeepLab head at
output stride 16 can resolve at all, and a class nobody can learn only adds noise to mIoU.
"""

from __future__ import annotations

import numpy as np

from training.data.labels import CITYSCAPES_ID as ID
from training.data.materials import (
    any_color,
    dark_rubber,
    foliage_color,
    glass_color,
    hsv,
    metal_color,
    sign_color,
)
from training.data.street_geometry import Color, Light, WorldPen, shade


def _wheels_on_side(
    pen: WorldPen,
    x0: float,
    x1: float,
    z_centres: list[float],
    radius: float,
    color: Color,
    cls: int,
) -> None:
    """Wheel discs on whichever long side of a vehicle the camera sees."""
    side_x = x0 if x0 > 0 else x1 if x1 < 0 else None
    if side_x is None:
        return
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    for zc in z_centres:
        outline = [(side_x, radius + radius * np.sin(a), zc + radius * np.cos(a)) for a in angles]
        pen.polygon(outline, cls, color, zc)


def _rear_lights(pen: WorldPen, x0: float, x1: float, y: float, z: float, facing: bool) -> None:
    lamp = (250, 250, 225) if facing else (220, 25, 20)
    for lx0, lx1 in ((x0 + 0.06, x0 + 0.32), (x1 - 0.32, x1 - 0.06)):
        pen.quad_at_depth(lx0, lx1, y - 0.07, y + 0.07, z, ID["car"], lamp)
        u, v = pen.camera.project((lx0 + lx1) / 2, y, z)
        pen.canvas.lights.append(Light(u, v, 0.5 * pen.camera.pixels_per_metre(z), lamp))


def draw_car(pen: WorldPen, rng: np.random.Generator, x: float, z: float, facing: bool) -> None:
    cls = ID["car"]
    width, length = rng.uniform(1.65, 1.95), rng.uniform(3.8, 4.9)
    belt, roof = rng.uniform(0.85, 1.05), rng.uniform(1.35, 1.62)
    paint, glass, tyre = any_color(rng), glass_color(rng), dark_rubber(rng)
    x0, x1 = x - width / 2, x + width / 2
    for wx0, wx1 in ((x0 + 0.08, x0 + 0.36), (x1 - 0.36, x1 - 0.08)):
        pen.quad_at_depth(wx0, wx1, 0.0, 0.45, z + 0.7, cls, tyre)
    pen.box(x0, x1, 0.3, belt, z, z + length, cls, paint)
    inset = rng.uniform(0.08, 0.2)
    cabin_z0 = z + rng.uniform(0.5, 1.3)
    pen.box(
        x0 + inset, x1 - inset, belt, roof, cabin_z0, z + length - rng.uniform(0.8, 1.4), cls, paint
    )
    pen.quad_at_depth(
        x0 + inset + 0.08, x1 - inset - 0.08, belt + 0.06, roof - 0.07, cabin_z0, cls, glass
    )
    _wheels_on_side(pen, x0, x1, [z + 0.85, z + length - 0.9], 0.33, tyre, cls)
    _rear_lights(pen, x0, x1, belt - 0.18, z, facing)
    pen.quad_at_depth(x - 0.26, x + 0.26, 0.42, 0.54, z, cls, (225, 225, 215))


def draw_truck(pen: WorldPen, rng: np.random.Generator, x: float, z: float, facing: bool) -> None:
    cls = ID["truck"]
    width = rng.uniform(2.3, 2.55)
    cab_len, cargo_len = rng.uniform(2.0, 2.6), rng.uniform(5.0, 9.0)
    cab_h, cargo_h = rng.uniform(2.6, 3.1), rng.uniform(3.0, 3.9)
    cab_paint, cargo_paint, tyre = any_color(rng), any_color(rng), dark_rubber(rng)
    x0, x1 = x - width / 2, x + width / 2
    pen.quad_at_depth(x0 + 0.1, x1 - 0.1, 0.0, 0.6, z + 0.8, cls, tyre)
    # Draw the far part first: the cab when we see the back, the cargo box when it comes at us.
    cab_z = z if facing else z + cargo_len + 0.2
    cargo_z = z + cab_len + 0.2 if facing else z
    parts = [
        (cab_z, cab_len, cab_h, cab_paint, True),
        (cargo_z, cargo_len, cargo_h, cargo_paint, False),
    ]
    for part_z, part_len, part_h, paint, is_cab in sorted(parts, key=lambda p: -p[0]):
        pen.box(x0, x1, 0.5, part_h, part_z, part_z + part_len, cls, paint)
        if is_cab and facing:
            pen.quad_at_depth(
                x0 + 0.15, x1 - 0.15, part_h * 0.6, part_h - 0.2, part_z, cls, glass_color(rng)
            )
    if not facing and rng.random() < 0.5:  # a logo on the back: the box is not one flat tone
        pen.quad_at_depth(x - 0.6, x + 0.6, 1.4, 2.4, cargo_z, cls, any_color(rng))
    _wheels_on_side(pen, x0, x1, [z + 1.0, z + cab_len + cargo_len - 1.0], 0.5, tyre, cls)
    _rear_lights(pen, x0, x1, 0.9, z, facing)


def draw_bus(pen: WorldPen, rng: np.random.Generator, x: float, z: float, facing: bool) -> None:
    cls = ID["bus"]
    width, length, height = rng.uniform(2.45, 2.6), rng.uniform(10.0, 13.0), rng.uniform(2.9, 3.4)
    paint, glass, tyre = any_color(rng), glass_color(rng), dark_rubber(rng)
    x0, x1 = x - width / 2, x + width / 2
    pen.quad_at_depth(x0 + 0.1, x1 - 0.1, 0.0, 0.6, z + 0.8, cls, tyre)
    pen.box(x0, x1, 0.35, height, z, z + length, cls, paint)
    side_x = x0 if x0 > 0 else x1 if x1 < 0 else None
    if side_x is not None:  # the long band of passenger windows
        pen.polygon(
            [
                (side_x, 1.25, z + 1.0),
                (side_x, 1.25, z + length - 0.8),
                (side_x, height - 0.35, z + length - 0.8),
                (side_x, height - 0.35, z + 1.0),
            ],
            cls,
            glass,
            z,
        )
    pen.quad_at_depth(x0 + 0.15, x1 - 0.15, 1.15 if facing else 1.6, height - 0.45, z, cls, glass)
    pen.quad_at_depth(x0 + 0.3, x1 - 0.3, height - 0.38, height - 0.12, z, cls, (30, 30, 30))
    _wheels_on_side(pen, x0, x1, [z + 2.5, z + length - 2.8], 0.5, tyre, cls)
    _rear_lights(pen, x0, x1, 0.8, z, facing)


def draw_person(
    pen: WorldPen,
    rng: np.random.Generator,
    x: float,
    z: float,
    cls: int | None = None,
    sitting_on: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> None:
    """A pedestrian, or a rider when sitting_on gives (seat, pedal) offsets of a bicycle."""
    cls = ID["person"] if cls is None else cls
    h = rng.uniform(1.5, 1.95)
    skin = hsv(rng.uniform(0.02, 0.1), rng.uniform(0.25, 0.6), rng.uniform(0.3, 0.95))
    shirt, trousers = any_color(rng), any_color(rng)
    if sitting_on is None:
        hip, base, stride = 0.5 * h, 0.0, rng.uniform(-0.12, 0.12) * h
        for side in (-1, 1):
            top = side * 0.06 * h
            foot = top + side * stride / 2
            pen.flat_polygon(
                [
                    (top - 0.05 * h, hip),
                    (top + 0.05 * h, hip),
                    (foot + 0.04 * h, 0.0),
                    (foot - 0.04 * h, 0.0),
                ],
                x,
                z,
                cls,
                trousers,
            )
        lean = 0.0
    else:
        (seat_x, seat_y), (pedal_x, pedal_y) = sitting_on
        pen.segment((seat_x, seat_y), (pedal_x, pedal_y), x, z, 0.11 * h, cls, trousers)
        hip, base, lean = (
            seat_y,
            seat_x,
            rng.uniform(0.05, 0.18) * h * np.sign(pedal_x - seat_x + 1e-6),
        )
    shoulder, coat = hip + 0.32 * h, rng.random() < 0.3
    bottom = hip - 0.18 * h if coat else hip
    pen.flat_polygon(
        [
            (base - 0.12 * h, bottom),
            (base + 0.12 * h, bottom),
            (base + lean + 0.14 * h, shoulder),
            (base + lean - 0.14 * h, shoulder),
        ],
        x,
        z,
        cls,
        shirt,
    )
    for side in (-1, 1):  # arms hang, or reach for the handlebar
        hand = (
            (base + lean + side * 0.16 * h, hip - 0.02 * h)
            if sitting_on is None
            else (base + 2.2 * lean, hip + 0.12 * h)
        )
        pen.segment(
            (base + lean + side * 0.14 * h, shoulder - 0.02 * h), hand, x, z, 0.06 * h, cls, shirt
        )
    pen.disc(x + base + lean, shoulder + 0.09 * h, z, 0.065 * h, 0.078 * h, cls, skin)
    if rng.random() < 0.6:  # hair or a hat
        pen.disc(x + base + lean, shoulder + 0.13 * h, z, 0.06 * h, 0.04 * h, cls, any_color(rng))


def draw_bicycle(
    pen: WorldPen, rng: np.random.Generator, x: float, z: float, with_rider: bool
) -> None:
    """A bicycle seen from the side at some angle (squeeze), maybe with its rider on it."""
    cls = ID["bicycle"]
    squeeze = rng.uniform(0.35, 1.0) * rng.choice([-1.0, 1.0])
    r, half_base = 0.34, 0.52 * squeeze
    frame, tyre = any_color(rng), dark_rubber(rng)
    hub = shade(frame, 0.5)
    for wx in (-half_base, half_base):
        pen.disc(x + wx, r, z, r * abs(squeeze), r, cls, tyre)
        pen.disc(x + wx, r, z, 0.78 * r * abs(squeeze), 0.78 * r, cls, hub)
    seat, crank = (-0.18 * squeeze, 0.95), (0.0, 0.32)
    head, bar = (0.38 * squeeze, 1.0), (0.34 * squeeze, 1.1)
    for a, b in (
        ((-half_base, r), seat),
        (seat, crank),
        (crank, (-half_base, r)),
        (seat, head),
        (crank, head),
        (head, (half_base, r)),
        (head, bar),
    ):
        pen.segment(a, b, x, z, 0.05, cls, frame)
    if with_rider:
        draw_person(
            pen,
            rng,
            x,
            z,
            cls=ID["rider"],
            sitting_on=((seat[0], seat[1] + 0.02), (0.05 * squeeze, 0.2)),
        )


def draw_streetlight(
    pen: WorldPen, rng: np.random.Generator, x: float, z: float, toward_road: float
) -> None:
    cls, metal = ID["pole"], metal_color(rng)
    height, width = rng.uniform(6.0, 9.0), rng.uniform(0.25, 0.4)
    pen.quad_at_depth(x - width / 2, x + width / 2, 0.0, height, z, cls, metal)
    reach = toward_road * rng.uniform(0.8, 2.5)
    pen.segment((0.0, height - 0.1), (reach, height + 0.25), x, z, 0.18, cls, metal)
    pen.quad_at_depth(
        x + reach - 0.45, x + reach + 0.45, height + 0.05, height + 0.4, z, cls, shade(metal, 0.8)
    )
    u, v = pen.camera.project(x + reach, height, z)
    pen.canvas.lights.append(Light(u, v, 2.0 * pen.camera.pixels_per_metre(z), (255, 225, 170)))


def _sign_face(pen: WorldPen, rng: np.random.Generator, x: float, y: float, z: float) -> None:
    cls, size = ID["traffic sign"], rng.uniform(0.8, 1.2)
    face, rim = sign_color(rng), sign_color(rng)
    shape = rng.integers(4)
    for scale, color in ((1.0, rim), (0.72, face)):
        s = size * scale / 2
        if shape == 0:
            pen.disc(x, y, z, s, s, cls, color)
        elif shape == 1:
            pen.flat_polygon(
                [(-s, y - 0.8 * s), (s, y - 0.8 * s), (0, y + 0.9 * s)], x, z, cls, color
            )
        elif shape == 2:
            pen.flat_polygon(
                [(-s, y - 0.7 * s), (s, y - 0.7 * s), (s, y + 0.7 * s), (-s, y + 0.7 * s)],
                x,
                z,
                cls,
                color,
            )
        else:
            pen.flat_polygon([(-s, y), (0, y - s), (s, y), (0, y + s)], x, z, cls, color)


def draw_sign_post(pen: WorldPen, rng: np.random.Generator, x: float, z: float) -> None:
    height, width = rng.uniform(2.4, 3.4), rng.uniform(0.15, 0.25)
    pen.quad_at_depth(x - width / 2, x + width / 2, 0.0, height, z, ID["pole"], metal_color(rng))
    _sign_face(pen, rng, x, height, z)
    if rng.random() < 0.35:  # a second plate below the first
        _sign_face(pen, rng, x, height - 1.1, z)


def draw_traffic_light(
    pen: WorldPen, rng: np.random.Generator, x: float, z: float, toward_road: float
) -> None:
    cls, metal = ID["traffic light"], metal_color(rng)
    height = rng.uniform(3.2, 4.5)
    pen.quad_at_depth(x - 0.11, x + 0.11, 0.0, height, z, ID["pole"], metal)
    box_x = x
    if rng.random() < 0.4:  # a mast arm that holds the signal over the road
        box_x = x + toward_road * rng.uniform(2.0, 4.0)
        pen.segment((0.0, height), (box_x - x, height), x, z, 0.2, ID["pole"], metal)
        height -= 0.1
    housing = hsv(0.14, 0.9, 0.85) if rng.random() < 0.2 else dark_rubber(rng)  # black, or yellow
    pen.quad_at_depth(box_x - 0.27, box_x + 0.27, height - 1.4, height, z, cls, housing)
    lit = rng.integers(3)
    for i, lamp in enumerate(((230, 40, 30), (240, 170, 20), (40, 220, 90))):
        y = height - 0.27 - 0.43 * i
        color = lamp if i == lit else shade(lamp, 0.25)
        pen.disc(box_x, y, z, 0.16, 0.16, cls, color)
        if i == lit:
            u, v = pen.camera.project(box_x, y, z)
            pen.canvas.lights.append(Light(u, v, 0.6 * pen.camera.pixels_per_metre(z), lamp))


def draw_tree(pen: WorldPen, rng: np.random.Generator, x: float, z: float) -> None:
    cls = ID["vegetation"]
    trunk_h, crown = rng.uniform(1.8, 3.2), rng.uniform(1.3, 2.6)
    bark = hsv(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.15, 0.45))
    w = rng.uniform(0.12, 0.2)
    pen.quad_at_depth(x - w, x + w, 0.0, trunk_h + crown, z, cls, bark)
    leaves = foliage_color(rng)
    for _ in range(int(rng.integers(3, 7))):
        dx, dy = rng.normal(0, 0.45 * crown), trunk_h + crown + rng.normal(0, 0.4 * crown)
        r = crown * rng.uniform(0.5, 0.9)
        pen.disc(
            x + dx, dy, z, r, r * rng.uniform(0.8, 1.2), cls, shade(leaves, rng.uniform(0.75, 1.2))
        )
