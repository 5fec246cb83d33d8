"""Write a preview grid of a dataset: images with their palette-coloured masks.

    python -m training.data.preview                                  # synthetic, all conditions
    python -m training.data.preview --dataset camvid:../shared/datasets/camvid --out /tmp/camvid.png

For synthetic data the top row shows the label maps and each further row one weather
condition of the same scenes: the layout (and so the labels) never changes with the weather.
"""

from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.data.appearance import CONDITIONS
from training.data.labels import colorize
from training.data.spec import DatasetSpec, parse_dataset_spec, parse_synthetic_options
from training.data.synthetic import generate_scene
from training.io import prepare_output_file
from training.errors import run_cli

CELL = (128, 256)  # height, width of one tile in the grid


def _tile(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array).resize((CELL[1], CELL[0]), Image.NEAREST)


def _with_caption(tile: Image.Image, text: str, font) -> Image.Image:
    draw = ImageDraw.Draw(tile)
    box = draw.textbbox((3, 2), text, font=font)
    draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
    draw.text((3, 2), text, fill=(255, 255, 255), font=font)
    return tile


def _legend(spec: DatasetSpec, present: set[int], width: int, font) -> Image.Image:
    """Swatches for the classes that occur in the grid, wrapped to the grid's width."""
    entries = [
        (spec.palette[c], spec.class_names[c]) for c in sorted(present) if c < spec.num_classes
    ]
    per_row, row_h = max(1, width // 128), 18
    legend = Image.new("RGB", (width, row_h * -(-len(entries) // per_row) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    for i, (color, name) in enumerate(entries):
        x, y = (i % per_row) * 128 + 4, (i // per_row) * row_h + 3
        draw.rectangle((x, y, x + 12, y + 12), fill=color, outline=(0, 0, 0))
        draw.text((x + 17, y), name, fill=(0, 0, 0), font=font)
    return legend


def synthetic_rows(
    spec: DatasetSpec, scenes: int, conditions: list[str], font
) -> tuple[list[list[Image.Image]], set]:
    options = parse_synthetic_options(spec.text.partition(":")[2])
    split = "val" if "val" in spec.splits else spec.splits[0]
    masks, rows, present = [], [], set()
    for condition in conditions:
        row = []
        for index in range(scenes):
            image, mask = generate_scene(options.seed, split, index, options.size, [condition])
            if not masks or len(masks) < scenes:
                masks.append(_with_caption(_tile(colorize(mask, spec.palette)), "labels", font))
                present |= set(np.unique(mask).tolist())
            row.append(_with_caption(_tile(image), condition, font))
        rows.append(row)
    return [masks] + rows, present


def dataset_rows(spec: DatasetSpec, scenes: int, font) -> tuple[list[list[Image.Image]], set]:
    dataset = spec.build(spec.splits[0])
    picks = np.linspace(0, len(dataset) - 1, scenes).round().astype(int)
    images, masks, present = [], [], set()
    for index in picks.tolist():
        image, mask = dataset[index]
        mask = mask.numpy()
        images.append(_with_caption(_tile(image.permute(1, 2, 0).numpy()), f"#{index}", font))
        masks.append(_tile(colorize(mask, spec.palette)))
        present |= set(np.unique(mask).tolist())
    return [images, masks], present


def _to_256_colors(sheet: Image.Image, palette) -> Image.Image:
    """A palette PNG is a third of the RGB one; the class colours are kept exact in it."""
    fixed = [tuple(c) for c in palette] + [(0, 0, 0), (255, 255, 255)]
    photo = sheet.quantize(colors=256 - len(fixed)).getpalette()[: 3 * (256 - len(fixed))]
    colors = Image.new("P", (1, 1))
    colors.putpalette(photo + [v for c in fixed for v in c])
    return sheet.quantize(palette=colors)


def write_preview(
    spec: DatasetSpec, out: Path, scenes: int = 3, conditions: list[str] | None = None
) -> Path:
    font = ImageFont.load_default()
    if spec.name == "synthetic":
        rows, present = synthetic_rows(spec, scenes, conditions or list(CONDITIONS), font)
    else:
        rows, present = dataset_rows(spec, scenes, font)
    width = CELL[1] * scenes
    grid = Image.new("RGB", (width, CELL[0] * len(rows)))
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            grid.paste(tile, (c * CELL[1], r * CELL[0]))
    legend = _legend(spec, present, width, font)
    sheet = Image.new("RGB", (width, grid.height + legend.height), (255, 255, 255))
    sheet.paste(grid, (0, 0))
    sheet.paste(legend, (0, grid.height))
    out.parent.mkdir(parents=True, exist_ok=True)
    _to_256_colors(sheet, spec.palette).save(out, optimize=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", default="synthetic:size=256x512", help="dataset spec (see training.data.spec)"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/synthetic_preview.png"))
    parser.add_argument("--scenes", type=int, default=3, help="columns in the grid")
    parser.add_argument(
        "--conditions", default=",".join(CONDITIONS), help="synthetic only: rows, comma-separated"
    )
    args = parser.parse_args(argv)
    prepare_output_file(args.out, "--out")
    spec = parse_dataset_spec(args.dataset)
    path = write_preview(
        spec, args.out, args.scenes, [c.strip() for c in args.conditions.split(",") if c.strip()]
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    run_cli(main)
