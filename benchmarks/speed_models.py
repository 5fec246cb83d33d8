"""fp32 and int8 TFLite files of one checkpoint, exported only to be timed.

Only speed is measured with them, so the int8 gate is off: a student trained at 96x192 is
undecided on 512x1024 frames, and the gate rightly refuses to ship that int8 model (its
agreement is still in out/parity.json). Shared by benchmarks.footage and .web_latency.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from conversion.pipeline import ExportRun, ExportSettings
from training.errors import UserError

PRECISIONS = ("fp32", "int8")
GATE_OFF = {"int8": {"agreement": 0.0, "miou_drop": 100.0}}


def export_speed_models(checkpoint: Path, size: tuple[int, int], out: Path,
                        calib_count: int, parity_count: int, **fields) -> dict[str, Path]:
    """{precision: file} for fp32 and int8 at `size`. `fields`: more ExportSettings fields,
    their `thresholds` laid over the gate-off ones."""
    overrides = fields.pop("thresholds", {})
    thresholds = {name: {**GATE_OFF.get(name, {}), **overrides.get(name, {})}
                  for name in {*GATE_OFF, *overrides}}
    settings = ExportSettings(targets=["tflite"], checkpoint=checkpoint, input_size=size,
                              out=out, calib_count=calib_count, parity_count=parity_count,
                              thresholds=thresholds, **fields)
    result = ExportRun(settings).run()
    files = {e["precision"]: out / e["file"] for e in result["entries"] if e["placed"]}
    missing = [p for p in PRECISIONS if p not in files]
    if missing:
        raise UserError(f"the {size[0]}x{size[1]} export placed no {', '.join(missing)} model")
    return {p: files[p] for p in PRECISIONS}


def parse_size(text: str) -> tuple[int, int]:
    """argparse type for an HxW size flag (`512x1024`)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW, got {text!r}") from None
    return height, width
