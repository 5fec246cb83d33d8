"""Knowledge distillation: train a student against a frozen teacher's soft labels.

    python -m training.distill                    # the quickstart on the embedded dataset
    python -m training.distill --config configs/camvid_mobilenetv2_kd.yaml \
        --teacher runs/camvid_teacher_r50/best.pth
    python -m training.distill --teacher T.pth --soft-labels cached --kd-loss kl --temperature 2
    torchrun --nproc_per_node 2 -m training.distill --teacher T.pth ...

loss = alpha * soft + (1 - alpha) * cross-entropy, where soft is DIST by default (Pearson
relations between the class distributions, at T 1: it beat the paper's pixel-wise KL on CamVid)
or, with --kd-loss kl, KL(teacher || student) * T^2; --kd-loss cwd is channel-wise.

With no arguments it runs configs/quickstart.yaml: trains the teacher described by its
`teacher_config` (or reuses the one already trained with that exact config), distils the
MobileNetV2 student, then evaluates both and writes the report into the student's run folder.
A teacher that scores below its student is reported as such (a warning, and the report
flags it), never as a gain.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import sys
from pathlib import Path

from training.config import add_config_arguments, flag_values, resolve_config
from training.errors import UserError, exit_if_interrupted, run_cli
from training.evaluation import evaluate_checkpoints
from training.fit import config_to_resume, ensure_teacher, recorded_miou, run
from training.io import ROOT
from training.report import teacher_below_student

QUICKSTART = ROOT / "configs" / "quickstart.yaml"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, distillation=True)
    parser.add_argument("--teacher-config", default=argparse.SUPPRESS,
                        help="train the teacher with this config first (reused when unchanged)")
    parser.add_argument("--no-report", action="store_true",
                        help="skip evaluating teacher and student at the end")
    args = parser.parse_args(argv)
    if args.resume:
        config = config_to_resume(args.resume, flag_values(vars(args)), args.config)
    else:
        if args.config is None and not getattr(args, "teacher", None):
            args.config = QUICKSTART
        config = resolve_config(args.config, flags=flag_values(vars(args)))
    config["teacher"] = ensure_teacher(config)
    if not config["teacher"]:
        raise UserError("no teacher: pass --teacher CKPT or --teacher-config YAML")
    summary = run(config, resume=args.resume, distill=True)
    exit_if_interrupted(summary, f"state saved to {summary['last']}; continue with --resume")
    teacher_miou = recorded_miou(config["teacher"], config["dataset"])
    student_miou = summary.get("best_miou")
    if not args.no_report and Path(summary["best"]).is_file():
        out = Path(summary["run_dir"]) / "report"
        # Both at the student's input size, on the student's val split.
        teacher_row, student_row = evaluate_checkpoints(
            [config["teacher"], summary["best"]], config["dataset"], "val",
            config["input_size"], out, out / "table.json")
        teacher_miou, student_miou = teacher_row["miou"], student_row["miou"]
        summary["report"] = str(out)
        print(f"report: {out}", file=sys.stderr)
    warning = teacher_below_student(teacher_miou, student_miou, f"teacher {config['teacher']}")
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    summary.update(teacher_miou=teacher_miou, student_miou=student_miou,
                   teacher_below_student=warning is not None)
    return summary


if __name__ == "__main__":
    run_cli(main)
