"""Pruning: structured (whole channels, torch-pruning's DepGraph) and unstructured (weights).

Structured pruning removes output channels of convolutions together with everything coupled
to them (BN, the next layer's inputs, both sides of a residual add, the slices of a concat), so
the result is a smaller *dense* model whose FLOPs, parameters and latency really drop. The
channels to remove are ranked by an importance criterion (l1, l2, taylor, bn_scale, random).
The classifiers' output channels (the classes) are never pruned.

Unstructured pruning zeroes individual weights by magnitude (torch.nn.utils.prune) to an exact
sparsity and makes it permanent. The tensors keep their shape: dense kernels run no faster and
the file shrinks only when compressed (zip/gzip of the checkpoint or the app bundle).

A pruned model records its new layer shapes in `model.arch["pruned"]`
({module name: [in_channels, out_channels, groups]} for convolutions, [num_features] for batch
norms), so `training.checkpoint.model_from_checkpoint` can rebuild it with
`training.models.shapes.reshape_to_record`.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as torch_prune

from training.errors import UserError
from training.models.shapes import layer_shapes

METHODS = ("structured", "unstructured")
IMPORTANCES = ("l1", "l2", "taylor", "bn_scale", "random")


def validate(method: str, importance: str, ratio: float) -> None:
    if method not in METHODS:
        raise UserError(f"unknown pruning method {method!r}; choose one of: {', '.join(METHODS)}")
    if importance not in IMPORTANCES:
        raise UserError(f"unknown importance criterion {importance!r}; choose one of: "
                        f"{', '.join(IMPORTANCES)}")
    if not 0 < float(ratio) < 1:
        raise UserError(f"pruning ratio must be strictly between 0 and 1, got {ratio}")
    if method == "unstructured" and importance not in ("l1", "l2"):
        # Per-weight pruning ranks by |w|; l1 and l2 give the same order for single weights.
        raise UserError(f"unstructured pruning ranks weights by magnitude (l1 or l2), not "
                        f"{importance!r}")


def classifier_convs(model: nn.Module) -> list[nn.Module]:
    """The final 1x1 convolutions producing class logits (main head and aux head, if any)."""
    heads = [model.classifier] + ([model.aux_classifier]
                                  if getattr(model, "aux_classifier", None) is not None else [])
    return [head[-1] for head in heads]


def _importance(name: str):
    import torch_pruning as tp
    return {"l1": lambda: tp.importance.MagnitudeImportance(p=1),
            "l2": lambda: tp.importance.MagnitudeImportance(p=2),
            "taylor": tp.importance.TaylorImportance,
            "bn_scale": tp.importance.BNScaleImportance,
            "random": tp.importance.RandomImportance}[name]()


def _forward_all(model: nn.Module, x: torch.Tensor):
    """Trace every head: the aux head sits outside `forward` and must be coupled too."""
    outputs = model.forward_all(x)
    return [outputs["out"]] + ([outputs["aux"]] if "aux" in outputs else [])


def structured_prune(model: nn.Module, ratio: float, importance: str = "l1",
                     global_pruning: bool = False, input_size: tuple[int, int] = (64, 128),
                     batches=None, ignore_index: int = 255, round_to: int | None = None
                     ) -> nn.Module:
    """Remove `ratio` of the prunable channels in place; returns the (same, smaller) model.

    `batches` (an iterable of (image, mask) tensors) is needed for taylor importance only: the
    gradients of the segmentation loss on them rank the channels.
    """
    import torch_pruning as tp
    validate("structured", importance, ratio)
    base_arch = {k: v for k, v in model.arch.items() if k != "pruned"}
    example = torch.zeros(1, 3, *input_size)
    model.eval()
    pruner = tp.pruner.MetaPruner(model, example, importance=_importance(importance),
                                  global_pruning=global_pruning, pruning_ratio=float(ratio),
                                  ignored_layers=classifier_convs(model), round_to=round_to,
                                  forward_fn=_forward_all)
    if importance == "taylor":
        if batches is None:
            raise UserError("taylor importance needs data: the loss gradients rank channels")
        model.zero_grad()
        model.train()  # BN in train mode, as during fine-tuning; dropout does not matter here
        for image, mask in batches:
            F.cross_entropy(model(image), mask, ignore_index=ignore_index).backward()
        model.eval()
    pruner.step()
    model.zero_grad(set_to_none=True)
    model.arch = {**base_arch, "pruned": layer_shapes(model)}
    return model


def _prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    keep = set(map(id, classifier_convs(model)))
    return [(m, "weight") for m in model.modules()
            if isinstance(m, nn.Conv2d) and id(m) not in keep]


def unstructured_prune(model: nn.Module, ratio: float, importance: str = "l1",
                       global_pruning: bool = False) -> nn.Module:
    """Zero exactly round(ratio * n) conv weights (per layer, or over all layers with
    `global_pruning`), by magnitude, and make the zeros permanent. Classifiers are kept dense."""
    validate("unstructured", importance, ratio)
    targets = _prunable_weights(model)
    if global_pruning:
        torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured,
                                        amount=float(ratio))
    else:
        for module, name in targets:
            torch_prune.l1_unstructured(module, name, amount=float(ratio))
    for module, name in targets:
        torch_prune.remove(module, name)  # bake the mask into the weight, drop the hooks
    return model


def freeze_zeros(model: nn.Module) -> nn.Module:
    """Mask the gradients of zeroed conv weights so fine-tuning keeps them zero.

    With a zero gradient from the first step, (Adam)W's moments stay zero and so does the
    update, weight decay included: the sparsity survives training exactly.
    """
    for module, _ in _prunable_weights(model):
        mask = (module.weight != 0).to(module.weight.dtype)
        module.weight.register_hook(lambda grad, mask=mask: grad * mask)
    return model


def sparsity(model: nn.Module) -> float:
    """Fraction of zero weights among the convolutions unstructured pruning may touch."""
    weights = [m.weight for m, _ in _prunable_weights(model)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)


def prune(model: nn.Module, method: str, importance: str, ratio: float, **options) -> nn.Module:
    """Prune a copy of `model` (the original is left as it was)."""
    validate(method, importance, ratio)
    model = copy.deepcopy(model)
    if method == "structured":
        return structured_prune(model, ratio, importance, **options)
    options = {k: v for k, v in options.items() if k == "global_pruning"}
    return unstructured_prune(model, ratio, importance, **options)
