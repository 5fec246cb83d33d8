"""Time the quickstart and the distillation modes on this machine; save the numbers.

    python -m benchmarks.quickstart [--skip-quickstart | --skip-throughput] [--out FILE]

1. Wall time of `python -m training.distill` with no arguments (teacher training included,
   unless a teacher trained with the same config is already cached: run `make clean-runs`
   first for a cold measurement; the JSON records whether the teacher was reused).
2. The resulting table (runs/quickstart_student/report/table.json).
3. Training throughput (images/s) of the teacher and each student at the quickstart size.
4. Epoch time of the MobileNetV2 student: plain cross-entropy vs distillation with cached
   soft labels vs online teacher; ratios against the plain epoch.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from training.config import DEFAULTS, load_yaml
from training.fit import run
from training.io import ROOT, atomic_write_text, prepare_output_file
from training.machine import machine_record
from training.models import STUDENTS, TEACHER
from training.errors import run_cli

QUICKSTART = ROOT / "configs" / "quickstart.yaml"


def run_quickstart() -> dict:
    student = load_yaml(QUICKSTART)
    teacher_config = load_yaml(ROOT / student["teacher_config"])
    teacher_path = ROOT / "runs" / teacher_config["name"] / "best.pth"
    reused = teacher_path.is_file()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "training.distill", "--no-progress"], cwd=ROOT,
                   check=True)
    wall = time.perf_counter() - start
    table = json.loads((ROOT / "runs" / student["name"] / "report" / "table.json").read_text())
    return {"wall_time_s": wall, "teacher_reused": reused, "table": table}


def epoch_time(config: dict, distill: bool = False) -> float:
    summary = run(config, distill=distill)
    return summary["epochs"][-1]["epoch_time_s"]


def measure_modes(workdir: Path, teacher: str, steps: int) -> dict:
    """One epoch of `steps` optimizer steps per mode (after a warm-up epoch)."""
    student = load_yaml(QUICKSTART)
    base = dict(DEFAULTS, **student)
    base.update(output_dir=str(workdir), progress=False, max_steps_per_epoch=steps, epochs=2,
                eval_every=1000, teacher=teacher, cache_dir=str(workdir / "cache"))
    times = {
        "plain": epoch_time(dict(base, name="plain")),
        "cached": epoch_time(dict(base, name="cached", soft_labels="cached"), distill=True),
        "online": epoch_time(dict(base, name="online", soft_labels="online"), distill=True),
    }
    return {"epoch_time_s": times, "steps_per_epoch": steps,
            "cached_vs_plain": times["cached"] / times["plain"],
            "online_vs_plain": times["online"] / times["plain"]}


def measure_throughput(workdir: Path, steps: int) -> dict:
    student = load_yaml(QUICKSTART)
    base = dict(DEFAULTS, **student)
    base.update(output_dir=str(workdir), progress=False, max_steps_per_epoch=steps, epochs=2,
                eval_every=1000)
    teacher_config = load_yaml(ROOT / student["teacher_config"])
    rates = {}
    for model in (TEACHER, *STUDENTS):
        settings = dict(base, model=model, name=f"speed_{model}")
        if model == TEACHER:  # the teacher trains with its own precision settings
            settings.update(bf16=teacher_config.get("bf16", False),
                            channels_last=teacher_config.get("channels_last", False))
        summary = run(settings)
        rates[model] = summary["epochs"][-1]["images_per_s"]
    return rates


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/quickstart.json")
    parser.add_argument("--skip-quickstart", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true",
                        help="only time the quickstart (items 1-2)")
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps per timed epoch")
    args = parser.parse_args(argv)
    prepare_output_file(args.out, "--out")
    result = {"threads": torch.get_num_threads(), **machine_record()}
    if args.skip_quickstart and args.skip_throughput:
        parser.error("--skip-quickstart and --skip-throughput leave nothing to measure")
    if not args.skip_quickstart:
        result["quickstart"] = run_quickstart()
        print(f"quickstart wall time: {result['quickstart']['wall_time_s'] / 60:.1f} min")
    if not args.skip_throughput:
        workdir = ROOT / "runs" / "benchmark_quickstart"
        teacher = ROOT / "runs" / load_yaml(ROOT / load_yaml(QUICKSTART)["teacher_config"])[
            "name"] / "best.pth"
        result["train_images_per_s"] = measure_throughput(workdir, args.steps)
        if teacher.is_file():
            result["distillation_modes"] = measure_modes(workdir, str(teacher), args.steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "quickstart"}, indent=2))
    return result


if __name__ == "__main__":
    run_cli(main)
