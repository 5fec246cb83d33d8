"""Colour priors of the materials a street is made of.

Each class draws its colours from a realistic range, and the ranges overlap on purpose:
asphalt and paving are both greys, grass and leaves both greens, facades, walls and
vehicles may be almost anything. So colour is a cue a model can learn quickly, but never
enough on its own; shape and position have to settle the rest.
"""

from __future__ import annotations

import colorsys

import numpy as np

from training.data.street_geometry import Color


def hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (int(r * 255), int(g * 255), int(b * 255))


def any_color(rng: np.random.Generator) -> Color:
    """Half neutral (white, black, greys), half any hue: the paint of cars or clothes."""
    if rng.random() < 0.5:
        return hsv(rng.random(), rng.uniform(0, 0.08), rng.uniform(0.08, 0.92))
    return hsv(rng.random(), rng.uniform(0.35, 0.95), rng.uniform(0.25, 0.95))


def asphalt_color(rng: np.random.Generator) -> Color:
    return hsv(rng.random(), rng.uniform(0.0, 0.1), rng.uniform(0.22, 0.5))


def paving_color(rng: np.random.Generator) -> Color:
    """Sidewalks: mostly lighter and warmer than asphalt, sometimes just as dark."""
    return hsv(rng.uniform(0.0, 0.15), rng.uniform(0.0, 0.25), rng.uniform(0.38, 0.8))


def facade_color(rng: np.random.Generator) -> Color:
    return hsv(rng.random(), rng.uniform(0.05, 0.5), rng.uniform(0.3, 0.9))


def concrete_color(rng: np.random.Generator) -> Color:
    """Walls and the lighter fences."""
    return hsv(rng.uniform(0.0, 0.2), rng.uniform(0.0, 0.3), rng.uniform(0.35, 0.8))


def metal_color(rng: np.random.Generator) -> Color:
    """Poles, posts, fences: greys, sometimes a dark green or blue coat of paint."""
    return hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.2, 0.7))


def sign_color(rng: np.random.Generator) -> Color:
    """Sign faces are mostly the regulatory red, blue, yellow, green, white; some are anything."""
    if rng.random() < 0.15:
        return any_color(rng)
    hue = rng.choice([0.0, 0.0, 0.6, 0.6, 0.14, 0.35, 0.08, -1.0])
    return (
        hsv(0, 0, rng.uniform(0.85, 1.0))
        if hue < 0
        else hsv(hue, rng.uniform(0.7, 1.0), rng.uniform(0.6, 1.0))
    )


def foliage_color(rng: np.random.Generator) -> Color:
    """Leaves: mostly greens, one in five autumn-coloured."""
    hue = rng.uniform(0.05, 0.15) if rng.random() < 0.2 else rng.uniform(0.18, 0.42)
    return hsv(hue, rng.uniform(0.35, 0.85), rng.uniform(0.2, 0.6))


def grass_color(rng: np.random.Generator) -> Color:
    """Terrain: grass and soil, on average lighter and yellower than leaves."""
    return hsv(rng.uniform(0.08, 0.3), rng.uniform(0.3, 0.75), rng.uniform(0.35, 0.75))


def glass_color(rng: np.random.Generator) -> Color:
    return hsv(rng.uniform(0.5, 0.7), rng.uniform(0.1, 0.4), rng.uniform(0.12, 0.45))


def dark_rubber(rng: np.random.Generator) -> Color:
    level = int(rng.integers(18, 50))
    return (level, level, level)
