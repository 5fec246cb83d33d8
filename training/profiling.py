"""Cost measurements for any model: parameters, FLOPs, file size, peak memory, latency.

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode`, which counts 2 FLOPs per
multiply-add (so GMACs = GFLOPs / 2). Peak memory is measured in a fresh process, because the
resident-set high-water mark of a process that already trained or profiled something else
says nothing about one forward pass.
"""
from __future__ import annotations

import gc
import io
import multiprocessing
import statistics
import time
from queue import Empty
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_flops(model: nn.Module, input_size: tuple[int, int]) -> int:
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, *input_size))
    return int(counter.get_total_flops())


def state_dict_size_mb(model: nn.Module) -> float:
    """Size of the fp32 weights as `torch.save` writes them."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 2 ** 20


def measure_latency_ms(model: nn.Module, input_size: tuple[int, int], threads: int,
                       runs: int = 10, warmup: int = 2) -> float:
    """Median wall time of a batch-1 forward pass on the CPU after warm-up."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model.eval()
        x = torch.rand(1, 3, *input_size)
        times = []
        with torch.inference_mode():
            for index in range(warmup + runs):
                start = time.perf_counter()
                model(x)
                if index >= warmup:
                    times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)
    finally:
        torch.set_num_threads(previous)


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _peak_forward_child(factory: Callable[[], nn.Module], input_size, threads, queue) -> None:
    try:
        torch.set_num_threads(threads)
        model = factory().eval()
        x = torch.rand(1, 3, *input_size)
        gc.collect()
        baseline = _rss_kb("VmRSS")
        # Writing 5 to clear_refs resets the VmHWM high-water mark (Linux >= 4.0), so the
        # peak we read afterwards belongs to the forward pass alone.
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        with torch.inference_mode():
            model(x)
        queue.put((_rss_kb("VmHWM") - baseline) / 1024)
    except Exception as exc:  # report, the parent raises
        queue.put(exc)


def measure_peak_memory_mb(factory: Callable[[], nn.Module], input_size: tuple[int, int],
                           threads: int) -> float:
    """Peak resident memory of one forward pass above the process's baseline (model loaded).

    `factory` must be picklable (a module-level function or functools.partial of one): it runs
    in a spawned process.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_peak_forward_child,
                            args=(factory, tuple(input_size), threads, queue))
    child.start()
    try:
        while True:  # poll, so a child that dies without reporting cannot hang us
            try:
                result = queue.get(timeout=1)
                break
            except Empty:
                if not child.is_alive():
                    raise RuntimeError(f"peak-memory probe exited with code {child.exitcode} "
                                       f"without a result (out of memory?)") from None
    finally:
        child.join()
    if isinstance(result, Exception):
        raise result
    return float(result)
