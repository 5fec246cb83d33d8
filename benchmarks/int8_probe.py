"""Does int8 pay off on this CPU? The TFLite runtime's own int8 speed-up, without our models.

    python -m benchmarks.int8_probe [--input-size 512 1024] [--threads 2] [--json FILE]

`python -m benchmarks.deployment_table` compares our student's int8 and fp32 TFLite files. When
the ratio disappoints, the question is whether the model/conversion or the machine is to blame.
This probe takes onnx2tf and our models out of the picture: Keras' MobileNetV2 (random
weights; speed does not depend on their values), converted by TensorFlow's own converter to
fp32 and to full-integer int8, timed with ai-edge-litert (XNNPACK) at the same size and thread
count. It also lists the CPU's int8 dot-product instructions: x86 XNNPACK's int8 kernels gain
most with VNNI (avx512_vnni / avx_vnni), ARM's with dotprod/i8mm (asimddp / i8mm).
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import contextlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np

from training.io import atomic_write_text, prepare_output_file
from training.machine import machine_record
from training.timing import median_ms
from training.errors import UserError, require_at_least_one, run_cli


def reference_models(size: tuple[int, int], width: float, calibration_frames: int) -> dict:
    """{"fp32": bytes, "int8": bytes}: Keras MobileNetV2 features through TFLiteConverter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # only here: the import is slow and must not reach torch users

    model = tf.keras.applications.MobileNetV2(input_shape=(*size, 3), alpha=width,
                                              include_top=False, weights=None)
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(calibration_frames):
            yield [rng.random((1, *size, 3), dtype=np.float32)]

    # The converter prints its SavedModel's signature, and warns that int8 inputs have no
    # statistics although the representative dataset supplies them.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        fp32 = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        int8 = converter.convert()
    return {"fp32": fp32, "int8": int8}


def latency_ms(model: bytes, threads: int, runs: int) -> tuple[float, str]:
    """Median invoke time with XNNPACK (the interpreter's default delegate), and input dtype."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    # One warm-up call: XNNPACK packs the weights on the first invoke.
    return median_ms(interpreter.invoke, runs, warmup=1), np.dtype(detail["dtype"]).name


def probe(size: tuple[int, int], threads: int, runs: int = 10, width: float = 1.0,
          calibration_frames: int = 4) -> dict:
    models = reference_models(size, width, calibration_frames)
    rows = {}
    for precision, model in models.items():
        milliseconds, dtype = latency_ms(model, threads, runs)
        rows[precision] = {"latency_ms": milliseconds, "input_dtype": dtype,
                           "size_mb": len(model) / 2**20}
    return {
        "model": f"keras MobileNetV2 (alpha {width}), TFLiteConverter",
        "input_size": list(size), "threads": threads, "runs": runs,
        **machine_record(),
        "rows": rows,
        "int8_over_fp32": rows["int8"]["latency_ms"] / rows["fp32"]["latency_ms"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-size", type=int, nargs=2, default=(512, 1024),
                        metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--width", type=float, default=1.0, help="MobileNetV2 width multiplier")
    parser.add_argument("--json", type=Path, help="save the result as JSON")
    args = parser.parse_args(argv)
    if args.json:
        prepare_output_file(args.json, "--json")
    if min(args.input_size) < 32:
        raise UserError(f"--input-size must be at least 32x32, got {args.input_size}")
    require_at_least_one(threads=args.threads, runs=args.runs)
    result = probe((args.input_size[0], args.input_size[1]), args.threads, args.runs,
                   args.width)
    flags = ", ".join(result["int8_dot_product_flags"]) or "none"
    print(f"{result['model']} at {args.input_size[0]}x{args.input_size[1]}, "
          f"{args.threads} threads, {result['machine']}; int8 dot-product flags: {flags}")
    for precision, row in result["rows"].items():
        print(f"  {precision:<5} {row['latency_ms']:8.1f} ms  {row['size_mb']:6.2f} MB")
    print(f"  int8 / fp32 latency: {result['int8_over_fp32']:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
        print(f"saved {args.json}")
    return result


if __name__ == "__main__":
    run_cli(main)
