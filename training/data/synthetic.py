"""The embedded dataset: procedurally generated street scenes with pixel-exact labels.

Labels are Cityscapes train ids, so a model trained here speaks the same 19 classes as one
trained on Cityscapes. A sample is a pure function of (seed, split, index, size,
condition): nothing is stored, splits never share a scene, and a scene keeps its layout
under every weather condition (only its appearance changes), which makes the conditions
clean domain shifts for incremental learning.

Generating costs CPU that training needs (on a 2-core machine, a third of an epoch at
128x256), so each dataset keeps the samples it has made in shared memory: DataLoader workers
fill one cache together, and from the second epoch on nothing is generated again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training.data.appearance import CONDITIONS, apply_appearance
from training.data.base import SegmentationDataset
from training.data.street_scene import render_street_scene

SPLITS = ("train", "val", "test")
CACHE_LIMIT_BYTES = 1 << 30  # larger splits are generated afresh each time instead
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyntheticOptions:
    size: tuple[int, int] = (128, 256)  # height, width
    train: int = 400
    val: int = 100
    test: int = 100
    seed: int = 0
    conditions: tuple[str, ...] = ("clear",)  # several: each image picks one
    cache: bool = True  # keep generated samples in shared memory (up to CACHE_LIMIT_BYTES a split)

    def __post_init__(self) -> None:
        if min(self.size) < 16:
            raise ValueError(
                f"synthetic size must be at least 16x16, got {self.size[0]}x{self.size[1]}"
            )
        if not self.conditions:
            raise ValueError("synthetic needs at least one condition")
        for condition in self.conditions:
            if condition not in CONDITIONS:
                raise ValueError(
                    f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}"
                )
        for split in SPLITS:
            if getattr(self, split) < 0:
                raise ValueError(f"synthetic {split} size must be >= 0, got {getattr(self, split)}")

    def count(self, split: str) -> int:
        return getattr(self, split)


def generate_scene(
    seed: int,
    split: str,
    index: int,
    size: Sequence[int] = (128, 256),
    conditions: Sequence[str] = ("clear",),
) -> tuple[np.ndarray, np.ndarray]:
    """One sample, (HxWx3 uint8 image, HxW uint8 train-id mask): a pure function of the args."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    # Separate seed streams per split (no overlap) and for the look (same layout in all weathers).
    key = [int(seed), SPLITS.index(split), int(index)]
    condition = conditions[int(np.random.default_rng(key + [0]).integers(len(conditions)))]
    scene = render_street_scene(np.random.default_rng(key + [1]), int(size[0]), int(size[1]))
    image = apply_appearance(
        scene, np.random.default_rng(key + [2 + CONDITIONS.index(condition)]), condition
    )
    return image, scene.label


class SyntheticStreetScenes(SegmentationDataset):
    def __init__(
        self,
        split: str,
        options: SyntheticOptions = SyntheticOptions(),
        transform: Callable | None = None,
    ):
        super().__init__(transform)
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        self.split = split
        self.options = options
        self._cache = self._ready = None
        height, width = options.size
        cache_bytes = len(self) * height * width * 4
        if options.cache and cache_bytes <= CACHE_LIMIT_BYTES:
            # Created before any worker starts, so every worker writes into the same memory.
            self._cache = torch.zeros(
                (len(self), height, width, 4), dtype=torch.uint8
            ).share_memory_()
            self._ready = torch.zeros(len(self), dtype=torch.bool).share_memory_()
        elif options.cache:
            log.info(
                "synthetic %s split needs %.1f GiB to cache; generating on the fly",
                split,
                cache_bytes / 2**30,
            )

    def __len__(self) -> int:
        return self.options.count(self.split)

    @property
    def cached(self) -> int:
        """How many samples are in the shared cache so far."""
        return 0 if self._ready is None else int(self._ready.sum())

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._ready is not None and self._ready[index]:
            stored = self._cache[index].numpy().copy()  # a copy: callers may write to what they get
            return stored[..., :3], stored[..., 3]
        o = self.options
        image, mask = generate_scene(o.seed, self.split, index, o.size, o.conditions)
        if self._cache is not None:
            # Two workers may make the same sample at once; they write identical bytes.
            self._cache[index, ..., :3] = torch.from_numpy(image)
            self._cache[index, ..., 3] = torch.from_numpy(mask)
            self._ready[index] = True
        return image, mask
