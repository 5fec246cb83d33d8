"""User-facing errors and the one place that turns them into a clean CLI exit.

Library code raises `UserError` (or the data package's errors, which are ValueErrors) for bad
input; the command-line entry points wrap `main` with `run_cli` so the user sees one line and a
non-zero exit instead of a traceback. Set SEGKIT_DEBUG=1 to get the traceback back.
"""
from __future__ import annotations

import os
import sys
from typing import Callable


class UserError(ValueError):
    """Bad input from the user: a message that explains what to change."""


def run_cli(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    try:
        main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except (UserError, ValueError, FileNotFoundError, PermissionError) as exc:
        if os.environ.get("SEGKIT_DEBUG") == "1":
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def exit_if_interrupted(summary: dict, message: str) -> None:
    """After Ctrl-C the work done so far was kept: say where (one line) and exit 130."""
    if summary.get("interrupted"):
        print(f"interrupted: {message}", file=sys.stderr)
        sys.exit(130)
