"""Statistics over training seeds: mean ± standard deviation, and paired gains with a 95 % CI.

A KD gain is measured *paired*: student with KD minus the same student without, trained with
the same seed (same initial weights, same data order and augmentation), so what varies between
the two runs is distillation alone. The interval is Student's t over those per-seed
differences (n - 1 degrees of freedom): with 3 seeds it is wide, which is the point of
reporting it.
"""
from __future__ import annotations

import math
import statistics

from scipy import stats


def mean_sd(values: list[float]) -> dict:
    """{'mean', 'sd' (sample, n - 1; None for one value), 'n', 'values'}."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values")
    sd = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.fmean(values), "sd": sd, "n": len(values), "values": values}


def paired_gain(treated: list[float], control: list[float], level: float = 0.95) -> dict:
    """The mean of treated[i] - control[i], its sd, and its `level` t-interval (None for n=1)."""
    if len(treated) != len(control):
        raise ValueError(f"paired samples differ in length: {len(treated)} vs {len(control)}")
    differences = [float(a) - float(b) for a, b in zip(treated, control)]
    summary = mean_sd(differences)
    low = high = None
    if summary["n"] > 1:
        # float(): scipy returns numpy scalars, whose comparisons give numpy bools that
        # json cannot write (a goal met, `ci_low > 0`, once crashed the study's report).
        half = float(stats.t.ppf(0.5 + level / 2, summary["n"] - 1)) * summary["sd"] / \
            math.sqrt(summary["n"])
        low, high = summary["mean"] - half, summary["mean"] + half
    return {**summary, "level": level, "ci_low": low, "ci_high": high,
            "differences": differences}


def format_mean_sd(summary: dict, digits: int = 1, signed: bool = False) -> str:
    """'29.3 ± 5.1'; signed (for a gain or a difference): '+3.30 ± 2.51'."""
    mean = f"{summary['mean']:{'+' if signed else ''}.{digits}f}"
    return mean if summary["sd"] is None else f"{mean} ± {summary['sd']:.{digits}f}"


def format_interval(gain: dict, digits: int = 2) -> str:
    if gain["ci_low"] is None:
        return "— (one seed)"
    return f"[{gain['ci_low']:+.{digits}f}, {gain['ci_high']:+.{digits}f}]"
