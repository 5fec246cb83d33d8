"""fp32 and int8 TFLite files of one checkpoint, exported only to be timed.

Only speed is measured with them, so the int8 gate is off: a student trained at 96x192 is
undecided on 512x1024 frames, and the gate rightly refuses to ship that int8 model (its
agreement is still in out/parity.json). Shared by benchmarks.footage and .web_latency.
"""
from __future__ import annotations

from pathlib import Path

from conversion.export import build_parser, settings_from
from conversion.pipeline import ExportRun
from training.errors import UserError

PRECISIONS = ("fp32", "int8")
_GATE_OFF = ("--threshold", "int8.agreement=0", "--threshold", "int8.miou_drop=100")


def export_speed_models(checkpoint: Path, size: tuple[int, int], out: Path,
                        calib_count: int, parity_count: int, *extra: str) -> dict[str, Path]:
    """{precision: file} for fp32 and int8 at `size`; `extra`: more conversion.export flags."""
    args = build_parser().parse_args([
        "--target", "tflite", "--checkpoint", str(checkpoint), "--input-size", *map(str, size),
        "--out", str(out), "--calib-count", str(calib_count),
        "--parity-count", str(parity_count), *_GATE_OFF, *extra])
    result = ExportRun(settings_from(args)).run()
    files = {e["precision"]: out / e["file"] for e in result["entries"] if e["placed"]}
    missing = [p for p in PRECISIONS if p not in files]
    if missing:
        raise UserError(f"the {size[0]}x{size[1]} export placed no {', '.join(missing)} model")
    return {p: files[p] for p in PRECISIONS}
