"""Where a footage run writes: checked before anything is written, staged inside --out, placed
at the end.

- `check_out` refuses an --out that holds what the run reads (the input, the labels): the
  outputs would land on them (masks/ over a labels folder named masks, overlay.mp4 over the
  input video), and a rerun would delete them as stale outputs. It also refuses an --out
  whose output names (masks/, summary.json, ...) hold files no earlier `conversion.run` wrote.
- `Staging` is a hidden folder `.run-PID-*` inside --out (`training.io.remove_stale` knows the
  name and clears what a killed run left). `place()` first moves every output of the previous
  run aside, also those this run does not write, so no stale overlays/ or legend.png stays
  beside the new summary; `discard()` leaves --out as it was.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from training.errors import UserError
from training.io import StagingFolder

OUTPUTS = ("overlay.mp4", "overlays", "masks", "legend.png", "summary.json")
WRITER = "conversion.run"  # summary.json's "written_by"


def written_by_a_run(out: Path) -> bool:
    """Whether out/summary.json is a footage run's (older ones predate "written_by")."""
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and (summary.get("written_by") == WRITER or {
        "frames", "stages", "class_shares"} <= set(summary))


def check_out(out: Path, reads: list[tuple[str, Path]]) -> None:
    """Refuse (UserError) an --out that holds what the run reads, or foreign files under the
    output names; `reads` are (what, path) pairs such as ("labels", Path("data/masks"))."""
    target = out.expanduser().resolve()
    for what, path in reads:
        resolved = path.expanduser().resolve()
        if resolved == target or target in resolved.parents:
            raise UserError(f"--out {out} holds the {what} {path}; the run's outputs would "
                            f"overwrite or delete it, so choose an --out outside it")
    if not out.is_dir():
        return
    present = [name for name in OUTPUTS if os.path.lexists(out / name)]
    if present and not written_by_a_run(out):
        raise UserError(f"--out {out} already holds {present[0]}, which no earlier "
                        f"conversion.run wrote (no summary.json of one); choose an empty or "
                        f"new folder")


class Staging(StagingFolder):
    """The run's staging folder in `out`; `out` is created (and proved writable) first."""

    def __init__(self, out: Path):
        super().__init__(out, "run", "--out")
        self.open()

    def place(self) -> list[str]:
        """Move the staged outputs into `out`, replacing all of the previous run's outputs;
        summary.json goes last. Returns the names placed."""
        previous = [self.out / name for name in OUTPUTS if os.path.lexists(self.out / name)]
        aside = None
        if previous:
            aside = Path(tempfile.mkdtemp(prefix=f".run-{os.getpid()}-old-", dir=self.out))
            for item in previous:
                os.replace(item, aside / item.name)
        staged = sorted(self.path.iterdir(), key=lambda p: (p.name == "summary.json", p.name))
        for item in staged:
            os.replace(item, self.out / item.name)
        self.path.rmdir()
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        return [item.name for item in staged]
