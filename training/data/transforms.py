"""Joint augmentation of image, mask and any per-pixel extras (torchvision.transforms.v2).

All inputs go through one v2 pipeline together, so they share every random draw: the
mask (and, later, cached teacher logits) stays aligned with the image. v2 dispatches on
tv_tensor types: `Image` is interpolated bilinearly and colour-jittered, `Mask` is
resampled nearest-neighbour and padded with the ignore index, and `DenseTarget` (float
extras such as logits) follows the mask's geometry but is padded with zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from training.preprocessing import IGNORE_INDEX, MEAN, STD


class DenseTarget(tv_tensors.Mask):
    """A per-pixel extra (e.g. C x H x W teacher logits): moves like a mask, pads with 0, no colour.

    Points padded in by crop or rotation carry ignore in the mask; losses on extras should
    skip those pixels, since 0 is only a placeholder.
    """


def _fill() -> dict:
    # A fresh dict per transform: v2 converts the values in place.
    return {tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX, DenseTarget: 0}


class RandomScale(v2.Transform):
    """Resize so the frame just covers `size`, times a random factor in `scale_range`.

    At factor 1 the crop that follows takes a full-height or full-width window; below 1 it
    pads (with ignore), above 1 it zooms in. Relative to the training size, so the same
    recipe works for 360x480 CamVid frames and 1024x2048 Cityscapes ones.
    """

    def __init__(self, size: Sequence[int], scale_range: tuple[float, float] = (0.5, 2.0)):
        super().__init__()
        self.size = (int(size[0]), int(size[1]))
        self.scale_range = scale_range

    def make_params(self, flat_inputs: list) -> dict:
        height, width = v2.query_size(flat_inputs)
        low, high = self.scale_range
        factor = float(torch.empty(1).uniform_(low, high))
        ratio = max(self.size[0] / height, self.size[1] / width) * factor
        return {"size": [max(1, round(height * ratio)), max(1, round(width * ratio))]}

    def transform(self, inpt, params: dict):
        return self._call_kernel(
            F.resize,
            inpt,
            params["size"],
            interpolation=v2.InterpolationMode.BILINEAR,
            antialias=True,
        )


class JointTransform:
    """Calls one v2 pipeline on (image, mask, *extras) and returns them as a tuple.

    Plain tensors are wrapped: the first as Image, the second as Mask, the rest as DenseTarget.
    """

    def __init__(self, steps: Sequence[v2.Transform]):
        self.pipeline = v2.Compose(list(steps))

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, *extras: torch.Tensor) -> tuple:
        image = image if isinstance(image, tv_tensors.Image) else tv_tensors.Image(image)
        mask = mask if isinstance(mask, tv_tensors.Mask) else tv_tensors.Mask(mask)
        extras = tuple(
            e if isinstance(e, tv_tensors.TVTensor) else self.wrap_extra(e) for e in extras
        )
        return tuple(self.pipeline(image, mask, *extras))

    @staticmethod
    def wrap_extra(tensor: torch.Tensor) -> DenseTarget:
        """Mark a per-pixel float tensor (e.g. C x H x W logits) to follow the geometry."""
        return DenseTarget(tensor)

    def __repr__(self) -> str:
        return f"JointTransform({self.pipeline})"


def _to_model_input() -> list[v2.Transform]:
    """uint8 image to float normalised with the one set of constants; mask to int64."""
    return [
        v2.ToDtype(
            {tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None},
            scale=True,
        ),
        v2.Normalize(mean=list(MEAN), std=list(STD)),
    ]


def train_transforms(
    size: Sequence[int],
    scale_range: tuple[float, float] = (0.5, 2.0),
    rotation_deg: float = 10.0,
    hflip: bool = True,
    vflip: bool = False,
    jitter: tuple[float, float, float] = (0.3, 0.3, 0.3),
) -> JointTransform:
    """The paper's training augmentation. Output: image float (3, H, W), mask int64 (H, W).

    Random scale, then a random crop of exactly `size` (padded with ignore where the scaled
    frame is smaller), which is also the resize to the training size; random rotation with
    ignore in the uncovered corners; flips; brightness/contrast/saturation jitter.
    """
    size = (int(size[0]), int(size[1]))
    steps: list[v2.Transform] = [
        RandomScale(size, scale_range),
        v2.RandomCrop(size, pad_if_needed=True, fill=_fill()),
    ]
    if rotation_deg:
        steps.append(
            v2.RandomRotation(
                rotation_deg, interpolation=v2.InterpolationMode.BILINEAR, fill=_fill()
            )
        )
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if vflip:
        steps.append(v2.RandomVerticalFlip())
    brightness, contrast, saturation = jitter
    if brightness or contrast or saturation:
        steps.append(
            v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation)
        )
    return JointTransform(steps + _to_model_input())


def eval_transforms(size: Sequence[int] | None = None) -> JointTransform:
    """Resize only (mask nearest-neighbour), then the same conversion as training."""
    steps: list[v2.Transform] = (
        [] if size is None else [v2.Resize((int(size[0]), int(size[1])), antialias=True)]
    )
    return JointTransform(steps + _to_model_input())


def resize_frames(frames: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """uint8 (N, H, W, 3) frames at `size` (H, W), resized as `eval_transforms` resizes an
    image (bilinear with antialias): how export calibration, the parity check and footage
    bring camera frames to a model's input size."""
    if frames.shape[1:3] == tuple(size):
        return frames
    # torch warns on a read-only array (a decoded image often is one): give it its own copy.
    frames = np.ascontiguousarray(frames) if frames.flags.writeable else np.array(frames)
    tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)
    return v2.functional.resize(tensor, list(size), antialias=True).permute(0, 2, 3, 1).numpy()
