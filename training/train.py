"""Supervised training of any registry model on any dataset spec.

    python -m training.train --config configs/quickstart_teacher.yaml
    python -m training.train --model deeplabv3lite_resnet18 --dataset synthetic:size=64x128 \
        --input-size 64 128 --epochs 2 --batch-size 8 --accum-steps 2 --lr 1e-3
    python -m training.train --resume runs/quickstart_teacher/last.pth --epochs 6

The run itself is `training.fit.run`; `training.distill` adds a teacher.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse

from training.config import add_config_arguments, flag_values, resolve_config
from training.errors import exit_if_interrupted, run_cli
from training.fit import config_to_resume, run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    if args.resume:
        config = config_to_resume(args.resume, flag_values(vars(args)), args.config)
    else:
        config = resolve_config(args.config, flags=flag_values(vars(args)), distillation=False)
    summary = run(config, resume=args.resume)
    exit_if_interrupted(summary, f"state saved to {summary['last']}; continue with --resume")
    return summary


if __name__ == "__main__":
    run_cli(main)
