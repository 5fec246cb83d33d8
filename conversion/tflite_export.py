"""ONNX -> TFLite through onnx2tf: fp32, fp16, dynamic-range int8, full-integer int8, int16x8.

onnx2tf runs in a child process (`python -m conversion.tflite_export ...`): it imports
TensorFlow, which must not share a process with triton (torch.export imports it: the pair
segfaults, see conversion/child_process.py), and
its logs go to a file instead of the user's terminal. The child is made offline-safe:
  - onnx2tf downloads `calibration_image_sample_data_20x128x128x3_float32.npy` for its own
    test inference unless that file is in the working directory: we write it from the real
    calibration images;
  - full-integer calibration uses our N images (custom_input_op_name_np_data_path), never
    onnx2tf's MS-COCO sample;
  - onnx2tf calls the `onnxsim` executable and silently skips simplification when it is not
    on PATH: the venv's bin directory is put on PATH, and the log says if it is still missing;
  - any other attempt to reach the network raises instead of hanging.
The TFLite input is NHWC (onnx2tf transposes the graph).
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from conversion.child_process import run_converter
from training.preprocessing import MEAN, STD

SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
# int8 weight scales onnx2tf offers: one per output channel (accurate) or one per tensor.
WEIGHT_GRANULARITIES = ("per-channel", "per-tensor")
# The one table of TFLite variants: precision -> (onnx2tf's file suffix, our file suffix).
# Every exporter, the deployment benchmark and the apps' asset names follow it.
VARIANTS = {"fp32": ("float32", "fp32"), "fp16": ("float16", "fp16"),
            "dynamic-int8": ("dynamic_range_quant", "dynamic_int8"),
            "int8": ("full_integer_quant", "int8"),
            "int16x8": ("full_integer_quant_with_int16_act", "int16x8")}
SHIPPED = ("fp32", "fp16", "dynamic-int8", "int8")  # int16x8 only with --int16


def file_suffix(precision: str) -> str:
    """`model_<suffix>.tflite`: the name a variant's file gets."""
    return VARIANTS[precision][1]


def convert_to_tflite(onnx_path: Path, work_dir: Path, calibration: np.ndarray, *,
                      fold_normalization: bool, int16: bool = False,
                      weight_granularity: str = "per-channel",
                      timeout_s: float = 3600) -> dict[str, Path]:
    """Every TFLite variant of `onnx_path`, calibrated on uint8 NHWC `calibration` frames.

    Returns {precision: path} for the variants onnx2tf produced (see VARIANTS).
    """
    work_dir, onnx_path = Path(work_dir).resolve(), Path(onnx_path).resolve()  # child: cwd=work
    work_dir.mkdir(parents=True, exist_ok=True)
    calib_path = work_dir / "calibration.npy"
    np.save(calib_path, calibration.astype(np.float32) / 255.0)  # onnx2tf wants 0..1
    out_dir, log = work_dir / "tflite", work_dir / "onnx2tf.log"
    args = ["--onnx", str(onnx_path), "--calib", str(calib_path), "--out", str(out_dir)]
    args += ["--fold-normalization"] * fold_normalization + ["--int16"] * int16
    args += ["--quant-type", weight_granularity]
    fp32 = out_dir / f"{Path(onnx_path).stem}_float32.tflite"
    run_converter("onnx2tf", "conversion.tflite_export", args, log, cwd=work_dir,
                  timeout_s=timeout_s, succeeded=fp32.is_file)
    produced = {}
    stem = Path(onnx_path).stem
    for precision, (suffix, _) in VARIANTS.items():
        path = out_dir / f"{stem}_{suffix}.tflite"
        if path.is_file() and path.stat().st_size > 0:  # empty: skipped on purpose
            produced[precision] = path
    return produced


# ---- the child process -------------------------------------------------------------------

def _no_network(*args, **kwargs):
    raise ConnectionError("conversion.tflite_export is offline-only: onnx2tf tried to download "
                          f"{args[0] if args else 'something'}")


def _calibrate_only_shipped_variants(int16: bool) -> None:
    """onnx2tf 1.28 calibrates four integer variants, each a full pass over the calibration
    set. We ship full-integer int8 (and, on request, full-integer int16x8); the others (float
    in/out) return an empty model before they calibrate, which onnx2tf writes as an empty
    file (raising instead would also skip full int8: onnx2tf tries both in one block)."""
    import tensorflow as tf

    from_saved_model = tf.lite.TFLiteConverter.from_saved_model

    def selective(*args, **kwargs):
        converter = from_saved_model(*args, **kwargs)
        convert = converter.convert

        def convert_if_shipped():
            if converter.representative_dataset is not None:
                wide = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
                if converter.inference_input_type == tf.float32 or (
                        wide in converter.target_spec.supported_ops and not int16):
                    return b""  # not shipped: skipped before calibration
            return convert()

        converter.convert = convert_if_shipped
        return converter

    tf.lite.TFLiteConverter.from_saved_model = selective


def _write_sample_file(calibration: np.ndarray) -> None:
    """onnx2tf's own 20x128x128x3 test sample, made from our real calibration frames."""
    import tensorflow as tf
    frames = calibration[np.arange(20) % len(calibration)]
    resized = tf.image.resize(frames, (128, 128)).numpy().astype(np.float32)
    np.save(SAMPLE_FILE, np.clip(resized, 0.0, 1.0))


def _child(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="onnx2tf in a clean process (internal)")
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--calib", required=True, help=".npy float32 NHWC frames in 0..1")
    parser.add_argument("--out", required=True)
    parser.add_argument("--fold-normalization", action="store_true")
    parser.add_argument("--int16", action="store_true", help="also int16-activation variants")
    parser.add_argument("--quant-type", choices=WEIGHT_GRANULARITIES,
                        default="per-channel", help="int8 weight scales")
    args = parser.parse_args(argv)

    bin_dir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    simplify = shutil.which("onnxsim") is not None
    print(json.dumps({"onnxsim_on_path": simplify, "cwd": os.getcwd()}), flush=True)

    import requests
    requests.get = requests.post = _no_network  # onnx2tf imports the module, not the names
    import onnx2tf
    _calibrate_only_shipped_variants(args.int16)

    calibration = np.load(args.calib)
    _write_sample_file(calibration)
    if args.fold_normalization:
        # The model normalises itself: feed it pixel values 0..255 ((x - 0) / (1/255)).
        mean, std, input_dtype = [[[[0.0, 0.0, 0.0]]]], [[[[1 / 255] * 3]]], "uint8"
    else:
        mean, std, input_dtype = [[[list(MEAN)]]], [[[list(STD)]]], "int8"
    onnx2tf.convert(
        input_onnx_file_path=args.onnx, output_folder_path=args.out,
        output_dynamic_range_quantized_tflite=True, output_integer_quantized_tflite=True,
        custom_input_op_name_np_data_path=[["image", args.calib, mean, std]],
        input_quant_dtype=input_dtype, output_quant_dtype="int8", quant_type=args.quant_type,
        not_use_onnxsim=not simplify, non_verbose=True)


if __name__ == "__main__":
    _child()
