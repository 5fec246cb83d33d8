"""File helpers every stage shares: atomic writes and content hashes.

An atomic write goes to a temporary file in the destination's folder, is fsynced, then
renamed over the destination, so a crash or a full disk mid-write leaves the previous file
intact, never a truncated one. Temporary files are named `.NAME.*.tmp`; `remove_stale_temporaries`
clears the ones a killed process left behind.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def atomic_save(obj, path: str | Path, write=None) -> None:
    """`write(obj, stream)` (torch.save by default) into a temporary file, then rename."""
    if write is None:
        import torch
        write = torch.save
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(obj, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Text version of `atomic_save`: readers see the old file or the new one, never half."""
    atomic_save(text.encode(), path, write=lambda data, stream: stream.write(data))


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()
