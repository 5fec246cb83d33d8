"""Prune a trained checkpoint, optionally fine-tune it with distillation, save a checkpoint.

    python -m training.prune --checkpoint runs/student/best.pth --method structured \
        --importance l1 --ratio 0.4 --finetune-epochs 10 --teacher runs/teacher/best.pth
    python -m training.prune --checkpoint S.pth --method unstructured --importance l1 \
        --ratio 0.6 --global

Structured pruning gives a smaller dense model (see training/compression/pruning.py); its checkpoint
records the new layer shapes, so `training.evaluate`, `conversion.export` and every other
loader rebuild it as they would the unpruned model. Recovery fine-tuning reuses the training
loop (`training.fit.run`) with the checkpoint's own config, distilling from `--teacher`
when given (supervised otherwise).
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import sys

from training.compression.pruning import IMPORTANCES, METHODS
from training.compression.runs import prune_checkpoint
from training.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="trained checkpoint to prune")
    parser.add_argument("--method", required=True, help=" | ".join(METHODS))
    parser.add_argument("--importance", default="l1", help=" | ".join(IMPORTANCES))
    parser.add_argument("--ratio", type=float, required=True,
                        help="structured: fraction of channels removed per prunable group; "
                             "unstructured: exact fraction of conv weights zeroed")
    parser.add_argument("--global", dest="global_pruning", action="store_true",
                        help="rank across all layers instead of layer by layer")
    parser.add_argument("--round-to", type=int, default=None,
                        help="structured: keep channel counts multiples of this (e.g. 8)")
    parser.add_argument("--finetune-epochs", type=int, default=0)
    parser.add_argument("--teacher", default=None, help="teacher checkpoint for KD fine-tuning")
    parser.add_argument("--lr", type=float, default=None,
                        help="fine-tuning learning rate (default: the checkpoint's)")
    parser.add_argument("--taylor-batches", type=int, default=2,
                        help="training batches whose loss gradients rank channels (taylor)")
    parser.add_argument("--out", default=None, help="output checkpoint (default: next to the "
                        "input, named after method, importance and ratio)")
    return parser


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    record = prune_checkpoint(args.checkpoint, args.method, args.importance, args.ratio,
                              args.global_pruning, args.round_to, args.taylor_batches,
                              args.finetune_epochs, args.teacher, args.lr, args.out)
    h, w = record["input_size"]
    print(f"{args.method} {args.importance} ratio {args.ratio:g}: params "
          f"{record['params_before'] / 1e6:.3f}M -> {record['params_after'] / 1e6:.3f}M, "
          f"GFLOPs at {h}x{w} {record['flops_before'] / 1e9:.3f} -> "
          f"{record['flops_after'] / 1e9:.3f}"
          + (f", sparsity {record['sparsity']:.4f}" if "sparsity" in record else "")
          + f"\nwrote {record['out']}", file=sys.stderr)
    return record


if __name__ == "__main__":
    run_cli(main)
