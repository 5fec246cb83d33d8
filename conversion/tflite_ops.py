"""What is inside a .tflite: its ops, whether XNNPACK takes all of them, and which ops a phone's
GPU delegate cannot run.

- The op list is read from the flatbuffer (ai_edge_litert.tools.flatbuffer_utils).
- XNNPACK coverage is asked of the runtime itself: LiteRT's CompiledModel on the CPU
  accelerator reports `is_fully_accelerated()`, false when an op falls back to the reference
  CPU kernels.
- GPU compatibility is checked against the op list of TFLite's GPU delegate
  (tensorflow/lite/tools/versioning/gpu_compatibility.cc). TensorFlow 2.21's own
  `tf.lite.experimental.Analyzer.analyze(gpu_compatibility=True)` no longer runs that check
  (it reports every model, BROADCAST_TO and ARG_MAX included, as compatible), so the report
  names its method; op-specific limits (shapes, ranks, axes) are not checked.
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

GPU_OPS = frozenset("""
ABS ADD ADD_N ATAN2 AVERAGE_POOL_2D BATCH_MATMUL CAST CEIL CONCATENATION CONV_2D COS CUMSUM
DENSIFY DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU
EMBEDDING_LOOKUP EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER
GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGISTIC LSTM MAXIMUM
MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD PADV2 POW PRELU
QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR
RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX SPACE_TO_DEPTH SPLIT
SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STABLEHLO_CLAMP STRIDED_SLICE SUB SUM TANH TILE
TRANSPOSE TRANSPOSE_CONV
""".split())
GPU_METHOD = ("op list against TFLite's GPU delegate (gpu_compatibility.cc); op-specific "
              "limits not checked")


def op_counts(path: str | Path) -> dict[str, int]:
    """{op name: count} over every subgraph of the model."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils
    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    model = flatbuffer_utils.read_model(str(path))
    counts: Counter = Counter()
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            code = model.operatorCodes[operator.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            name = names.get(builtin, f"BUILTIN_{builtin}")
            counts[f"CUSTOM:{code.customCode.decode()}" if name == "CUSTOM" else name] += 1
    return dict(sorted(counts.items()))


@contextmanager
def _native_stderr_quiet():
    """LiteRT's native loader logs every vendor plugin it cannot find (OpenVINO, ...) on fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def xnnpack_fully_delegated(path: str | Path) -> bool | None:
    """Whether every op runs in XNNPACK (None when the runtime cannot tell here)."""
    try:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        with _native_stderr_quiet():  # its teardown logs too: release it in here
            model = CompiledModel.from_file(str(path), hardware_accel=HardwareAccelerator.CPU)
            accelerated = bool(model.is_fully_accelerated())
            del model
            return accelerated
    except (ImportError, RuntimeError):
        return None


def gpu_delegate_report(ops: dict[str, int]) -> dict:
    """{'compatible', 'unsupported_ops', 'method'} for the GPU delegate."""
    unsupported = sorted(op for op in ops if op not in GPU_OPS)
    return {"compatible": not unsupported, "unsupported_ops": unsupported,
            "method": GPU_METHOD}


def inspect_tflite(path: str | Path) -> dict:
    """The three facts above for one file, as the parity report and contract record them."""
    ops = op_counts(path)
    return {"ops": ops, "xnnpack_fully_delegated": xnnpack_fully_delegated(path),
            "gpu_delegate": gpu_delegate_report(ops)}
