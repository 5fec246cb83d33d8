"""Model zoo: the DeepLabv3 ResNet-50 teacher and the two DeepLabv3-Lite students.

    model = build_model("deeplabv3lite_mobilenetv2", num_classes=19)

Every model records how it was built in `model.arch` (name + keyword arguments), which
checkpoints store so that `build_model(**arch)` rebuilds the exact network.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

from torch import nn

from training.errors import UserError
from training.models import backbones
from training.models.deeplab import DeepLabV3, aspp_rates

_REGISTRY: dict[str, Callable[..., DeepLabV3]] = {}

TEACHER = "deeplabv3_resnet50"
STUDENTS = ("deeplabv3lite_resnet18", "deeplabv3lite_mobilenetv2")


def register(builder: Callable[..., DeepLabV3]) -> Callable[..., DeepLabV3]:
    _REGISTRY[builder.__name__] = builder
    return builder


def list_models() -> list[str]:
    return list(_REGISTRY)


def _create(backbone: Callable, *, num_classes: int, output_stride: int = 16,
            backbone_weights: str = "none", aspp_width: int, separable: bool,
            dropout: float = 0.5, aux_loss: bool = False) -> DeepLabV3:
    return DeepLabV3(backbone(output_stride, backbone_weights), num_classes, output_stride,
                     aspp_width, separable, dropout, aux_loss)


@register
def deeplabv3_resnet50(**kwargs) -> DeepLabV3:
    """The teacher: torchvision's layout, a dense ASPP of width 256."""
    return _create(partial(backbones.resnet, 50), **{"aspp_width": 256, "separable": False,
                                                     **kwargs})


@register
def deeplabv3lite_resnet18(**kwargs) -> DeepLabV3:
    """A student: depthwise-separable ASPP of width 128 on a dilated ResNet-18."""
    return _create(partial(backbones.resnet, 18), **{"aspp_width": 128, "separable": True,
                                                     **kwargs})


@register
def deeplabv3lite_mobilenetv2(**kwargs) -> DeepLabV3:
    """A student: depthwise-separable ASPP of width 128 on a dilated MobileNetV2 (320 ch)."""
    return _create(backbones.mobilenet_v2, **{"aspp_width": 128, "separable": True, **kwargs})


def validate_input_size(size: tuple[int, int] | list[int], output_stride: int) -> None:
    """Refuse sizes the network would silently crop or misalign."""
    if len(size) != 2 or any(int(s) <= 0 for s in size):
        raise UserError(f"input size must be two positive integers H W, got {list(size)}")
    if any(int(s) % output_stride for s in size):
        raise UserError(f"input size {size[0]}x{size[1]} is not divisible by the output stride "
                        f"{output_stride}; use multiples of {output_stride}")


def build_model(name: str, *, num_classes: int, output_stride: int = 16,
                **kwargs) -> DeepLabV3:
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(_REGISTRY)}")
    if output_stride not in (8, 16):
        raise UserError(f"output stride must be 8 or 16, got {output_stride}")
    if int(num_classes) < 2:
        raise UserError(f"num_classes must be at least 2, got {num_classes}")
    model = _REGISTRY[name](num_classes=int(num_classes), output_stride=output_stride, **kwargs)
    # Weights are loaded once at build time; a rebuild from `arch` should not fetch them again.
    recorded = {k: v for k, v in kwargs.items() if k != "backbone_weights"}
    model.arch = {"name": name, "num_classes": int(num_classes),
                  "output_stride": output_stride, **recorded}
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["DeepLabV3", "TEACHER", "STUDENTS", "aspp_rates", "build_model", "count_parameters",
           "list_models", "register", "validate_input_size"]
