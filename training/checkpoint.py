"""Checkpoints: full training state, written atomically, read without arbitrary pickle.

A checkpoint is a dict of tensors and plain Python values only:
    {"format": 1, "arch": {...build_model kwargs...}, "model": state_dict,
     "optimizer": ..., "scheduler": ..., "scaler": ..., "epoch": int, "step": int,
     "rng": {...}, "config": {...}, "dataset": {...class names, palette...},
     "metrics": {...}, "history": [...]}
so `torch.load(weights_only=True)` can read it, and a file that needs anything more (a pickled
object, possibly malicious) is refused.
"""
from __future__ import annotations

import pickle
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.errors import UserError
from training.models import build_model
from training.models.shapes import reshape_to_record

FORMAT_VERSION = 1


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": _numpy_state_to_plain(),
             "python": _python_state_to_plain()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal.tolist()), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state_to_plain():
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]


def _python_state_to_plain():
    version, internal, gauss = random.getstate()
    return [version, torch.tensor(internal, dtype=torch.int64), gauss]


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with weights_only=True; every failure becomes one clear UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since 1.6
        raise UserError(f"cannot read checkpoint {path}: corrupt or truncated, or not a "
                        f"checkpoint at all")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (it refers to {found.group(1)})" if found else ""
        raise UserError(f"refusing checkpoint {path}: loading it needs arbitrary pickle, which "
                        f"could run code{what}; a checkpoint of this project holds only "
                        f"tensors and plain values") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"cannot read checkpoint {path}: corrupt or truncated "
                        f"({exc.__class__.__name__})") from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise UserError(f"{path} is not a training checkpoint of this project (no 'model')")
    if "arch" not in checkpoint:
        raise UserError(f"{path} does not record its architecture ('arch'); it was not written "
                        f"by this project's training code")
    if checkpoint.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise UserError(f"checkpoint {path} has format {checkpoint['format']!r}; this version "
                        f"of segkit reads format {FORMAT_VERSION} only")
    _check_finite(checkpoint["model"], path)
    return checkpoint


def _check_finite(weights, path: Path) -> None:
    """Refuse NaN or Inf weights (a run that diverged, or a damaged file) before any tool
    trains on, converts or measures them."""
    if not isinstance(weights, dict):
        raise UserError(f"{path}: 'model' is not a state dict")
    bad = [name for name, tensor in weights.items()
           if isinstance(tensor, torch.Tensor) and tensor.is_floating_point()
           and not bool(torch.isfinite(tensor).all())]
    if bad:
        more = f" and {len(bad) - 1} more tensors" if len(bad) > 1 else ""
        raise UserError(f"checkpoint {path} has non-finite weights (NaN or Inf) in "
                        f"{bad[0]!r}{more}: training diverged or the file is damaged; use "
                        f"an earlier checkpoint")


def model_from_checkpoint(checkpoint: dict | str | Path) -> nn.Module:
    """Rebuild the recorded architecture and load its weights (eval mode)."""
    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(checkpoint)
    arch = dict(checkpoint["arch"])
    pruned = arch.pop("pruned", None)  # layer shapes of a structurally pruned model
    try:
        model = build_model(**arch)
    except TypeError as exc:
        raise UserError(f"checkpoint architecture {arch.get('name')!r} cannot be rebuilt: "
                        f"{exc}") from None
    if pruned is not None:
        model = reshape_to_record(model, pruned)
        model.arch = dict(checkpoint["arch"])
    expected, given = set(model.state_dict()), set(checkpoint["model"])
    if expected != given:
        example = sorted(expected ^ given)[0]
        raise UserError(f"checkpoint weights do not match the recorded architecture "
                        f"{arch.get('name')!r} ({len(expected - given)} missing, "
                        f"{len(given - expected)} unexpected keys, e.g. {example!r})")
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as exc:  # same keys, other shapes
        hint = "" if pruned is not None else \
            " (a pruned model's checkpoint must record its layer shapes in arch['pruned'])"
        raise UserError(f"checkpoint weights do not match the recorded architecture "
                        f"{arch.get('name')!r}: {str(exc).strip().splitlines()[-1][:200]}"
                        f"{hint}") from None
    return model.eval()


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP / torch.compile wrappers (what gets saved)."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def dataset_record(spec) -> dict:
    """What a checkpoint keeps of its dataset: enough to label, colour and evaluate outputs."""
    return {"spec": getattr(spec, "text", None) or getattr(spec, "spec", None) or spec.name,
            "name": spec.name, "class_names": list(spec.class_names),
            "palette": [list(map(int, colour)) for colour in spec.palette],
            "ignore_index": int(spec.ignore_index), "num_classes": int(spec.num_classes)}


def make_checkpoint(model: nn.Module, dataset: dict, config: dict, **training_state) -> dict:
    """Assemble the checkpoint dict for `model` (unwrapped) plus optional training state
    (optimizer, scheduler, scaler, epoch, step, rng, metrics, history)."""
    model = unwrap(model)
    return {"format": FORMAT_VERSION, "arch": dict(model.arch), "model": model.state_dict(),
            "dataset": dataset, "config": config, **training_state}


def check_classes(what: str, record: dict, dataset: dict) -> None:
    """Refuse a checkpoint (teacher, resumed run, model to evaluate or export) whose classes
    are not the dataset's: its IoUs would be nonsense. `record` and `dataset` are
    `dataset_record` dicts; the message names the first class that differs."""
    names, wanted = list(record.get("class_names") or []), list(dataset["class_names"])
    count = int(record.get("num_classes", len(names)))
    trained_on = record.get("spec") or record.get("name") or "an unrecorded dataset"
    if count != len(wanted):
        raise UserError(f"{what} predicts {count} classes (trained on {trained_on}) but the "
                        f"dataset {dataset.get('spec') or dataset.get('name')!r} has "
                        f"{len(wanted)}; use it with its own dataset")
    if names and names != wanted:
        index = next(i for i, (a, b) in enumerate(zip(names, wanted)) if a != b)
        raise UserError(f"{what} (trained on {trained_on}) and the dataset "
                        f"{dataset.get('spec') or dataset.get('name')!r} name class {index} "
                        f"differently: {names[index]!r} vs {wanted[index]!r}")


@dataclass(frozen=True)
class Context:
    """What every tool reads from a checkpoint besides its weights, in one place."""

    dataset: str  # the dataset spec it was trained on
    input_size: tuple[int, int]  # its training input size (or the caller's override)
    batch_size: int
    class_names: list[str]
    ignore_index: int


def context(checkpoint: dict, path: str | Path = "the checkpoint",
            input_size=None) -> Context:
    """The checkpoint's dataset spec, input size and batch size. There is no silent fallback:
    a checkpoint that records no input size needs `input_size` (the tools' --input-size)."""
    config, record = checkpoint.get("config") or {}, checkpoint.get("dataset") or {}
    if not record.get("spec") or "class_names" not in record:
        raise UserError(f"{path} records no dataset; it was not written by this project's "
                        f"training code")
    size = input_size or config.get("input_size")
    if not size:
        raise UserError(f"{path} records no input_size; pass --input-size H W")
    return Context(dataset=record["spec"], input_size=(int(size[0]), int(size[1])),
                   batch_size=int(config.get("batch_size", 8)),
                   class_names=list(record["class_names"]),
                   ignore_index=int(record.get("ignore_index", 255)))
