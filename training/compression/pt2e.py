"""Static int8 PTQ in PyTorch through PT2E, the maintained path for torch 2.14 (torchao).

torch 2.14 dropped `torch.ao.quantization.quantize_pt2e`; the same flow now lives in torchao:
    torch.export -> prepare_pt2e(quantizer) -> calibrate -> convert_pt2e
The quantizer is torchao's X86InductorQuantizer: static, per-output-channel symmetric int8
weights, per-tensor affine uint8 activations, conv+BN folded. (The XNNPACK quantizer that
mobile targets use moved to executorch, which is not installable offline here.)

What this measures: the int8 accuracy of the PyTorch model, with real quantize/dequantize
ops in the graph. What ships is still the TFLite model that `conversion.export` quantizes
with its own calibration; `training/compression/quantization.py` simulates *that* scheme
(int8 activations, TFLite's op boundaries), and its QAT is what trains weights for it. Both
numbers are reported. `qat_program` is PT2E's own QAT, with litert-torch's quantizer: what
litert-torch converts to int8 TFLite with the learned ranges.
"""
from __future__ import annotations

import copy
import logging
from typing import Iterable

import torch
from torch import nn

from training.compression import require_litert_torch

# torchao 0.18 registers an Enum with torch's pytree at import, which logs a deprecation
# warning on every run; it concerns torchao's code, not ours.
_pytree_log = logging.getLogger("torch.utils._pytree")
_level = _pytree_log.level
_pytree_log.setLevel(logging.ERROR)
try:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
except ImportError as exc:  # pragma: no cover - torchao is a pinned dependency
    raise ImportError("PT2E quantization needs torchao (pip install torchao==0.18.0)") from exc
finally:
    _pytree_log.setLevel(_level)


class QuantizedGraph(nn.Module):
    """A converted PT2E graph behind the usual nn.Module face.

    Exported graphs refuse `.train()/.eval()`: mode-dependent ops (BN, dropout) were baked in
    when the model was exported in eval mode. Evaluation code calls `.eval()`, so mode
    switches are accepted and ignored here.
    """

    def __init__(self, graph: nn.Module, arch: dict, batch_size: int):
        super().__init__()
        self.graph, self.batch_size = graph, batch_size
        self.arch = dict(arch, quantized="pt2e-x86-int8")

    def train(self, mode: bool = True) -> "QuantizedGraph":
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return run_padded(self.graph, images, self.batch_size)


def quantize_static(model: nn.Module, calibration: Iterable[torch.Tensor],
                    example: torch.Tensor) -> QuantizedGraph:
    """Static PTQ: export `model` (a copy, in eval mode) at `example`'s shape, observe
    activation ranges on `calibration` batches, convert to int8 quantize/dequantize ops.

    The graph is specialised to `example`'s batch size and resolution; other batch sizes are
    chunked and padded (`run_padded`).
    """
    float_model = copy.deepcopy(model).eval()
    graph = torch.export.export(float_model, (example,)).module()
    quantizer = x86.X86InductorQuantizer().set_global(
        x86.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(graph, quantizer)
    seen = 0
    with torch.no_grad():
        for batch in calibration:  # image tensors, or (images, masks, ...) from a loader
            images = batch[0] if isinstance(batch, (list, tuple)) else batch
            run_padded(prepared, images, example.shape[0])
            seen += 1
    if seen == 0:
        raise ValueError("PT2E calibration got no batches")
    converted = convert_pt2e(prepared)
    return QuantizedGraph(converted, getattr(model, "arch", {}), example.shape[0])


def run_padded(graph: nn.Module, batch: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Run a fixed-batch exported graph on any batch: chunk, pad the last chunk, trim."""
    outputs = []
    for chunk in batch.split(batch_size):
        missing = batch_size - chunk.shape[0]
        padded = torch.cat([chunk, chunk[:1].expand(missing, *chunk.shape[1:])]) \
            if missing else chunk
        outputs.append(graph(padded)[:chunk.shape[0]])
    return torch.cat(outputs)


def qat_program(model: nn.Module, train_loader, epochs: int, lr: float,
                weight_decay: float = 1e-4, teacher: nn.Module | None = None,
                alpha: float = 0.5, temperature: float = 2.0, ignore_index: int = 255):
    """PT2E quantization-aware training with litert-torch's quantizer; returns the converted
    (int8 quantize/dequantize) model as a torch.export program at batch 1, ready for
    `litert_torch.convert` with no calibration: the activation ranges are the ones learned.

    The graph is exported in train mode with a dynamic batch, `prepare_qat_pt2e` inserts
    fake quantization (conv+BN folding simulated), then AdamW fine-tunes it on cross-entropy
    (plus pixel KL from `teacher` at `temperature`, weighted `alpha`, when given).
    """
    import torch.nn.functional as F
    from torchao.quantization.pt2e import move_exported_model_to_eval, \
        move_exported_model_to_train
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
    from tqdm import tqdm

    from training.engine import build_optimizer
    from training.tasks import pixel_kl_divergence
    quantizer = litert_quantizer(qat=True)
    images, _ = next(iter(train_loader))
    batch = torch.export.Dim("batch", min=1, max=1024)
    graph = torch.export.export(copy.deepcopy(model).train(), (images,),
                                dynamic_shapes=({0: batch},)).module()
    graph = prepare_qat_pt2e(graph, quantizer)
    move_exported_model_to_train(graph)
    optimizer = build_optimizer(graph, lr, weight_decay)
    steps = epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / max(steps, 1))
    with tqdm(total=steps, desc="PT2E QAT", unit="batch") as bar:
        for _ in range(epochs):
            for images, masks in train_loader:
                logits = graph(images)
                loss = F.cross_entropy(logits, masks, ignore_index=ignore_index)
                if teacher is not None:
                    with torch.no_grad():
                        soft = teacher(images)
                    loss = alpha * pixel_kl_divergence(logits, soft, temperature,
                                                       masks != ignore_index) + \
                        (1 - alpha) * loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    move_exported_model_to_eval(graph)
    converted = convert_pt2e(graph, fold_quantize=False)
    return torch.export.export(converted, (images[:1],))


def litert_quantizer(qat: bool = False):
    """litert-torch's PT2E quantizer: per-channel symmetric int8 weights, int8 activations
    (what its TFLite converter turns into int8 kernels)."""
    require_litert_torch()
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, \
        get_symmetric_quantization_config
    if qat:
        _conv_bn_patterns_as_modules()
    return PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True,
                                                                        is_qat=qat))


def _conv_bn_patterns_as_modules() -> None:
    """litert-torch 0.10.0's QAT conv+BN annotator hands torchao 0.18's pattern exporter a plain
    function, which torch 2.14's torch.export refuses ("Expected `mod` to be an instance of
    `torch.nn.Module`"). torchao's own annotators wrap their patterns in its WrapperModule
    first; this does the same for litert-torch's, once per process."""
    from litert_torch.quantize import pt2e_quantizer_utils as annotators
    from torchao.quantization.pt2e.export_utils import WrapperModule
    export_pattern = annotators._get_aten_graph_module_for_pattern
    if getattr(export_pattern, "wraps_plain_functions", False):
        return

    def as_module(pattern, *args, **kwargs):
        module = pattern if isinstance(pattern, nn.Module) else WrapperModule(pattern)
        return export_pattern(module, *args, **kwargs)
    as_module.wraps_plain_functions = True
    annotators._get_aten_graph_module_for_pattern = as_module


def load_program(path, **belongs_to) -> torch.export.ExportedProgram:
    """A saved PT2E program, inspected before anything in it is loaded
    (`training.compression.programs`); `belongs_to`: checkpoint, input_size, num_classes."""
    from training.compression.programs import load_program as load_inspected
    return load_inspected(path, **belongs_to)


class OneByOne(nn.Module):
    """An exported batch-1 program's module run image by image, for larger batches (the
    evaluation loop's, conversion.export's held-out frames)."""

    def __init__(self, graph, num_classes: int | None = None):
        super().__init__()
        self.graph, self.num_classes = graph, num_classes

    def train(self, mode: bool = True):
        return self  # the graph was exported in eval mode and refuses mode switches

    def forward(self, images):
        return torch.cat([self.graph(image[None]) for image in images])
