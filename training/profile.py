"""The paper's cost columns for any registry model.

    python -m training.profile --models deeplabv3_resnet50 deeplabv3lite_mobilenetv2 \
        --input-size 512 1024 --threads 2 --json profile.json

Prints a Markdown table; students also show their reduction against the teacher.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
from pathlib import Path

import torch
from tqdm import tqdm

from training.errors import UserError, require_at_least_one, run_cli
from training.io import atomic_write_text, prepare_output_file
from training.models import STUDENTS, TEACHER, list_models, validate_input_size
from training.profiling import add_reductions, markdown_table, profile_model


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=[TEACHER, *STUDENTS],
                        help=f"registry names (default: all of {', '.join(list_models())})")
    parser.add_argument("--input-size", nargs=2, type=int, default=[512, 1024],
                        metavar=("H", "W"))
    parser.add_argument("--output-stride", type=int, default=16)
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--runs", type=int, default=10, help="timed runs (median reported)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    unknown = [name for name in args.models if name not in list_models()]
    if unknown:
        raise UserError(f"unknown model {unknown[0]!r}; choose from: {', '.join(list_models())}")
    if args.output_stride not in (8, 16):
        raise UserError(f"output stride must be 8 or 16, got {args.output_stride}")
    if args.num_classes < 2:
        raise UserError(f"num_classes must be at least 2, got {args.num_classes}")
    validate_input_size(args.input_size, args.output_stride)
    require_at_least_one(threads=args.threads, runs=args.runs)
    if args.json:
        prepare_output_file(args.json, "--json")
    rows = [profile_model(name, tuple(args.input_size), args.output_stride, args.num_classes,
                          args.threads, args.runs)
            for name in tqdm(args.models, desc="profiling", unit="model")]
    add_reductions(rows)
    print(markdown_table(rows))
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    run_cli(main)
