"""Training runs: train (or distil into) any registry model on any dataset spec.

    summary = run(config)                         # config: training.config's resolved dict
    summary = run(config, distill=True)           # with config["teacher"]'s soft labels
    summary = run(config, resume=Path("runs/NAME/last.pth"))
    teacher = ensure_teacher(config)              # train config["teacher_config"] unless cached

`python -m training.train` and `python -m training.distill` parse flags and call these; the
compression, continual-learning and benchmark code call them directly.
"""
from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import torch

from training.checkpoint import check_classes, dataset_record, load_checkpoint, \
    model_from_checkpoint
from training.config import learning_settings, recorded_config, resolve_config, resume_config, \
    save_config, validate_config
from training.data import parse_dataset_spec
from training.data.transforms import eval_transforms, train_transforms
from training.distributed import barrier, cleanup, init_distributed, wrap_student
from training.engine import Trainer, TrainingDiverged
from training.errors import UserError
from training.io import ROOT, file_sha256, prepare_output_dir, remove_stale
from training.machine import select_device
from training.models import build_model, validate_input_size
from training.sampling import AugmentedDataset
from training.soft_labels import build_or_load_cache, cache_key
from training.tasks import DistillationTask, SupervisedTask


def default_run_name(config: dict) -> str:
    dataset = config["dataset"].split(":", 1)[0]
    return f"{config['model']}_{dataset}_{time.strftime('%Y%m%d-%H%M%S')}"


def load_teacher(path: str, dataset: dict, device: torch.device) -> tuple[torch.nn.Module, str]:
    checkpoint = load_checkpoint(path)
    check_classes(f"teacher {path}", checkpoint["dataset"], dataset)
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
    config = copy.deepcopy(config)  # the caller's dict stays as it was given
    validate_config(config)  # also resolves bf16 'auto' for configs built in code
    run_dir = Path(config["output_dir"]) / (config["name"] or default_run_name(config))
    prepare_output_dir(run_dir, "run folder")  # before any data is read or model built
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
    val_set = spec.build("val", transform=eval_transforms(tuple(config["input_size"])),
                         skip_corrupt=config["skip_corrupt"], replace_corrupt=False) \
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

    config["name"] = run_dir.name
    config = recorded_config(config, distill)
    if dist.is_main:
        remove_stale(run_dir)  # temporary checkpoints of a killed earlier session
    trainer = Trainer(config, task, model, train_set, val_set, dataset, run_dir, device, dist)
    trainer.on_step = on_step
    if resume:
        checkpoint = load_checkpoint(resume)
        check_classes(f"checkpoint {resume}", checkpoint["dataset"], dataset)
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


def config_to_resume(path: Path, flags: dict, config_path: Path | None = None) -> dict:
    """The config `--resume path` continues with: the checkpoint's own, where only
    training.config.RESUMABLE keys may change; a contradicting flag is refused, naming it."""
    checkpoint = load_checkpoint(path)
    config = resume_config(checkpoint["config"], flags, config_path, path)
    if checkpoint.get("epoch", 0) >= config["epochs"] and not checkpoint.get("batches_done"):
        raise UserError(f"{path} has finished: it trained all {config['epochs']} epochs; pass "
                        f"--epochs with more than {checkpoint['epoch']} to train it further")
    return config


def ensure_teacher(config: dict) -> str:
    """Return the teacher checkpoint, training it first from `teacher_config` when needed."""
    teacher = config.get("teacher")
    recipe = config.get("teacher_config")
    if not recipe:
        return teacher
    recipe = Path(recipe)
    if not recipe.is_file() and (ROOT / recipe).is_file():
        recipe = ROOT / recipe  # configs name repo-relative paths
    teacher_config = resolve_config(recipe, distillation=False)
    teacher_config["progress"] = config["progress"]
    teacher_config["name"] = teacher_config["name"] or recipe.stem
    path = Path(teacher_config["output_dir"]) / teacher_config["name"] / "best.pth"
    if path.is_file():
        stored = load_checkpoint(path)["config"]
        if learning_settings(stored) == learning_settings(teacher_config):
            print(f"reusing teacher {path} (trained with the same config)", file=sys.stderr)
            return str(path)
        print(f"teacher {path} was trained with another config: retraining", file=sys.stderr)
    print(f"training the teacher ({teacher_config['model']}) from {recipe}", file=sys.stderr)
    run(teacher_config)
    return str(path)


def recorded_miou(checkpoint: str, dataset: str) -> float | None:
    """The val mIoU a checkpoint recorded, when it was measured on `dataset`."""
    state = load_checkpoint(checkpoint)
    if (state.get("dataset") or {}).get("spec") != dataset:
        return None
    return (state.get("metrics") or {}).get("miou")
