"""The KD pilot's report (benchmarks.paper_table --pilot): one student, seed 0, full budget.

Each run is read at its best epoch (best.pth, chosen on val) and at its last (last.pth):
best-epoch selection on val flatters val, so a recipe should win at both. Both checkpoints are
also scored on the un-augmented train split: a large train - val gap means the plain student
overfits CamVid's 367 images (where KD should help); a small one, that it still underfits.
The per-epoch curves (val mIoU, and the running train mIoU over augmented batches) come from
each run's metrics.csv.

    python -m benchmarks.pilot_report benchmarks/results/paper_table/pilot.json  # re-render
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
from pathlib import Path

from matplotlib.figure import Figure

from benchmarks.paper_report import rerender, write_report
from training.errors import run_cli

def _by_checkpoint(rows: list[dict]) -> dict[str, dict]:
    return {row["checkpoint"]: row for row in rows}


def build(plan, stages: dict, done: dict, histories: dict, evaluations: dict,
          machine: dict) -> dict:
    """pilot.json's content. `evaluations`: split -> evaluation rows of best.pth and last.pth
    of every pilot run; `histories`: run -> metrics.csv rows."""
    val, train = (_by_checkpoint(evaluations[split]) for split in ("val", "train"))
    runs = []
    for name, stage in stages.items():
        if stage["role"] != "pilot":
            continue
        best = str(plan.workdir / name / "best.pth")
        last = str(plan.workdir / name / "last.pth")
        history = histories[name]
        runs.append({
            "stage": name, "recipe": stage["recipe"] or "plain",
            "best_epoch": val[best]["epoch"], "last_epoch": val[last]["epoch"],
            "val_miou_best": val[best]["miou"], "val_miou_last": val[last]["miou"],
            "train_miou_best": train[best]["miou"], "train_miou_last": train[last]["miou"],
            "per_class_iou_best": val[best]["per_class_iou"],
            "per_class_iou_last": val[last]["per_class_iou"],
            "train_wall_s": done[name].get("train_wall_s"),
            "val_miou_per_epoch": [e.get("val_miou") for e in history],
            "train_miou_per_epoch": [e.get("train_miou") for e in history],
        })
    plain = runs[0]  # stage_configs lists the plain run first
    for run in runs:
        run["gain_best"] = run["val_miou_best"] - plain["val_miou_best"]
        run["gain_last"] = run["val_miou_last"] - plain["val_miou_last"]
    teacher = next(n for n, s in stages.items() if s["role"] == "teacher")
    return {"student": plan.pilot, "seed": 0, "dataset": plan.dataset,
            "input_size": list(plan.input_size), "epochs": plan.epochs,
            "teacher_epochs": plan.teacher_epochs, "schedule": plan.schedule,
            "batch_size": plan.batch_size, "teacher": teacher,
            "teacher_val_miou": done[teacher].get("best_miou"),
            "machine": machine, "runs": runs, "choice": choose(runs)}


def choose(runs: list[dict]) -> dict:
    """The recipe that beats plain at both the best and the last epoch by the widest margin
    (the smaller of its two gains); None when no recipe wins at both."""
    winners = [r for r in runs[1:] if r["gain_best"] > 0 and r["gain_last"] > 0]
    if not winners:
        return {"recipe": None, "why": "no recipe beats the plain run at both the best and "
                                       "the last epoch"}
    pick = max(winners, key=lambda r: min(r["gain_best"], r["gain_last"]))
    return {"recipe": pick["recipe"],
            "why": f"beats plain at both epochs (best {pick['gain_best']:+.2f}, last "
                   f"{pick['gain_last']:+.2f}), the widest worst-case margin of "
                   f"{len(winners)} recipe(s) that win at both"}


def _f(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    height, width = report["input_size"]
    machine = report["machine"]
    lines = [f"KD pilot: {report['student']} seed {report['seed']}, {height}x{width}, "
             f"{report['epochs']} student epochs (teacher {report['teacher_epochs']}, val "
             f"{_f(report['teacher_val_miou'])}), schedule `{report['schedule']}`, batch "
             f"{report['batch_size']}. Measured on {machine.get('machine', '?')} "
             f"({', '.join(machine.get('cpu_flags', []))}).", "",
             "| recipe | val mIoU best (epoch) | val mIoU last | gain best | gain last | "
             "train mIoU best / last | training min |", "|---|---|---|---|---|---|---|"]
    for run in report["runs"]:
        lines.append(f"| {run['recipe']} | {_f(run['val_miou_best'])} ({run['best_epoch']}) | "
                     f"{_f(run['val_miou_last'])} | {run['gain_best']:+.2f} | "
                     f"{run['gain_last']:+.2f} | {_f(run['train_miou_best'])} / "
                     f"{_f(run['train_miou_last'])} | {_f((run['train_wall_s'] or 0) / 60, 0)} |")
    names = list(report["runs"][0]["per_class_iou_last"])
    lines += ["", "Per-class val IoU at the last epoch:", "",
              "| recipe | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {run['recipe']} | " + " | ".join(_f(run["per_class_iou_last"][n])
                                                 for n in names) + " |"
              for run in report["runs"]]
    choice = report["choice"]
    lines += ["", f"Choice: `{choice['recipe']}`: {choice['why']}." if choice["recipe"]
              else f"Choice: none: {choice['why']}."]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    """Val mIoU (solid) and running train mIoU (dashed) per epoch, one colour per recipe."""
    figure = Figure(figsize=(8, 4.5))
    axes = figure.subplots()
    for index, run in enumerate(report["runs"]):
        colour = f"C{index}"
        for key, style in (("val_miou_per_epoch", "-"), ("train_miou_per_epoch", "--")):
            values = run[key]
            points = [(i + 1, v) for i, v in enumerate(values) if v is not None]
            if points:
                axes.plot(*zip(*points), style, color=colour,
                          label=run["recipe"] if style == "-" else None)
    axes.set_xlabel("epoch")
    axes.set_ylabel("mIoU (%): val solid, train (augmented batches) dashed")
    axes.set_title(f"KD pilot, {report['student']} seed {report['seed']}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")


def write(report: dict, out: Path) -> list[Path]:
    return write_report(out, "pilot", report, markdown(report), "pilot.png", plot)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Re-render pilot.md and pilot.png from a "
                                                 "saved pilot.json.")
    parser.add_argument("pilot", type=Path)

    def refresh(report: dict) -> list[Path]:
        report["choice"] = choose(report["runs"])
        return []
    rerender(parser.parse_args(argv).pilot, refresh, write)


if __name__ == "__main__":
    run_cli(main)
