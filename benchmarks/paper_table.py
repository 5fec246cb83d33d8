"""The paper's study on real street scenes: teacher, students with and without KD, int8 TFLite.

    python -m benchmarks.paper_table --dataset camvid:../shared/datasets/camvid \
        [--epochs 12] [--teacher-epochs 12] [--input-size 144 192] [--device cpu|cuda]

Stages, each reused when it already finished with the same settings (an interrupted training
stage resumes from its last.pth, so rerunning the command continues where it stopped):
  1. teacher   deeplabv3_resnet50, cross-entropy (configs/camvid_teacher_r50.yaml's recipe);
  2. students  deeplabv3lite_resnet18 and deeplabv3lite_mobilenetv2, each trained plain and
               distilled from the teacher's cached soft labels (configs/camvid_*_kd.yaml);
  3. evaluate  all five on the val split: mIoU, mAE, GFLOPs, params, memory, fp32 latency;
  4. export    each student to TFLite through conversion.export, int8 calibrated on train
               images, measured on the whole val split (latency with --threads);
  5. table     table.md, table.json and plots in --out.

The recipe is the paper's (AdamW, batch 8, step decay x0.1 every 30 of 90 epochs), shortened
to --epochs: the step is epochs // 3, the paper's ratio. Checkpoints stay in --workdir.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from benchmarks import paper_report
from training import evaluate, train
from training.checkpoint import load_checkpoint
from training.config import DEFAULTS, learning_settings, load_yaml, validate_config
from training.data import parse_dataset_spec
from training.errors import UserError, run_cli
from training.io import atomic_write_text, file_sha256
from training.models import validate_input_size
from training.report import read_history

ROOT = Path(__file__).resolve().parent.parent
TEACHER_RECIPE = ROOT / "configs" / "camvid_teacher_r50.yaml"
STUDENT_RECIPES = {"r18": ROOT / "configs" / "camvid_r18_kd.yaml",
                   "mnv2": ROOT / "configs" / "camvid_mobilenetv2_kd.yaml"}
# Besides the usual cosmetic keys: the device, and the teacher's path (its hash is checked).
_ALSO_IGNORED = ("device", "teacher")


def stage_configs(args: argparse.Namespace) -> dict[str, tuple[dict, bool]]:
    """name -> (training config, distilled?) for the five training stages, teacher first."""
    def recipe(path: Path, epochs: int) -> dict:
        config = dict(DEFAULTS, **{k: v for k, v in load_yaml(path).items() if k in DEFAULTS})
        config.update(dataset=args.dataset, input_size=list(args.input_size), epochs=epochs,
                      lr_step_epochs=max(1, epochs // 3), output_dir=str(args.workdir),
                      device=args.device, progress=not args.no_progress,
                      workers=args.workers, batch_size=args.batch_size,
                      cache_dir=str(args.workdir / "soft_label_cache"))
        return config

    stages = {"teacher_r50": (recipe(TEACHER_RECIPE, args.teacher_epochs), False)}
    teacher = str(args.workdir / "teacher_r50" / "best.pth")
    for short, path in STUDENT_RECIPES.items():
        kd = recipe(path, args.epochs)
        kd.update(teacher=teacher, soft_labels="cached")
        plain = dict(kd)
        plain.update(teacher=None, soft_labels=DEFAULTS["soft_labels"])
        stages[f"{short}_plain"] = (plain, False)
        stages[f"{short}_kd"] = (kd, True)
    for name, (config, _) in stages.items():
        config["name"] = name
        validate_config(config)
    return stages


def _learning(config: dict) -> dict:
    return learning_settings(config, _ALSO_IGNORED)


def _teacher_of(config: dict) -> str | None:
    return file_sha256(config["teacher"]) if config.get("teacher") else None


def run_stage(name: str, config: dict, distill: bool, workdir: Path) -> Path:
    """Train one stage unless it already finished; resume it when it was interrupted."""
    run_dir = workdir / name
    done, last = run_dir / "done.json", run_dir / "last.pth"
    teacher_sha256 = _teacher_of(config)
    if done.is_file():
        record = json.loads(done.read_text())
        stored = record["config"]
        if record.get("teacher_sha256", teacher_sha256) != teacher_sha256:
            raise UserError(f"{run_dir} was distilled from another teacher than "
                            f"{config['teacher']}; delete {run_dir} to distil it again")
        if _learning(stored) == _learning(config):
            print(f"[{name}] finished earlier: reusing {run_dir / 'best.pth'}", file=sys.stderr)
            return run_dir / "best.pth"
        raise UserError(f"{run_dir} was trained with other settings "
                        f"({_difference(stored, config)}); pass another --workdir or delete it")
    resume = None
    if last.is_file():
        stored = load_checkpoint(last)["config"]
        if _learning(stored) != _learning(config):
            raise UserError(f"{last} belongs to a run with other settings "
                            f"({_difference(stored, config)}); pass another --workdir or "
                            f"delete it")
        resume = last
        print(f"[{name}] resuming from {last}", file=sys.stderr)
    print(f"[{name}] training {config['model']} for {config['epochs']} epochs"
          + (" with distillation" if distill else ""), file=sys.stderr)
    summary = train.run(dict(config), resume=resume, distill=distill)
    if summary.get("interrupted"):
        print(f"interrupted: rerun the same command to continue ({last})", file=sys.stderr)
        sys.exit(130)
    # Timings from metrics.csv: it spans every session of a resumed run.
    history = read_history(run_dir / "metrics.csv")
    record = {"config": config, "teacher_sha256": teacher_sha256,
              "best_miou": summary.get("best_miou"), "resumed": resume is not None,
              "train_wall_s": sum(e.get("epoch_time_s", 0.0) for e in history),
              "images_per_s": [e.get("images_per_s") for e in history]}
    atomic_write_text(done, json.dumps(record, indent=2))
    return run_dir / "best.pth"


def _difference(stored: dict, wanted: dict) -> str:
    stored, wanted = _learning(stored), _learning(wanted)
    keys = sorted(k for k in stored if stored[k] != wanted[k])
    return ", ".join(f"{k}: {stored[k]!r} there, {wanted[k]!r} now" for k in keys[:3])


def _fingerprint(paths: list[Path]) -> list[list]:
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def run_evaluation(checkpoints: list[Path], args: argparse.Namespace) -> list[dict]:
    """The paper's metric and cost columns for every checkpoint (reused while unchanged)."""
    out = args.out / "evaluation"  # small files: tables, confusion matrices, overlays, curves
    stamp = args.workdir / "evaluation_done.json"
    key = {"checkpoints": _fingerprint(checkpoints), "size": list(args.input_size),
           "threads": args.threads}
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        print("[evaluate] reusing the evaluation of unchanged checkpoints", file=sys.stderr)
        return json.loads(stamp.read_text())["rows"]
    evaluate.main(["--checkpoints", *map(str, checkpoints), "--dataset", args.dataset,
                   "--split", "val", "--input-size", *map(str, args.input_size),
                   "--threads", str(args.threads), "--device", args.device,
                   "--workers", str(args.workers), "--out", str(out),
                   "--json", str(out / "table.json")])
    rows = json.loads((out / "table.json").read_text())  # plain JSON types, as when reused
    for row, path in zip(rows, checkpoints, strict=True):
        assert row["checkpoint"] == str(path), (row["checkpoint"], path)
    atomic_write_text(stamp, json.dumps({"key": key, "rows": rows}))
    return rows


def run_export(name: str, checkpoint: Path, args: argparse.Namespace) -> dict:
    """TFLite fp32/fp16/dynamic/int8 of one student, calibrated on train, measured on val."""
    from conversion.parity import parse_thresholds
    from conversion.pipeline import ExportRun, ExportSettings
    out = args.workdir / "export" / name
    stamp = out / "done.json"
    key = {"checkpoint": _fingerprint([checkpoint]), "size": list(args.input_size),
           "calib_count": args.calib_count, "threads": args.threads}
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        print(f"[export {name}] reusing {out}", file=sys.stderr)
        return json.loads(stamp.read_text())["entries"]
    val_images = len(parse_dataset_spec(args.dataset).build("val"))
    # Every variant is measured and reported; none is held back by the gate here, because the
    # table shows what each precision costs, failing or not (`passed` records the verdict).
    settings = ExportSettings(targets=["tflite"], checkpoint=checkpoint,
                              input_size=tuple(args.input_size), calib=args.dataset,
                              calib_count=args.calib_count, parity_data=args.dataset,
                              parity_count=val_images, out=out, threads=args.threads,
                              thresholds=parse_thresholds(None))
    print(f"[export {name}] TFLite, int8 calibrated on {args.calib_count} train images",
          file=sys.stderr)
    result = ExportRun(settings).run()
    entries = result["entries"]
    atomic_write_text(stamp, json.dumps({"key": key, "entries": entries}, indent=2, default=str))
    return entries


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, metavar="SPEC",
                        help="camvid:ROOT (any spec with train and val splits works)")
    parser.add_argument("--epochs", type=int, default=12, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, help="default: --epochs")
    parser.add_argument("--input-size", type=int, nargs=2, default=[144, 192],
                        metavar=("H", "W"), help="training and evaluation size")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=2,
                        help="CPU threads for the latency columns")
    parser.add_argument("--workers", type=int, default=2, help="data-loading processes")
    parser.add_argument("--calib-count", type=int, default=64)
    parser.add_argument("--skip-export", action="store_true", help="no TFLite columns")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "paper_table",
                        help="checkpoints and intermediate results (never committed)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                        "paper_table", help="table.md, table.json and plots")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.teacher_epochs = args.teacher_epochs or args.epochs
    for option in ("epochs", "teacher_epochs", "batch_size", "threads", "calib_count"):
        if getattr(args, option) < 1:
            raise UserError(f"--{option.replace('_', '-')} must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here")
    validate_input_size(args.input_size, 16)
    spec = parse_dataset_spec(args.dataset)
    if not {"train", "val"} <= set(spec.splits):
        raise UserError(f"{args.dataset!r} needs train and val splits, has {spec.splits}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    stages = stage_configs(args)
    checkpoints = {name: run_stage(name, config, distill, args.workdir)
                   for name, (config, distill) in stages.items()}
    rows = run_evaluation(list(checkpoints.values()), args)
    exports = {} if args.skip_export else \
        {name: run_export(name, path, args) for name, path in checkpoints.items()
         if name != "teacher_r50"}
    timings = {name: json.loads((args.workdir / name / "done.json").read_text())
               for name in stages}
    table = paper_report.build_table(list(stages), rows, exports, timings, args)
    written = paper_report.write(table, args.out)
    print(paper_report.markdown(table))
    print("wrote " + ", ".join(map(str, written)), file=sys.stderr)
    return table


if __name__ == "__main__":
    run_cli(main)
