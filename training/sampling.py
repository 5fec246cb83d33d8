"""Reproducible, resumable sample order and augmentation.

Bit-identical resume needs two things a plain DataLoader does not give:
  - the epoch's order must be a pure function of (seed, epoch), so a resumed run can skip the
    samples it already trained on;
  - each sample's random augmentation must be a pure function of (seed, epoch, index), not of
    which worker happened to load it or how many samples came before it.
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler


def _mix(*values: int) -> int:
    """A 63-bit seed from several integers (distinct tuples give unrelated seeds)."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (int(value) + 0x9E3779B97F4A7C15 + (state << 6) + (state >> 2)))
        state &= (1 << 64) - 1
    return state >> 1


class ResumableSampler(Sampler[int]):
    """Shuffled (or sequential) order per epoch; `skip` samples are dropped from the front.

    With several processes, each takes every world_size-th sample of the same global order
    (as DistributedSampler does), trimmed so that all ranks run the same number of batches.
    """

    def __init__(self, size: int, seed: int, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1):
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
        return torch.randperm(self.size, generator=generator).tolist()

    def _indices(self) -> list[int]:
        order = self.order()[self.skip:]
        order = order[:len(order) - len(order) % self.world_size]
        return order[self.rank::self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices())

    def __len__(self) -> int:
        remaining = max(self.size - self.skip, 0)
        return remaining // self.world_size


class AugmentedDataset(Dataset):
    """Applies `transform(image, mask, *extras)` with RNG seeded by (seed, epoch, index).

    `soft_labels`, when given, is indexable like the base dataset and returns the teacher's
    cached logits (C, h, w) for a sample; they are resized to the image and passed through
    the same geometric transforms, so image, mask and soft labels stay aligned.
    """

    def __init__(self, base: Dataset, transform: Callable, seed: int, soft_labels=None):
        self.base, self.transform, self.seed = base, transform, seed
        self.soft_labels = soft_labels
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, mask = self.base[index]
        extras = ()
        if self.soft_labels is not None:
            logits = torch.as_tensor(self.soft_labels[index]).float()[None]
            logits = F.interpolate(logits, size=tuple(image.shape[-2:]), mode="bilinear",
                                   align_corners=False)[0]
            extras = (logits,)  # the joint transform treats extra tensors as dense targets
        # fork_rng: the seeded augmentation must not disturb the global stream that dropout
        # and the sampler of an in-process (workers=0) loader use.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(self.seed, self.epoch, index))
            sample = self.transform(image, mask, *extras)
        # Plain tensors out: tv_tensor subclasses would follow the batch into the model.
        return tuple(t.as_subclass(torch.Tensor) if isinstance(t, torch.Tensor) else t
                     for t in sample)
