"""Evaluate checkpoints on one dataset split and write the paper's table and figures.

    python -m training.evaluate --checkpoints runs/quickstart_teacher/best.pth \
        runs/quickstart_student/best.pth --split val --json table.json
    python -m training.evaluate --checkpoints S.pth --dataset camvid:../shared/datasets/camvid \
        --input-size 96 128 --out runs/eval_camvid

Metrics: mIoU, per-class IoU, mAE@0.5, mAE@0.5:0.95 (see training.metrics). Cost columns:
params, GFLOPs, peak memory, CPU latency (see training.profiling; --no-profile skips the
slow ones). Outputs go to --out (default runs/eval): table.md/.csv/.json,
confusion_<name>.png, overlays.png, curves.png, accuracy_vs_cost.png. The work is
`training.evaluation.evaluate_checkpoints`.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
from pathlib import Path

import torch

from training.errors import run_cli
from training.evaluation import evaluate_checkpoints


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("what to evaluate")
    data.add_argument("--checkpoints", nargs="+", type=Path, required=True, metavar="CKPT")
    data.add_argument("--dataset", metavar="SPEC",
                      help="dataset spec (default: the first checkpoint's recorded dataset)")
    data.add_argument("--split", default="val")
    data.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"),
                      help="default: the first checkpoint's training input_size")
    data.add_argument("--max-images", type=int, help="evaluate only the first N images")
    data.add_argument("--skip-corrupt", action="store_true",
                      help="leave out (and count) images that cannot be read")
    run = parser.add_argument_group("how")
    run.add_argument("--batch-size", type=int, default=4)
    run.add_argument("--workers", type=int, default=2, help="data-loading processes")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    run.add_argument("--threads", type=int, default=torch.get_num_threads(),
                     help="CPU threads for evaluation and the latency/memory columns")
    run.add_argument("--no-profile", action="store_true",
                     help="skip GFLOPs, peak memory and latency (params are still counted)")
    run.add_argument("--latency-runs", type=int, default=10, help="timed runs (median)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=Path("runs/eval"), metavar="DIR")
    output.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    return evaluate_checkpoints(
        args.checkpoints, args.dataset, args.split, args.input_size, args.out, args.json,
        max_images=args.max_images, batch_size=args.batch_size, workers=args.workers,
        device=args.device, threads=args.threads, profile=not args.no_profile,
        latency_runs=args.latency_runs, skip_corrupt=args.skip_corrupt)


if __name__ == "__main__":
    run_cli(main)
