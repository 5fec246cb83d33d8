"""The paper's cost columns for any registry model.

    python -m training.profile --models deeplabv3_resnet50 deeplabv3lite_mobilenetv2 \
        --input-size 512 1024 --threads 2 --json profile.json

Prints a Markdown table; students also show their reduction against the teacher.
"""
from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import torch
from tqdm import tqdm

from training.errors import UserError, run_cli
from training.models import STUDENTS, TEACHER, build_model, count_parameters, list_models, \
    validate_input_size
from training.profiling import count_flops, measure_latency_ms, measure_peak_memory_mb, \
    state_dict_size_mb


def profile_model(name: str, input_size: tuple[int, int], output_stride: int, num_classes: int,
                  threads: int, runs: int) -> dict:
    factory = functools.partial(build_model, name, num_classes=num_classes,
                                output_stride=output_stride)
    model = factory()
    flops = count_flops(model, input_size)
    return {
        "model": name,
        "input_size": list(input_size),
        "output_stride": output_stride,
        "num_classes": num_classes,
        "params_m": count_parameters(model) / 1e6,
        "gmacs": flops / 2 / 1e9,
        "gflops": flops / 1e9,
        "size_mb": state_dict_size_mb(model),
        "peak_mem_mb": measure_peak_memory_mb(factory, input_size, threads),
        "latency_ms": measure_latency_ms(model, input_size, threads, runs=runs),
        "threads": threads,
    }


def add_reductions(rows: list[dict], reference: str = TEACHER) -> None:
    """Attach each row's cost as a fraction of the reference row's (the teacher's)."""
    base = next((row for row in rows if row["model"] == reference), None)
    if base is None:
        return
    for row in rows:
        if row is not base:
            row["vs_teacher"] = {key: row[key] / base[key] for key in
                                 ("gflops", "params_m", "peak_mem_mb", "latency_ms")}


def markdown_table(rows: list[dict]) -> str:
    header = ("| model | input | OS | params (M) | GFLOPs | size (MB) | peak mem (MB) "
              "| latency (ms) | vs teacher |")
    lines = [header, "|" + "---|" * 9]
    for row in rows:
        ratio = row.get("vs_teacher")
        versus = (f"{(ratio['gflops'] - 1) * 100:+.0f} % FLOPs, "
                  f"{(ratio['params_m'] - 1) * 100:+.0f} % params, "
                  f"{(ratio['latency_ms'] - 1) * 100:+.0f} % latency") if ratio else "—"
        height, width = row["input_size"]
        lines.append(f"| {row['model']} | {height}x{width} | {row['output_stride']} "
                     f"| {row['params_m']:.2f} | {row['gflops']:.1f} | {row['size_mb']:.1f} "
                     f"| {row['peak_mem_mb']:.0f} | {row['latency_ms']:.1f} | {versus} |")
    return "\n".join(lines)


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
    if args.threads < 1 or args.runs < 1:
        raise UserError("--threads and --runs must be at least 1")
    rows = [profile_model(name, tuple(args.input_size), args.output_stride, args.num_classes,
                          args.threads, args.runs)
            for name in tqdm(args.models, desc="profiling", unit="model")]
    add_reductions(rows)
    print(markdown_table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    run_cli(main)
