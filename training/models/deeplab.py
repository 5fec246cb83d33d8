"""DeepLabv3: a backbone plus an ASPP head, composed as in torchvision's segmentation models."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.models.aspp import DeepLabHead, FCNAuxHead
from training.models.backbones import Backbone


def aspp_rates(output_stride: int) -> tuple[int, ...]:
    """DeepLabv3's rates (6, 12, 18) at OS16, doubled at OS8 so they cover the same field."""
    return tuple(rate * 16 // output_stride for rate in (6, 12, 18))


class DeepLabV3(nn.Module):
    """`forward` returns logits at input resolution as one plain tensor (what exporters want).

    Training code that needs more (the aux logits, or the stride-`output_stride` logits for
    distillation) calls `forward_all`, or `model(x, all_outputs=True)`
    when the model is wrapped (DDP only synchronises gradients through its own forward).
    """

    def __init__(self, backbone: Backbone, num_classes: int, output_stride: int,
                 aspp_width: int, separable: bool, dropout: float, aux_loss: bool):
        super().__init__()
        self.backbone = backbone.body
        self.classifier = DeepLabHead(backbone.out_channels, num_classes,
                                      aspp_rates(output_stride), aspp_width, separable, dropout)
        self.aux_classifier = FCNAuxHead(backbone.aux_channels, num_classes) if aux_loss else None
        self.output_stride = output_stride
        self.num_classes = num_classes

    def forward_all(self, x: torch.Tensor, upsample: bool = True) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        features = self.backbone(x)
        logits = self.classifier(features["out"])
        result = {"logits_lowres": logits}
        resize = (lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=False)) \
            if upsample else (lambda t: t)
        result["out"] = resize(logits)
        if self.aux_classifier is not None:
            result["aux"] = resize(self.aux_classifier(features["aux"]))
        return result

    def forward(self, x: torch.Tensor, all_outputs: bool = False):
        if all_outputs:  # how training reaches forward_all through a DDP wrapper
            return self.forward_all(x)
        logits = self.classifier(self.backbone(x)["out"])
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
