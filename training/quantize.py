"""Int8 in PyTorch: measure what static PTQ costs, or fine-tune with QAT to win it back.

    python -m training.quantize --checkpoint S.pth --mode ptq
    python -m training.quantize --checkpoint S.pth --mode qat --finetune-epochs 5 \
        --teacher T.pth --out runs/student_qat.pth
    python -m conversion.export --target tflite --checkpoint runs/student_qat.pth --out DIR

`ptq` calibrates on training images and prints the validation mIoU in fp32 and in int8 two
ways: `ptq_int8_miou`, TFLite's scheme simulated with fake quantization
(training/compression/quantization.py, what the shipped int8 TFLite model does), and `pt2e_int8_miou`, PyTorch's maintained static PTQ
(PT2E through torchao, training/compression/pt2e.py).

`qat` fine-tunes under the TFLite-scheme fake quantization (distilling from --teacher when
given) and writes a plain fp32 checkpoint whose weights are robust to int8:
`conversion.export` quantizes it to int8 TFLite as any other. QAT follows the shipped scheme,
not PT2E's: PT2E's X86 graph (uint8 activations) cannot be converted to TFLite, and training
against TFLite's own rounding is what makes its PTQ lose less.
"""
from __future__ import annotations

import argparse
import sys

from training.compression.runs import measure_int8, quantization_aware_training
from training.errors import UserError, run_cli

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


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.mode not in MODES:
        raise UserError(f"unknown quantization mode {args.mode!r}; choose one of: "
                        f"{', '.join(MODES)}")
    if args.mode == "ptq":
        result = measure_int8(args.checkpoint, args.calib_batches)
    else:
        result = quantization_aware_training(args.checkpoint, args.finetune_epochs,
                                             args.teacher, args.lr, args.out,
                                             args.calib_batches)
    print(", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in result.items()), file=sys.stderr)
    return result


if __name__ == "__main__":
    run_cli(main)
