"""Output-stride ceiling: the best mIoU any DeepLabv3 can reach at a given input size.

    python -m benchmarks.stride_ceiling --dataset synthetic:size=96x192,train=0,val=60 \
        --input-size 96 192 --strides 16 8 4 [--json FILE]

DeepLabv3 predicts logits on a grid `output_stride` times coarser than the input and
upsamples them bilinearly; it has no decoder. Whatever it learns, a class thinner than a grid
cell is blurred away. This script scores the perfect grid predictor: each cell outputs the
true class shares of its pixels (the best soft prediction at that resolution), upsampled
bilinearly exactly as the model does, then argmax. Its mIoU bounds every model of that output
stride on that split and size, so a quality goal above it needs a larger input, a finer
stride or a decoder rather than more training.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.data import parse_dataset_spec
from training.data.transforms import eval_transforms
from training.errors import UserError, require_at_least_one, run_cli
from training.io import atomic_write_text, prepare_output_file
from training.metrics import SegmentationMetrics
from training.models import validate_input_size


def grid_oracle(mask: torch.Tensor, stride: int, num_classes: int,
                ignore_index: int) -> torch.Tensor:
    """The label map of the perfect stride-`stride` predictor for an (H, W) `mask`."""
    valid = mask != ignore_index
    classes = torch.where(valid, mask.long(), 0)
    one_hot = F.one_hot(classes, num_classes).permute(2, 0, 1).float() * valid
    shares = F.avg_pool2d(one_hot[None], stride)  # a cell's class shares
    logits = F.interpolate(shares, size=mask.shape, mode="bilinear", align_corners=False)
    return logits.argmax(1)[0]


def stride_ceilings(spec, split: str, size: tuple[int, int], strides: list[int],
                    limit: int | None = None) -> dict[int, dict]:
    """{stride: SegmentationMetrics.compute()} of the grid oracle on `split` at `size`."""
    dataset = spec.build(split, eval_transforms(size))
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count == 0:
        raise UserError(f"the {split} split of {spec.name} has no images")
    metrics = {stride: SegmentationMetrics(spec.num_classes, spec.ignore_index)
               for stride in strides}
    for index in tqdm(range(count), desc=f"{spec.name} {split}", unit="img"):
        _, mask = dataset[index][:2]
        for stride, accumulator in metrics.items():
            accumulator.update(grid_oracle(mask, stride, spec.num_classes, spec.ignore_index),
                               mask)
    return {stride: accumulator.compute() for stride, accumulator in metrics.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synthetic:size=96x192,train=0,val=60,test=0,seed=0",
                        help="dataset spec (default: the quickstart's val split)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--input-size", type=int, nargs=2, default=(96, 192),
                        metavar=("H", "W"))
    parser.add_argument("--strides", type=int, nargs="+", default=[16, 8, 4])
    parser.add_argument("--limit", type=int, help="score only the first N images")
    parser.add_argument("--json", type=Path, help="save the results as JSON")
    args = parser.parse_args(argv)
    if args.json:
        prepare_output_file(args.json, "--json")
    size = (int(args.input_size[0]), int(args.input_size[1]))
    for stride in args.strides:
        if stride < 1:
            raise UserError(f"--strides must be positive, got {stride}")
        validate_input_size(size, stride)
    require_at_least_one(limit=args.limit)
    spec = parse_dataset_spec(args.dataset)
    results = stride_ceilings(spec, args.split, size, args.strides, args.limit)
    for stride, result in results.items():
        print(f"output stride {stride:>2} at {size[0]}x{size[1]}: ceiling "
              f"{result['miou']:.1f} mIoU, {result['pixel_acc']:.1f} % pixel accuracy")
    summary = {
        "dataset": args.dataset, "split": args.split, "input_size": list(size),
        "strides": {str(stride): {"miou": result["miou"], "pixel_acc": result["pixel_acc"],
                                  "per_class_iou": dict(zip(spec.class_names,
                                                            result["per_class_iou"]))}
                    for stride, result in results.items()},
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps(summary, indent=2, allow_nan=True) + "\n")
        print(f"saved {args.json}")
    return summary


if __name__ == "__main__":
    run_cli(main)
