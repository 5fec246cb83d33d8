"""File helpers every stage shares: atomic writes, content hashes, YAML, output folders.

An atomic write goes to a temporary file in the destination's folder, is fsynced, then
renamed over the destination, so a crash or a full disk mid-write leaves the previous file
intact, never a truncated one. Temporary names carry the writer's process id
(`.NAME.PID.*.tmp`), so `remove_stale` can tell what a killed process left behind from what a
live one is still writing.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from training.errors import UserError

# The checkout: configs, the apps and the test fixtures are found by repo-relative paths.
ROOT = Path(__file__).resolve().parent.parent


def atomic_save(obj, path: str | Path, write=None) -> None:
    """`write(obj, stream)` (torch.save by default) into a temporary file, then rename."""
    if write is None:
        import torch
        write = torch.save
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                         dir=path.parent)
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


def write_results(path: str | Path, result: dict, markdown: str) -> None:
    """A benchmark's results: JSON at `path`, the same table as Markdown beside it (.md), both
    written atomically, and the Markdown printed."""
    import json
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    atomic_write_text(Path(path).with_suffix(".md"), markdown)
    print(markdown)


def json_safe(value):
    """A copy that `json.dumps` writes as strict JSON: NaN -> None (null), tuples -> lists,
    keys -> strings. (A metric of a class that never occurs is NaN; JSON has no NaN.)"""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML follows YAML 1.1, where `1e-3` (no dot) is a string; YAML 1.2, and everyone who
    writes a learning rate, reads it as a number. This loader resolves such scalars as floats."""


_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def read_yaml(path: str | Path, what: str = "YAML") -> dict:
    """A YAML mapping (numbers as YAML 1.2 reads them); a missing file, bad YAML or a
    non-mapping is one UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}")
    try:
        data = yaml.load(path.read_text(), Loader=_Yaml12Loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} {path} is not valid YAML: "
                        f"{str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must be a mapping of keys to values")
    return data


def prepare_output_dir(path: str | Path, what: str = "output directory") -> list[Path]:
    """Create `path` if needed and prove it writable, before any slow work; returns the
    folders it created (deepest first), so a caller that fails later can remove them."""
    path = Path(path)
    created, probe = [], path
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "permission denied")
    except OSError as exc:
        remove_empty(created)
        raise UserError(f"{what} {path} is not writable: {exc.strerror or exc}") from None
    _CREATED.append(created)
    return created


# Every folder list `prepare_output_dir` created in this process, so that a command refused
# after it (`training.errors.run_cli`, exit 2) removes the ones still empty.
_CREATED: list[list[Path]] = []


def created_folders() -> list[list[Path]]:
    return _CREATED


def prepare_output_file(path: str | Path, what: str = "output file") -> list[Path]:
    """`prepare_output_dir` for the folder of a file to be written; a folder in its place is
    refused too."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder")
    return prepare_output_dir(path.parent, f"the folder of {what} {path}")


class StagingFolder:
    """A hidden folder `.KIND-PID-*` inside `out` where a run builds its outputs, to move them
    into place by renames at the end (conversion.export: KIND "export", conversion.run: "run";
    `remove_stale` knows both names). `out` is created and proved writable at once; `open()`
    clears what killed runs left and makes the folder; `discard()` deletes it, and the folders
    made for `out` if they are still empty."""

    def __init__(self, out: str | Path, kind: str, what: str = "output directory"):
        self.out, self.kind = Path(out), kind
        self.created = prepare_output_dir(self.out, what)
        self.path: Path | None = None

    def open(self) -> Path:
        remove_stale(self.out)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.kind}-{os.getpid()}-", dir=self.out))
        return self.path

    def discard(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
        remove_empty(self.created)


def remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# `.last.pth.1234.abc.tmp` (atomic_save), `.export-1234-abc` and `.run-1234-abc` (the staging
# folders of conversion.export and conversion.run).
_LEFTOVER = re.compile(r"^\.(?:.+\.(\d+)\..+\.tmp|(?:export|run)-(\d+)-.+)$")


def remove_stale(folder: str | Path) -> list[Path]:
    """Delete what killed processes left in `folder` (temporary files of atomic writes and
    export staging folders whose writer is gone) and say so in one line; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = []
    for item in folder.iterdir():
        match = _LEFTOVER.match(item.name)
        if match and not _pid_alive(int(match.group(1) or match.group(2))):
            stale.append(item)
    if not stale:
        return []
    size = 0
    for item in stale:
        if item.is_dir():
            size += sum(p.stat().st_size for p in item.rglob("*") if p.is_file())
            shutil.rmtree(item, ignore_errors=True)
        else:
            size += item.stat().st_size
            item.unlink(missing_ok=True)
    print(f"removed {len(stale)} leftover(s) of interrupted runs in {folder} "
          f"({size / 2 ** 20:.1f} MB): {', '.join(p.name for p in stale[:3])}"
          + (" ..." if len(stale) > 3 else ""), file=sys.stderr)
    return stale
