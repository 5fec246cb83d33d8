"""ASPP segmentation head, full or depthwise-separable.

The teacher uses torchvision's layout (ASPP width 256, dense 3x3 branches). On a light
backbone the dense head would dominate the cost (counted with torch.utils.flop_counter at
512x1024: MobileNetV2 features + a dense DeepLabHead(1280) take 16.6 GFLOPs, mostly head; see
benchmarks/results/profile_512x1024.json), so the students use depthwise-separable branches
(DeepLabv3+'s choice for MobileNet) at a narrower width; `python -m training.profile` measures
the effect.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 1, dilation: int = 1,
                 separable: bool = False) -> nn.Sequential:
    """Conv + BN + ReLU; with `separable`, a depthwise 3x3 (+BN+ReLU) then a pointwise 1x1."""
    padding = dilation * (kernel // 2)
    if separable and kernel > 1:
        return nn.Sequential(
            nn.Conv2d(in_ch, in_ch, kernel, padding=padding, dilation=dilation, groups=in_ch,
                      bias=False),
            nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class ImagePooling(nn.Module):
    """ASPP's global-context branch: pool to 1x1, project, then back to the feature size.

    The way back is a bilinear resize of the 1x1 map (torchvision's ASPPPooling), not
    `expand`: both give the same constant map, but `expand` becomes TFLite's BROADCAST_TO,
    which litert-torch's output fails to load with and which no phone GPU delegate takes,
    while RESIZE_BILINEAR runs everywhere (onnx2tf, Core ML, XNNPACK, GPU delegates).
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.project = conv_bn_relu(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.project(self.pool(x)), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


class ASPP(nn.Module):
    def __init__(self, in_ch: int, rates: tuple[int, ...], width: int, separable: bool,
                 dropout: float):
        super().__init__()
        branches = [conv_bn_relu(in_ch, width)]
        branches += [conv_bn_relu(in_ch, width, 3, rate, separable) for rate in rates]
        branches.append(ImagePooling(in_ch, width))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(conv_bn_relu(len(branches) * width, width),
                                     nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabHead(nn.Sequential):
    """ASPP -> 3x3 conv -> dropout -> 1x1 classifier, as torchvision's DeepLabHead."""

    def __init__(self, in_ch: int, num_classes: int, rates: tuple[int, ...], width: int = 256,
                 separable: bool = False, dropout: float = 0.5, classifier_dropout: float = 0.1):
        super().__init__(
            ASPP(in_ch, rates, width, separable, dropout),
            conv_bn_relu(width, width, 3, separable=separable),
            nn.Dropout(classifier_dropout),
            nn.Conv2d(width, num_classes, 1),
        )


class FCNAuxHead(nn.Sequential):
    """The auxiliary head torchvision puts on layer3 to help train deep backbones."""

    def __init__(self, in_ch: int, num_classes: int):
        mid = in_ch // 4
        super().__init__(conv_bn_relu(in_ch, mid, 3), nn.Dropout(0.1),
                         nn.Conv2d(mid, num_classes, 1))
