"""Int8 quantization on the PyTorch side: static PTQ simulation and quantization-aware training.

Why a simulation beside PT2E (training/compression/pt2e.py, torchao): PT2E's quantizers model a
backend (X86: uint8 activations; XNNPACK's quantizer moved to executorch), and the converted graph
does not reach TFLite. What ships is the TFLite model that `conversion.export` quantizes
itself (onnx2tf's calibration, full int8), so QAT must train against *that* rounding.

So this module simulates *that* int8 model inside the float model, with fake quantization:
  - weights: symmetric per-output-channel int8 in [-127, 127], scale max|w|/127, which is
    TFLite's weight scheme. Folding a BN into the conv multiplies each output channel by one
    scalar, and a per-channel symmetric grid scales with it, so quantizing the unfolded weight
    gives the same grid as quantizing the folded one.
  - activations: per-tensor affine int8 at the tensors TFLite materialises (after each
    activation, after a BN that no activation follows, the logits), ranges from moving-average
    min/max observers. Functional adds (residuals) are not observed: a small, stated gap.
The simulation lives in hooks and instance attributes, never in the state dict, so the same
model trains in the normal loop, saves normal checkpoints and exports unchanged.

PTQ: `attach` + `calibrate` on a few batches -> the int8 model's accuracy, measured in PyTorch.
QAT: `attach` then fine-tune (with distillation) through `training.train.run`; the
straight-through estimator lets the weights learn to sit well on the int8 grid. `detach` then
gives a plain fp32 model whose checkpoint `conversion.export --target tflite` turns into int8
TFLite by its own PTQ: the QAT-trained weights are what makes that PTQ lose less.
"""
from __future__ import annotations

import types

import torch
from torch import nn
from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver
from torchvision.models.resnet import BasicBlock, Bottleneck

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish)


def fake_quant_weight(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8 (TFLite's scheme), straight-through gradient."""
    flat = weight.detach().abs().flatten(1).amax(1)
    scale = (flat / 127).clamp_min(1e-12).float()
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -127, 127)


def _quantized_conv_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return self._conv_forward(x, fake_quant_weight(self.weight), self.bias)


def _activation_quantizer() -> FakeQuantize:
    return FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127,
                        dtype=torch.qint8, qscheme=torch.per_tensor_affine)


def observed_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules whose output TFLite stores as an int8 tensor (conv+BN+act fuse into one op)."""
    fused = set()
    for container in model.modules():
        children = list(container.children())
        for first, second in zip(children, children[1:]):
            if isinstance(first, nn.BatchNorm2d) and isinstance(second, ACTIVATIONS):
                fused.add(id(first))
    for block in model.modules():  # ResNet blocks apply their ReLU outside any Sequential
        if isinstance(block, (BasicBlock, Bottleneck)):
            fused.add(id(block.bn1))
            if isinstance(block, Bottleneck):
                fused.add(id(block.bn2))
    heads = [model.classifier[-1]]
    return [(name, m) for name, m in model.named_modules()
            if (isinstance(m, ACTIVATIONS) or (isinstance(m, nn.BatchNorm2d) and id(m) not in fused)
                or any(m is head for head in heads))]


class QuantSim:
    """Handle on the fake quantization attached to a model; `detach()` removes all of it."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.quantizers: dict[str, FakeQuantize] = {}
        self._handles = []
        self._convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        for conv in self._convs:
            conv.forward = types.MethodType(_quantized_conv_forward, conv)
        input_quantizer = _activation_quantizer()
        self.quantizers["input"] = input_quantizer
        self._handles.append(model.register_forward_pre_hook(
            lambda module, args: (self._apply(input_quantizer, module, args[0]), *args[1:])))
        for name, module in observed_modules(model):
            quantizer = _activation_quantizer()
            self.quantizers[name] = quantizer
            self._handles.append(module.register_forward_hook(
                lambda module, args, out, q=quantizer: self._apply(q, module, out)))

    def _apply(self, quantizer: FakeQuantize, module: nn.Module, x: torch.Tensor):
        # Observe while training (QAT) or calibrating; frozen ranges otherwise.
        quantizer.to(x.device)
        quantizer.observer_enabled[0] = int(self.calibrating or module.training)
        return quantizer(x)

    calibrating = False

    @torch.no_grad()
    def calibrate(self, batches) -> "QuantSim":
        """Static PTQ: record activation ranges on representative images (eval-mode BN)."""
        self.model.eval()
        self.calibrating = True
        try:
            for batch in batches:
                self.model(batch[0] if isinstance(batch, (list, tuple)) else batch)
        finally:
            self.calibrating = False
        return self

    def detach(self) -> nn.Module:
        for conv in self._convs:
            del conv.forward  # back to the class's forward
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        return self.model


def attach(model: nn.Module) -> QuantSim:
    """Fake-quantize `model` in place (weights and activations); returns the handle.

    PTQ: `attach(model).calibrate(batches)`, then evaluate. QAT: `attach(model)`, train, then
    `detach()` before saving the result for export."""
    return QuantSim(model)
