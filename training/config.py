"""Training configuration: defaults < YAML file (`--config`) < command-line flags.

The resolved config is written as `config.yaml` into the run directory and stored in every
checkpoint, so a run can always be traced back to exactly what it did.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from training.errors import UserError

DEFAULTS: dict = {
    # what to train
    "name": None, "output_dir": "runs",
    "model": "deeplabv3lite_mobilenetv2", "output_stride": 16, "backbone_weights": "none",
    "aux_loss": False, "dropout": 0.5,
    # data
    "dataset": "synthetic", "input_size": [128, 256], "workers": 2, "skip_corrupt": False,
    "scale_range": [0.5, 2.0], "rotation_deg": 10.0, "hflip": True, "vflip": False,
    "jitter": [0.3, 0.3, 0.3],
    # optimisation: the paper's AdamW with step decay x0.1 every 30 epochs
    "epochs": 90, "batch_size": 8, "accum_steps": 1, "lr": 1e-3, "weight_decay": 1e-4,
    "lr_schedule": "step", "lr_step_epochs": 30, "lr_gamma": 0.1, "poly_power": 0.9,
    "max_steps_per_epoch": None, "max_bad_steps": 5, "label_smoothing": 0.0,
    # execution
    "seed": 0, "device": "auto", "bf16": False, "channels_last": False, "sync_bn": False,
    "eval_every": 1, "progress": True,
    # distillation (training.distill)
    "teacher": None, "teacher_config": None, "alpha": 0.5, "temperature": 2.0, "soft_labels": "online", "kd_loss": "kl",
    "teacher_bf16": False, "cache_dir": ".cache/soft_labels",
}

CHOICES = {"lr_schedule": ("step", "poly", "cosine"), "soft_labels": ("online", "cached"),
           "kd_loss": ("kl", "cwd"), "device": ("auto", "cpu", "cuda")}


# Keys that name, place or display a run without changing what it learns.
COSMETIC = frozenset({"name", "output_dir", "progress", "workers", "teacher_config", "cache_dir"})


def learning_settings(config: dict, also_ignore=()) -> dict:
    """The settings that decide what a run learns: equal for two configs means a finished run
    of one can stand for the other. Keys an older config lacks read as their defaults."""
    skip = COSMETIC | set(also_ignore)
    return {key: config.get(key, default) for key, default in DEFAULTS.items()
            if key not in skip}


def add_config_arguments(parser: argparse.ArgumentParser, distillation: bool = False) -> None:
    """Flags for every config key; unset flags do not override the YAML file."""
    s = argparse.SUPPRESS
    parser.add_argument("--config", type=Path, help="YAML file with any of the keys below")
    parser.add_argument("--resume", type=Path, help="continue a run from its last.pth")
    group = parser.add_argument_group("model")
    group.add_argument("--name", default=s, help="run name (folder under --output-dir)")
    group.add_argument("--output-dir", default=s)
    group.add_argument("--model", default=s)
    group.add_argument("--output-stride", type=int, default=s)
    group.add_argument("--backbone-weights", default=s, help="imagenet | none | PATH")
    group.add_argument("--aux-loss", action=argparse.BooleanOptionalAction, default=s)
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default=s,
                       help="synthetic[:k=v,...] | cityscapes:ROOT | camvid:ROOT | folder:ROOT")
    group.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=s)
    group.add_argument("--workers", type=int, default=s)
    group.add_argument("--skip-corrupt", action=argparse.BooleanOptionalAction, default=s)
    group.add_argument("--vflip", action=argparse.BooleanOptionalAction, default=s)
    group = parser.add_argument_group("optimisation")
    for flag, kind in (("--epochs", int), ("--batch-size", int), ("--accum-steps", int),
                       ("--lr", float), ("--weight-decay", float), ("--lr-step-epochs", int),
                       ("--lr-gamma", float), ("--max-steps-per-epoch", int), ("--seed", int),
                       ("--label-smoothing", float),
                       ("--eval-every", int)):
        group.add_argument(flag, type=kind, default=s)
    group.add_argument("--lr-schedule", choices=CHOICES["lr_schedule"], default=s)
    group = parser.add_argument_group("execution")
    group.add_argument("--device", choices=CHOICES["device"], default=s)
    group.add_argument("--bf16", nargs="?", const="on", choices=("on", "off", "auto"),
                       default=s, help="bf16 autocast (CPU or CUDA); auto: on, with "
                                       "channels_last, where the CPU has native bf16 "
                                       "(avx512_bf16 or AMX), off elsewhere")
    group.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=s)
    group.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=s)
    group.add_argument("--progress", action=argparse.BooleanOptionalAction, default=s)
    if distillation:
        group = parser.add_argument_group("distillation")
        group.add_argument("--teacher", default=s, help="teacher checkpoint (.pth)")
        group.add_argument("--alpha", type=float, default=s, help="weight of the soft loss")
        group.add_argument("--temperature", type=float, default=s)
        group.add_argument("--soft-labels", choices=CHOICES["soft_labels"], default=s)
        group.add_argument("--kd-loss", choices=CHOICES["kd_loss"], default=s,
                           help="kl: pixel-wise KL (the paper); cwd: channel-wise distillation")
        group.add_argument("--teacher-bf16", action=argparse.BooleanOptionalAction, default=s)
        group.add_argument("--cache-dir", default=s)


def load_yaml(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"config {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"config {path} must be a mapping of keys to values")
    return data


def resolve_config(args: argparse.Namespace, overrides: dict | None = None) -> dict:
    """DEFAULTS, then the YAML file, then `overrides`, then the flags the user gave."""
    config = dict(DEFAULTS)
    layers = [load_yaml(args.config) if getattr(args, "config", None) else {}, overrides or {},
              {k: v for k, v in vars(args).items() if k in DEFAULTS}]
    for layer in layers:
        unknown = sorted(set(layer) - set(DEFAULTS))
        if unknown:
            raise UserError(f"unknown config key {unknown[0]!r}; known keys: "
                            f"{', '.join(sorted(DEFAULTS))}")
        config.update(layer)
    validate_config(config)
    return config


def resolve_bf16(config: dict) -> None:
    """bf16 'on' / 'off' / 'auto' (or a YAML boolean) -> the boolean the run uses; 'auto' turns
    bf16 autocast and channels_last on where the CPU has native bf16 (training.machine)."""
    value = config["bf16"]
    if isinstance(value, str):
        if value not in ("on", "off", "auto"):
            raise UserError(f"bf16 must be on, off, auto or a boolean, got {value!r}")
        if value == "auto":
            from training.machine import has_bf16
            value = has_bf16() and config["device"] != "cuda"
            if value:
                config["channels_last"] = True
        else:
            value = value == "on"
    config["bf16"] = bool(value)


def validate_config(config: dict) -> None:
    resolve_bf16(config)
    for key, allowed in CHOICES.items():
        if config[key] not in allowed:
            raise UserError(f"{key} must be one of {', '.join(allowed)}, got {config[key]!r}")
    if int(config["batch_size"]) < 1:
        raise UserError(f"batch size must be at least 1, got {config['batch_size']}")
    if int(config["accum_steps"]) < 1:
        raise UserError(f"accum_steps must be at least 1, got {config['accum_steps']}")
    if int(config["epochs"]) < 1:
        raise UserError(f"epochs must be at least 1, got {config['epochs']}")
    if config["lr"] <= 0 or config["weight_decay"] < 0:
        raise UserError("lr must be positive and weight_decay non-negative")
    if not 0.0 <= float(config["alpha"]) <= 1.0:
        raise UserError(f"alpha must be in [0, 1], got {config['alpha']}")
    if float(config["temperature"]) <= 0:
        raise UserError(f"temperature must be positive, got {config['temperature']}")
    if not 0.0 <= float(config["label_smoothing"]) < 1.0:
        raise UserError(f"label_smoothing must be in [0, 1), got {config['label_smoothing']}")
    if config["lr_schedule"] == "step" and int(config["lr_step_epochs"]) < 1:
        raise UserError("lr_step_epochs must be at least 1")
    config["input_size"] = [int(v) for v in config["input_size"]]


def save_config(config: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
