"""How a rendered street scene looks: texture, lighting, weather and sensor noise.

Everything here changes pixels only, never labels. The texture and noise fields are shared
by every class on purpose: if road, sidewalk and walls each had their own texture, a model
could classify pixels by texture alone. Weather conditions are the domains that the
incremental-learning stage adds one after another.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.data.labels import CITYSCAPES_ID as ID
from training.data.street_scene import RenderedScene

CONDITIONS = ("clear", "rain", "fog", "snow", "night")


def smooth_noise(
    rng: np.random.Generator, height: int, width: int, cells: tuple[int, int]
) -> np.ndarray:
    """Roughly unit-variance noise with a fixed number of cells, so it looks alike at any size."""
    grid = rng.standard_normal(cells, dtype=np.float32)
    return np.array(Image.fromarray(grid, "F").resize((width, height), Image.BILINEAR))


def _mask(size: tuple[int, int], polygons) -> np.ndarray:
    layer = Image.new("L", size, 0)
    draw = ImageDraw.Draw(layer)
    for points in polygons:
        draw.polygon(points, fill=255)
    return np.asarray(layer, dtype=np.float32) / 255.0


def _texture_and_light(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 render to float image in [0, 1] with shared texture, exposure and cast shadows."""
    height, width, _ = rgb.shape
    light = smooth_noise(rng, height, width, (4, 8))
    light *= rng.uniform(0.03, 0.12)
    light += rng.uniform(0.02, 0.08) * smooth_noise(rng, height, width, (40, 80))
    light += 1 + np.linspace(-1, 1, width, dtype=np.float32)[None, :] * rng.uniform(-0.25, 0.25)
    shadows = []
    for _ in range(int(rng.integers(0, 3))):  # cast shadows cross class borders, like real ones
        u0, u1 = sorted(rng.uniform(-0.2, 1.2, size=2) * width)
        v0 = rng.uniform(0.4, 0.8) * height
        slant = rng.uniform(-0.5, 0.5) * width
        shadows.append([(u0, v0), (u1, v0), (u1 + slant, height), (u0 + slant, height)])
    if shadows:
        light *= 1 - rng.uniform(0.25, 0.5) * _mask((width, height), shadows)
    exposure = rng.uniform(0.65, 1.25) * rng.uniform(0.9, 1.1, size=3).astype(
        np.float32
    )  # white balance
    img = rgb.astype(np.float32)
    img *= light[..., None]
    img *= exposure / 255.0
    return img


def _rain(img: np.ndarray, scene: RenderedScene, rng: np.random.Generator) -> np.ndarray:
    height, width, _ = img.shape
    gray = img.mean(axis=2, keepdims=True)
    img = (0.6 * img + 0.4 * gray) * rng.uniform(0.65, 0.85)
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    count = int(rng.uniform(0.5, 1.5) * 300 * height * width / (128 * 256))
    length, slant = rng.uniform(0.03, 0.08) * height, rng.uniform(-0.3, 0.3)
    us, vs = rng.uniform(0, width, count), rng.uniform(-length, height, count)
    thickness = max(1, width // 512)
    for u, v in zip(us.tolist(), vs.tolist()):
        draw.line([(u, v), (u + slant * length, v + length)], fill=255, width=thickness)
    streaks = np.asarray(layer, dtype=np.float32)[..., None] / 255.0 * rng.uniform(0.2, 0.45)
    return img * (1 - streaks) + streaks * 0.85


def _fog(img: np.ndarray, scene: RenderedScene, rng: np.random.Generator) -> np.ndarray:
    visibility = rng.uniform(25.0, 90.0)  # metres at which 1/e of the scene's light is left
    veil = np.exp(-scene.depth / visibility)[..., None]
    haze = rng.uniform(0.6, 0.85) * rng.uniform(0.95, 1.05, size=3).astype(np.float32)
    return img * veil + haze * (1 - veil)


def _snow(img: np.ndarray, scene: RenderedScene, rng: np.random.Generator) -> np.ndarray:
    height, width, _ = img.shape
    ground = np.isin(scene.label, [ID["road"], ID["sidewalk"], ID["terrain"]])
    cover = np.clip(0.55 + 0.5 * smooth_noise(rng, height, width, (24, 48)), 0, 1) * rng.uniform(
        0.4, 0.9
    )
    snow_white = np.array([0.9, 0.92, 0.97], np.float32)
    img = img + (snow_white - img) * (cover * ground)[..., None]
    img = 0.75 * img + 0.2  # flat winter light
    flakes = np.zeros((height, width), np.uint8)
    count = int(rng.uniform(0.3, 1.0) * 600 * height * width / (128 * 256))
    flakes[rng.integers(0, height, count), rng.integers(0, width, count)] = 255
    if width >= 512:  # flakes are a few pixels wide in large frames
        flakes = np.asarray(Image.fromarray(flakes).filter(ImageFilter.MaxFilter(3)))
    alpha = flakes[..., None].astype(np.float32) / 255.0 * rng.uniform(0.5, 0.9)
    return img * (1 - alpha) + alpha * snow_white


def _night(img: np.ndarray, scene: RenderedScene, rng: np.random.Generator) -> np.ndarray:
    height, width, _ = img.shape
    img = img * rng.uniform(0.15, 0.3)
    img[scene.label == ID["sky"]] *= 0.4
    if scene.canvas.lit_windows:
        glow = _mask((width, height), scene.canvas.lit_windows)[..., None]
        img = img * (1 - glow) + glow * np.array([0.95, 0.8, 0.45], np.float32) * rng.uniform(
            0.5, 0.9
        )
    for light in scene.canvas.lights:  # a bright core and a wide halo around each lamp
        radius = float(
            np.clip(light.radius, 1.0, 0.02 * width)
        )  # lamps next to the camera must not blind it
        reach = int(np.ceil(4 * radius))
        u0, u1 = max(0, int(light.u) - reach), min(width, int(light.u) + reach + 1)
        v0, v1 = max(0, int(light.v) - reach), min(height, int(light.v) + reach + 1)
        if u0 >= u1 or v0 >= v1:
            continue
        du = np.arange(u0, u1, dtype=np.float32)[None, :] - light.u
        dv = np.arange(v0, v1, dtype=np.float32)[:, None] - light.v
        d2 = (du**2 + dv**2) / radius**2
        falloff = 0.8 * np.exp(-d2) + 0.15 * np.exp(-d2 / 6)
        img[v0:v1, u0:u1] += falloff[..., None] * (np.array(light.color, np.float32) / 255.0)
    return img


_WEATHER = {"rain": _rain, "fog": _fog, "snow": _snow, "night": _night}


def apply_appearance(
    scene: RenderedScene, rng: np.random.Generator, condition: str = "clear"
) -> np.ndarray:
    """Turn the flat-coloured render into a uint8 HxWx3 photo-like image."""
    if condition not in CONDITIONS:
        raise ValueError(
            f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}"
        )
    img = _texture_and_light(scene.image, rng)
    if condition != "clear":
        img = _WEATHER[condition](img, scene, rng)
    height, width, _ = img.shape
    grain = rng.uniform(0.005, 0.025) * (2.0 if condition == "night" else 1.0)
    img += grain * rng.standard_normal((height, width, 1), dtype=np.float32)
    np.clip(img, 0.0, 1.0, out=img)
    img *= 255.0
    img += 0.5
    return img.astype(np.uint8)
