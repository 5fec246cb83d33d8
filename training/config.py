"""Training configuration: defaults < YAML file (`--config`) < command-line flags.

Every key has a declared type (`TYPES`): `lr: 1e-3` is a number (YAML 1.2, not PyYAML's 1.1
string), `epochs: 1.5` and `aux_loss: maybe` are refused, and every error names its file
and key (`configs/x.yaml: lr: expected a number, got 'fast'`). The resolved config is written as
`config.yaml` into the run directory and stored in every checkpoint, so a run can always be
traced back to exactly what it did; it records only what the run used.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from training.errors import UserError
from training.io import atomic_write_text, read_yaml

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
    # DIST at T 1: the loss that beat the paper's KL on CamVid (configs/camvid_*_kd.yaml)
    "teacher": None, "teacher_config": None, "alpha": 0.5, "temperature": 1.0,
    "soft_labels": "online", "kd_loss": "dist", "teacher_bf16": False,
    "cache_dir": ".cache/soft_labels",
}

CHOICES = {"lr_schedule": ("step", "poly", "cosine"), "soft_labels": ("online", "cached"),
           "kd_loss": ("kl", "cwd", "dist"), "device": ("auto", "cpu", "cuda")}
# Keys that name, place or display a run without changing what it learns.
COSMETIC = frozenset({"name", "output_dir", "progress", "workers", "teacher_config", "cache_dir"})
# Keys only distillation reads: training.train refuses them, and a plain run does not record them.
DISTILLATION = ("teacher", "teacher_config", "alpha", "temperature", "soft_labels", "kd_loss",
                "teacher_bf16", "cache_dir")
# What a resumed run may change: everything else continues as the checkpoint recorded it.
RESUMABLE = ("epochs", "progress", "workers")


# ---- declared types ----------------------------------------------------------------------

def _shown(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _integer(value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {_shown(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}, got {value}")
    return value


def _number(value, low=None, high=None, open_low=False, open_high=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {_shown(value)}")
    value = float(value)
    if low is not None and (value < low or open_low and value == low):
        raise ValueError(f"must be {'above' if open_low else 'at least'} {low:g}, got {value:g}")
    if high is not None and (value > high or open_high and value == high):
        raise ValueError(f"must be {'below' if open_high else 'at most'} {high:g}, "
                         f"got {value:g}")
    return value


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_shown(value)}")
    return value


def _text(value):
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a string, got {_shown(value)}")
    return value


def _optional(check):
    return lambda value: None if value is None else check(value)


def _numbers(count: int, what: str, check=_number):
    def checked(value):
        if not isinstance(value, (list, tuple)) or len(value) != count:
            raise ValueError(f"expected {what}, got {_shown(value)}")
        try:
            return [check(item) for item in value]
        except ValueError:
            raise ValueError(f"expected {what}, got {_shown(value)}") from None
    return checked


def _choice(key: str):
    def checked(value):
        if value not in CHOICES[key]:
            raise ValueError(f"must be one of {', '.join(CHOICES[key])}, got {_shown(value)}")
        return value
    return checked


def _bf16(value):
    if value in ("on", "off", "auto") or isinstance(value, bool):
        return value
    raise ValueError(f"expected on, off, auto or a boolean, got {_shown(value)}")


def _positive_int(value):
    return _integer(value, 1)


TYPES = {
    "name": _optional(_text), "output_dir": _text, "model": _text,
    "output_stride": _integer, "backbone_weights": _text, "aux_loss": _boolean,
    "dropout": lambda v: _number(v, 0, 1, open_high=True),
    "dataset": _text,
    "input_size": _numbers(2, "[H, W] (two positive integers)",
                           lambda v: _integer(v, 1)),
    "workers": lambda v: _integer(v, 0), "skip_corrupt": _boolean,
    "scale_range": _numbers(2, "[low, high] (two numbers)"),
    "rotation_deg": lambda v: _number(v, 0), "hflip": _boolean, "vflip": _boolean,
    "jitter": _numbers(3, "[brightness, contrast, saturation] (three numbers)"),
    "epochs": _positive_int, "batch_size": _positive_int, "accum_steps": _positive_int,
    "lr": lambda v: _number(v, 0, open_low=True), "weight_decay": lambda v: _number(v, 0),
    "lr_schedule": _choice("lr_schedule"), "lr_step_epochs": _positive_int,
    "lr_gamma": lambda v: _number(v, 0, open_low=True),
    "poly_power": lambda v: _number(v, 0, open_low=True),
    "max_steps_per_epoch": _optional(_positive_int), "max_bad_steps": _positive_int,
    "label_smoothing": lambda v: _number(v, 0, 1, open_high=True),
    "seed": _integer, "device": _choice("device"), "bf16": _bf16, "channels_last": _boolean,
    "sync_bn": _boolean, "eval_every": _positive_int, "progress": _boolean,
    "teacher": _optional(_text), "teacher_config": _optional(_text),
    "alpha": lambda v: _number(v, 0, 1), "temperature": lambda v: _number(v, 0, open_low=True),
    "soft_labels": _choice("soft_labels"), "kd_loss": _choice("kd_loss"),
    "teacher_bf16": _boolean, "cache_dir": _text,
}
assert set(TYPES) == set(DEFAULTS)


def check_values(values: dict, where: str) -> dict:
    """The values with their declared types (ints widened where a number is wanted); unknown
    keys and wrong types raise one UserError naming `where` and the key."""
    unknown = sorted(set(values) - set(DEFAULTS))
    if unknown:
        raise UserError(f"{where}: unknown config key {unknown[0]!r}; known keys: "
                        f"{', '.join(sorted(DEFAULTS))}")
    checked = {}
    for key, value in values.items():
        try:
            checked[key] = TYPES[key](value)
        except ValueError as exc:
            raise UserError(f"{where}: {key}: {exc}") from None
    return checked


def learning_settings(config: dict, also_ignore=()) -> dict:
    """The settings that decide what a run learns: equal for two configs means a finished run
    of one can stand for the other. Keys an older config lacks read as their defaults."""
    skip = COSMETIC | set(also_ignore)
    if not (config.get("teacher") or config.get("teacher_config")):
        # A run without a teacher never read the distillation keys: a change of their
        # defaults must not make finished teachers and plain runs look stale.
        skip |= set(DISTILLATION)
    return {key: config.get(key, default) for key, default in DEFAULTS.items()
            if key not in skip}


# ---- flags ---------------------------------------------------------------------------------

def add_config_arguments(parser: argparse.ArgumentParser, distillation: bool = False) -> None:
    """Flags for every config key; unset flags do not override the YAML file."""
    s = argparse.SUPPRESS
    parser.add_argument("--config", type=Path, help="YAML file with any of the keys below")
    parser.add_argument("--resume", type=Path,
                        help="continue a run from its last.pth, as it was configured; only "
                             + ", ".join(f"--{k.replace('_', '-')}" for k in RESUMABLE)
                             + " may change")
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
    group.add_argument("--skip-corrupt", action=argparse.BooleanOptionalAction, default=s,
                       help="skip (and count) unreadable training and validation images")
    group.add_argument("--vflip", action=argparse.BooleanOptionalAction, default=s)
    group = parser.add_argument_group("optimisation")
    for flag, kind in (("--epochs", int), ("--batch-size", int), ("--accum-steps", int),
                       ("--lr", float), ("--weight-decay", float), ("--lr-step-epochs", int),
                       ("--lr-gamma", float), ("--max-steps-per-epoch", int), ("--seed", int),
                       ("--eval-every", int), ("--label-smoothing", float)):
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
                           help="kl: pixel-wise KL (the paper); cwd: channel-wise distillation; "
                                "dist: DIST's Pearson relations (for large teacher gaps)")
        group.add_argument("--teacher-bf16", action=argparse.BooleanOptionalAction, default=s)
        group.add_argument("--cache-dir", default=s)


def flag_values(flags: dict) -> dict:
    """The config keys among parsed flags (`vars(args)`); the flags `add_config_arguments`
    made default to absent, so only what the user set is here."""
    return {key: value for key, value in flags.items() if key in DEFAULTS}


# ---- files and resolution -------------------------------------------------------------------

def load_yaml(path: Path) -> dict:
    """A config file's keys with their declared types; unknown keys are refused."""
    return check_values(read_yaml(path, "config"), str(path))


def resolve_config(config_path: Path | None = None, overrides: dict | None = None,
                   flags: dict | None = None, distillation: bool = True) -> dict:
    """DEFAULTS, then the YAML file, then `overrides`, then the flags the user gave.

    With distillation=False (training.train), distillation keys that would change what the
    run learns are refused instead of being recorded and ignored."""
    config = dict(DEFAULTS)
    layers = [(load_yaml(config_path), str(config_path)) if config_path else ({}, ""),
              (check_values(overrides or {}, "overrides"), "overrides"),
              (check_values(flags or {}, "command line"), "command line")]
    for values, where in layers:
        if not distillation:
            refuse_distillation_keys(values, where)
        config.update(values)
    validate_config(config)
    return config


def refuse_distillation_keys(values: dict, where: str) -> None:
    used = [k for k in DISTILLATION if k in values and values[k] != DEFAULTS[k]
            and k not in COSMETIC]
    if used:
        raise UserError(f"{where}: {used[0]} is a distillation setting, and training.train "
                        f"trains without a teacher; use python -m training.distill")


def resume_config(recorded: dict, flags: dict, config_path: Path | None, path: Path) -> dict:
    """The config a resumed run continues with: the checkpoint's, changed only in RESUMABLE
    keys. A flag or YAML value that contradicts it is refused, naming it."""
    given = [(load_yaml(config_path), str(config_path))] if config_path else []
    given.append((check_values(flags, "command line"), "command line"))
    config = dict(DEFAULTS, **recorded)
    for values, where in given:
        for key, value in values.items():
            if key in RESUMABLE:
                config[key] = value
            elif value != config.get(key):
                flag = f"--{key.replace('_', '-')}" if where == "command line" else \
                    f"{where}: {key}:"
                raise UserError(f"{flag} {value!r} contradicts the checkpoint {path}, which "
                                f"was trained with {config.get(key)!r}; --resume continues a "
                                f"run as it was (only {', '.join(RESUMABLE)} may change)")
    validate_config(config)
    return config


def resolve_bf16(config: dict) -> None:
    """bf16 'on' / 'off' / 'auto' (or a YAML boolean) -> the boolean the run uses; 'auto' turns
    bf16 autocast and channels_last on where the CPU has native bf16 (training.machine)."""
    value = config["bf16"]
    if value == "auto":
        from training.machine import has_bf16
        value = has_bf16() and config["device"] != "cuda"
        if value:
            config["channels_last"] = True
    elif isinstance(value, str):
        value = value == "on"
    config["bf16"] = bool(value)


def validate_config(config: dict, where: str = "config") -> None:
    """Types of every key, then the rules across keys; fills keys an older config lacks."""
    for key, default in DEFAULTS.items():
        config.setdefault(key, default)
    config.update(check_values(config, where))
    resolve_bf16(config)


def recorded_config(config: dict, distill: bool) -> dict:
    """What a run stores: a plain run leaves out the distillation keys it never read."""
    if distill:
        return config
    return {key: value for key, value in config.items() if key not in DISTILLATION}


def save_config(config: dict, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False))
