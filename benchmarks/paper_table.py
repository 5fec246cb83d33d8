"""The paper's study on real street scenes: teacher, students with and without KD over seeds.

    python -m benchmarks.paper_table --dataset camvid:../shared/datasets/camvid
    python -m benchmarks.paper_table --dataset camvid:../shared/datasets/camvid --pilot mnv2

The defaults are the study's budget: 96x128, teacher and students 40 epochs each (students
train as long as the teacher: a KD gain measured on unfinished students says little), cosine
schedule, 3 seeds, the students' configs' KD recipe (configs/camvid_*_kd.yaml).

Stages, each reused when it already finished with the same settings (an interrupted training
stage resumes from its last.pth, so rerunning the command continues where it stopped):
  1. teacher   deeplabv3_resnet50, cross-entropy, trained once (configs/camvid_teacher_r50.yaml's
               recipe, at --teacher-output-stride); --compare-schedules also trains it with
               the two other schedules at the same epochs (last, after the students), for the
               comparison table only;
  2. students  deeplabv3lite_resnet18 and deeplabv3lite_mobilenetv2, each trained plain and
               distilled with the KD recipe (--soft-labels, --kd-loss, --alpha,
               --temperature), under --seeds seeds (seed s: the same initial weights, data
               order and augmentation with and without KD, so the KD gain is paired);
               --kd-grid adds alpha x temperature runs of one student (seed 0);
  3. evaluate  every stage on the val split: mIoU, mAE, GFLOPs, params, memory, fp32 latency;
  4. export    the seed-0 students to TFLite through conversion.export, int8 calibrated on
               train images, measured on the whole val split (latency with --threads);
  5. table     table.md, table.json and plots in --out (benchmarks.paper_report).

--pilot STUDENT runs the teacher and that student's seed 0 only: plain and once per
--pilot-recipe (default: cached KL a0.5 T2, online KL a0.5 T2, cached KL a0.5 T4), and writes
pilot.json / pilot.md (benchmarks.pilot_report): val mIoU at the best and the last epoch, train
mIoU per epoch, per-class IoU. Its runs share --workdir with the study, so the seeds reuse
the teacher, the plain seed-0 run and the chosen recipe's seed-0 run.

`--bf16 auto` trains in bf16 autocast with channels_last where the CPU has native bf16
(training.machine) and in fp32 elsewhere; the results record which. Checkpoints stay in
--workdir.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks import paper_report, pilot_report
from benchmarks.study_plan import GRID_ALPHAS, GRID_TEMPERATURES, PILOT_RECIPES, ROOT, \
    STUDENT_RECIPES, KDRecipe, StudyPlan, default_recipe, stage_configs, \
    training_order
from training.checkpoint import load_checkpoint
from training.config import CHOICES, learning_settings
from training.data import parse_dataset_spec
from training.errors import UserError, exit_if_interrupted, run_cli
from training.evaluation import evaluate_checkpoints
from training.fit import run
from training.history import HISTORY_FILE, read_history
from training.io import atomic_write_text, file_sha256, prepare_output_dir
from training.machine import machine_record

# Besides the usual cosmetic keys: the device, and the teacher's path (its hash is checked).
_ALSO_IGNORED = ("device", "teacher")


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
    summary = run(config, resume=resume, distill=distill)
    exit_if_interrupted(summary, f"rerun the same command to continue ({last})")
    # Timings from metrics.csv: it spans every session of a resumed run.
    history = read_history(run_dir / HISTORY_FILE)
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


def _reused(stamp: Path, key: dict) -> dict | None:
    """The record a finished step left in `stamp`, when it ran with the same `key`."""
    if stamp.is_file():
        record = json.loads(stamp.read_text())
        if record.get("key") == key:
            return record
    return None


def _finish(stamp: Path, key: dict, started: float, **record) -> dict:
    record = {"key": key, **record, "wall_s": time.perf_counter() - started}
    atomic_write_text(stamp, json.dumps(record, indent=2, default=str))
    return record


def run_evaluation(checkpoints: list[Path], plan: StudyPlan, split: str = "val",
                   out: Path | None = None, profile: bool = True) -> dict:
    """The paper's metric (and, with `profile`, cost) columns for every checkpoint on `split`,
    reused while the checkpoints are unchanged. Returns {"rows", "wall_s"}."""
    out = out or plan.out / "evaluation"  # small files: tables, confusions, overlays, curves
    stamp = plan.workdir / ("evaluation_done.json" if out == plan.out / "evaluation"
                            else f"evaluation_{out.name}_done.json")
    key = {"checkpoints": _fingerprint(checkpoints), "size": list(plan.input_size),
           "threads": plan.threads, "split": split, "profile": profile}
    record = _reused(stamp, key)
    if record:
        print(f"[evaluate {split}] reusing the evaluation of unchanged checkpoints",
              file=sys.stderr)
        return record
    started = time.perf_counter()
    staging = out.with_name(f".{out.name}.tmp")  # replaces `out` whole: no stale figures
    shutil.rmtree(staging, ignore_errors=True)
    evaluate_checkpoints(checkpoints, plan.dataset, split, plan.input_size, staging,
                         staging / "table.json", workers=plan.workers, device=plan.device,
                         threads=plan.threads, profile=profile, show=False,
                         progress=plan.progress)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)
    rows = json.loads((out / "table.json").read_text())  # plain JSON types, as when reused
    for row, path in zip(rows, checkpoints, strict=True):
        assert row["checkpoint"] == str(path), (row["checkpoint"], path)
    return _finish(stamp, key, started, rows=rows)


def run_export(name: str, checkpoint: Path, plan: StudyPlan) -> dict:
    """TFLite fp32/fp16/dynamic/int8 of one student, calibrated on train, measured on val."""
    from conversion.parity import parse_thresholds
    from conversion.pipeline import ExportRun, ExportSettings
    out = plan.workdir / "export" / name
    key = {"checkpoint": _fingerprint([checkpoint]), "size": list(plan.input_size),
           "calib_count": plan.calib_count, "threads": plan.threads}
    record = _reused(out / "done.json", key)
    if record:
        print(f"[export {name}] reusing {out}", file=sys.stderr)
        return record
    val_images = len(parse_dataset_spec(plan.dataset).build("val"))
    # Every variant is measured and reported; none is held back by the gate here, because the
    # table shows what each precision costs, failing or not (`passed` records the verdict).
    settings = ExportSettings(targets=["tflite"], checkpoint=checkpoint,
                              input_size=tuple(plan.input_size), calib=plan.dataset,
                              calib_count=plan.calib_count, parity_data=plan.dataset,
                              parity_count=val_images, out=out, threads=plan.threads,
                              thresholds=parse_thresholds(None))
    print(f"[export {name}] TFLite, int8 calibrated on {plan.calib_count} train images",
          file=sys.stderr)
    started = time.perf_counter()
    return _finish(out / "done.json", key, started, entries=ExportRun(settings).run()["entries"])


def _recipe(text: str) -> KDRecipe:
    try:
        return KDRecipe.parse(text)
    except UserError as error:  # argparse prints only this kind's message
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv=None) -> StudyPlan:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, metavar="SPEC",
                        help="camvid:ROOT (any spec with train and val splits works)")
    parser.add_argument("--epochs", type=int, default=40, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, help="default: --epochs")
    parser.add_argument("--teacher-output-stride", type=int, choices=(8, 16), default=16,
                        help="8: a teacher with 4x finer logits (stride ceiling 64.3 against "
                             "48.1 at 96x128, about 3.4x its FLOPs); its distilled runs are "
                             "named ..._os8teacher_sN, the plain runs are shared")
    parser.add_argument("--seeds", type=int, default=3,
                        help="train every student with and without KD under seeds 0..N-1")
    parser.add_argument("--schedule", choices=CHOICES["lr_schedule"], default="cosine",
                        help="learning-rate schedule of every stage (step: the paper's x0.1 "
                             "every 30 of 90 epochs, scaled to every epochs // 3)")
    parser.add_argument("--compare-schedules", action="store_true",
                        help="also train the teacher with the other schedules (same epochs)")
    parser.add_argument("--kd-grid", choices=tuple(STUDENT_RECIPES),
                        help="also distil this student (seed 0) over alpha in "
                             f"{GRID_ALPHAS} x T in {GRID_TEMPERATURES}")
    recipe = default_recipe()
    kd = parser.add_argument_group("the study's KD recipe (default: configs/camvid_*_kd.yaml)")
    kd.add_argument("--soft-labels", choices=CHOICES["soft_labels"], default=recipe.soft_labels,
                    help="cached: the teacher's logits of each un-augmented image, computed "
                         "once (the paper's precomputed labels); online: the teacher runs on "
                         "every augmented batch (slower, but its labels match the crop)")
    kd.add_argument("--kd-loss", choices=CHOICES["kd_loss"], default=recipe.kd_loss)
    kd.add_argument("--alpha", type=float, default=recipe.alpha)
    kd.add_argument("--temperature", type=float, default=recipe.temperature)
    parser.add_argument("--pilot", choices=tuple(STUDENT_RECIPES),
                        help="only the teacher and this student's seed 0: plain and each "
                             "--pilot-recipe (pilot.json / pilot.md)")
    parser.add_argument("--pilot-recipe", action="append", type=_recipe,
                        metavar="SOFT:LOSS:ALPHA:T",
                        help="a pilot recipe, repeatable (default: "
                             + ", ".join(f"{r.soft_labels}:{r.kd_loss}:{r.alpha:g}:"
                                         f"{r.temperature:g}" for r in PILOT_RECIPES) + ")")
    parser.add_argument("--input-size", type=int, nargs=2, default=[96, 128],
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
    return StudyPlan(
        dataset=args.dataset, workdir=args.workdir, out=args.out,
        input_size=tuple(args.input_size), epochs=args.epochs,
        teacher_epochs=args.teacher_epochs, teacher_output_stride=args.teacher_output_stride,
        seeds=args.seeds, schedule=args.schedule,
        recipe=KDRecipe(args.soft_labels, args.kd_loss, args.alpha, args.temperature),
        compare_schedules=args.compare_schedules, kd_grid=args.kd_grid, pilot=args.pilot,
        pilot_recipes=tuple(args.pilot_recipe or PILOT_RECIPES), batch_size=args.batch_size,
        bf16=args.bf16, device=args.device, threads=args.threads, workers=args.workers,
        calib_count=args.calib_count, skip_export=args.skip_export,
        progress=not args.no_progress)


def run_study(plan: StudyPlan) -> dict:
    """Train every stage of `plan` (reusing finished ones), evaluate, export, and write the
    study's table, or the pilot's when `plan.pilot` is set."""
    prepare_output_dir(plan.workdir, "--workdir")
    prepare_output_dir(plan.out, "--out")
    plan.workdir.mkdir(parents=True, exist_ok=True)
    stages = stage_configs(plan)
    trained = {name: run_stage(name, stages[name]["config"], stages[name]["distill"],
                               plan.workdir) for name in training_order(stages)}
    checkpoints = {name: trained[name] for name in stages}
    done = {name: json.loads((plan.workdir / name / "done.json").read_text())
            for name in stages}
    if plan.pilot:
        return run_pilot_report(plan, stages, checkpoints, done)
    evaluation = run_evaluation(list(checkpoints.values()), plan)
    exports = {} if plan.skip_export else \
        {name: run_export(name, checkpoints[name], plan)
         for name, stage in stages.items() if stage["role"] == "student" and stage["seed"] == 0}
    table = paper_report.build_table(
        stages, evaluation["rows"], {name: e["entries"] for name, e in exports.items()}, done,
        plan, {"machine": machine_record(), "evaluation_wall_s": evaluation.get("wall_s"),
               "export_wall_s": {name: e.get("wall_s") for name, e in exports.items()}})
    written = paper_report.write(table, plan.out) + ship_models(plan, exports)
    print(paper_report.markdown(table))
    print("wrote " + ", ".join(map(str, written)), file=sys.stderr)
    return table


def ship_models(plan: StudyPlan, exports: dict) -> list[Path]:
    """Copy each exported seed-0 student's int8 TFLite and its contract to out/models/STAGE/,
    so anyone can score them on their own data (`python -m conversion.run ... --labels`).
    Only artifacts that passed the parity gate were placed by the export, so only those ship.
    The contract's precision picks calibrated int8: `*_int8.tflite` also matches the
    dynamic-range twin, which would double the commit for a model nobody asked for."""
    from conversion.contract import contract_path
    written = []
    for name in exports:
        for artifact in sorted((plan.workdir / "export" / name).glob("*.tflite")):
            contract = contract_path(artifact)
            if json.loads(contract.read_text())["artifact"].get("precision") != "int8":
                continue
            target = plan.out / "models" / name
            target.mkdir(parents=True, exist_ok=True)
            for source in (artifact, contract):
                temporary = target / f".{source.name}.tmp"
                shutil.copyfile(source, temporary)
                os.replace(temporary, target / source.name)
                written.append(target / source.name)
    return written


def run_pilot_report(plan: StudyPlan, stages: dict, checkpoints: dict, done: dict) -> dict:
    """Each pilot run at its best and its last epoch, on val and on train (overfitting)."""
    pilot = [name for name, stage in stages.items() if stage["role"] == "pilot"]
    paths = [p for name in pilot for p in (checkpoints[name], checkpoints[name].parent /
                                           "last.pth")]
    evaluations = {split: run_evaluation(paths, plan, split, plan.out / f"pilot_{split}",
                                         profile=False)["rows"] for split in ("val", "train")}
    histories = {name: read_history(plan.workdir / name / HISTORY_FILE) for name in pilot}
    report = pilot_report.build(plan, stages, done, histories, evaluations,
                                machine_record())
    written = pilot_report.write(report, plan.out)
    print(pilot_report.markdown(report))
    print("wrote " + ", ".join(map(str, written)), file=sys.stderr)
    return report


def main(argv=None) -> dict:
    return run_study(parse_args(argv))


if __name__ == "__main__":
    run_cli(main)
