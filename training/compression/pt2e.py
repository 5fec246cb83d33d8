"""Static int8 PTQ in PyTorch through PT2E, the maintained path for torch 2.14 (torchao).

torch 2.14 dropped `torch.ao.quantization.quantize_pt2e`; the same flow now lives in torchao:
    torch.export -> prepare_pt2e(quantizer) -> calibrate -> convert_pt2e
The quantizer is torchao's X86InductorQuantizer: static, per-output-channel symmetric int8
weights, per-tensor affine uint8 activations, conv+BN folded. (The XNNPACK quantizer that
mobile targets use moved to executorch, which is not installable offline here.)

What this measures: the int8 accuracy of the PyTorch model, with real quantize/dequantize
ops in the graph. What ships is still the TFLite model that `conversion.export` quantizes
with its own calibration; `training/compression/quantization.py` simulates *that* scheme
(int8 activations, TFLite's op boundaries), and its QAT is what trains weights for it. Both numbers are reported.
"""
from __future__ import annotations

import copy
import logging
from typing import Iterable

import torch
from torch import nn

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
