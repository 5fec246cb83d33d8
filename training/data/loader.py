"""DataLoader construction: workers, pinned memory, reproducible randomness.

Two runs with the same seed see the same batches in the same order with the same
augmentations, whatever the number of workers: the shuffle order comes from a seeded
torch.Generator, and every worker seeds numpy and `random` from the per-worker torch seed
that generator determines (torch seeds the workers' torch RNG itself).
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate


def collate_skipping_none(items: list):
    """default_collate over the items that are not None (corrupt samples an evaluation
    SkipCorruptSamples left out); None when the whole batch was corrupt."""
    items = [item for item in items if item is not None]
    return default_collate(items) if items else None


def seed_worker(worker_id: int) -> None:
    """worker_init_fn: derive numpy's and random's seeds from this worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int = 2,
    seed: int = 0,
    drop_last: bool = False,
    distributed: bool = False,
) -> DataLoader:
    """A DataLoader for (image, mask[, extras...]) items.

    distributed: shard with a DistributedSampler (call `loader.sampler.set_epoch(epoch)`
    each epoch so the shuffle changes). Pinned memory is used when CUDA is available.
    With workers=0 the augmentations run in this process on torch's global generator, so
    seed that too (torch.manual_seed) for repeatable runs.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    sampler = None
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
        shuffle = False  # the sampler shuffles
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=workers > 0,
        collate_fn=collate_skipping_none,
    )
