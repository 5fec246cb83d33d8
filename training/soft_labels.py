"""Cached teacher soft labels: the paper's step 2, "precompute the teacher's distributions".

The teacher runs once over the training set (each image resized to the training size, no
augmentation) and its logits at the teacher's output stride are stored as float16 in a
memory-mapped .npy file: for 19 classes at OS16 that is 19 x H/16 x W/16 x 2 bytes per image.
During training the logits are resized to the image and go through the same geometric
augmentation as image and mask (see training.sampling.AugmentedDataset).

The cache folder is named by a key over everything that changes the logits: the teacher's
weights, the dataset (spec, split, size and a sample fingerprint) and the input size. Change
any of them and a new cache is built; an interrupted build never leaves a usable-looking file.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm


def dataset_fingerprint(dataset: Dataset) -> str:
    """Hash of the dataset's length and a few samples' bytes (first, middle, last)."""
    digest = hashlib.sha256(str(len(dataset)).encode())
    for index in sorted({0, len(dataset) // 2, len(dataset) - 1}):
        image, mask = dataset[index]
        digest.update(np.ascontiguousarray(np.asarray(image)).tobytes())
        digest.update(np.ascontiguousarray(np.asarray(mask)).tobytes())
    return digest.hexdigest()


def cache_key(teacher_hash: str, dataset_spec: str, split: str, dataset: Dataset,
              input_size: list[int]) -> str:
    parts = {"teacher": teacher_hash, "dataset": dataset_spec, "split": split,
             "fingerprint": dataset_fingerprint(dataset), "input_size": list(input_size),
             "format": 1}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


class SoftLabelCache:
    """Read side: `cache[i]` is a float16 array (C, h, w) of sample i's teacher logits."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text())
        self._array = None  # opened lazily so DataLoader workers each map the file themselves

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.folder / "logits.npy", mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return self.meta["count"]

    def __getitem__(self, index: int) -> np.ndarray:
        return np.array(self.array[index])  # a writable copy, not a view of the map

    def __getstate__(self):
        return {"folder": self.folder, "meta": self.meta, "_array": None}


@torch.no_grad()
def teacher_lowres_logits(teacher: nn.Module, images: torch.Tensor,
                          autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    with torch.autocast(images.device.type, dtype=autocast_dtype or torch.bfloat16,
                        enabled=autocast_dtype is not None):
        if hasattr(teacher, "forward_all"):
            return teacher.forward_all(images, upsample=False)["logits_lowres"].float()
        return teacher(images).float()


def build_or_load_cache(teacher: nn.Module, dataset: Dataset, key: str, cache_root: Path,
                        device: torch.device, batch_size: int = 8,
                        autocast_dtype: torch.dtype | None = None,
                        progress: bool = True) -> SoftLabelCache:
    """Return the cache for `key`, computing it first when it does not exist.

    `dataset` yields (normalised image at the training size, mask) without augmentation.
    """
    folder = Path(cache_root) / key
    if (folder / "meta.json").is_file():
        return SoftLabelCache(folder)
    folder.mkdir(parents=True, exist_ok=True)
    teacher.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    temporary = folder / f"logits.npy.{os.getpid()}.tmp"
    array = None
    written = 0
    try:
        for images, _ in tqdm(loader, desc="caching teacher soft labels", unit="batch",
                              disable=not progress):
            logits = teacher_lowres_logits(teacher, images.to(device), autocast_dtype)
            if array is None:
                array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16,
                                                  shape=(len(dataset), *logits.shape[1:]))
            array[written:written + len(logits)] = logits.cpu().numpy().astype(np.float16)
            written += len(logits)
        array.flush()
        del array
        os.replace(temporary, folder / "logits.npy")
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    meta = {"key": key, "count": written, "dtype": "float16",
            "shape": list(np.load(folder / "logits.npy", mmap_mode="r").shape)}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))  # written last: marks "done"
    return SoftLabelCache(folder)
