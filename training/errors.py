"""User-facing errors and the one place that turns them into a clean CLI exit.

Library code raises `UserError` (or one of its kinds: the data package's `DataError`, the
contract's `ContractError`, ...) for bad input; the command-line entry points wrap `main` with
`run_cli` so the user sees one line and exit status 2 instead of a traceback. A missing or
unreadable file (FileNotFoundError, PermissionError) is the user's too. Anything else, a plain
ValueError included, is a bug and keeps its traceback. Set SEGKIT_DEBUG=1 to get the traceback
of a user error back.

Ctrl-C can also come before `run_cli` runs: while an entry module imports torch and the rest,
which takes seconds. Each entry module calls `exit_130_on_interrupt(__name__)` first thing, so
an interrupt then is one line and exit 130 as well.
"""
from __future__ import annotations

import os
import sys
from typing import Callable


class UserError(ValueError):
    """Bad input from the user: a message that explains what to change."""


def run_cli(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    created = _created_folders_mark()
    try:
        main(argv)
    except KeyboardInterrupt:
        _remove_created_folders(created)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except (UserError, FileNotFoundError, PermissionError) as exc:
        _remove_created_folders(created)
        if os.environ.get("SEGKIT_DEBUG") == "1":
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def require_at_least_one(**values: int | None) -> None:
    """Refuse (UserError) the first count below 1, named as its flag (`batch_size` is
    `--batch-size`); None means "not given" and passes."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def exit_if_interrupted(summary: dict, message: str) -> None:
    """After Ctrl-C the work done so far was kept: say where (one line) and exit 130."""
    if summary.get("interrupted"):
        print(f"interrupted: {message}", file=sys.stderr)
        sys.exit(130)


def exit_130_on_interrupt(module_name: str) -> None:
    """Call at the top of an entry module, before its slow imports, as
    `exit_130_on_interrupt(__name__)`: when it runs as the program (`python -m ...`), a Ctrl-C
    that no code handles, during the imports or anywhere else, prints `interrupted` and exits
    with status 130 instead of a traceback. Imported as a library, it changes nothing."""
    if module_name != "__main__" or os.environ.get("SEGKIT_DEBUG") == "1":
        return
    previous = sys.excepthook

    def hook(kind, value, traceback) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            previous(kind, value, traceback)
            return
        print("interrupted", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # nothing may run after this: a second traceback from teardown, say
    sys.excepthook = hook


def _created_folders_mark() -> int:
    from training.io import created_folders
    return len(created_folders())


def _remove_created_folders(mark: int) -> None:
    """A refused or interrupted command leaves none of the output folders it created empty
    behind (`training.io.prepare_output_dir` records them); folders with files stay."""
    from training.io import created_folders, remove_empty
    for folders in reversed(created_folders()[mark:]):
        remove_empty(folders)
