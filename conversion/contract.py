"""The model contract: one JSON document next to every exported artifact.

The Android and iOS apps read this file instead of copying constants by hand. It says how to
turn a camera frame into the model's input and what the output means:

    input      name, shape, layout (NHWC | NCHW), dtype, colour order, `kind` (tensor | image),
               normalization {in_model, pixel_scale, mean, std}, quantization {scale, zero_point}
               or null, and for CoreML image inputs the `image_preprocessing` {scale, bias}
               that CoreML applies itself
    output     name, shape, layout (NHWC | NCHW for logits, NHW for a class map), dtype,
               semantics (logits | class_map), quantization or null
    classes    num_classes, names, palette ([r, g, b] per class), ignore_index
    source     checkpoint path and sha256, architecture, training dataset spec
    export     input size, folding flags, calibration set, tool versions, other settings
    parity     the numbers measured against PyTorch fp32 on held-out images, and `passed`

Preparing one RGB frame, resized to the input's height and width (see `prepare_input`):
    x = pixel (0..255, as float)
    if not normalization.in_model:  x = (x * pixel_scale - mean[c]) / std[c]
    if quantization:                q = clamp(round(x / scale) + zero_point) in the input dtype
and reading the output: logits are dequantized as (q - zero_point) * scale when quantized;
argmax over the class axis gives the class map. Normalization constants come from
training/preprocessing.py, the project's single preprocessing source.

`SCHEMA_VERSION` changes whenever a field changes meaning or disappears; `SCHEMA` is the JSON
Schema (draft 2020-12) that `validate` enforces with jsonschema and that
`python -m conversion.contract --schema` prints for the apps' own checks.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
from jsonschema import Draft202012Validator, validators

from training.errors import UserError, run_cli
from training.io import atomic_write_text

SCHEMA_VERSION = 1
SUFFIX = ".json"  # contract of `model_int8.tflite` is `model_int8.tflite.json`

_NUMBER = {"type": "number"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_SHAPE = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}
_QUANT = {"type": ["object", "null"], "required": ["scale", "zero_point"],
          "properties": {"scale": {"type": "number", "exclusiveMinimum": 0},
                         "zero_point": {"type": "integer"}}, "additionalProperties": False}
_TRIPLE = {"type": "array", "items": _NUMBER, "minItems": 3, "maxItems": 3}
_DTYPES = ["float32", "float16", "int8", "uint8", "int16", "int32", "int64"]


def _obj(required: dict, optional: dict | None = None, closed: bool = True) -> dict:
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}, "additionalProperties": not closed}


SCHEMA: dict = _obj({
    "schema_version": {"type": "integer", "const": SCHEMA_VERSION},
    "artifact": _obj({
        "file": {"type": "string", "minLength": 1},
        "target": {"enum": ["onnx", "tflite", "coreml"]},
        "precision": {"type": "string", "minLength": 1},
        "size_bytes": {"type": "integer", "minimum": 1},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    }),
    "input": _obj({
        "name": {"type": "string", "minLength": 1},
        "shape": _SHAPE,
        "layout": {"enum": ["NHWC", "NCHW"]},
        "dtype": {"enum": _DTYPES},
        "color": {"enum": ["RGB"]},
        "kind": {"enum": ["tensor", "image"]},
        "normalization": _obj({"in_model": {"type": "boolean"}, "pixel_scale": _NUMBER,
                               "mean": _TRIPLE, "std": _TRIPLE}),
        "quantization": _QUANT,
    }, {"image_preprocessing": {"type": ["object", "null"], "required": ["scale", "bias"],
                                "properties": {"scale": _NUMBER, "bias": _TRIPLE}}}),
    "output": _obj({
        "name": {"type": "string", "minLength": 1},
        "shape": _SHAPE,
        "layout": {"enum": ["NHWC", "NCHW", "NHW"]},
        "dtype": {"enum": _DTYPES},
        "semantics": {"enum": ["logits", "class_map"]},
        "quantization": _QUANT,
    }),
    "classes": _obj({
        "num_classes": {"type": "integer", "minimum": 2},
        "names": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "palette": {"type": "array", "items": {"type": "array", "minItems": 3, "maxItems": 3,
                                               "items": {"type": "integer", "minimum": 0,
                                                         "maximum": 255}}},
        "ignore_index": {"type": "integer"},
    }),
    "source": _obj({
        "checkpoint": {"type": "string"},
        "checkpoint_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "arch": {"type": "object"},
        "dataset": {"type": ["string", "null"]},
    }),
    "export": _obj({
        "input_size": {"type": "array", "items": {"type": "integer", "minimum": 1},
                       "minItems": 2, "maxItems": 2},
        "fold_normalization": {"type": "boolean"},
        "fold_argmax": {"type": "boolean"},
        "calibration": {"type": ["object", "null"]},
        "tools": {"type": "object"},
        "created": {"type": "string"},
    }, closed=False),
    "parity": _obj({
        "reference": {"type": "string"},
        "images": {"type": "integer", "minimum": 0},
        "held_out": {"type": "object"},
        "agreement": _NULLABLE_NUMBER,
        "max_abs_err": _NULLABLE_NUMBER,
        "miou_artifact": _NULLABLE_NUMBER,
        "miou_reference": _NULLABLE_NUMBER,
        "latency_ms": _NULLABLE_NUMBER,
        "threads": {"type": "integer", "minimum": 1},
        "passed": {"type": "boolean"},
        "skipped": {"type": ["string", "null"]},
    }, {"agreement_confident": _NULLABLE_NUMBER, "confident_share": _NULLABLE_NUMBER},
        closed=False),
})

def _finite_number(checker, value) -> bool:
    """JSON numbers are finite; jsonschema would accept a Python NaN as a number."""
    return Draft202012Validator.TYPE_CHECKER.is_type(value, "number") and math.isfinite(value)


_Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number))
_VALIDATOR = _Validator(SCHEMA)


def _problem(error) -> str:
    """One line per violation, naming the field as the apps' code would."""
    where = "contract" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                 for p in error.absolute_path)
    kind, value = error.validator, error.instance
    if kind == "required":
        missing = next(k for k in error.validator_value if k not in value)
        return f"{where}.{missing}: missing"
    if kind == "additionalProperties":
        extra = sorted(set(value) - set(error.schema.get("properties", {})))
        return f"{where}.{extra[0]}: unknown field"
    if kind == "type":
        wanted = error.validator_value
        names = " or ".join([wanted] if isinstance(wanted, str) else wanted)
        return f"{where}: expected {names}, got {json.dumps(value)[:60]}"
    if kind == "const":
        return f"{where}: must be {error.validator_value!r}, got {value!r}"
    if kind == "enum":
        return f"{where}: {value!r} is not one of {error.validator_value}"
    if kind == "pattern":
        return f"{where}: {str(value)[:20]!r} does not match {error.validator_value}"
    return f"{where}: {error.message}"


class ContractError(UserError):
    """A contract that does not follow the schema."""


def validate(contract: dict) -> dict:
    """Raise ContractError listing every violation; return the contract when it is valid."""
    problems = [_problem(error) for error in
                sorted(_VALIDATOR.iter_errors(contract), key=lambda e: list(e.absolute_path))]
    if not problems:
        problems += _consistency(contract)
    if problems:
        raise ContractError(f"invalid model contract ({len(problems)} problems): "
                            + "; ".join(problems[:8]))
    return contract


def _consistency(contract: dict) -> list[str]:
    """Rules across fields that JSON Schema cannot state."""
    problems = []
    classes, inp, out = contract["classes"], contract["input"], contract["output"]
    if len(classes["names"]) != classes["num_classes"]:
        problems.append("classes.names: one name per class expected")
    if len(classes["palette"]) != classes["num_classes"]:
        problems.append("classes.palette: one colour per class expected")
    if 0 <= classes["ignore_index"] < classes["num_classes"]:
        problems.append("classes.ignore_index: must not be a class index")
    if len(inp["shape"]) != 4 or inp["shape"][inp["layout"].index("C")] != 3:
        problems.append(f"input.shape {inp['shape']} is not a 4-D {inp['layout']} RGB tensor")
    elif [inp["shape"][inp["layout"].index(a)] for a in "HW"] != contract["export"]["input_size"]:
        problems.append(f"input.shape {inp['shape']} ({inp['layout']}) is not at "
                        f"export.input_size {contract['export']['input_size']}")
    quantized, dtype = inp["quantization"] is not None, inp["dtype"]
    if quantized and dtype not in ("int8", "uint8", "int16"):
        problems.append(f"input: a {dtype} input cannot be quantized")
    if not quantized and (dtype in ("int8", "int16")
                          or dtype == "uint8" and not inp["normalization"]["in_model"]):
        problems.append(f"input: a {dtype} input needs its quantization (or, for uint8 pixels, "
                        f"the normalization in the model)")
    if out["semantics"] == "class_map":
        if out["layout"] != "NHW" or len(out["shape"]) != 3:
            problems.append("output: a class map has layout NHW and a 3-D shape")
    else:
        channel = out["layout"].index("C") if "C" in out["layout"] else None
        if channel is None or len(out["shape"]) != 4 \
                or out["shape"][channel] != classes["num_classes"]:
            problems.append(f"output: logits shape {out['shape']} ({out['layout']}) has no "
                            f"axis of {classes['num_classes']} classes")
    return problems


def classes_block(dataset: dict) -> dict:
    """The contract's `classes` block from a checkpoint's dataset record
    (`training.checkpoint.dataset_record`): what an app labels and colours outputs with."""
    return {"num_classes": len(dataset["class_names"]), "names": list(dataset["class_names"]),
            "palette": [list(map(int, colour)) for colour in dataset["palette"]],
            "ignore_index": int(dataset["ignore_index"])}


def contract_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + SUFFIX)


def write_contract(artifact: str | Path, contract: dict) -> Path:
    path = contract_path(artifact)
    atomic_write_text(path, json.dumps(validate(contract), indent=2) + "\n")
    return path


def load_contract(path: str | Path) -> dict:
    path = Path(path)
    if path.suffix != SUFFIX:
        path = contract_path(path)
    try:
        contract = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: JSON, UTF-8
        raise ContractError(f"cannot read model contract {path}: {exc}") from None
    try:
        return validate(contract)
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}") from None


def size_bytes(path: str | Path) -> int:
    """An artifact's size: a file's, or for a folder (.mlpackage) its files' together."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def artifact_sha256(path: str | Path) -> str:
    """A file's sha256; for a folder (.mlpackage), over its relative paths and contents."""
    from training.io import file_sha256
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(item.relative_to(path)).encode() + b"\0")
        digest.update(file_sha256(item).encode())
    return digest.hexdigest()


def check_artifact(artifact: str | Path, contract: dict) -> None:
    """Refuse an artifact that is not the file its contract was written for: the contract
    records the size and sha256 of what the gate measured (a swapped or damaged model
    would run with another model's preprocessing and classes)."""
    artifact = Path(artifact)
    recorded = contract["artifact"]
    size = size_bytes(artifact)
    if size != recorded["size_bytes"] or artifact_sha256(artifact) != recorded["sha256"]:
        raise ContractError(f"{artifact} is not the model its contract "
                            f"{contract_path(artifact).name} describes: the contract records "
                            f"{recorded['size_bytes']} bytes, sha256 {recorded['sha256'][:12]}..."
                            f", the file has {size} bytes"
                            + ("" if size != recorded["size_bytes"] else
                               f", sha256 {artifact_sha256(artifact)[:12]}...")
                            + "; export it again, or restore the file the contract came with")


# ---- preparing inputs and reading outputs exactly as the contract says (apps do the same)

_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def prepare_input(images: np.ndarray, spec: dict) -> np.ndarray:
    """uint8 RGB frames (N, H, W, 3), already at the input size -> the tensor `spec` wants."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3) frames, got {images.dtype} {images.shape}")
    x = images.astype(np.float32)
    norm = spec["normalization"]
    if not norm["in_model"]:
        mean = np.asarray(norm["mean"], np.float32)
        std = np.asarray(norm["std"], np.float32)
        x = (x * np.float32(norm["pixel_scale"]) - mean) / std
    if spec["layout"] == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    quant = spec["quantization"]
    if quant is not None:
        low, high = _RANGES[spec["dtype"]]
        x = np.clip(np.round(x / quant["scale"]) + quant["zero_point"], low, high)
    return np.ascontiguousarray(x.astype(spec["dtype"]))


def read_output(raw: np.ndarray, spec: dict) -> np.ndarray:
    """The artifact's raw output -> float32 NCHW logits, or an int64 (N, H, W) class map."""
    if spec["semantics"] == "class_map":
        return raw.astype(np.int64).reshape(raw.shape[0], *raw.shape[-2:]) \
            if raw.ndim == 4 else raw.astype(np.int64)
    quant = spec["quantization"]
    logits = raw.astype(np.float32)
    if quant is not None:
        logits = (logits - quant["zero_point"]) * np.float32(quant["scale"])
    return np.ascontiguousarray(logits.transpose(0, 3, 1, 2) if spec["layout"] == "NHWC"
                                else logits)


def read_classes(raw: np.ndarray, spec: dict) -> np.ndarray:
    """The artifact's raw output -> an int64 (N, H, W) class map. Logits are argmaxed as they
    come: dequantization (scale > 0) keeps their order, ties included, so skipping it and the
    NHWC -> NCHW copy gives `read_output(...).argmax(1)` exactly, several times faster."""
    if spec["semantics"] == "class_map":
        return read_output(raw, spec)
    if spec["quantization"] is not None and not spec["quantization"]["scale"] > 0:
        return read_output(raw, spec).argmax(1)
    return raw.argmax(-1 if spec["layout"] == "NHWC" else 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print the model-contract JSON Schema, or "
                                                 "validate contract files.")
    parser.add_argument("--schema", action="store_true", help="print the JSON Schema")
    parser.add_argument("files", nargs="*", type=Path, help="contracts (or artifacts) to check")
    args = parser.parse_args(argv)
    if args.schema or not args.files:
        json.dump({"$schema": "https://json-schema.org/draft/2020-12/schema",
                   "title": f"segkit model contract v{SCHEMA_VERSION}", **SCHEMA},
                  sys.stdout, indent=2)
        print()
    for path in args.files:
        contract = load_contract(path)
        if path.suffix != SUFFIX:  # an artifact: also the file its contract was written for
            if not path.exists():
                raise ContractError(f"{path}: no such artifact (pass the contract itself, "
                                    f"{contract_path(path).name}, to check only the contract)")
            check_artifact(path, contract)
        print(f"ok: {path}")


if __name__ == "__main__":
    run_cli(main)
