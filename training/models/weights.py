"""Backbone weights: `imagenet` through torchvision's weights API, `none`, or a local file.

This project must run offline. torchvision would try to download `imagenet` weights and hang or
fail deep inside urllib; instead we look in torchvision's cache first and, when the file is not
there and the download fails, raise one message that says which file to place where.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
from torch import nn
from torch.hub import get_dir
from torchvision.models import WeightsEnum

from training.errors import UserError

# How long to wait for the weights server before declaring ourselves offline.
_DOWNLOAD_TIMEOUT_S = 10


def _cached_file(weights: WeightsEnum) -> Path:
    return Path(get_dir()) / "checkpoints" / os.path.basename(weights.url)


def _read_state_dict(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"backbone weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise UserError(f"cannot read backbone weights {path}: {exc.__class__.__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'corrupt file'}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a training checkpoint of ours or torchvision's references
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"backbone weights {path} do not hold a state dict of tensors")
    return state


def _download_imagenet(weights: WeightsEnum) -> Path:
    target = _cached_file(weights)
    if target.is_file():
        return target
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(weights.url, str(target), progress=True)
    except Exception as exc:
        raise UserError(
            f"cannot download ImageNet weights ({exc.__class__.__name__}); offline? Place "
            f"{target.name} in {target.parent} (set $TORCH_HOME to move that folder), pass "
            f"--backbone-weights PATH to a local file, or use --backbone-weights none") from None
    finally:
        socket.setdefaulttimeout(previous)
    return target


def load_backbone_weights(net: nn.Module, spec: str, imagenet: WeightsEnum) -> None:
    """Fill a torchvision classification network from `spec` (imagenet | none | PATH).

    The classifier layers (`fc.*`, `classifier.*`) are not needed by a segmentation backbone
    and are skipped; every other tensor must match exactly, so a file for the wrong
    architecture is refused instead of half-loaded.
    """
    if spec in (None, "", "none"):
        return
    path = _download_imagenet(imagenet) if spec == "imagenet" else Path(spec).expanduser()
    state = _read_state_dict(path)
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    head_prefixes = ("fc.", "classifier.")
    wanted = {k for k in net.state_dict() if not k.startswith(head_prefixes)}
    given = {k: v for k, v in state.items() if not k.startswith(head_prefixes)}
    missing, unexpected = wanted - given.keys(), given.keys() - wanted
    if missing or unexpected:
        example = sorted(missing or unexpected)[0]
        raise UserError(f"backbone weights {path} do not fit this backbone "
                        f"({len(missing)} missing, {len(unexpected)} unexpected keys, "
                        f"e.g. {example!r})")
    try:
        net.load_state_dict(given, strict=False)
    except RuntimeError as exc:
        raise UserError(f"backbone weights {path} have wrong shapes: "
                        f"{str(exc).splitlines()[-1].strip()}") from None
