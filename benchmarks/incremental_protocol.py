"""The incremental-learning protocol: three tasks, five methods, joint training as upper bound.

    python -m benchmarks.incremental_protocol [--size 64 128] [--train 32] [--test 16]
        [--base-epochs 8] [--epochs 3] [--memory 8] [--out benchmarks/results]

Task 0  clear weather; WITHHELD classes are not labelled (ignore), the model has 17 classes.
Task 1  fog + rain (new domain), same 17 classes.
Task 2  night, WITHHELD classes added; only they are labelled (the old ones are ignore: the
        background-shift setting, where the new annotations do not cover the old classes).

Every method starts from the same task-0 model and runs tasks 1 and 2 through
`training.continual.increment.increment`. After each step, every task's test set is scored with its
own classes (task 2: all 19); a class the model does not have yet scores IoU 0 where it
occurs. Reported: the mIoU matrix, average mIoU after the last step, forgetting (mean over
tasks 0 and 1 of best-before-last minus last) and compute (training seconds, images seen).
Joint: one 19-class model trained on the three tasks' data at once, same labels.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader

from training.checkpoint import dataset_record, load_checkpoint, make_checkpoint, \
    model_from_checkpoint
from training.config import DEFAULTS
from training.continual.classes import RemapLabels, label_lookup
from training.data import eval_transforms, parse_dataset_spec
from training.engine import Trainer
from training.validation import evaluate_model
from training.continual.increment import increment
from training.io import atomic_save, atomic_write_text, prepare_output_dir
from training.tasks import SupervisedTask
from training.models import build_model
from training.sampling import AugmentedDataset
from training.fit import build_train_set
from training.errors import run_cli

WITHHELD = ["truck", "bus"]
METHODS = ("finetune", "ewc", "replay", "ewc+replay", "lwf")


def task_specs(size, train: int, test: int) -> list[dict]:
    common = f"synthetic:size={size[0]}x{size[1]},train={train},val={test},test={test}"
    names = parse_dataset_spec(common).class_names
    old = [n for n in names if n not in WITHHELD]
    return [
        {"name": "clear", "spec": f"{common},seed=0,condition=clear", "classes": old,
         "ignore": WITHHELD, "new": []},
        {"name": "fog+rain", "spec": f"{common},seed=1,condition=fog+rain", "classes": old,
         "ignore": WITHHELD, "new": []},
        {"name": "night+new", "spec": f"{common},seed=2,condition=night", "classes": names,
         "ignore": old, "new": WITHHELD, "test_classes": names},
    ]


class InDatasetIds(nn.Module):
    """Logits in the dataset's class order; classes the model lacks can never win."""

    def __init__(self, model: nn.Module, model_classes: list[str], dataset_classes: list[str]):
        super().__init__()
        self.model, self.num = model, len(dataset_classes)
        self.positions = [dataset_classes.index(n) for n in model_classes]

    def forward(self, x):
        logits = self.model(x)
        full = logits.new_full((x.shape[0], self.num, *logits.shape[-2:]), float("-inf"))
        full[:, self.positions] = logits
        return full


def score(checkpoint_path: str, tasks: list[dict]) -> list[float]:
    checkpoint = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint)
    results = []
    for task in tasks:
        spec = parse_dataset_spec(task["spec"])
        classes = task.get("test_classes", task["classes"])
        ignored = [n for n in spec.class_names if n not in classes]
        lookup = label_lookup(spec.class_names, spec.class_names, [], spec.ignore_index)
        lookup[[spec.class_names.index(n) for n in ignored]] = spec.ignore_index
        data = RemapLabels(spec.build("test"), lookup, spec.class_names, spec.ignore_index,
                           task["name"], eval_transforms(tuple(checkpoint["config"]["input_size"])))
        wrapped = InDatasetIds(model, checkpoint["dataset"]["class_names"], spec.class_names)
        metrics = evaluate_model(wrapped, DataLoader(data, batch_size=8), spec.num_classes,
                                 spec.ignore_index, progress=False)
        results.append(round(metrics["miou"], 2))
    return results


def _task_set(task: dict, config: dict, classes: list[str]):
    spec = parse_dataset_spec(task["spec"])
    base = RemapLabels(spec.build("train"),
                       label_lookup(spec.class_names, classes, task["ignore"], spec.ignore_index),
                       spec.class_names, spec.ignore_index, task["name"])
    augmented = build_train_set(dict(config, dataset=task["spec"]), spec)
    return AugmentedDataset(base, augmented.transform, config["seed"])


def train_from_scratch(tasks: list[dict], classes: list[str], config: dict, run_dir: Path,
                       name: str) -> tuple[str, float]:
    """Task 0 alone (17 classes) or all tasks at once (joint, 19 classes)."""
    spec = parse_dataset_spec(tasks[0]["spec"])
    record = dataset_record(spec)
    record.update(class_names=classes, num_classes=len(classes),
                  palette=[record["palette"][spec.class_names.index(n)] for n in classes])
    torch.manual_seed(config["seed"])
    model = build_model(config["model"], num_classes=len(classes))
    train_set = ConcatDataset([_task_set(t, config, classes) for t in tasks])
    train_set.set_epoch = lambda epoch: [d.set_epoch(epoch) for d in train_set.datasets]
    config = dict(config, output_dir=str(run_dir), name=name)
    start = time.perf_counter()
    trainer = Trainer(config, SupervisedTask(model, spec.ignore_index), model, train_set, None,
                      record, run_dir / name, torch.device("cpu"))
    trainer.fit()
    path = run_dir / name / "model.pth"
    atomic_save(make_checkpoint(model, record, config, history=[
        {"task": 0, "data": " + ".join(t["spec"] for t in tasks), "method": "train",
         "classes_added": classes, "metrics": {}}]), path)
    return str(path), time.perf_counter() - start


def run(args) -> dict:
    tasks = task_specs(args.size, args.train, args.test)
    config = dict(DEFAULTS, input_size=list(args.size), epochs=args.base_epochs, batch_size=8,
                  workers=0, lr=5e-3, lr_schedule="poly", progress=False, device="cpu")
    work = Path(args.work)
    base, base_time = train_from_scratch(tasks[:1], tasks[0]["classes"], config, work, "task0")
    after_base = score(base, tasks)
    results = {"tasks": [t["name"] for t in tasks], "withheld": WITHHELD, "settings": {k: str(v) if isinstance(v, Path) else v
                                                      for k, v in vars(args).items()},
               "base": {"miou": after_base, "train_s": round(base_time, 1)}, "methods": {}}
    for method in args.methods:
        checkpoint, matrix, seconds = base, [after_base], 0.0
        for index, task in enumerate(tasks[1:], start=1):
            step = increment(checkpoint, task["spec"], method, work / f"{method}_t{index}",
                             new_classes=task["new"], ignore_classes=task["ignore"],
                             memory=args.memory, ewc_lambda=args.ewc_lambda, fisher_images=16,
                             epochs=args.epochs, lr=args.lr, batch_size=8, workers=0,
                             progress=False, device="cpu")
            checkpoint, seconds = step["checkpoint"], seconds + step["time_s"]
            matrix.append(score(checkpoint, tasks))
        results["methods"][method] = summarise(matrix, seconds, args)
        print(method, results["methods"][method], flush=True)
    joint_config = dict(config, epochs=args.base_epochs)
    joint, joint_time = train_from_scratch(tasks, tasks[2]["classes"], joint_config, work,
                                           "joint")
    final = score(joint, tasks)
    results["joint"] = {"miou": final, "average_miou": round(sum(final) / len(final), 2),
                        "train_s": round(joint_time, 1)}
    return results


def summarise(matrix: list[list[float]], seconds: float, args) -> dict:
    last = matrix[-1]
    forgetting = [max(row[t] for row in matrix[t:-1]) - last[t] for t in range(len(last) - 1)]
    return {"miou_after_step": matrix, "average_miou": round(sum(last) / len(last), 2),
            "forgetting": round(sum(forgetting) / len(forgetting), 2),
            "new_task_miou": last[-1], "train_s": round(seconds, 1),
            "new_images_seen": 2 * args.epochs * args.train}


def markdown(results: dict) -> str:
    tasks = results["tasks"]
    lines = ["| method | " + " | ".join(f"after t{s}: " + "/".join(tasks)
                                        for s in range(len(tasks))) +
             " | avg mIoU | forgetting | new-task mIoU | train s |",
             "|---" * (len(tasks) + 5) + "|"]
    for method, r in results["methods"].items():
        cells = [" / ".join(f"{v:.1f}" for v in row) for row in r["miou_after_step"]]
        lines.append(f"| {method} | " + " | ".join(cells) +
                     f" | {r['average_miou']:.1f} | {r['forgetting']:.1f} | "
                     f"{r['new_task_miou']:.1f} | {r['train_s']:.0f} |")
    j = results["joint"]
    lines.append("| joint (upper bound) | " + " | ".join("" for _ in tasks[:-1]) + " | " +
                 " / ".join(f"{v:.1f}" for v in j["miou"]) +
                 f" | {j['average_miou']:.1f} | - | {j['miou'][-1]:.1f} | {j['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = results["tasks"]
    figure = Figure(figsize=(4 * len(tasks), 3.2))
    FigureCanvasAgg(figure)
    for t, name in enumerate(tasks):
        axis = figure.add_subplot(1, len(tasks), t + 1)
        for method, r in results["methods"].items():
            axis.plot(range(len(tasks)), [row[t] for row in r["miou_after_step"]], marker="o",
                      label=method)
        axis.axhline(results["joint"]["miou"][t], color="k", linestyle="--", label="joint")
        axis.set(title=f"test set of task {t}: {name}", xlabel="after step", ylabel="mIoU",
                 xticks=range(len(tasks)))
    figure.axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=2, default=[64, 128])
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--test", type=int, default=16)
    parser.add_argument("--base-epochs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--memory", type=int, default=8)
    parser.add_argument("--ewc-lambda", type=float, default=5e4)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--work", default="runs/incremental_protocol")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    prepare_output_dir(args.work, "--work")
    prepare_output_dir(args.out, "--out")
    torch.set_num_threads(1)
    results = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "incremental_protocol.json", json.dumps(results, indent=1))
    (args.out / "incremental_protocol.md").write_text(markdown(results))
    plot(results, args.out / "incremental_protocol.png")
    print(markdown(results))


if __name__ == "__main__":
    run_cli(main)
