"""Evaluate checkpoints on one dataset split and write the paper's table and figures.

    python -m training.evaluate --checkpoints runs/teacher/best.pth runs/student/best.pth \
        --dataset cityscapes:root=data/cityscapes --split val --json results.json

Metrics: mIoU, per-class IoU, mAE@0.5, mAE@0.5:0.95 (see training.metrics). Cost columns:
params, GFLOPs, peak memory, CPU latency (see training.profiling; --no-profile skips the
slow ones). Outputs go to --out (default runs/eval): table.md/.csv/.json,
confusion_<name>.png, overlays.png, curves.png, accuracy_vs_cost.png.
"""
from __future__ import annotations

import argparse
import functools
from pathlib import Path

import torch
from torch.utils.data import Subset
from tqdm import tqdm

from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.data import parse_dataset_spec
from training.data.loader import build_loader
from training.data.transforms import eval_transforms
from training.errors import UserError, run_cli
from training.evaluation import evaluate_model
from training.metrics import confusion_matrix
from training.models import count_parameters, validate_input_size
from training.profile import add_reductions
from training.profiling import count_flops, measure_latency_ms, measure_peak_memory_mb, \
    state_dict_size_mb
from training.report import CheckpointResult, Samples, write_report

OVERLAY_SAMPLES = 4


class BatchCollector:
    """`on_batch` hook: the split's confusion matrix plus the first few samples."""

    def __init__(self, num_classes: int, ignore_index: int, keep: int = OVERLAY_SAMPLES):
        self.num_classes, self.ignore_index, self.keep = num_classes, ignore_index, keep
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.samples = Samples()

    def __call__(self, images: torch.Tensor, masks: torch.Tensor,
                 predictions: torch.Tensor) -> None:
        self.matrix += confusion_matrix(predictions, masks, self.num_classes, self.ignore_index)
        for image, mask, prediction in zip(images, masks, predictions):
            if len(self.samples.images) >= self.keep:
                break
            self.samples.images.append(image)
            self.samples.masks.append(mask)
            self.samples.predictions.append(prediction)


def check_classes(path: Path, checkpoint: dict, spec) -> None:
    """Refuse a checkpoint whose classes are not the dataset's: its IoUs would be nonsense."""
    record = checkpoint.get("dataset") or {}
    count = int(checkpoint["arch"].get("num_classes", record.get("num_classes", -1)))
    names = record.get("class_names")
    trained_on = record.get("spec") or record.get("name") or "an unrecorded dataset"
    if count != spec.num_classes:
        raise UserError(f"{path} predicts {count} classes (trained on {trained_on}) but dataset "
                        f"{spec.name} has {spec.num_classes}; evaluate it on its own dataset")
    if names is not None and list(names) != list(spec.class_names):
        index = next((i for i, (a, b) in enumerate(zip(names, spec.class_names)) if a != b),
                     min(len(names), len(spec.class_names)) - 1)
        raise UserError(f"{path} (trained on {trained_on}) and dataset {spec.name} name class "
                        f"{index} differently: {names[index]!r} vs {spec.class_names[index]!r}")


def row_names(paths: list[Path]) -> list[str]:
    """Short, unique labels: the file stem, or run-folder/stem when stems repeat."""
    names = [path.stem for path in paths]
    if len(set(names)) < len(names):
        names = [f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem
                 for path in paths]
    if len(set(names)) < len(names):
        names = [f"{name}#{index}" for index, name in enumerate(names)]
    return names


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available here; use cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device (try cpu, cuda, cuda:1)") from None


def evaluate_checkpoint(path: Path, name: str, checkpoint: dict, spec, loader, args,
                        device: torch.device) -> CheckpointResult:
    model = model_from_checkpoint(checkpoint)
    collector = BatchCollector(spec.num_classes, spec.ignore_index)
    metrics = evaluate_model(model.to(device), loader, spec.num_classes, spec.ignore_index,
                             device, on_batch=collector, description=name)
    model.cpu()
    row = {
        "name": name, "checkpoint": str(path), "model": checkpoint["arch"]["name"],
        "epoch": checkpoint.get("epoch"), "dataset": spec.name, "split": args.split,
        "images": len(loader.dataset), "input_size": list(args.input_size),
        "miou": metrics["miou"], "pixel_acc": metrics["pixel_acc"],
        "mae_50": metrics["mae_50"], "mae_50_95": metrics["mae_50_95"],
        "mae_by_threshold": metrics["mae_by_threshold"],
        "per_class_iou": dict(zip(spec.class_names, metrics["per_class_iou"])),
        "params_m": count_parameters(model) / 1e6,
        "gflops": None, "gmacs": None, "size_mb": None, "peak_mem_mb": None,
        "latency_ms": None, "threads": args.threads, "device": str(device),
    }
    if not args.no_profile:
        flops = count_flops(model, tuple(args.input_size))
        # The peak is measured in a fresh process that rebuilds the model from the file.
        factory = functools.partial(model_from_checkpoint, str(path))
        row.update(gflops=flops / 1e9, gmacs=flops / 2e9, size_mb=state_dict_size_mb(model),
                   peak_mem_mb=measure_peak_memory_mb(factory, tuple(args.input_size),
                                                      args.threads),
                   latency_ms=measure_latency_ms(model, tuple(args.input_size), args.threads,
                                                 runs=args.latency_runs))
    palette = [tuple(colour) for colour in
               (checkpoint.get("dataset") or {}).get("palette", spec.palette)]
    return CheckpointResult(path, row, collector.matrix, collector.samples, palette)


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


def resolve_inputs(args) -> tuple[list[dict], object]:
    """Load every checkpoint first (bad files fail before any slow work), fill the defaults
    from the first one, and check that all of them fit the dataset."""
    checkpoints = [load_checkpoint(path) for path in args.checkpoints]
    first = checkpoints[0]
    if args.dataset is None:
        args.dataset = (first.get("dataset") or {}).get("spec")
        if not args.dataset:
            raise UserError(f"{args.checkpoints[0]} records no dataset spec; pass --dataset")
    spec = parse_dataset_spec(args.dataset)
    for path, checkpoint in zip(args.checkpoints, checkpoints):
        check_classes(path, checkpoint, spec)
    if args.input_size is None:
        args.input_size = (first.get("config") or {}).get("input_size")
        if not args.input_size:
            raise UserError(f"{args.checkpoints[0]} records no input_size; pass --input-size")
        others = {tuple((c.get("config") or {}).get("input_size") or ()) for c in checkpoints}
        if len(others) > 1:
            print(f"note: checkpoints were trained at different sizes; all are evaluated at "
                  f"{args.input_size[0]}x{args.input_size[1]} (set --input-size to choose)")
    validate_input_size(args.input_size, max(int(c["arch"].get("output_stride", 16))
                                             for c in checkpoints))
    return checkpoints, spec


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    for option in ("batch_size", "threads", "latency_runs", "max_images"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise UserError(f"--{option.replace('_', '-')} must be at least 1")
    if args.workers < 0:
        raise UserError("--workers must be 0 or more")
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    checkpoints, spec = resolve_inputs(args)

    dataset = spec.build(args.split, transform=eval_transforms(size=tuple(args.input_size)))
    if args.max_images is not None and args.max_images < len(dataset):
        dataset = Subset(dataset, range(args.max_images))
    if len(dataset) == 0:
        raise UserError(f"dataset {spec.name} has no images in split {args.split!r}")
    loader = build_loader(dataset, batch_size=args.batch_size, shuffle=False,
                          workers=args.workers, seed=0, drop_last=False)

    names = row_names(args.checkpoints)
    results = [evaluate_checkpoint(path, name, checkpoint, spec, loader, args, device)
               for path, name, checkpoint in tqdm(list(zip(args.checkpoints, names, checkpoints)),
                                                  desc="checkpoints", unit="ckpt")]
    rows = [result.row for result in results]
    if not args.no_profile:
        add_reductions(rows)
    written, notes = write_report(results, list(spec.class_names), args.out, args.json)
    print((args.out / "table.md").read_text())
    for note in notes:
        print(f"note: {note}")
    print("wrote " + ", ".join(str(path) for path in written))
    return rows


if __name__ == "__main__":
    run_cli(main)
