"""PyTorch -> ONNX (opset >= 17), and the deployable wrapper every converter starts from.

`DeployWrapper` is the one place where the optional folding happens, so that ONNX, TFLite
(which is converted from this ONNX) and CoreML fold identically:
  - fold_normalization: the model takes RGB pixel values 0..255 (times `input_scale`) and
    normalises them with training/preprocessing.py's mean and std itself;
  - fold_argmax: the model returns the class map (N, H, W) instead of logits.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from training.preprocessing import MEAN, STD

MIN_OPSET = 17
INPUT_NAME = "image"


def output_name(fold_argmax: bool) -> str:
    return "classes" if fold_argmax else "logits"


def class_map_dtype(num_classes: int) -> torch.dtype:
    """uint8 is what a mobile app wants for a class map (one byte a pixel) when it fits."""
    return torch.uint8 if num_classes <= 256 else torch.int32


class DeployWrapper(nn.Module):
    def __init__(self, model: nn.Module, *, fold_normalization: bool = False,
                 fold_argmax: bool = False, input_scale: float = 1 / 255,
                 class_dtype: torch.dtype | None = None):
        super().__init__()
        # A PT2E graph (QAT) refuses .eval(); it was exported in eval mode already.
        self.model = model if isinstance(model, torch.fx.GraphModule) else model.eval()
        self.fold_normalization = fold_normalization
        self.fold_argmax = fold_argmax
        self.class_dtype = class_dtype or class_map_dtype(getattr(model, "num_classes", 256))
        # (pixel * input_scale - mean) / std, written as one multiply-add per channel.
        std = torch.tensor(STD).view(1, 3, 1, 1)
        self.register_buffer("scale", input_scale / std, persistent=False)
        self.register_buffer("shift", -torch.tensor(MEAN).view(1, 3, 1, 1) / std,
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fold_normalization:
            x = x * self.scale + self.shift
        logits = self.model.forward(x)
        if self.fold_argmax:
            return logits.argmax(1).to(self.class_dtype)
        return logits


def example_input(input_size: tuple[int, int], fold_normalization: bool) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, *input_size, generator=generator)
    return x * 255 if fold_normalization else (x - 0.45) / 0.226


def export_onnx(wrapper: DeployWrapper, path: Path, input_size: tuple[int, int],
                opset: int = MIN_OPSET) -> Path:
    """Trace `wrapper` to ONNX with a static 1x3xHxW input and check the result fully."""
    if opset < MIN_OPSET:
        raise ValueError(f"ONNX opset must be >= {MIN_OPSET}, got {opset}")
    path = Path(path)
    x = example_input(input_size, wrapper.fold_normalization)
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript (not a dependency); for a static-shape CNN both give the same graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (x,), str(path), input_names=[INPUT_NAME],
                          output_names=[output_name(wrapper.fold_argmax)],
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    found = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if found < MIN_OPSET:
        raise RuntimeError(f"exported ONNX has opset {found} < {MIN_OPSET}")
    return path
