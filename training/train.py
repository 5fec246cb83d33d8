"""Supervised training of any registry model on any dataset spec.

    python -m training.train --config configs/synthetic_teacher.yaml
    python -m training.train --model deeplabv3lite_resnet18 --dataset camvid:../shared/datasets/camvid \
        --epochs 90 --batch-size 8 --accum-steps 2 --lr 1e-3
    python -m training.train --resume runs/NAME/last.pth

The same loop serves `training.distill`, which adds a teacher (see `run`).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from training.checkpoint import dataset_record, load_checkpoint, model_from_checkpoint
from training.config import add_config_arguments, resolve_config, save_config, validate_config
from training.data import parse_dataset_spec
from training.data.transforms import eval_transforms, train_transforms
from training.distributed import barrier, cleanup, init_distributed, wrap_student
from training.engine import Trainer, TrainingDiverged, select_device
from training.errors import UserError, run_cli
from training.io import file_sha256
from training.losses import DistillationTask, SupervisedTask
from training.models import build_model, validate_input_size
from training.sampling import AugmentedDataset
from training.soft_labels import build_or_load_cache, cache_key


def default_run_name(config: dict) -> str:
    dataset = config["dataset"].split(":", 1)[0]
    return f"{config['model']}_{dataset}_{time.strftime('%Y%m%d-%H%M%S')}"


def check_same_classes(what: str, record: dict, dataset: dict) -> None:
    """Refuse a teacher or resumed model trained for another class set than the dataset's."""
    if record["num_classes"] != dataset["num_classes"] or \
            list(record["class_names"]) != list(dataset["class_names"]):
        raise UserError(f"{what} was trained for {record['num_classes']} classes "
                        f"({', '.join(record['class_names'][:4])}, ...) but the dataset "
                        f"{dataset['spec']!r} has {dataset['num_classes']} "
                        f"({', '.join(dataset['class_names'][:4])}, ...)")


def load_teacher(path: str, dataset: dict, device: torch.device) -> tuple[torch.nn.Module, str]:
    checkpoint = load_checkpoint(path)
    check_same_classes(f"teacher {path}", checkpoint["dataset"], dataset)
    teacher = model_from_checkpoint(checkpoint).to(device)
    return teacher.requires_grad_(False), file_sha256(path)


def build_train_set(config: dict, spec, soft_labels=None):
    transform = train_transforms(size=tuple(config["input_size"]),
                                 scale_range=tuple(config["scale_range"]),
                                 rotation_deg=config["rotation_deg"], hflip=config["hflip"],
                                 vflip=config["vflip"], jitter=tuple(config["jitter"]))
    base = spec.build("train", skip_corrupt=config["skip_corrupt"])
    return AugmentedDataset(base, transform, config["seed"], soft_labels=soft_labels)


def run(config: dict, resume: Path | None = None, distill: bool = False,
        on_step=None, initial_model: torch.nn.Module | None = None) -> dict:
    """Train (or distil into) `config['model']`; returns the trainer's summary plus paths.

    `initial_model` replaces the freshly built `config['model']` (fine-tuning a pruned model,
    for instance); its `arch` is what the checkpoints record.
    """
    validate_config(config)  # also resolves bf16 'auto' for configs built in code
    device = select_device(config["device"])
    dist = init_distributed(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    torch.manual_seed(config["seed"])
    spec = parse_dataset_spec(config["dataset"])
    dataset = dataset_record(spec)
    dataset["spec"] = config["dataset"]
    validate_input_size(config["input_size"], config["output_stride"])
    if initial_model is None and resume and "pruned" in load_checkpoint(resume)["arch"]:
        initial_model = model_from_checkpoint(resume)  # a resumed pruned run keeps its shapes
    model = initial_model if initial_model is not None else \
        build_model(config["model"], num_classes=spec.num_classes,
                    output_stride=config["output_stride"],
                    backbone_weights=config["backbone_weights"],
                    aux_loss=config["aux_loss"], dropout=config["dropout"])
    model = model.to(device)
    if config["channels_last"]:
        model = model.to(memory_format=torch.channels_last)

    teacher, soft_labels = None, None
    if distill:
        if not config["teacher"]:
            raise UserError("distillation needs --teacher CKPT (or a config 'teacher' entry)")
        teacher, teacher_hash = load_teacher(config["teacher"], dataset, device)
        if config["soft_labels"] == "cached":
            plain = spec.build("train", transform=eval_transforms(tuple(config["input_size"])))
            key = cache_key(teacher_hash, config["dataset"], "train", spec.build("train"),
                            config["input_size"])
            if dist.is_main:
                build_or_load_cache(teacher, plain, key, Path(config["cache_dir"]), device,
                                    config["batch_size"],
                                    torch.bfloat16 if config["teacher_bf16"] else None,
                                    progress=config["progress"])
            barrier(dist)
            soft_labels = build_or_load_cache(teacher, plain, key, Path(config["cache_dir"]),
                                              device)
            teacher = None  # the cache replaces the online teacher pass entirely

    train_set = build_train_set(config, spec, soft_labels)
    val_set = spec.build("val", transform=eval_transforms(tuple(config["input_size"]))) \
        if "val" in spec.splits else None
    student = wrap_student(model, dist, device, config["sync_bn"])
    if distill:
        task = DistillationTask(student, teacher, config["alpha"], config["temperature"],
                                config["kd_loss"], spec.ignore_index,
                                torch.bfloat16 if config["teacher_bf16"] else None,
                                label_smoothing=config["label_smoothing"])
    else:
        task = SupervisedTask(student, spec.ignore_index,
                              label_smoothing=config["label_smoothing"])

    run_dir = Path(config["output_dir"]) / (config["name"] or default_run_name(config))
    config["name"] = run_dir.name
    trainer = Trainer(config, task, model, train_set, val_set, dataset, run_dir, device, dist)
    trainer.on_step = on_step
    if resume:
        checkpoint = load_checkpoint(resume)
        check_same_classes(f"checkpoint {resume}", checkpoint["dataset"], dataset)
        trainer.restore(checkpoint)
    if dist.is_main:
        save_config(config, run_dir / "config.yaml")
        print(f"run {run_dir}: {config['model']} on {config['dataset']}, "
              f"{len(train_set)} train images, effective batch {trainer.effective_batch} "
              f"({config['batch_size']} x {config['accum_steps']} accumulation x "
              f"{dist.world_size} process), {trainer.steps_per_epoch} steps/epoch, "
              f"device {device}", file=sys.stderr)
    try:
        summary = trainer.fit()
    except TrainingDiverged as exc:
        raise UserError(str(exc)) from None
    finally:
        cleanup(dist)
    summary.update(run_dir=str(run_dir), best=str(run_dir / "best.pth"),
                   last=str(run_dir / "last.pth"), effective_batch=trainer.effective_batch)
    return summary


def config_for(args: argparse.Namespace) -> dict:
    """A resumed run continues with the config stored in its checkpoint."""
    if args.resume:
        config = dict(load_checkpoint(args.resume)["config"])
        config.update({k: v for k, v in vars(args).items() if k in ("epochs", "progress")})
        validate_config(config)
        return config
    return resolve_config(args)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    summary = run(config_for(args), resume=args.resume)
    if summary.get("interrupted"):
        print(f"interrupted: state saved to {summary['last']}; continue with --resume",
              file=sys.stderr)
        sys.exit(130)
    return summary


if __name__ == "__main__":
    run_cli(main)
