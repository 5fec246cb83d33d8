"""Write the web demo's bundled sample frames: embedded synthetic street scenes, one per weather.

    python web_demo/tools/make_samples.py          # -> web_demo/samples/*.png + index.json

The scenes come from the project's own generator (training.data.synthetic), from its test
split, so no model was trained on them. They are rendered at 2x the quickstart student's
96x192 input; the page resizes any frame to the model's input size.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from training.data.synthetic import generate_scene  # noqa: E402

CONDITIONS = ("clear", "rain", "fog", "snow", "night")


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "web_demo" / "samples")
    parser.add_argument("--size", type=int, nargs=2, default=[192, 384], metavar=("H", "W"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, condition in enumerate(CONDITIONS):
        image, _ = generate_scene(0, "test", index, args.size, (condition,))
        path = args.out / f"street_{index}_{condition}.png"
        Image.fromarray(image).save(path, optimize=True)
        written.append(path)
    (args.out / "index.json").write_text(json.dumps([p.name for p in written], indent=1) + "\n")
    print(f"wrote {len(written)} frames to {args.out}")
    return written


if __name__ == "__main__":
    main()
