"""Compression: pruning, int8 simulation of the TFLite scheme, and PT2E quantization.

The names below are shared with conversion/: QAT trains for one TFLite converter
(`training.quantize --converter`) and `conversion.export --converter` picks the one that
converts, so both read the converter names and the litert-torch extra from here.
"""
from __future__ import annotations

import importlib.util

TFLITE_CONVERTERS = ("onnx2tf", "litert-torch")
LITERT_EXTRA = "pip install -e '.[litert]'"


def require_litert_torch() -> str:
    """litert-torch's version, or one clear UserError naming the install command."""
    from training.errors import UserError
    if importlib.util.find_spec("litert_torch") is None:
        raise UserError(f"--converter litert-torch needs the optional extra: {LITERT_EXTRA}")
    from importlib import metadata
    return metadata.version("litert-torch")
