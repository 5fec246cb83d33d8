"""Replay: an exemplar memory of old images, stored in the checkpoint, mixed into new batches.

    memory = select_class_balanced(histograms, capacity)          # which candidates to keep
    memory = ReplayMemory.from_dataset(old_train_set, capacity, num_classes, size, task=0)
    checkpoint["replay"] = memory.state()                          # tensors only
    train_set = MixedDataset(new_train_set, memory.dataset(transform, seed), ratio=0.25)

Selection strategy: class-balanced greedy. Each step takes the candidate whose present
classes are, in total, the least covered by the memory so far (score = sum over its classes
of 1 / (1 + images already holding that class)), so a class seen in one image of a thousand
still gets into a memory of ten. Over several tasks every task keeps an equal share of the
slots, re-selected with the same rule among its own exemplars.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import tv_tensors

from training.sampling import AugmentedDataset

CANDIDATES = 8  # images read per memory slot when selecting
STRATEGY = "class-balanced greedy (rarest classes first), equal share per task"


def class_presence(mask: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Bool (num_classes,): which classes occur in `mask` (ignore pixels skipped)."""
    labels = mask[mask != ignore_index].long()
    return torch.bincount(labels, minlength=num_classes)[:num_classes] > 0


def select_class_balanced(presence: torch.Tensor, capacity: int) -> list[int]:
    """Greedy pick of `capacity` rows of presence (N, C) covering the rarest classes first.

    Ties go to the candidate with more classes, then to the lower index (deterministic).
    """
    presence = presence.bool()
    capacity = min(capacity, len(presence))
    held = torch.zeros(presence.shape[1])
    chosen: list[int] = []
    available = torch.ones(len(presence), dtype=torch.bool)
    for _ in range(capacity):
        score = (presence.float() / (1.0 + held)).sum(1) + presence.sum(1) * 1e-6
        score[~available] = -1.0
        pick = int(score.argmax())
        chosen.append(pick)
        available[pick] = False
        held += presence[pick].float()
    return chosen


class _MemoryItems(Dataset):
    """The memory's (image, mask) pairs as tv_tensors, ready for the training transform."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor):
        self.images, self.masks = images, masks

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return tv_tensors.Image(self.images[index]), tv_tensors.Mask(self.masks[index].long())


class ReplayMemory:
    """uint8 images (N, 3, H, W), masks (N, H, W) in the model's class ids, task ids (N,)."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, tasks: torch.Tensor,
                 capacity: int, num_classes: int, ignore_index: int):
        self.images, self.masks, self.tasks = images, masks, tasks
        self.capacity, self.num_classes, self.ignore_index = capacity, num_classes, ignore_index

    def __len__(self) -> int:
        return len(self.images)

    @staticmethod
    def _collect(dataset: Dataset, size: tuple[int, int], ignore_index: int, limit: int):
        """Up to `limit` candidates, evenly spaced: a 3,000-image task is not read whole."""
        images, masks = [], []
        for index in torch.linspace(0, len(dataset) - 1, min(limit, len(dataset))).long().tolist():
            image, mask = dataset[index]
            image = torch.as_tensor(image).as_subclass(torch.Tensor)
            mask = torch.as_tensor(mask).as_subclass(torch.Tensor)
            if tuple(image.shape[-2:]) != tuple(size):  # one size for all: they share batches
                image = F.interpolate(image[None].float(), size=size, mode="bilinear",
                                      antialias=True, align_corners=False)[0].round().clamp(0, 255)
                mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0, 0]
            images.append(image.to(torch.uint8))
            masks.append(mask.to(torch.uint8 if ignore_index <= 255 else torch.int16))
        return torch.stack(images), torch.stack(masks)

    @classmethod
    def from_dataset(cls, dataset: Dataset, capacity: int, num_classes: int, ignore_index: int,
                     size: tuple[int, int], task: int = 0) -> "ReplayMemory":
        """Select `capacity` exemplars from an untransformed (uint8 image, mask) dataset."""
        images, masks = cls._collect(dataset, size, ignore_index, CANDIDATES * capacity)
        presence = torch.stack([class_presence(m, num_classes, ignore_index) for m in masks])
        keep = torch.tensor(select_class_balanced(presence, capacity), dtype=torch.long)
        return cls(images[keep], masks[keep], torch.full((len(keep),), task, dtype=torch.long),
                   capacity, num_classes, ignore_index)

    def add_task(self, dataset: Dataset, task: int) -> "ReplayMemory":
        """A memory of the same capacity where every task, `task` included, has an equal share."""
        size = tuple(self.images.shape[-2:])
        images, masks = self._collect(dataset, size, self.ignore_index,
                                      CANDIDATES * self.capacity)
        images, masks = torch.cat([self.images, images]), torch.cat([self.masks, masks])
        tasks = torch.cat([self.tasks, torch.full((len(images) - len(self.tasks),), task)])
        task_ids = tasks.unique().tolist()
        share, extra = divmod(self.capacity, len(task_ids))
        keep = []
        for t in task_ids:
            rows = (tasks == t).nonzero().flatten()
            quota = share + (extra if t == task else 0)
            presence = torch.stack([class_presence(masks[r], self.num_classes, self.ignore_index)
                                    for r in rows])
            keep += rows[select_class_balanced(presence, quota)].tolist()
        keep = torch.tensor(keep, dtype=torch.long)
        return ReplayMemory(images[keep], masks[keep], tasks[keep], self.capacity,
                            self.num_classes, self.ignore_index)

    def remap_classes(self, lookup: torch.Tensor, num_classes: int) -> "ReplayMemory":
        """Masks to a grown class list: lookup[old id] = new id (ignore stays ignore)."""
        masks = self.masks.long()
        valid = masks != self.ignore_index
        masks[valid] = lookup[masks[valid]]
        return ReplayMemory(self.images, masks.to(self.masks.dtype), self.tasks, self.capacity,
                            num_classes, self.ignore_index)

    def class_counts(self) -> torch.Tensor:
        """Images holding each class."""
        return torch.stack([class_presence(m, self.num_classes, self.ignore_index)
                            for m in self.masks]).sum(0)

    def dataset(self, transform, seed: int) -> AugmentedDataset:
        return AugmentedDataset(_MemoryItems(self.images, self.masks), transform, seed)

    def state(self) -> dict:
        return {"images": self.images, "masks": self.masks, "tasks": self.tasks,
                "capacity": self.capacity, "num_classes": self.num_classes,
                "ignore_index": self.ignore_index, "strategy": STRATEGY}

    @classmethod
    def from_state(cls, state: dict) -> "ReplayMemory":
        return cls(state["images"], state["masks"], state["tasks"], int(state["capacity"]),
                   int(state["num_classes"]), int(state["ignore_index"]))


class MixedDataset(Dataset):
    """New-task samples followed by the memory, repeated so that it is at least `ratio` of an
    epoch: a memory of 20 next to 2,000 new images would otherwise hardly ever be seen."""

    def __init__(self, new: Dataset, memory: Dataset, ratio: float = 0.25):
        self.new, self.memory = new, memory
        wanted = int(round(ratio / max(1.0 - ratio, 1e-6) * len(new)))
        self.memory_length = max(len(memory), wanted) if len(memory) else 0

    def set_epoch(self, epoch: int) -> None:
        for part in (self.new, self.memory):
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.new) + self.memory_length

    def __getitem__(self, index: int):
        if index < len(self.new):
            return self.new[index]
        return self.memory[(index - len(self.new)) % len(self.memory)]
