"""Int8 in PyTorch: measure what static PTQ costs, or fine-tune with QAT to win it back.

    python -m training.quantize --checkpoint S.pth --mode ptq
    python -m training.quantize --checkpoint S.pth --mode qat --finetune-epochs 5 \
        --teacher T.pth --out runs/student_qat.pth
    python -m training.quantize --checkpoint S.pth --mode qat --converter litert-torch \
        --finetune-epochs 3 --out runs/student_qat.pt2
    python -m conversion.export --target tflite --checkpoint runs/student_qat.pth --out DIR

`ptq` calibrates on training images and prints the validation mIoU in fp32 and in int8 two
ways: `ptq_int8_miou`, TFLite's scheme simulated with fake quantization
(training/compression/quantization.py, what onnx2tf's int8 TFLite model does), and
`pt2e_int8_miou`, PyTorch's maintained static PTQ (PT2E through torchao,
training/compression/pt2e.py).

`qat` fine-tunes (distilling from --teacher when given) in one of two ways:
- `--converter onnx2tf` (default): under the TFLite-scheme fake quantization, writing a plain
  fp32 checkpoint whose weights are robust to int8; `conversion.export` calibrates and
  quantizes it again as any other checkpoint.
- `--converter litert-torch`: in PT2E with litert-torch's quantizer, writing the trained and
  converted model as a torch.export program; `conversion.export --converter litert-torch
  --qat-program OUT.pt2` makes the int8 TFLite from it with the ranges QAT learned, no second
  calibration (needs the optional extra: pip install -e '.[litert]').
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import sys

from training.compression import TFLITE_CONVERTERS
from training.compression.runs import measure_int8, pt2e_qat, quantization_aware_training
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
    parser.add_argument("--out", default=None, help="qat: output checkpoint (.pth), or "
                        "with --converter litert-torch the QAT program (.pt2)")
    parser.add_argument("--converter", choices=TFLITE_CONVERTERS, default="onnx2tf",
                        help="qat: onnx2tf trains under a simulation of its TFLite scheme and "
                             "writes fp32 weights (onnx2tf calibrates them again); litert-torch "
                             "trains in PT2E and keeps the learned ranges (conversion.export "
                             "--converter litert-torch --qat-program OUT.pt2)")
    return parser


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.mode not in MODES:
        raise UserError(f"unknown quantization mode {args.mode!r}; choose one of: "
                        f"{', '.join(MODES)}")
    if args.mode == "ptq":
        result = measure_int8(args.checkpoint, args.calib_batches)
    elif args.converter == "litert-torch":
        result = pt2e_qat(args.checkpoint, args.finetune_epochs, args.teacher, args.lr, args.out)
        print(f"convert it: python -m conversion.export --target tflite --converter "
              f"litert-torch --checkpoint {args.checkpoint} --qat-program {result['out']}",
              file=sys.stderr)
    else:
        result = quantization_aware_training(args.checkpoint, args.finetune_epochs,
                                             args.teacher, args.lr, args.out,
                                             args.calib_batches)
    print(", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in result.items()), file=sys.stderr)
    return result


if __name__ == "__main__":
    run_cli(main)
