"""Prune a trained checkpoint, optionally fine-tune it with distillation, save a checkpoint.

    python -m training.prune --checkpoint runs/student/best.pth --method structured \
        --importance l1 --ratio 0.4 --finetune-epochs 10 --teacher runs/teacher/best.pth
    python -m training.prune --checkpoint S.pth --method unstructured --importance l1 \
        --ratio 0.6 --global

Structured pruning gives a smaller dense model (see training/pruning.py); its checkpoint
records the new layer shapes, so `training.evaluate`, `conversion.export` and every other
loader rebuild it as they would the unpruned model. Recovery fine-tuning reuses the training
loop (`training.train.run`) with the checkpoint's own config, distilling from `--teacher`
when given (supervised otherwise).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from training.checkpoint import load_checkpoint, make_checkpoint, model_from_checkpoint
from training.data import parse_dataset_spec
from training.data.transforms import eval_transforms
from training.errors import UserError, run_cli
from training.io import atomic_save
from training.models import count_parameters
from training.profiling import count_flops
from training.pruning import IMPORTANCES, METHODS, freeze_zeros, prune, sparsity, validate


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


def taylor_batches(checkpoint: dict, input_size, count: int) -> list:
    spec = parse_dataset_spec(checkpoint["dataset"]["spec"])
    data = spec.build("train", transform=eval_transforms(tuple(input_size)))
    loader = DataLoader(data, batch_size=checkpoint["config"].get("batch_size", 8))
    return [batch for batch, _ in zip(loader, range(count))]


def finetune(model, checkpoint: dict, args, out: Path) -> dict:
    """Recovery: the project's training loop, started from the pruned model."""
    from training import train
    config = dict(checkpoint["config"], epochs=args.finetune_epochs, output_dir=str(out.parent),
                  name=out.stem + "_finetune", teacher=args.teacher or None)
    if args.lr is not None:
        config["lr"] = args.lr
    summary = train.run(config, distill=bool(args.teacher), initial_model=model)
    return load_checkpoint(summary["best"])


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    validate(args.method, args.importance, args.ratio)
    if args.finetune_epochs < 0:
        raise UserError(f"--finetune-epochs must be >= 0, got {args.finetune_epochs}")
    if args.teacher and not args.finetune_epochs:
        raise UserError("--teacher is used for fine-tuning: add --finetune-epochs E")
    torch.manual_seed(0)  # random importance and the taylor batches repeat
    checkpoint = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(checkpoint)
    input_size = tuple(checkpoint.get("config", {}).get("input_size", (64, 128)))
    before = {"params": count_parameters(model), "flops": count_flops(model, input_size)}

    options = {"global_pruning": args.global_pruning}
    if args.method == "structured":
        options.update(input_size=input_size, round_to=args.round_to,
                       ignore_index=checkpoint["dataset"]["ignore_index"])
        if args.importance == "taylor":
            options["batches"] = taylor_batches(checkpoint, input_size, args.taylor_batches)
    pruned = prune(model, args.method, args.importance, args.ratio, **options)

    out = Path(args.out) if args.out else Path(args.checkpoint).with_name(
        f"{Path(args.checkpoint).stem}_{args.method}_{args.importance}_{args.ratio:g}.pth")
    record = {"method": args.method, "importance": args.importance, "ratio": args.ratio,
              "global": args.global_pruning, "source": str(args.checkpoint),
              "params_before": before["params"], "flops_before": before["flops"]}
    if args.finetune_epochs:
        if args.method == "unstructured":
            freeze_zeros(pruned)
        result = finetune(pruned, checkpoint, args, out)
        pruned = model_from_checkpoint(result)
    else:
        result = make_checkpoint(pruned, checkpoint["dataset"], checkpoint.get("config", {}),
                                 metrics=checkpoint.get("metrics", {}))
    after = {"params": count_parameters(pruned), "flops": count_flops(pruned, input_size)}
    record.update(params_after=after["params"], flops_after=after["flops"])
    if args.method == "unstructured":
        record["sparsity"] = sparsity(pruned)
    result["pruning"] = record
    atomic_save(result, out)
    h, w = input_size
    print(f"{args.method} {args.importance} ratio {args.ratio:g}: params "
          f"{before['params'] / 1e6:.3f}M -> {after['params'] / 1e6:.3f}M, GFLOPs at {h}x{w} "
          f"{before['flops'] / 1e9:.3f} -> {after['flops'] / 1e9:.3f}"
          + (f", sparsity {record['sparsity']:.4f}" if "sparsity" in record else "")
          + f"\nwrote {out}", file=sys.stderr)
    return {"out": str(out), **record}


if __name__ == "__main__":
    run_cli(main)
