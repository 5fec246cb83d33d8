"""Real images for int8 calibration and for the held-out parity check, kept apart.

Calibration takes N images from the training split of `--calib` (a dataset spec, or a .npy
array of uint8 RGB frames); the parity check takes M images of a split that calibration did
not touch (val, else test; when a dataset has a single split, the images after the first N).
Every image is resized to the export size exactly as `training.data.eval_transforms` does
(bilinear with antialias for images, nearest for masks) and kept as uint8 NHWC: what a
camera frame looks like before the model contract's preprocessing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

from training.data import DataError, JointTransform, parse_dataset_spec
from training.data.transforms import resize_frames
from training.errors import UserError, require_at_least_one


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 (N, H, W, 3) RGB at the export size
    masks: np.ndarray | None  # int64 (N, H, W) ground truth, None without labels
    source: dict = field(default_factory=dict)  # spec, split, first index, count

    def __len__(self) -> int:
        return len(self.images)


def _resize_pair(size: tuple[int, int]) -> JointTransform:
    return JointTransform([v2.Resize(size, antialias=True)])


def _check_image(image: torch.Tensor, where: str) -> None:
    if image.ndim != 3 or image.shape[0] != 3:
        raise UserError(f"{where} has {image.shape[0] if image.ndim == 3 else image.ndim} "
                        f"channels (shape {tuple(image.shape)}); the model takes 3-channel RGB")
    if image.dtype != torch.uint8:
        raise UserError(f"{where} is {image.dtype}; expected uint8 pixels")


def _from_dataset(dataset, spec_text: str, split: str, start: int, count: int,
                  size: tuple[int, int]) -> ImageSet:
    transform = _resize_pair(size)
    images, masks = [], []
    for index in range(start, start + count):
        image, mask = dataset[index]
        _check_image(image, f"image {index} of {spec_text!r} split {split!r}")
        image, mask = transform(image, mask)
        images.append(image.permute(1, 2, 0).numpy())
        masks.append(mask.numpy().astype(np.int64))
    return ImageSet(np.stack(images), np.stack(masks),
                    {"spec": spec_text, "split": split, "start": start, "count": count})


def _from_array(path: Path, count: int, size: tuple[int, int]) -> ImageSet:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read calibration array {path}: {exc}") from None
    if array.ndim != 4 or array.shape[-1] != 3:
        channels = array.shape[-1] if array.ndim == 4 else "?"
        raise UserError(f"calibration array {path} has shape {tuple(array.shape)} ({channels} "
                        f"channels); expected uint8 RGB frames of shape (N, H, W, 3)")
    if array.dtype != np.uint8:
        raise UserError(f"calibration array {path} is {array.dtype}; expected uint8 pixels")
    if len(array) < count:
        raise UserError(f"calibration array {path} holds {len(array)} images, fewer than "
                        f"--calib-count {count}")
    # A copy: the memory-mapped file is read-only, and torch warns on a read-only array.
    return ImageSet(resize_frames(np.array(array[:count]), size), None,
                    {"spec": str(path), "split": None, "start": 0, "count": count})


def _parse(spec_text: str):
    try:
        return parse_dataset_spec(spec_text)
    except DataError as exc:
        raise UserError(f"calibration data: {exc}") from None


def _build(spec, spec_text: str, split: str):
    try:
        return spec.build(split)
    except DataError as exc:
        raise UserError(f"{spec_text!r} split {split!r}: {exc}") from None


def load_calibration(spec_text: str, count: int, size: tuple[int, int]) -> ImageSet:
    """N images from the training split (or the first split) of `spec_text`, or a .npy file."""
    require_at_least_one(calib_count=count)
    if spec_text.endswith(".npy"):
        return _from_array(Path(spec_text).expanduser(), count, size)
    spec = _parse(spec_text)
    split = "train" if "train" in spec.splits else spec.splits[0]
    dataset = _build(spec, spec_text, split)
    if len(dataset) < count:
        raise UserError(f"calibration set {spec_text!r} split {split!r} has {len(dataset)} "
                        f"images, fewer than --calib-count {count}")
    return _from_dataset(dataset, spec_text, split, 0, count, size)


def load_held_out(spec_text: str, count: int, size: tuple[int, int],
                  calibration: ImageSet) -> ImageSet:
    """M labelled images that calibration did not use."""
    require_at_least_one(parity_count=count)
    spec = _parse(spec_text)
    used = calibration.source if calibration.source.get("spec") == spec_text else {}
    split = next((s for s in ("val", "test") if s in spec.splits and s != used.get("split")),
                 None)
    start = 0
    if split is None:  # one split only: take the images after the calibration ones
        split = used.get("split") or spec.splits[0]
        start = used.get("count", 0) if used.get("split") == split else 0
    dataset = _build(spec, spec_text, split)
    available = len(dataset) - start
    if available < count:
        raise UserError(f"held-out set {spec_text!r} split {split!r} has {max(available, 0)} "
                        f"images not used for calibration, fewer than --parity-count {count}")
    return _from_dataset(dataset, spec_text, split, start, count, size)


def anchor_pixel_range(images: np.ndarray) -> np.ndarray:
    """Copy of `images` with one black and one white pixel in each.

    A full-integer model whose input is raw uint8 pixels takes its input scale from the
    calibration range. Pinning that range to exactly 0..255 makes the scale 1 and the zero
    point 0, so an app can feed camera bytes unchanged. Two pixels per image do not move the
    activation ranges measurably.
    """
    anchored = images.copy()
    anchored[:, 0, 0, :] = 0
    anchored[:, 0, 1, :] = 255
    return anchored
