"""Incremental learning: adapt a checkpoint to a new domain or new classes without the old data.

    python -m training.incremental --checkpoint runs/clear/best.pth \\
        --new-data synthetic:size=64x128,train=32,val=16,condition=fog+rain --method ewc+replay
    python -m training.incremental --checkpoint runs/inc1/incremented.pth \\
        --new-data synthetic:condition=night --new-classes rider bicycle --method lwf

Methods: finetune (plain cross-entropy), ewc (diagonal-Fisher penalty toward the old weights),
replay (an exemplar memory of old images mixed into the batches), ewc+replay, lwf
(distillation of the old model's old-class outputs). The first increment needs the old data
(the checkpoint's dataset spec) once, to estimate the Fisher and pick the memory; both are
stored in the output checkpoint (`ewc`, `replay`), so later increments need only new data.

Writes OUT/incremented.pth: the model (classifier grown when --new-classes), the dataset
record with the grown class list and palette (what conversion.export turns into the model
contract), `history` (one entry per task), and the EWC / replay state for the next step.
OUT/last.pth and best.pth are the training loop's own checkpoints of this step.
"""

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import sys
from pathlib import Path

from training.continual.increment import METHODS, increment
from training.errors import run_cli


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="the model to adapt (.pth)")
    parser.add_argument("--new-data", required=True, help="dataset spec of the new task")
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--out", help="run folder (default runs/<checkpoint run>_<method>)")
    group = parser.add_argument_group("classes")
    group.add_argument("--new-classes", nargs="+", default=[], metavar="NAME",
                       help="classes of the new data to add to the model")
    group.add_argument("--ignore-classes", nargs="+", default=[], metavar="NAME",
                       help="classes of the new data to treat as unlabelled")
    group = parser.add_argument_group("method")
    group.add_argument("--memory", type=int, help="replay: exemplars kept (default 32)")
    group.add_argument("--ewc-lambda", type=float, default=1e4)
    group.add_argument("--lwf-weight", type=float, default=1.0)
    group.add_argument("--replay-ratio", type=float, default=0.25,
                       help="least share of each epoch drawn from the memory")
    group.add_argument("--fisher-images", type=int, default=64)
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=5)
    group.add_argument("--lr", type=float, default=1e-3)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--workers", type=int)
    group.add_argument("--seed", type=int)
    group.add_argument("--device", choices=("auto", "cpu", "cuda"))
    group.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = args.out or str(Path("runs") / f"{Path(args.checkpoint).parent.name}_"
                                         f"{args.method.replace('+', '_')}")
    result = increment(args.checkpoint, args.new_data, args.method, out,
                       args.new_classes, args.ignore_classes, args.memory, args.ewc_lambda,
                       args.lwf_weight, args.replay_ratio, args.fisher_images,
                       epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                       workers=args.workers, seed=args.seed, device=args.device,
                       progress=args.progress)
    print(f"wrote {result['checkpoint']} (new-task val mIoU "
          f"{result['metrics'].get('miou', float('nan')):.1f}, {result['time_s']:.0f} s)",
          file=sys.stderr)
    return result


if __name__ == "__main__":
    run_cli(main)
