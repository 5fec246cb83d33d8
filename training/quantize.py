"""Int8 in PyTorch: measure what static PTQ costs, or fine-tune with QAT to win it back.

    python -m training.quantize --checkpoint S.pth --mode ptq
    python -m training.quantize --checkpoint S.pth --mode qat --finetune-epochs 5 \
        --teacher T.pth --out runs/student_qat.pth
    python -m conversion.export --target tflite --checkpoint runs/student_qat.pth --out DIR

`ptq` calibrates on training images and prints the validation mIoU in fp32 and in int8 two
ways: `ptq_int8_miou`, TFLite's scheme simulated with fake quantization (training/quantization.py,
what the shipped int8 TFLite model does), and `pt2e_int8_miou`, PyTorch's maintained static PTQ
(PT2E through torchao, training/pt2e.py).

`qat` fine-tunes under the TFLite-scheme fake quantization (distilling from --teacher when
given) and writes a plain fp32 checkpoint whose weights are robust to int8:
`conversion.export` quantizes it to int8 TFLite as any other. QAT follows the shipped scheme,
not PT2E's: PT2E's X86 graph (uint8 activations) cannot be converted to TFLite, and training
against TFLite's own rounding is what makes its PTQ lose less.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.data import parse_dataset_spec
from training.data.transforms import eval_transforms
from training.errors import UserError, run_cli
from training.evaluation import evaluate_model
from training.io import atomic_save
from training.quantization import attach

MODES = ("ptq", "qat")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--mode", required=True, help=" | ".join(MODES))
    parser.add_argument("--calib-batches", type=int, default=4,
                        help="training batches that set the activation ranges")
    parser.add_argument("--finetune-epochs", type=int, default=1, help="qat: epochs")
    parser.add_argument("--teacher", default=None, help="qat: distil from this checkpoint")
    parser.add_argument("--lr", type=float, default=None,
                        help="qat learning rate (default: a tenth of the checkpoint's)")
    parser.add_argument("--out", default=None, help="qat: output checkpoint")
    return parser


def loaders(checkpoint: dict):
    config = checkpoint.get("config", {})
    spec = parse_dataset_spec(checkpoint["dataset"]["spec"])
    transform = eval_transforms(tuple(config.get("input_size", (64, 128))))
    batch = config.get("batch_size", 8)
    split = "val" if "val" in spec.splits else "test"
    return (DataLoader(spec.build("train", transform=transform), batch_size=batch),
            DataLoader(spec.build(split, transform=transform), batch_size=batch), spec)


def first_batches(loader, count: int) -> list:
    """The calibration set: the loader's first `count` batches, read once."""
    return [batch for _, batch in zip(range(count), loader)]


def int8_miou(model, calibration: list, val, spec) -> float:
    """Static PTQ of `model` (TFLite's scheme, calibrated on `calibration`), then its val mIoU."""
    sim = attach(model).calibrate(calibration)
    try:
        return evaluate_model(model, val, spec.num_classes, spec.ignore_index,
                              progress=False)["miou"]
    finally:
        sim.detach()


def pt2e_int8_miou(model, calibration: list, val, spec) -> float:
    """Static PTQ through PT2E (torchao's X86 quantizer), then its val mIoU."""
    from training.pt2e import quantize_static
    quantized = quantize_static(model, calibration, example=calibration[0][0])
    return evaluate_model(quantized, val, spec.num_classes, spec.ignore_index,
                          progress=False)["miou"]


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.mode not in MODES:
        raise UserError(f"unknown quantization mode {args.mode!r}; choose one of: "
                        f"{', '.join(MODES)}")
    if args.calib_batches < 1:
        raise UserError(f"--calib-batches must be >= 1, got {args.calib_batches}")
    torch.manual_seed(0)
    checkpoint = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(checkpoint)
    train, val, spec = loaders(checkpoint)
    calibration = first_batches(train, args.calib_batches)
    fp32 = evaluate_model(model, val, spec.num_classes, spec.ignore_index, progress=False)["miou"]
    result = {"fp32_miou": fp32, "ptq_int8_miou": int8_miou(model, calibration, val, spec)}
    if args.mode == "ptq":
        result["pt2e_int8_miou"] = pt2e_int8_miou(model, calibration, val, spec)
    if args.mode == "qat":
        from training import train as training_loop
        out = Path(args.out) if args.out else Path(args.checkpoint).with_name(
            f"{Path(args.checkpoint).stem}_qat.pth")
        config = dict(checkpoint["config"], epochs=args.finetune_epochs, teacher=args.teacher,
                      lr=args.lr or checkpoint["config"]["lr"] / 10,
                      output_dir=str(out.parent), name=out.stem + "_run")
        sim = attach(model).calibrate(calibration)
        try:
            summary = training_loop.run(config, distill=bool(args.teacher), initial_model=model)
        finally:
            sim.detach()
        trained = load_checkpoint(summary["best"])  # fp32 weights: the hooks never saved
        qat_model = model_from_checkpoint(trained)
        result["qat_fp32_miou"] = evaluate_model(qat_model, val, spec.num_classes,
                                                 spec.ignore_index, progress=False)["miou"]
        result["qat_int8_miou"] = int8_miou(qat_model, calibration, val, spec)
        trained["quantization"] = {"mode": "qat", "source": str(args.checkpoint), **result}
        atomic_save(trained, out)
        result["out"] = str(out)
    print(", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in result.items()), file=sys.stderr)
    return result


if __name__ == "__main__":
    run_cli(main)
