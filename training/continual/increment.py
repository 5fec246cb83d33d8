"""One incremental-learning step: a checkpoint adapted to new data (a new domain or new classes).

`increment()` is what `python -m training.incremental` runs (see that module for the methods
and what the output checkpoint holds). The first step reads the old data (the checkpoint's
dataset spec) once, for the Fisher and the replay memory; both are stored in the output
checkpoint, so later steps need only new data.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from training.checkpoint import load_checkpoint, make_checkpoint, model_from_checkpoint
from training.config import DEFAULTS, validate_config
from training.continual.classes import RemapLabels, check_labels, extend_class_list, \
    grow_classifier, grow_parameter_state, label_lookup
from training.continual.ewc import ContinualTask, estimate_fisher, merge_fisher
from training.continual.replay import MixedDataset, ReplayMemory
from training.data import eval_transforms, parse_dataset_spec
from training.engine import Trainer
from training.errors import UserError, require_at_least_one
from training.fit import build_train_set
from training.io import atomic_save, prepare_output_dir
from training.machine import select_device

METHODS = ("finetune", "ewc", "replay", "ewc+replay", "lwf")


def _dataset(spec, split: str, classes: list[str], ignored: list[str], transform=None):
    lookup = label_lookup(spec.class_names, classes, ignored, spec.ignore_index)
    return RemapLabels(spec.build(split), lookup, spec.class_names, spec.ignore_index,
                       f"{spec.text!r} split {split!r}", transform)


def _old_data(record: dict, split: str = "train", transform=None):
    """The checkpoint's own training data; classes it was not trained on become ignore."""
    spec = parse_dataset_spec(record["spec"])
    if split not in spec.splits:
        raise UserError(f"the old data {record['spec']!r} has no {split!r} split")
    ignored = [name for name in spec.class_names if name not in record["class_names"]]
    return _dataset(spec, split, list(record["class_names"]), ignored, transform)


def _base_history(checkpoint: dict) -> list[dict]:
    history = list(checkpoint.get("history") or [])
    if not any(isinstance(e, dict) and "method" in e for e in history):
        history = [{"task": 0, "data": checkpoint["dataset"]["spec"], "method": "train",
                    "classes_added": list(checkpoint["dataset"]["class_names"]),
                    "metrics": {"miou": float((checkpoint.get("metrics") or {}).get("miou",
                                                                                   float("nan")))}}]
    return history


def _config(checkpoint: dict, options: dict) -> dict:
    config = dict(DEFAULTS)
    config.update({k: v for k, v in (checkpoint.get("config") or {}).items() if k in DEFAULTS})
    config.update(dataset=options["new_data"], lr_schedule="poly", max_steps_per_epoch=None,
                  teacher=None, **{k: options[k] for k in ("epochs", "lr", "batch_size", "workers",
                                                          "seed", "progress", "device")
                                   if options.get(k) is not None})
    out = Path(options["out"])
    config.update(output_dir=str(out.parent), name=out.name)
    validate_config(config)
    return config


def increment(checkpoint_path: str | Path, new_data: str, method: str, out: str | Path,
              new_classes: list[str] = (), ignore_classes: list[str] = (),
              memory: int | None = None, ewc_lambda: float = 1e4, lwf_weight: float = 1.0,
              replay_ratio: float = 0.25, fisher_images: int = 64, **training) -> dict:
    """One incremental step; returns {"checkpoint": path, "metrics": ..., "time_s": ...}."""
    if method not in METHODS:
        raise UserError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    start = time.perf_counter()
    prepare_output_dir(Path(out), "--out")
    checkpoint = load_checkpoint(checkpoint_path)
    record = checkpoint["dataset"]
    old_classes = list(record["class_names"])
    spec = parse_dataset_spec(new_data)
    classes = extend_class_list(old_classes, list(new_classes), spec.class_names) \
        if new_classes else old_classes
    config = _config(checkpoint, dict(training, new_data=new_data, out=out))
    size = tuple(config["input_size"])
    device = select_device(config["device"])
    torch.manual_seed(config["seed"])
    use_ewc, use_replay = "ewc" in method, "replay" in method

    # New data first: its errors (undeclared labels) are the cheapest to report.
    new_train = _dataset(spec, "train", classes, list(ignore_classes))
    check_labels(new_train)
    val_set = _dataset(spec, "val", classes, list(ignore_classes), eval_transforms(size)) \
        if "val" in spec.splits else None

    model = model_from_checkpoint(checkpoint).to(device)
    old_model = copy.deepcopy(model) if method == "lwf" else None
    ewc_state = checkpoint.get("ewc") if use_ewc else None
    if use_ewc and not ewc_state:
        loader = DataLoader(_old_data(record, transform=eval_transforms(size)),
                            batch_size=config["batch_size"])
        ewc_state = {"fisher": estimate_fisher(model, loader, device, fisher_images),
                     "anchor": {n: p.detach().cpu().clone()
                                for n, p in model.named_parameters()}}
    replay = None
    if use_replay:
        if checkpoint.get("replay"):
            replay = ReplayMemory.from_state(checkpoint["replay"])
            if memory is not None:  # a new size applies from this task's re-selection on
                require_at_least_one(memory=memory)
                replay.capacity = int(memory)
        else:
            old_train = _old_data(record)
            capacity = 32 if memory is None else int(memory)
            if capacity < 1 or capacity > len(old_train):
                raise UserError(f"--memory {capacity} must be between 1 and the "
                                f"{len(old_train)} images of the old data {record['spec']!r}")
            replay = ReplayMemory.from_dataset(old_train, capacity, len(old_classes),
                                               record["ignore_index"], size)

    positions = list(range(len(old_classes)))
    if classes != old_classes:
        positions = grow_classifier(model, old_classes, classes)
        model.to(device)
        if ewc_state:
            ewc_state = {k: grow_parameter_state(v, model, positions)
                         for k, v in ewc_state.items()}
        if replay is not None:
            lookup = torch.tensor(positions, dtype=torch.long)
            replay = replay.remap_classes(lookup, len(classes))

    train_set = build_train_set(config, spec)
    train_set.base = new_train  # same augmentation, labels in the model's class ids
    if replay is not None:
        train_set = MixedDataset(train_set, replay.dataset(train_set.transform, config["seed"]),
                                 replay_ratio)
    ewc = None
    if ewc_state:
        ewc = ({n: t.to(device) for n, t in ewc_state["fisher"].items()},
               {n: t.to(device) for n, t in ewc_state["anchor"].items()}, float(ewc_lambda))
    task = ContinualTask(model, spec.ignore_index, ewc=ewc, old_model=old_model,
                         old_positions=positions, lwf_weight=lwf_weight).to(device)
    dataset = {"spec": new_data, "name": spec.name, "class_names": classes,
               "palette": [_colour(name, spec, record) for name in classes],
               "ignore_index": int(spec.ignore_index), "num_classes": len(classes)}
    run_dir = Path(config["output_dir"]) / config["name"]
    trainer = Trainer(config, task, model, train_set, val_set, dataset, run_dir, device)
    summary = trainer.fit()
    if summary.get("interrupted"):
        raise UserError(f"interrupted; the step's training state is in {run_dir / 'last.pth'}")
    train_time = time.perf_counter() - start

    history = _base_history(checkpoint)
    state = {}
    if use_ewc:  # online EWC: this task's Fisher joins the old one, the anchor moves here
        plain = _dataset(spec, "train", classes, list(ignore_classes), eval_transforms(size))
        fisher = estimate_fisher(model, DataLoader(plain, batch_size=config["batch_size"]),
                                 device, fisher_images)
        state["ewc"] = {"fisher": merge_fisher(ewc_state["fisher"], fisher),
                        "anchor": {n: p.detach().cpu().clone()
                                   for n, p in model.named_parameters()}}
    if replay is not None:
        state["replay"] = replay.add_task(new_train, task=len(history)).state()
    metrics = summary.get("last_metrics") or {}
    history.append({"task": len(history), "data": new_data, "method": method,
                    "classes_added": [n for n in classes if n not in old_classes],
                    "ignored_classes": list(ignore_classes),
                    "metrics": {"miou": float(metrics.get("miou", float("nan")))},
                    "epochs": int(config["epochs"]), "time_s": round(train_time, 2)})
    final = make_checkpoint(model, dataset, config, metrics=metrics, history=history, **state)
    path = run_dir / "incremented.pth"
    atomic_save(final, path)
    return {"checkpoint": str(path), "metrics": metrics, "time_s": time.perf_counter() - start,
            "train_time_s": train_time}


def _colour(name: str, spec, record: dict) -> list[int]:
    if name in record["class_names"]:
        return list(map(int, record["palette"][record["class_names"].index(name)]))
    return list(map(int, spec.palette[spec.class_names.index(name)]))
