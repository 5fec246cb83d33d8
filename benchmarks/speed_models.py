"""fp32 and int8 TFLite files of one checkpoint, exported only to be timed.

Only speed is measured with them, so the int8 gate is off: a student trained at 96x192 is
undecided on 512x1024 frames, and the gate rightly refuses to ship that int8 model (its
agreement is still in out/parity.json). Shared by benchmarks.footage and .web_latency.
"""
from __future__ import annotations

from pathlib import Path

from conversion.pipeline import ExportRun, ExportSettings
from training.errors import UserError

PRECISIONS = ("fp32", "int8")
GATE_OFF = {"int8": {"agreement": 0.0, "miou_drop": 100.0}}


def export_speed_models(checkpoint: Path, size: tuple[int, int], out: Path,
                        calib_count: int, parity_count: int, *flags: str,
                        **fields) -> dict[str, Path]:
    """{precision: file} for fp32 and int8 at `size`. `fields`: more ExportSettings fields,
    their `thresholds` laid over the gate-off ones; `flags`: conversion.export flags in their
    place (benchmarks.footage passes those), read by its parser."""
    if flags:
        fields = {**_fields_from_flags(flags), **fields}
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


def _fields_from_flags(flags: tuple[str, ...]) -> dict:
    """The ExportSettings fields that conversion.export `flags` move away from its defaults;
    `thresholds`: only the metrics that --threshold items changed."""
    from conversion.export import settings_from

    def fields(argv) -> dict:
        return vars(settings_from(["--target", "tflite", *argv]))
    given, default = fields(flags), fields([])
    changed = {key: value for key, value in given.items()
               if value != default[key] and key != "thresholds"}
    changed["thresholds"] = {
        name: {metric: value for metric, value in limits.items()
               if default["thresholds"][name].get(metric) != value}
        for name, limits in given["thresholds"].items()}
    return changed
