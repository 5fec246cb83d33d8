"""Recorded layer shapes: how a structurally pruned model is written down and rebuilt.

A pruned checkpoint's `arch["pruned"]` holds {module name: [in, out, groups]} for
convolutions and [num_features] for batch norms; `reshape_to_record` turns a freshly built
registry model into that shape before its weights are loaded.
"""
from __future__ import annotations

from torch import nn

from training.errors import UserError


def layer_shapes(model: nn.Module) -> dict[str, list[int]]:
    """Every conv's [in, out, groups] and every BN's [features]: what a rebuild must match."""
    shapes = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            shapes[name] = [module.in_channels, module.out_channels, module.groups]
        elif isinstance(module, nn.BatchNorm2d):
            shapes[name] = [module.num_features]
    return shapes


def reshape_to_record(model: nn.Module, record: dict[str, list[int]]) -> nn.Module:
    """Replace the layers of a freshly built model by ones with the recorded (pruned) shapes.

    Only shapes change; kernel size, stride, dilation, padding and bias are kept, and the
    weights are left to `load_state_dict`.
    """
    modules = dict(model.named_modules())
    for name, shape in record.items():
        old = modules.get(name)
        if isinstance(old, nn.Conv2d) and len(shape) == 3:
            new = nn.Conv2d(shape[0], shape[1], old.kernel_size, old.stride, old.padding,
                            old.dilation, shape[2], old.bias is not None, old.padding_mode)
        elif isinstance(old, nn.BatchNorm2d) and len(shape) == 1:
            new = nn.BatchNorm2d(shape[0], old.eps, old.momentum, old.affine,
                                 old.track_running_stats)
        else:
            raise UserError(f"pruned-architecture record does not fit the model: layer "
                            f"{name!r} is {type(old).__name__ if old else 'missing'}")
        parent_name, _, child = name.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, child, new)
    return model
