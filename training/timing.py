"""The one latency rule of every table: the median of timed runs after untimed warm-up ones.

Kept free of torch and TensorFlow so that any runtime's benchmark can import it (the int8 probe
runs TensorFlow alone in its process).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable


def median_ms(step: Callable[[], object], runs: int = 10, warmup: int = 2) -> float:
    """Median wall time of `step()` over `runs` calls after `warmup` untimed ones: the one
    latency rule of every table (PyTorch, ONNX Runtime, TFLite, the int8 probe)."""
    times = []
    for index in range(warmup + runs):
        start = time.perf_counter()
        step()
        if index >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
