"""Knowledge distillation: train a student against a frozen teacher's soft labels.

    python -m training.distill                    # the quickstart on the embedded dataset
    python -m training.distill --config configs/camvid_mobilenetv2_kd.yaml --teacher T.pth
    python -m training.distill --teacher T.pth --soft-labels cached --alpha 0.5 --temperature 2
    torchrun --nproc_per_node 2 -m training.distill --teacher T.pth ...

loss = alpha * KL(teacher || student) * T^2 + (1 - alpha) * cross-entropy.

With no arguments it runs configs/quickstart.yaml: trains the teacher described by its
`teacher_config` (or reuses the one already trained with that exact config), distils the
MobileNetV2 student, then evaluates both and writes the report into the student's run folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training import train
from training.checkpoint import load_checkpoint
from training.config import add_config_arguments, learning_settings, resolve_config
from training.errors import UserError, run_cli
from training.report import teacher_below_student

QUICKSTART = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"


def ensure_teacher(config: dict) -> str:
    """Return the teacher checkpoint, training it first from `teacher_config` when needed."""
    teacher = config.get("teacher")
    recipe = config.get("teacher_config")
    if not recipe:
        return teacher
    recipe = Path(recipe)
    if not recipe.is_file() and (QUICKSTART.parent.parent / recipe).is_file():
        recipe = QUICKSTART.parent.parent / recipe  # configs name repo-relative paths
    teacher_config = resolve_config(argparse.Namespace(config=recipe))
    teacher_config["progress"] = config["progress"]
    teacher_config["name"] = teacher_config["name"] or recipe.stem
    path = Path(teacher_config["output_dir"]) / teacher_config["name"] / "best.pth"
    if path.is_file():
        stored = load_checkpoint(path)["config"]
        if learning_settings(stored) == learning_settings(teacher_config):
            print(f"reusing teacher {path} (trained with the same config)", file=sys.stderr)
            return str(path)
        print(f"teacher {path} was trained with another config: retraining", file=sys.stderr)
    print(f"training the teacher ({teacher_config['model']}) from {recipe}", file=sys.stderr)
    train.run(teacher_config)
    return str(path)


def evaluate_pair(teacher: str, student: str, config: dict, out: Path) -> list[dict]:
    """The paper's table for teacher and student, both at the student's input size, with
    plots, into `out`; returns its rows."""
    import json

    from training import evaluate
    evaluate.main(["--checkpoints", teacher, student, "--dataset", config["dataset"],
                   "--split", "val", "--input-size", *map(str, config["input_size"]),
                   "--out", str(out), "--json", str(out / "table.json")])
    return json.loads((out / "table.json").read_text())


def recorded_miou(checkpoint: str, dataset: str) -> float | None:
    """The val mIoU a checkpoint recorded, when it was measured on `dataset`."""
    state = load_checkpoint(checkpoint)
    if (state.get("dataset") or {}).get("spec") != dataset:
        return None
    return (state.get("metrics") or {}).get("miou")


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
        config = train.config_for(args)
    else:
        if args.config is None and not getattr(args, "teacher", None):
            args.config = QUICKSTART
        config = resolve_config(args)
    config["teacher"] = ensure_teacher(config)
    if not config["teacher"]:
        raise UserError("no teacher: pass --teacher CKPT or --teacher-config YAML")
    summary = train.run(config, resume=args.resume, distill=True)
    if summary.get("interrupted"):
        print(f"interrupted: state saved to {summary['last']}; continue with --resume",
              file=sys.stderr)
        sys.exit(130)
    teacher_miou = recorded_miou(config["teacher"], config["dataset"])
    student_miou = summary.get("best_miou")
    if not args.no_report and Path(summary["best"]).is_file():
        out = Path(summary["run_dir"]) / "report"
        teacher_row, student_row = evaluate_pair(config["teacher"], summary["best"], config, out)
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
