"""Cost measurements for any model: parameters, FLOPs, file size, peak memory, latency.

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode`, which counts 2 FLOPs per
multiply-add (so GMACs = GFLOPs / 2). Peak memory is measured in a fresh process, because the
resident-set high-water mark of a process that already trained or profiled something else
says nothing about one forward pass.
"""
from __future__ import annotations

import functools
import gc
import io
import multiprocessing
import time
from queue import Empty
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from training.models import TEACHER, build_model, count_parameters
from training.timing import median_ms


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
        with torch.inference_mode():
            return median_ms(lambda: model(x), runs, warmup)
    finally:
        torch.set_num_threads(previous)


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _peak_child(setup: Callable, args: tuple, queue) -> None:
    try:
        step = setup(*args)
        gc.collect()
        baseline = _rss_kb("VmRSS")
        # Writing 5 to clear_refs resets the VmHWM high-water mark (Linux >= 4.0), so the
        # peak we read afterwards belongs to the measured step alone.
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        step()
        queue.put((_rss_kb("VmHWM") - baseline) / 1024)
    except Exception as exc:  # report, the parent raises
        queue.put(exc)


def peak_memory_mb(setup: Callable[..., Callable[[], object]], *args,
                   timeout_s: float = 900) -> float:
    """Peak resident memory of one `step()` above its process's baseline, where
    `step = setup(*args)` is built in a fresh spawned process (so nothing measured before
    counts). `setup` must be picklable: a module-level function. A child that dies without
    a result (out of memory, a crash) raises at once instead of hanging."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_peak_child, args=(setup, args, queue))
    child.start()
    deadline = time.monotonic() + timeout_s
    try:
        while True:  # poll, so a child that dies without reporting cannot hang us
            try:
                result = queue.get(timeout=1)
                break
            except Empty:
                if not child.is_alive():
                    raise RuntimeError(f"peak-memory probe exited with code {child.exitcode} "
                                       f"without a result (out of memory?)") from None
                if time.monotonic() > deadline:
                    child.kill()
                    raise RuntimeError(f"peak-memory probe gave no result in {timeout_s:.0f} s")
    finally:
        child.join()
    if isinstance(result, Exception):
        raise result
    return float(result)


def _forward_step(factory: Callable[[], nn.Module], input_size, threads: int):
    torch.set_num_threads(threads)
    model = factory().eval()
    x = torch.rand(1, 3, *input_size)

    def forward():
        with torch.inference_mode():
            model(x)
    return forward


def measure_peak_memory_mb(factory: Callable[[], nn.Module], input_size: tuple[int, int],
                           threads: int) -> float:
    """Peak resident memory of one forward pass above the process's baseline (model loaded).

    `factory` must be picklable (a module-level function or functools.partial of one): it runs
    in a spawned process.
    """
    return peak_memory_mb(_forward_step, factory, tuple(input_size), threads)


def profile_model(name: str, input_size: tuple[int, int], output_stride: int, num_classes: int,
                  threads: int, runs: int) -> dict:
    factory = functools.partial(build_model, name, num_classes=num_classes,
                                output_stride=output_stride)
    model = factory()
    flops = count_flops(model, input_size)
    return {
        "model": name,
        "input_size": list(input_size),
        "output_stride": output_stride,
        "num_classes": num_classes,
        "params_m": count_parameters(model) / 1e6,
        "gmacs": flops / 2 / 1e9,
        "gflops": flops / 1e9,
        "size_mb": state_dict_size_mb(model),
        "peak_mem_mb": measure_peak_memory_mb(factory, input_size, threads),
        "latency_ms": measure_latency_ms(model, input_size, threads, runs=runs),
        "threads": threads,
    }


def add_reductions(rows: list[dict], reference: str = TEACHER) -> None:
    """Attach each row's cost as a fraction of the reference row's (the teacher's)."""
    base = next((row for row in rows if row["model"] == reference), None)
    if base is None:
        return
    for row in rows:
        if row is not base:
            row["vs_teacher"] = {key: row[key] / base[key] for key in
                                 ("gflops", "params_m", "peak_mem_mb", "latency_ms")}


def markdown_table(rows: list[dict]) -> str:
    header = ("| model | input | OS | params (M) | GFLOPs | size (MB) | peak mem (MB) "
              "| latency (ms) | vs teacher |")
    lines = [header, "|" + "---|" * 9]
    for row in rows:
        ratio = row.get("vs_teacher")
        versus = (f"{(ratio['gflops'] - 1) * 100:+.0f} % FLOPs, "
                  f"{(ratio['params_m'] - 1) * 100:+.0f} % params, "
                  f"{(ratio['latency_ms'] - 1) * 100:+.0f} % latency") if ratio else "—"
        height, width = row["input_size"]
        lines.append(f"| {row['model']} | {height}x{width} | {row['output_stride']} "
                     f"| {row['params_m']:.2f} | {row['gflops']:.1f} | {row['size_mb']:.1f} "
                     f"| {row['peak_mem_mb']:.0f} | {row['latency_ms']:.1f} | {versus} |")
    return "\n".join(lines)
