"""Run a converter in a child process: its log in a file, a time limit, one clear error.

TensorFlow (onnx2tf, coremltools) must not share a process with triton (torch.export): that
segfaults (see conversion/coreml_export.py). So every converter runs as
`python -m conversion.<module> ...`, with the repository on PYTHONPATH, its output written to
`log`; a crash, a non-zero exit or a timeout becomes a ConversionError carrying the end of
that log.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class ConversionError(RuntimeError):
    """A converter failed; the message carries the end of its log."""


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    useful = [line for line in text if line.strip() and "TensorSpec" not in line]
    return "\n".join(useful[-lines:])


def run_converter(what: str, module: str, args: list[str], log: Path, cwd: Path | None = None,
                  timeout_s: float = 3600, succeeded=lambda: True) -> None:
    """`python -m module args...` with its output in `log`; raises ConversionError unless it
    exits 0 and `succeeded()` (e.g. 'the expected files exist') holds."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        str(REPO), os.environ.get("PYTHONPATH")])))
    with open(log, "w") as stream:
        try:
            done = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                                  stdout=stream, stderr=subprocess.STDOUT, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ConversionError(f"{what} did not finish in {timeout_s:.0f} s; log: {log}") \
                from None
    if done.returncode != 0 or not succeeded():
        raise ConversionError(f"{what} failed (exit {done.returncode}); end of {log}:\n"
                              f"{log_tail(log)}")
