"""Export a checkpoint to ONNX, TFLite and CoreML, each proven against PyTorch fp32.

    python -m conversion.export --target all
    python -m conversion.export --target tflite --checkpoint runs/camvid_student/best.pth \\
        --calib camvid:/data/camvid --calib-count 100 --out artifacts/camvid

    python -m conversion.export --target tflite --converter litert-torch --out artifacts/lt

Every artifact gets a model contract next to it (`<file>.json`, see conversion/contract.py)
and a line in DIR/parity.json + parity.md. An artifact that misses its thresholds is not
placed in DIR and the command exits with status 1; bad input exits with status 2 and one line.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import sys
from pathlib import Path

from conversion.child_process import ConversionError
from conversion.export_settings import COREML_INPUTS, COREML_VARIANTS, PALETTE_BITS, TARGETS, \
    ExportSettings
from conversion.onnx_export import MIN_OPSET
from conversion.parity import DEFAULT_THRESHOLDS, parse_thresholds
from conversion.pipeline import DEFAULT_CHECKPOINT, ExportRun
from conversion.tflite_export import WEIGHT_GRANULARITIES
from training.compression import LITERT_EXTRA, TFLITE_CONVERTERS
from training.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, choices=(*TARGETS, "all"))
    parser.add_argument("--checkpoint", type=Path,
                        help=f"training checkpoint (default: {DEFAULT_CHECKPOINT})")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="static input size (default: the checkpoint's training size)")
    parser.add_argument("--out", type=Path, help="output directory (default: artifacts/RUN)")
    parser.add_argument("--name", help="artifact file prefix (default: the architecture)")
    parser.add_argument("--threads", type=int, default=2, help="runtime threads for latency")
    parser.add_argument("--converter", choices=TFLITE_CONVERTERS, default="onnx2tf",
                        help="TFLite converter: onnx2tf (PyTorch -> ONNX -> TFLite, the "
                             "default) or litert-torch (PyTorch -> TFLite through torch.export; "
                             f"optional extra: {LITERT_EXTRA})")
    parser.add_argument("--qat-program", type=Path, metavar="FILE.pt2",
                        help="litert-torch: the int8 TFLite of this PT2E QAT program "
                             "(training.quantize --mode qat --converter litert-torch), with no "
                             "calibration, measured against the program itself")
    data = parser.add_argument_group("calibration and parity data")
    data.add_argument("--calib", metavar="SPEC",
                      help="dataset spec (synthetic[:...], cityscapes:ROOT, camvid:ROOT, "
                           "folder:ROOT) or a .npy of uint8 (N, H, W, 3) RGB frames; default: "
                           "the checkpoint's dataset")
    data.add_argument("--calib-count", type=int, default=64, metavar="N",
                      help="calibration images, from the training split (default 64)")
    data.add_argument("--parity-data", metavar="SPEC",
                      help="labelled held-out data (default: --calib, else the checkpoint's)")
    data.add_argument("--parity-count", type=int, default=16, metavar="M",
                      help="held-out images never used for calibration (default 16)")
    model = parser.add_argument_group("model options")
    model.add_argument("--fold-normalization", action="store_true",
                       help="the model takes RGB pixel values 0..255 (uint8 for full-int8 "
                            "TFLite) and normalises itself")
    model.add_argument("--fold-argmax", action="store_true",
                       help="the model outputs the class map instead of logits")
    model.add_argument("--int16", action="store_true",
                       help="also ship TFLite int8 weights with int16 activations")
    model.add_argument("--int8-weights", choices=WEIGHT_GRANULARITIES,
                       default="per-channel",
                       help="weight scales of the int8 TFLite variants (full int8 and "
                            "dynamic range): per-channel (accurate) or per-tensor (one scale "
                            "per tensor: a smaller file, less accurate on depthwise convs)")
    model.add_argument("--coreml-input", choices=COREML_INPUTS, default="image")
    model.add_argument("--coreml-variants", default=",".join(COREML_VARIANTS),
                       help="comma-separated subset of fp16,int8,palettized")
    model.add_argument("--palette-bits", type=int, default=6, choices=PALETTE_BITS)
    model.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset (>= {MIN_OPSET})")
    gate = parser.add_argument_group("gate")
    defaults = "; ".join(f"{name}.{metric}={value}" for name, limits in DEFAULT_THRESHOLDS.items()
                         for metric, value in limits.items())
    gate.add_argument("--threshold", action="append", metavar="CLASS.METRIC=VALUE",
                      help=f"override a threshold; CLASS fp32|fp16|int8, METRIC agreement|"
                           f"miou_drop|max_abs_err (defaults: {defaults})")
    parser.add_argument("--keep-work", action="store_true",
                        help="keep the staging folder (intermediate files, converter logs)")
    return parser


def settings_from(argv: list[str] | None = None) -> ExportSettings:
    """The command line as ExportSettings, which check themselves
    (conversion/export_settings.py)."""
    args = build_parser().parse_args(argv)
    return ExportSettings(
        targets=list(TARGETS) if args.target == "all" else [args.target],
        checkpoint=args.checkpoint, input_size=tuple(args.input_size) if args.input_size else None,
        calib=args.calib, calib_count=args.calib_count, parity_data=args.parity_data,
        parity_count=args.parity_count, out=args.out, name=args.name,
        fold_normalization=args.fold_normalization, fold_argmax=args.fold_argmax,
        int16=args.int16, weight_granularity=args.int8_weights,
        coreml_input=args.coreml_input,
        coreml_variants=[v.strip() for v in args.coreml_variants.split(",") if v.strip()],
        palette_bits=args.palette_bits, thresholds=parse_thresholds(args.threshold),
        threads=args.threads, opset=args.opset, keep_work=args.keep_work,
        converter=args.converter, qat_program=args.qat_program)


def main(argv: list[str] | None = None) -> dict:
    settings = settings_from(argv)
    try:
        result = ExportRun(settings).run()
    except ConversionError as exc:  # a converter crashed: its log tail, no traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(3)
    failed = [e for e in result["entries"] if not e["passed"]]
    placed = sum(e["placed"] for e in result["entries"])
    print(f"{placed} artifacts in {result['out']} (parity.json, parity.md)", file=sys.stderr)
    if failed:
        print(f"gate: {len(failed)} artifact(s) missed their thresholds and were not placed: "
              + ", ".join(e["file"] for e in failed), file=sys.stderr)
        sys.exit(1)
    return result


if __name__ == "__main__":
    run_cli(main)
