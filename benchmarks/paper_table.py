"""The paper's study on real street scenes: teacher, students with and without KD over seeds.

    python -m benchmarks.paper_table --dataset camvid:../shared/datasets/camvid \
        --input-size 96 128 --teacher-epochs 60 --epochs 10 --seeds 3 \
        [--schedule cosine] [--compare-schedules] [--kd-grid mnv2] [--bf16 auto] [--device cuda]

Stages, each reused when it already finished with the same settings (an interrupted training
stage resumes from its last.pth, so rerunning the command continues where it stopped):
  1. teacher   deeplabv3_resnet50, cross-entropy, trained once (configs/camvid_teacher_r50.yaml's
               recipe); --compare-schedules also trains it with the two other schedules at
               the same epochs (last, after the students), for the comparison table only;
  2. students  deeplabv3lite_resnet18 and deeplabv3lite_mobilenetv2, each trained plain and
               distilled from the teacher's soft labels (--soft-labels cached, or online:
               the teacher runs on each augmented batch), under --seeds seeds (seed s:
               the same initial weights, data order and augmentation with and without KD, so
               the KD gain is measured paired); --kd-grid adds alpha x temperature runs of one
               student (seed 0);
  3. evaluate  every stage on the val split: mIoU, mAE, GFLOPs, params, memory, fp32 latency;
  4. export    the seed-0 students to TFLite through conversion.export, int8 calibrated on
               train images, measured on the whole val split (latency with --threads);
  5. table     table.md, table.json and plots in --out (benchmarks.paper_report).

The recipe is the paper's (AdamW, batch 8, dropout, BatchNorm) shortened to --epochs, with the
learning-rate schedule of --schedule: `step` is the paper's x0.1 every 30 of 90 epochs, scaled
to every epochs // 3; `poly` and `cosine` decay smoothly. `--bf16 auto` trains in bf16 autocast
with channels_last where the CPU has native bf16 (training.machine) and in fp32 elsewhere; the
results record which. Checkpoints stay in --workdir.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from benchmarks import paper_report
from training.checkpoint import load_checkpoint
from training.config import CHOICES, DEFAULTS, learning_settings, load_yaml, validate_config
from training.data import parse_dataset_spec
from training.errors import UserError, exit_if_interrupted, run_cli
from training.evaluation import evaluate_checkpoints
from training.fit import run
from training.io import atomic_write_text, file_sha256, prepare_output_dir
from training.machine import machine_record
from training.models import validate_input_size
from training.report import read_history

ROOT = Path(__file__).resolve().parent.parent
TEACHER_RECIPE = ROOT / "configs" / "camvid_teacher_r50.yaml"
STUDENT_RECIPES = {"r18": ROOT / "configs" / "camvid_r18_kd.yaml",
                   "mnv2": ROOT / "configs" / "camvid_mobilenetv2_kd.yaml"}
GRID_ALPHAS, GRID_TEMPERATURES = (0.3, 0.5, 0.7), (1.0, 2.0, 4.0)
# Besides the usual cosmetic keys: the device, and the teacher's path (its hash is checked).
_ALSO_IGNORED = ("device", "teacher")


def teacher_stage(schedule: str) -> str:
    return f"teacher_r50_{schedule}"


def student_stage(short: str, kd: bool, seed: int, alpha=None, temperature=None) -> str:
    grid = "" if alpha is None else f"_a{alpha:g}_T{temperature:g}"
    return f"{short}_{'kd' if kd else 'plain'}{grid}_s{seed}"


def stage_configs(args: argparse.Namespace) -> dict[str, dict]:
    """name -> {"config", "distill", "role", ...} for every training stage, teachers first."""
    def recipe(path: Path, epochs: int, schedule: str) -> dict:
        config = dict(DEFAULTS, **load_yaml(path))
        config.update(dataset=args.dataset, input_size=list(args.input_size), epochs=epochs,
                      lr_schedule=schedule, lr_step_epochs=max(1, epochs // 3),
                      output_dir=str(args.workdir), device=args.device,
                      progress=not args.no_progress, workers=args.workers,
                      batch_size=args.batch_size, bf16=args.bf16,
                      cache_dir=str(args.workdir / "soft_label_cache"))
        return config

    def teacher(schedule: str) -> dict:
        return {"config": recipe(TEACHER_RECIPE, args.teacher_epochs, schedule),
                "distill": False, "role": "teacher", "schedule": schedule,
                "study": schedule == args.schedule}

    stages = {teacher_stage(args.schedule): teacher(args.schedule)}
    teacher_path = str(args.workdir / teacher_stage(args.schedule) / "best.pth")
    for short, path in STUDENT_RECIPES.items():
        for seed in range(args.seeds):
            kd = recipe(path, args.epochs, args.schedule)
            kd.update(teacher=teacher_path, soft_labels=args.soft_labels, seed=seed)
            plain = dict(kd, teacher=None, soft_labels=DEFAULTS["soft_labels"])
            for distill, config in ((False, plain), (True, kd)):
                stages[student_stage(short, distill, seed)] = {
                    "config": config, "distill": distill, "role": "student", "student": short,
                    "seed": seed, "alpha": kd["alpha"] if distill else None,
                    "temperature": kd["temperature"] if distill else None}
    if args.kd_grid:
        base = stages[student_stage(args.kd_grid, True, 0)]
        for alpha in GRID_ALPHAS:
            for temperature in GRID_TEMPERATURES:
                if (alpha, temperature) == (base["alpha"], base["temperature"]):
                    continue  # that cell is the study's own seed-0 run
                config = dict(base["config"], alpha=alpha, temperature=temperature)
                stages[student_stage(args.kd_grid, True, 0, alpha, temperature)] = {
                    **base, "config": config, "alpha": alpha, "temperature": temperature,
                    "role": "grid"}
    if args.compare_schedules:  # last: the study's results do not wait for them
        for schedule in CHOICES["lr_schedule"]:
            stages.setdefault(teacher_stage(schedule), teacher(schedule))
    for name, stage in stages.items():
        stage["config"]["name"] = name
        validate_config(stage["config"])  # resolves bf16 'auto' for this machine
        if stage["distill"] and args.soft_labels == "online":
            # The teacher then runs every step: in bf16 wherever the student trains in it.
            stage["config"]["teacher_bf16"] = stage["config"]["bf16"]
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
    started = time.perf_counter()
    summary = run(dict(config), resume=resume, distill=distill)
    exit_if_interrupted(summary, f"rerun the same command to continue ({last})")
    # Timings from metrics.csv: it spans every session of a resumed run.
    history = read_history(run_dir / "metrics.csv")
    record = {"config": config, "teacher_sha256": teacher_sha256,
              "best_miou": summary.get("best_miou"), "resumed": resume is not None,
              "train_wall_s": sum(e.get("epoch_time_s", 0.0) for e in history),
              "stage_wall_s": time.perf_counter() - started,
              "images_per_s": [e.get("images_per_s") for e in history],
              "val_miou_per_epoch": [e.get("val_miou") for e in history]}
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
    started = time.perf_counter()
    evaluate_checkpoints(checkpoints, args.dataset, "val", args.input_size, out,
                         out / "table.json", workers=args.workers, device=args.device,
                         threads=args.threads, show=False,
                         progress=not args.no_progress)
    rows = json.loads((out / "table.json").read_text())  # plain JSON types, as when reused
    for row, path in zip(rows, checkpoints, strict=True):
        assert row["checkpoint"] == str(path), (row["checkpoint"], path)
    atomic_write_text(stamp, json.dumps({"key": key, "rows": rows,
                                         "wall_s": time.perf_counter() - started}))
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
    started = time.perf_counter()
    result = ExportRun(settings).run()
    entries = result["entries"]
    atomic_write_text(stamp, json.dumps({"key": key, "entries": entries,
                                         "wall_s": time.perf_counter() - started},
                                        indent=2, default=str))
    return entries


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, metavar="SPEC",
                        help="camvid:ROOT (any spec with train and val splits works)")
    parser.add_argument("--epochs", type=int, default=12, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, help="default: --epochs")
    parser.add_argument("--seeds", type=int, default=1,
                        help="train every student with and without KD under seeds 0..N-1")
    parser.add_argument("--schedule", choices=CHOICES["lr_schedule"], default="step",
                        help="learning-rate schedule of every stage (step: the paper's)")
    parser.add_argument("--compare-schedules", action="store_true",
                        help="also train the teacher with the other schedules (same epochs)")
    parser.add_argument("--kd-grid", choices=tuple(STUDENT_RECIPES),
                        help="also distil this student (seed 0) over alpha in "
                             f"{GRID_ALPHAS} x T in {GRID_TEMPERATURES}")
    parser.add_argument("--soft-labels", choices=CHOICES["soft_labels"], default="cached",
                        help="cached: the teacher's logits of each un-augmented image, computed "
                             "once (the paper's precomputed labels); online: the teacher runs "
                             "on every augmented batch (slower, but its labels match the crop)")
    parser.add_argument("--input-size", type=int, nargs=2, default=[144, 192],
                        metavar=("H", "W"), help="training and evaluation size")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bf16", choices=("on", "off", "auto"), default="auto",
                        help="bf16 autocast + channels_last (auto: where the CPU has native "
                             "bf16)")
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
    for option in ("epochs", "teacher_epochs", "seeds", "batch_size", "threads", "calib_count"):
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
    prepare_output_dir(args.workdir, "--workdir")
    prepare_output_dir(args.out, "--out")
    args.workdir.mkdir(parents=True, exist_ok=True)
    stages = stage_configs(args)
    checkpoints = {name: run_stage(name, stage["config"], stage["distill"], args.workdir)
                   for name, stage in stages.items()}
    rows = run_evaluation(list(checkpoints.values()), args)
    exports = {} if args.skip_export else \
        {name: run_export(name, checkpoints[name], args) for name, stage in stages.items()
         if stage["role"] == "student" and stage["seed"] == 0}
    done = {name: json.loads((args.workdir / name / "done.json").read_text())
            for name in stages}
    evaluation = json.loads((args.workdir / "evaluation_done.json").read_text())
    export_wall = {name: json.loads((args.workdir / "export" / name / "done.json").read_text())
                   .get("wall_s") for name in exports}
    table = paper_report.build_table(stages, rows, exports, done, args,
                                     {"machine": machine_record(),
                                      "evaluation_wall_s": evaluation.get("wall_s"),
                                      "export_wall_s": export_wall})
    written = paper_report.write(table, args.out)
    print(paper_report.markdown(table))
    print("wrote " + ", ".join(map(str, written)), file=sys.stderr)
    return table


if __name__ == "__main__":
    run_cli(main)
