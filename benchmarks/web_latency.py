"""The student's TFLite files in Chromium's WebAssembly (LiteRT.js) against ai-edge-litert.

    python -m benchmarks.web_latency --checkpoint runs/quickstart_student/best.pth \
        --sizes 96x192 512x1024 --runs 20 --json benchmarks/results/web_latency.json

For each size, the checkpoint is exported to TFLite (fp32 and full int8, through
conversion.export, so with its gate) and both files are timed on the same random frame:
in headless Chromium through the demo page (web_demo/tests/browser.mjs; LiteRT.js 2.5.3's
single-threaded build, and its threaded build on 2 threads), and in Python through
ai-edge-litert with 1 and 2 threads. Each figure is the median inference time of --runs runs
after one warm-up; the ratio is browser over Python at equal threads.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.speed_models import export_speed_models, parse_size
from conversion.runtimes import LiteRTRuntime
from training.errors import UserError, require_at_least_one, run_cli
from training.io import prepare_output_file, write_results
from training.machine import machine_record
from training.timing import median_ms

WEB = Path(__file__).resolve().parents[1] / "web_demo"


def browser_ms(models: dict[str, Path], frame: Path, size, runs: int, threads: bool) -> dict:
    node = shutil.which("node")
    if node is None:
        raise UserError("node is not installed (Node.js 20+); the browser side cannot run")
    out = frame.with_suffix(f".{'threaded' if threads else 'single'}.json")
    command = [node, "tests/browser.mjs", "--models", str(models["fp32"].parent),
               "--frame", str(frame), "--files", ",".join(p.name for p in models.values()),
               "--runs", str(runs + 1), "--out", str(out)] + ["--threads"] * threads
    done = subprocess.run(command, cwd=WEB, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise UserError(f"the browser run failed: {done.stderr.strip()[-300:]}")
    result = json.loads(out.read_text())
    return {precision: statistics.median(t["infer"] for t in
                                         result["models"][path.name]["times"][1:])
            for precision, path in models.items()} | {
        "cross_origin_isolated": result["crossOriginIsolated"]}


def python_ms(path: Path, pixels: np.ndarray, threads: int, runs: int) -> float:
    from conversion.contract import prepare_input
    runtime = LiteRTRuntime(path, threads=threads)
    x = prepare_input(pixels, runtime.input_spec)
    return median_ms(lambda: runtime.invoke(x), runs, warmup=1)


def measure(checkpoint: Path, size: tuple[int, int], runs: int, work: Path) -> dict:
    models = export_speed_models(checkpoint, size, work / f"{size[0]}x{size[1]}", 32, 8)
    pixels = np.random.default_rng(0).integers(0, 256, (1, *size, 3), dtype=np.uint8)
    frame = work / f"frame_{size[0]}x{size[1]}.u8"
    frame.write_bytes(pixels.tobytes())
    single = browser_ms(models, frame, size, runs, threads=False)
    threaded = browser_ms(models, frame, size, runs, threads=True)
    rows = []
    for precision, path in models.items():
        for threads, browser in ((1, single), (2, threaded)):
            native = python_ms(path, pixels, threads, runs)
            rows.append({"size": list(size), "precision": precision, "threads": threads,
                         "browser_wasm_ms": browser[precision], "python_litert_ms": native,
                         "ratio": browser[precision] / native,
                         "browser_threaded": threads > 1,
                         "cross_origin_isolated": browser["cross_origin_isolated"],
                         "file_mb": path.stat().st_size / 2 ** 20})
    return {"rows": rows}


def markdown(result: dict) -> str:
    lines = [f"Median inference time over {result['runs']} runs ({result['machine']}).", "",
             "| input | precision | threads | Chromium WASM (ms) | ai-edge-litert (ms) | "
             "browser / native |", "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['size'][0]}x{row['size'][1]} | {row['precision']} | "
                     f"{row['threads']} | {row['browser_wasm_ms']:.1f} | "
                     f"{row['python_litert_ms']:.1f} | {row['ratio']:.1f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/quickstart_student/"
                                                                "best.pth"))
    parser.add_argument("--sizes", type=parse_size, nargs="+",
                        default=[(96, 192), (512, 1024)])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/"
                                                          "web_latency.json"))
    args = parser.parse_args(argv)
    require_at_least_one(runs=args.runs)
    prepare_output_file(args.json, "--json")
    work = Path(tempfile.mkdtemp(prefix="web-latency-"))
    rows = []
    for size in args.sizes:
        rows += measure(args.checkpoint, size, args.runs, work)["rows"]
    result = {**machine_record(), "checkpoint": str(args.checkpoint), "runs": args.runs,
              "litertjs": json.loads((WEB / "node_modules/@litertjs/core/package.json")
                                     .read_text())["version"], "rows": rows}
    write_results(args.json, result, markdown(result))
    shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    run_cli(main)
