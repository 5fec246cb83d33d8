"""Evaluation of whole checkpoints into the paper's table (the per-epoch loop that training
validates with is training.validation).

    rows = evaluate_checkpoints([teacher, student], dataset="camvid:ROOT", out=Path("report"))

`evaluate_checkpoints` is what `python -m training.evaluate` runs: metrics (mIoU, per-class
IoU, mAE@0.5, mAE@0.5:0.95, see training.metrics), cost columns (params, GFLOPs, peak memory,
CPU latency, see training.profiling) and the report (training.report).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Subset
from tqdm import tqdm

from training.checkpoint import check_classes, dataset_record, load_checkpoint, \
    model_from_checkpoint
from training.data import parse_dataset_spec
from training.data.loader import build_loader
from training.data.transforms import eval_transforms
from training.errors import UserError, require_at_least_one
from training.io import prepare_output_dir, prepare_output_file, remove_empty
from training.machine import select_device
from training.metrics import confusion_matrix
from training.models import count_parameters, validate_input_size
from training.profiling import add_reductions, count_flops, measure_latency_ms, \
    measure_peak_memory_mb, state_dict_size_mb
from training.report import CheckpointResult, Samples, write_report
from training.validation import evaluate_model

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


def row_names(paths: list[Path]) -> list[str]:
    """Short, unique labels: the file stem, or run-folder/stem when stems repeat."""
    names = [path.stem for path in paths]
    if len(set(names)) < len(names):
        names = [f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem
                 for path in paths]
    if len(set(names)) < len(names):
        names = [f"{name}#{index}" for index, name in enumerate(names)]
    return names


def structure_key(model: nn.Module, arch: dict) -> tuple:
    """What a model's cost depends on: its architecture record (the output stride changes
    the cost, not one tensor's shape), its class and every tensor's name, shape and dtype,
    not the values (a plain and a distilled run of one architecture cost the same)."""
    return (json.dumps(arch, sort_keys=True, default=str), type(model).__qualname__,
            tuple((key, tuple(t.shape), str(t.dtype)) for key, t in model.state_dict().items()))


def measure_costs(path: Path, model: nn.Module, options: "EvaluationOptions") -> dict:
    """The cost columns: GFLOPs, size, peak memory (in a fresh process that rebuilds the
    model from the file) and CPU latency."""
    flops = count_flops(model, tuple(options.input_size))
    factory = functools.partial(model_from_checkpoint, str(path))
    return {"gflops": flops / 1e9, "gmacs": flops / 2e9, "size_mb": state_dict_size_mb(model),
            "peak_mem_mb": measure_peak_memory_mb(factory, tuple(options.input_size),
                                                  options.threads),
            "latency_ms": measure_latency_ms(model, tuple(options.input_size),
                                             options.threads, runs=options.latency_runs)}


def evaluate_checkpoint(path: Path, name: str, checkpoint: dict, model: nn.Module, spec, loader,
                        options: "EvaluationOptions", device: torch.device,
                        costs: dict | None = None) -> CheckpointResult:
    """Metrics on the split, and with `options.profile` the cost columns: measured once per
    structure_key in `costs` (a cache shared across calls), so checkpoints of one
    architecture show one measurement and name the row it came from (`cost_from`)."""
    collector = BatchCollector(spec.num_classes, spec.ignore_index)
    metrics = evaluate_model(model.to(device), loader, spec.num_classes, spec.ignore_index,
                             device, on_batch=collector, description=name,
                             progress=options.progress)
    model.cpu()
    row = {
        "name": name, "checkpoint": str(path), "model": checkpoint["arch"]["name"],
        "epoch": checkpoint.get("epoch"), "dataset": spec.name, "split": options.split,
        "images": len(loader.dataset), "input_size": list(options.input_size),
        "miou": metrics["miou"], "pixel_acc": metrics["pixel_acc"],
        "mae_50": metrics["mae_50"], "mae_50_95": metrics["mae_50_95"],
        "mae_by_threshold": metrics["mae_by_threshold"],
        "per_class_iou": dict(zip(spec.class_names, metrics["per_class_iou"])),
        "params_m": count_parameters(model) / 1e6,
        "gflops": None, "gmacs": None, "size_mb": None, "peak_mem_mb": None,
        "latency_ms": None, "cost_from": None, "threads": options.threads,
        "device": str(device),
    }
    if options.profile:
        costs = {} if costs is None else costs
        key = structure_key(model, checkpoint["arch"])
        if key not in costs:
            costs[key] = dict(measure_costs(path, model, options), cost_from=name)
        row.update(costs[key])
    palette = [tuple(colour) for colour in
               (checkpoint.get("dataset") or {}).get("palette", spec.palette)]
    return CheckpointResult(path, row, collector.matrix, collector.samples, palette)


def resolve_inputs(paths: list[Path], dataset: str | None, input_size) -> tuple:
    """Load every checkpoint first (bad files fail before any slow work), fill the defaults
    from the first one, and check that all of them fit the dataset."""
    checkpoints = [load_checkpoint(path) for path in paths]
    first = checkpoints[0]
    if dataset is None:
        dataset = (first.get("dataset") or {}).get("spec")
        if not dataset:
            raise UserError(f"{paths[0]} records no dataset spec; pass --dataset")
    spec = parse_dataset_spec(dataset)
    wanted = dict(dataset_record(spec), spec=dataset)
    for path, checkpoint in zip(paths, checkpoints):
        record = dict(checkpoint.get("dataset") or {},
                      num_classes=checkpoint["arch"].get("num_classes"))
        check_classes(str(path), record, wanted)
    if input_size is None:
        input_size = (first.get("config") or {}).get("input_size")
        if not input_size:
            raise UserError(f"{paths[0]} records no input_size; pass --input-size")
        others = {tuple((c.get("config") or {}).get("input_size") or ()) for c in checkpoints}
        if len(others) > 1:
            print(f"note: checkpoints were trained at different sizes; all are evaluated at "
                  f"{input_size[0]}x{input_size[1]} (set --input-size to choose)")
    validate_input_size(input_size, max(int(c["arch"].get("output_stride", 16))
                                        for c in checkpoints))
    models = [model_from_checkpoint(c) for c in checkpoints]  # bad weights fail here, early
    return checkpoints, models, spec, list(input_size)


@dataclass(frozen=True)
class EvaluationOptions:
    """How checkpoints are evaluated (evaluate_checkpoints' keyword arguments, checked)."""

    split: str = "val"
    input_size: tuple[int, int] | None = None  # None: the first checkpoint's
    max_images: int | None = None
    batch_size: int = 4
    workers: int = 2
    device: str = "auto"
    threads: int | None = None  # None: torch's current count
    profile: bool = True  # the cost columns: GFLOPs, size, peak memory, latency
    latency_runs: int = 10
    skip_corrupt: bool = False
    show: bool = True
    progress: bool = True

    def __post_init__(self):
        require_at_least_one(batch_size=self.batch_size, threads=self.threads,
                             latency_runs=self.latency_runs, max_images=self.max_images)
        if self.workers < 0:
            raise UserError("--workers must be 0 or more")


def evaluate_checkpoints(paths: list[Path], dataset: str | None = None, split: str = "val",
                         input_size=None, out: Path = Path("runs/eval"),
                         json_path: Path | None = None, **options) -> list[dict]:
    """Evaluate `paths` on one split; write the report into `out` (and the rows to
    `json_path`); return the rows. `options`: EvaluationOptions' fields. Output paths are
    checked before anything is evaluated."""
    settings = EvaluationOptions(split=split, **options)
    paths = [Path(p) for p in paths]
    torch_device = select_device(settings.device)
    checkpoints, models, spec, input_size = resolve_inputs(paths, dataset, input_size)
    settings = dataclasses.replace(settings, input_size=tuple(input_size),
                                   threads=settings.threads or torch.get_num_threads())
    # Outputs are proven writable before the slow part; folders made here go if it fails.
    created = []
    try:
        created += prepare_output_dir(out, "--out")
        if json_path is not None:
            created += prepare_output_file(json_path, "--json")
        return _evaluate(paths, checkpoints, models, spec, out, json_path, settings,
                         torch_device)
    except BaseException:
        remove_empty(created)
        raise


def _evaluate(paths, checkpoints, models, spec, out, json_path, options: EvaluationOptions,
              torch_device) -> list[dict]:
    torch.set_num_threads(options.threads)
    data = spec.build(options.split, transform=eval_transforms(size=options.input_size),
                      skip_corrupt=options.skip_corrupt)
    if options.max_images is not None and options.max_images < len(data):
        data = Subset(data, range(options.max_images))
    if len(data) == 0:
        raise UserError(f"dataset {spec.name} has no images in split {options.split!r}")
    loader = build_loader(data, batch_size=options.batch_size, shuffle=False,
                          workers=options.workers, seed=0, drop_last=False)
    names = row_names(paths)
    source = data.dataset if isinstance(data, Subset) else data  # where skips are counted
    results, counted, costs = [], getattr(source, "skipped", 0), {}
    for path, name, checkpoint, model in tqdm(list(zip(paths, names, checkpoints, models)),
                                              desc="checkpoints", unit="ckpt",
                                              disable=not options.progress):
        result = evaluate_checkpoint(path, name, checkpoint, model, spec, loader, options,
                                     torch_device, costs)
        skipped, counted = getattr(source, "skipped", 0) - counted, getattr(source, "skipped", 0)
        if skipped:  # --skip-corrupt left them out of this checkpoint's metrics
            result.row.update(images=result.row["images"] - skipped, skipped_corrupt=skipped)
            print(f"note: {name}: {skipped} corrupt image(s) of {options.split!r} left out")
        results.append(result)
    rows = [result.row for result in results]
    if options.profile:
        add_reductions(rows)
    written, notes = write_report(results, list(spec.class_names), out, json_path)
    if options.show:
        print((out / "table.md").read_text())
    for note in notes:
        print(f"note: {note}")
    if options.show:
        print("wrote " + ", ".join(str(path) for path in written))
    return rows
