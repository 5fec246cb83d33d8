"""What every dataset here shares: the item format, the error type, corrupt-sample skipping.

An item is `(image, mask)`: a uint8 CHW `tv_tensors.Image` and an int64 HW `tv_tensors.Mask`
whose values are class indices or the ignore index. A transform, when given, is called as
`transform(image, mask)` and its result is returned as the item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from training.errors import UserError

log = logging.getLogger(__name__)


class DataError(UserError):
    """Bad dataset input: a missing root or split, a corrupt file, labels outside the class set
    (a user error: `run_cli` prints it as one line)."""


def to_item(image: np.ndarray, mask: np.ndarray) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """HxWx3 uint8 and HxW integer arrays to the tv_tensors the transforms dispatch on."""
    # np.require copies read-only arrays (PIL's) so torch never wraps memory it must not write.
    img = tv_tensors.Image(
        torch.from_numpy(np.require(image, np.uint8, ["C", "W"])).permute(2, 0, 1)
    )
    return img, tv_tensors.Mask(torch.from_numpy(np.require(mask, np.int64, ["C", "W"])))


class SegmentationDataset(Dataset):
    """Base class: subclasses implement `__len__` and `load(index)` returning numpy arrays."""

    def __init__(self, transform: Callable | None = None):
        self.transform = transform

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image, mask = to_item(*self.load(index))
        return (image, mask) if self.transform is None else self.transform(image, mask)


class SkipCorruptSamples(Dataset):
    """Skip samples that raise DataError, logging each and counting them.

    Training (`replace=True`) takes the next good sample instead, so batches stay full.
    Evaluation (`replace=False`) returns None for it, and `collate_skipping_none` leaves it out
    of the batch: an image must not be scored twice. The count lives in shared memory so
    that DataLoader workers add to the same number; `skipped` is reported by the trainer and
    the evaluation report.
    """

    def __init__(self, dataset: Dataset, max_consecutive: int = 16, replace: bool = True):
        self.dataset = dataset
        self.max_consecutive = max_consecutive
        self.replace = replace
        self._skipped = torch.zeros((), dtype=torch.int64).share_memory_()
        self._bad: set[int] = set()  # per process: log each broken index once

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def skipped(self) -> int:
        """How many times a sample was skipped (all workers together)."""
        return int(self._skipped)

    def _skip(self, index: int, error: DataError) -> None:
        self._skipped += 1
        if index not in self._bad:
            self._bad.add(index)
            log.warning("skipping corrupt sample %d: %s (skipped so far: %d)", index, error,
                        self.skipped)

    def __getitem__(self, index: int):
        if not self.replace:
            try:
                return self.dataset[index]
            except DataError as error:
                self._skip(index, error)
                return None
        for attempt in range(self.max_consecutive):
            candidate = (index + attempt) % len(self.dataset)
            try:
                return self.dataset[candidate]
            except DataError as error:
                self._skip(candidate, error)
        raise DataError(
            f"{self.max_consecutive} consecutive samples from index {index} are corrupt; giving up"
        )
