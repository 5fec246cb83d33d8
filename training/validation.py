"""The evaluation loop the trainer validates with every epoch: metrics only.

    metrics = evaluate_model(model, loader, num_classes, ignore_index)

Kept apart from training.evaluation (whole checkpoints into the paper's report: profiling,
plots, matplotlib) so that the training loop imports nothing it does not run.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm

from training.metrics import SegmentationMetrics


@torch.inference_mode()
def evaluate_model(model: nn.Module, loader: Iterable, num_classes: int, ignore_index: int = 255,
                   device: str | torch.device = "cpu", autocast_dtype: torch.dtype | None = None,
                   on_batch: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]
                   | None = None,
                   progress: bool = True, description: str = "eval") -> dict:
    """Run `model` over (image, mask) batches and return `SegmentationMetrics.compute()`.

    on_batch(images, masks, predictions) lets callers collect samples for plots without a
    second pass over the data. A batch of None (every sample of it corrupt and skipped, see
    training.data.SkipCorruptSamples) is passed over.
    """
    model.eval()
    metrics = SegmentationMetrics(num_classes, ignore_index)
    device = torch.device(device)
    for batch in tqdm(loader, desc=description, unit="batch", disable=not progress,
                      leave=False):
        if batch is None:
            continue
        images, masks = batch[0], batch[1]
        images = images.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            logits = model(images)
        predictions = logits.argmax(1)
        metrics.update(predictions, masks)
        if on_batch is not None:
            on_batch(images.cpu(), masks, predictions.cpu())
    return metrics.compute()
