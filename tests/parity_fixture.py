"""Regenerate the suite's parity fixture (the recipe and why: conversion/parity_fixture.py).

    python -m tests.parity_fixture --out tests/fixtures/parity_student.pth
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from conversion.parity_fixture import FIXTURE, MAX_BYTES, compact, train_fixture


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=FIXTURE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="training folder (default: a temp dir)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="parity-fixture-"))
    last, seconds = train_fixture(work, args.seed, progress=True)
    out = compact(last, args.out)
    size = out.stat().st_size
    print(f"parity fixture: {out} ({size / 2 ** 20:.2f} MB, trained in {seconds:.0f} s, "
          f"torch {torch.__version__})", file=sys.stderr)
    if size > MAX_BYTES:
        print(f"warning: {out} is over {MAX_BYTES / 2 ** 20:.0f} MB", file=sys.stderr)
    return out


if __name__ == "__main__":
    from training.errors import run_cli
    run_cli(main)
