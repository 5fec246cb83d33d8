"""What CPU this is: the facts every results file names next to its numbers.

Timings, int8 speed-ups and even the weights a short training run ends with depend on the CPU
(its vector extensions pick oneDNN's and XNNPACK's kernels), so each benchmark records
`machine_record()`. `ONEDNN_MAX_CPU_ISA` caps oneDNN's kernels below what the CPU has, which
is how one machine can stand in for an older one; it is recorded too.
"""
from __future__ import annotations

import multiprocessing
import os
from functools import lru_cache
from pathlib import Path

# x86 VNNI / AMX and ARM dotprod / i8mm: XNNPACK's int8 kernels gain most over fp32 with them.
DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
# The vector extensions that choose PyTorch's (oneDNN's) fp32 and bf16 kernels.
VECTOR_FLAGS = ("sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
# ONEDNN_MAX_CPU_ISA values and the /proc/cpuinfo flags each needs.
ONEDNN_ISAS = {"SSE41": ("sse4_1",), "AVX": ("avx",), "AVX2": ("avx2",),
               "AVX512_CORE": ("avx512f", "avx512bw", "avx512vl", "avx512dq"),
               "AVX512_CORE_VNNI": ("avx512f", "avx512_vnni"),
               "AVX512_CORE_BF16": ("avx512f", "avx512_bf16")}


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU", frozenset()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), "unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith(("flags", "Features"))), [])
    return model, frozenset(flags)


def cpu_flags() -> frozenset[str]:
    return _cpuinfo()[1]


def machine_description() -> str:
    """CPU model and core count, for the tables."""
    return f"{_cpuinfo()[0]}, {multiprocessing.cpu_count()} cores"


def int8_dot_product_flags() -> list[str]:
    """The int8 dot-product extensions the CPU lists (empty when none or unknown)."""
    return [flag for flag in DOT_PRODUCT_FLAGS if flag in cpu_flags()]


# ONEDNN_MAX_CPU_ISA caps under which oneDNN may still use native bf16 instructions.
_BF16_ISAS = {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
              "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
              "AVX10_2_512_AMX_2", "ALL", "DEFAULT"}


def has_bf16() -> bool:
    """Native bf16 arithmetic (avx512_bf16 or AMX), not capped away by ONEDNN_MAX_CPU_ISA:
    where bf16 autocast pays off on a CPU (elsewhere it is emulated, and slower than fp32)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and cap not in _BF16_ISAS:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def supported_onednn_isas() -> list[str]:
    """The ONEDNN_MAX_CPU_ISA caps this CPU can run, oldest first."""
    return [isa for isa, needs in ONEDNN_ISAS.items() if set(needs) <= cpu_flags()]


def select_device(name: str):
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N' -> a torch.device;
    asking for CUDA where there is none is one clear error."""
    import torch

    from training.errors import UserError
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for, but no CUDA device is available here; "
                        f"use cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device (try cpu, cuda, cuda:1)") from None


def machine_record() -> dict:
    """The machine block a results file carries."""
    return {"machine": machine_description(),
            "cpu_flags": [flag for flag in VECTOR_FLAGS if flag in cpu_flags()],
            "int8_dot_product_flags": int8_dot_product_flags(),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA")}
