"""Backbones with a configurable output stride.

DeepLab needs an output stride of 8 or 16. ResNet-50 gets it from torchvision itself
(`replace_stride_with_dilation`); torchvision's BasicBlock refuses dilation (ResNet-18) and its
MobileNetV2 has no dilation option, so for those we build the plain torchvision network and
trade the late strides for dilation the same way: the block that would have downsampled keeps
the previous rate and loses its stride; every later 3x3 convolution in that stage gets the
multiplied rate. Weight shapes do not change, so ImageNet weights still load.

The features are read by small modules of our own (`_ResNetFeatures`, `_MobileNetFeatures`)
that keep torchvision's layer names, so checkpoints stay plain state dicts of eager modules.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torchvision import models

from training.models.weights import load_backbone_weights


@dataclass(frozen=True)
class Backbone:
    """A feature extractor returning {"out": deepest features, "aux": an earlier stage}."""

    body: nn.Module
    out_channels: int
    aux_channels: int


def _set_conv_rate(conv: nn.Conv2d, stride: int, dilation: int) -> None:
    """Re-rate a 3x3 convolution in place; padding follows so the size rule stays 'same'."""
    conv.stride = (stride, stride)
    conv.dilation = (dilation, dilation)
    conv.padding = (dilation, dilation)


def _dilate_stage(convs_per_block: list[list[nn.Conv2d]], downsamples: list[nn.Module],
                  previous_rate: int, rate: int) -> None:
    """Remove a stage's stride and dilate it.

    convs_per_block: the 3x3 convolutions of each block, in order; downsamples: the strided
    1x1 shortcut convolutions of the stage (if any), whose stride also has to go.
    """
    for block_index, convs in enumerate(convs_per_block):
        for conv in convs:
            first = block_index == 0
            _set_conv_rate(conv, stride=1, dilation=previous_rate if first else rate)
    for shortcut in downsamples:
        shortcut.stride = (1, 1)


def _resnet_stage_convs(stage: nn.Sequential) -> tuple[list[list[nn.Conv2d]], list[nn.Module]]:
    convs, shortcuts = [], []
    for block in stage:
        convs.append([m for m in block.modules()
                      if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)])
        if block.downsample is not None:
            shortcuts.append(block.downsample[0])
    return convs, shortcuts


class _ResNetFeatures(nn.ModuleDict):
    """ResNet's stem and stages (no pooling head), returning layer4 as "out", layer3 as "aux"."""

    def __init__(self, net: models.ResNet):
        super().__init__({name: module for name, module in net.named_children()
                          if name not in ("avgpool", "fc")})

    def forward(self, x):
        aux = None
        for name, module in self.items():
            x = module(x)
            if name == "layer3":
                aux = x
        return {"out": x, "aux": aux}


def resnet(depth: int, output_stride: int, weights: str) -> Backbone:
    """ResNet-18 or ResNet-50 with layer4 (OS16) or layer3+layer4 (OS8) dilated."""
    dilate = [False, False, True] if output_stride == 16 else [False, True, True]
    if depth == 50:
        net = models.resnet50(weights=None, replace_stride_with_dilation=dilate)
        load_backbone_weights(net, weights, models.ResNet50_Weights.IMAGENET1K_V2)
    else:  # BasicBlock: dilate by hand, with torchvision's rule
        net = models.resnet18(weights=None)
        load_backbone_weights(net, weights, models.ResNet18_Weights.IMAGENET1K_V1)
        rate = 1
        for name, dilated in zip(("layer2", "layer3", "layer4"), dilate):
            if dilated:
                previous_rate, rate = rate, rate * 2
                _dilate_stage(*_resnet_stage_convs(getattr(net, name)), previous_rate, rate)
    channels = net.fc.in_features
    return Backbone(body=_ResNetFeatures(net), out_channels=channels,
                    aux_channels=channels // 2)


class _MobileNetFeatures(nn.Module):
    """MobileNetV2's inverted-residual trunk, returning the deepest and the OS8-OS16 features."""

    def __init__(self, features: nn.Sequential, aux_index: int):
        super().__init__()
        self.features = features
        self.aux_index = aux_index

    def forward(self, x):
        aux = x
        for index, block in enumerate(self.features):
            x = block(x)
            if index == self.aux_index:
                aux = x
        return {"out": x, "aux": aux}


def mobilenet_v2(output_stride: int, weights: str) -> Backbone:
    """MobileNetV2 without its final 1x1 conv to 1280 channels (320 channels out).

    Dropping that conv is what DeepLab's MobileNetV2 does: the ASPP that follows would
    otherwise run on 4x as many channels for no measured benefit.
    """
    net = models.mobilenet_v2(weights=None)
    load_backbone_weights(net, weights, models.MobileNet_V2_Weights.IMAGENET1K_V2)
    features = net.features[:-1]
    # features[1:] are InvertedResidual blocks; their stride-2 members start a new stage.
    stages, current = [], []
    for index in range(1, len(features)):
        block = features[index]
        if block.stride == 2 and current:
            stages.append(current)
            current = []
        current.append(index)
    stages.append(current)
    # Stage starts: OS4, OS8, OS16, OS32 -> dilate the last one (OS16) or last two (OS8).
    # MobileNetV2's stride-2 blocks sit at the start of the 16x and 32x stages; a stage is a
    # run of blocks at one resolution, so strided stages are those whose first block strides.
    strided = [s for s in stages if features[s[0]].stride == 2]
    to_dilate = strided[-1:] if output_stride == 16 else strided[-2:]
    rate = 1
    for stage in to_dilate:
        previous_rate, rate = rate, rate * 2
        depthwise = [[m for m in features[i].conv.modules()
                      if isinstance(m, nn.Conv2d) and m.groups > 1] for i in stage]
        _dilate_stage(depthwise, [], previous_rate, rate)
        for i in stage:
            features[i].stride = 1
    aux_index = to_dilate[0][0] - 1  # last block before the dilated part
    body = _MobileNetFeatures(features, aux_index)
    return Backbone(body=body, out_channels=features[-1].out_channels,
                    aux_channels=features[aux_index].out_channels)
