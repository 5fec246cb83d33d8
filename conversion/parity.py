"""Compare an artifact with PyTorch fp32, judge it against thresholds, write the report.

Agreement is the fraction of pixels whose argmax class equals PyTorch fp32's (all pixels,
the ignore label included: it compares two models, not a model with the truth). mIoU is
measured against ground truth for both, in points (0..100); `miou_drop` is reference minus
artifact. `max_abs_err` is over logits, for artifacts that output logits.

Thresholds are per precision class (fp32, fp16, int8); every int8-ish precision (dynamic
range, full integer, int16 activations, CoreML weight compression) is judged as int8.

Agreement alone cannot tell a model that quantization broke from a model that was never sure:
where PyTorch's top-1 and top-2 logits almost tie, int8 rounding of the output alone can swap
them. So every comparison also reports the share of *confident* pixels (fp32 top-1 minus
top-2 logit margin above `CONFIDENT_STEPS` int8 steps of the reference's logit range, i.e. of
what an int8 output could resolve) and the agreement on those pixels only. A refusal names
which case it is.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.errors import UserError
from training.io import atomic_write_text
from training.metrics import SegmentationMetrics

DEFAULT_THRESHOLDS = {"fp32": {"agreement": 0.999}, "fp16": {"agreement": 0.995},
                      "int8": {"agreement": 0.97, "miou_drop": 2.0}}
METRICS = ("agreement", "miou_drop", "max_abs_err")
REPORT_VERSION = 1
# A pixel is confident when its fp32 top-1 logit beats the top-2 by more than this many steps
# of an int8 grid over the reference logits' range (range / 255): rounding an int8 output
# moves a margin by at most one step, and a trained model's errors stay within a few.
CONFIDENT_STEPS = 4


def precision_class(precision: str) -> str:
    if precision in ("fp32", "fp16"):
        return precision
    return "int8"


def parse_thresholds(items: list[str] | None) -> dict:
    """'int8.agreement=0.98' items over the defaults; metric: agreement|miou_drop|max_abs_err."""
    thresholds = {name: dict(values) for name, values in DEFAULT_THRESHOLDS.items()}
    for item in items or []:
        key, sep, value = item.partition("=")
        name, dot, metric = key.strip().partition(".")
        if not sep or not dot or name not in thresholds or metric not in METRICS:
            raise UserError(f"bad --threshold {item!r}: expected CLASS.METRIC=VALUE with CLASS "
                            f"in {', '.join(thresholds)} and METRIC in {', '.join(METRICS)}")
        try:
            number = float(value)
        except ValueError:
            raise UserError(f"bad --threshold {item!r}: {value!r} is not a number") from None
        if metric == "agreement" and not 0 <= number <= 1:
            raise UserError(f"bad --threshold {item!r}: agreement is a fraction in 0..1")
        thresholds[name][metric] = number
    return thresholds


def thresholds_with(overrides: dict | None = None) -> dict:
    """The default thresholds with `overrides` ({CLASS: {METRIC: VALUE}}) laid over them,
    checked as `--threshold CLASS.METRIC=VALUE` items are."""
    return parse_thresholds([f"{name}.{metric}={value}" for name, limits in
                             (overrides or {}).items() for metric, value in limits.items()])


@dataclass
class Reference:
    """PyTorch fp32 on the held-out frames."""

    logits: np.ndarray  # float32 (N, C, H, W)
    masks: np.ndarray  # int64 (N, H, W)
    num_classes: int
    ignore_index: int

    def __post_init__(self):
        self.pred = self.logits.argmax(1)
        self.metrics = _miou(self.pred, self.masks, self.num_classes, self.ignore_index)
        self.confidence_level = confidence_level(self.logits)
        self.confident = top2_margin(self.logits) > self.confidence_level


def top2_margin(logits: np.ndarray) -> np.ndarray:
    """(N, C, H, W) logits -> (N, H, W) top-1 minus top-2 logit, one image at a time."""
    margins = []
    for image in logits:
        top2 = np.partition(image, -2, axis=0)[-2:]
        margins.append(top2[1] - top2[0])
    return np.stack(margins)


def confidence_level(logits: np.ndarray) -> float:
    """The margin above which a pixel counts as confident (see CONFIDENT_STEPS)."""
    return CONFIDENT_STEPS * float(logits.max() - logits.min()) / 255


def confident_agreement(pred: np.ndarray, reference_pred: np.ndarray,
                        confident: np.ndarray) -> tuple[float, float | None]:
    """(share of confident pixels, agreement on them; None when there are none)."""
    share = float(confident.mean())
    if not confident.any():
        return share, None
    return share, float((pred[confident] == reference_pred[confident]).mean())


def _miou(pred: np.ndarray, masks: np.ndarray, num_classes: int, ignore_index: int) -> dict:
    metrics = SegmentationMetrics(num_classes, ignore_index)
    metrics.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(masks))
    return metrics.compute()


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def compare(output: np.ndarray, reference: Reference) -> dict:
    """Numbers for one artifact's output: logits (N, C, H, W) or a class map (N, H, W)."""
    is_map = output.ndim == 3
    pred = output if is_map else output.argmax(1)
    if pred.shape != reference.pred.shape:
        raise ValueError(f"artifact output {output.shape} does not match the reference "
                         f"{reference.logits.shape}")
    if pred.min() < 0 or pred.max() >= reference.num_classes:
        raise ValueError(f"artifact predicts classes outside 0..{reference.num_classes - 1}")
    metrics = _miou(pred, reference.masks, reference.num_classes, reference.ignore_index)
    ref = reference.metrics
    delta = [_finite(a - r) for a, r in zip(metrics["per_class_iou"], ref["per_class_iou"])]
    share, confident = confident_agreement(pred, reference.pred, reference.confident)
    return {
        "agreement": float((pred == reference.pred).mean()),
        "agreement_confident": confident,
        "confident_share": share,
        "max_abs_err": None if is_map else float(np.abs(output - reference.logits).max()),
        "miou_artifact": _finite(metrics["miou"]),
        "miou_reference": _finite(ref["miou"]),
        "miou_drop": _finite(ref["miou"] - metrics["miou"]),
        "per_class_iou_delta": delta,
        "images": int(len(pred)),
    }


def judge(entry: dict, thresholds: dict) -> list[str]:
    """Reasons the entry misses its precision class's thresholds ([] = passed)."""
    limits = thresholds[precision_class(entry["precision"])]
    failures = []
    if entry.get("skipped"):
        return failures
    for metric, limit in limits.items():
        value = entry.get(metric)
        if value is None:
            continue
        if metric == "agreement" and value < limit:
            failures.append(f"agreement {value:.4f} < {limit}{diagnosis(entry, limit)}")
        elif metric != "agreement" and value > limit:
            failures.append(f"{metric} {value:.4g} > {limit}")
    return failures


def diagnosis(entry: dict, limit: float) -> str:
    """Why agreement is low: the model is undecided, or quantization changed sure pixels."""
    confident, share = entry.get("agreement_confident"), entry.get("confident_share")
    if confident is None or share is None:
        return ""
    where = (f" ({confident:.4f} on the {share:.0%} of pixels where the PyTorch reference is "
             f"confident")
    if confident >= limit:
        return where + "): the model is undecided (undertrained), not broken by quantization"
    return where + "): quantization changed confident predictions"


def write_report(out_dir: Path, entries: list[dict], header: dict,
                 class_names: list[str]) -> tuple[Path, Path]:
    """DIR/parity.json and DIR/parity.md; entries of earlier exports for other files stay."""
    path = Path(out_dir) / "parity.json"
    previous = []
    if path.is_file():
        try:
            previous = json.loads(path.read_text()).get("artifacts", [])
        except (OSError, ValueError, AttributeError):
            previous = []
    # An earlier run's artifact stays listed while its file is still in DIR: when this run
    # made no file of that name, or made one that the gate did not place.
    placed = {entry["file"] for entry in entries if entry.get("placed")}
    kept = [dict(entry, earlier_run=True) for entry in previous
            if entry.get("file") not in placed and (Path(out_dir) / entry.get("file", "")).exists()
            and entry.get("placed", entry.get("passed"))]
    report = {"report_version": REPORT_VERSION, **header, "artifacts": kept + entries}
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    markdown = path.with_suffix(".md")
    atomic_write_text(markdown, render_markdown(report, class_names))
    return path, markdown


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _gpu(entry: dict) -> str:
    report = entry.get("gpu_delegate")
    if not report:
        return "-"
    return "all ops" if report["compatible"] else "falls back: " + ", ".join(
        report["unsupported_ops"])


# What `reference.runtime` (parity.json, and parity.reference in each contract) names.
REFERENCES = {"pytorch-fp32": "PyTorch fp32",
              "pytorch-pt2e-qat": "the PT2E QAT program in PyTorch (its int8 quantize/"
                                  "dequantize ops)"}


def render_markdown(report: dict, class_names: list[str]) -> str:
    held, calib = report.get("held_out") or {}, report.get("calibration") or {}
    runtime = (report.get("reference") or {}).get("runtime", "pytorch-fp32")
    lines = [f"# Parity report: {report.get('checkpoint', '?')}", "",
             f"Reference: {REFERENCES.get(runtime, runtime)} on {held.get('count', '?')} "
             f"held-out images "
             f"({held.get('spec')}, split {held.get('split')}), input "
             f"{'x'.join(map(str, report.get('input_size', [])))}; calibration: "
             f"{calib.get('count', '-')} images of {calib.get('spec', '-')}.", "",
             f"Confident pixels: the reference's top-1 minus top-2 logit margin above "
             f"{report.get('reference', {}).get('confidence_level', float('nan')):.4g} "
             f"({CONFIDENT_STEPS} int8 steps of the reference logits' range).", "",
             "| file | target | precision | agreement | agreement (confident) | confident share "
             "| max abs err | mIoU artifact | mIoU reference | size MB | latency ms | threads "
             "| GPU delegate | passed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    skipped = None
    for entry in report["artifacts"]:
        passed = "yes" if entry["passed"] else "**NO**: " + "; ".join(entry.get("failures", []))
        if entry.get("earlier_run"):
            passed += " (from an earlier run, still in this folder)"
        if entry.get("skipped"):
            passed += " (spec checked; numeric parity skipped¹)"
            skipped = entry["skipped"]
        lines.append(f"| {entry['file']} | {entry['target']} | {entry['precision']} | "
                     f"{_fmt(entry.get('agreement'))} | {_fmt(entry.get('agreement_confident'))} | "
                     f"{_fmt(entry.get('confident_share'), 3)} | "
                     f"{_fmt(entry.get('max_abs_err'), 6)} | "
                     f"{_fmt(entry.get('miou_artifact'), 2)} | "
                     f"{_fmt(entry.get('miou_reference'), 2)} | {_fmt(entry['size_mb'], 2)} | "
                     f"{_fmt(entry.get('latency_ms'), 1)} | {entry.get('threads', '-')} | "
                     f"{_gpu(entry)} | {passed} |")
    if skipped:
        lines += ["", f"¹ {skipped}"]
    measured = [e for e in report["artifacts"] if e.get("per_class_iou_delta")]
    if measured:
        lines += ["", "## Per-class IoU delta (artifact - reference, points)", "",
                  "| class | " + " | ".join(e["file"] for e in measured) + " |",
                  "|---|" + "---|" * len(measured)]
        for index, name in enumerate(class_names):
            values = [e["per_class_iou_delta"][index] for e in measured]
            if all(v is None for v in values):
                continue
            lines.append(f"| {name} | " + " | ".join(_fmt(v, 2) for v in values) + " |")
    if any(e.get("gpu_delegate") for e in report["artifacts"]):
        method = next(e["gpu_delegate"]["method"] for e in report["artifacts"]
                      if e.get("gpu_delegate"))
        lines += ["", f"GPU delegate: {method}. XNNPACK takes every op of: " + (", ".join(
            e["file"] for e in report["artifacts"] if e.get("xnnpack_fully_delegated"))
            or "none") + "."]
    thresholds = report.get("thresholds", {})
    lines += ["", "Thresholds: " + "; ".join(
        f"{name}: " + ", ".join(f"{k} {'>=' if k == 'agreement' else '<='} {v}"
                                for k, v in limits.items())
        for name, limits in thresholds.items()), ""]
    return "\n".join(lines)
