"""The deployment table under its older name: `python -m conversion.benchmark` runs
`python -m benchmarks.deployment_table` (the measuring code lives there)."""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

from benchmarks.deployment_table import main

__all__ = ["main"]

if __name__ == "__main__":
    from training.errors import run_cli
    run_cli(main)
