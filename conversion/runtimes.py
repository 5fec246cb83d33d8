"""Every runtime behind one call: uint8 RGB frames in, logits or a class map out.

    runtime = open_runtime("model_int8.tflite", threads=2)
    logits = runtime(frames)          # frames: uint8 (N, H, W, 3); logits: float32 (N, C, H, W)
    runtime.input_spec, runtime.output_spec   # the contract's "input" / "output" blocks

Each runtime prepares its input and reads its output with `conversion.contract`'s
`prepare_input` / `read_output`, driven by the same input/output description that goes into
the model contract. So the parity check exercises exactly the preprocessing (normalisation,
NHWC/NCHW, quantization) that the apps will implement from the contract.
"""
from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import torch
from torch import nn

from conversion.contract import prepare_input, read_output
from training.timing import median_ms
from training.preprocessing import MEAN, STD

_NUMPY_DTYPES = {np.float32: "float32", np.float16: "float16", np.int8: "int8",
                 np.uint8: "uint8", np.int16: "int16", np.int32: "int32", np.int64: "int64"}


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run here (e.g. CoreML outside macOS); the message says why."""


def normalization(in_model: bool) -> dict:
    return {"in_model": bool(in_model), "pixel_scale": 1 / 255, "mean": list(MEAN),
            "std": list(STD)}


def dtype_name(dtype) -> str:
    return _NUMPY_DTYPES[np.dtype(dtype).type]


def io_spec(name: str, shape, dtype, layout: str, quantization=None, **extra) -> dict:
    return {"name": name, "shape": [int(s) for s in shape], "layout": layout,
            "dtype": dtype_name(dtype), "quantization": quantization, **extra}


def _quant(scale: float, zero_point: int, dtype) -> dict | None:
    if scale == 0.0 or np.dtype(dtype).kind == "f":
        return None
    return {"scale": float(scale), "zero_point": int(zero_point)}


def _output_semantics(shape) -> tuple[str, str]:
    return ("class_map", "NHW") if len(shape) == 3 else ("logits", "")


class Runtime:
    """Subclasses set input_spec / output_spec and implement `invoke` (one prepared tensor)."""

    target = "?"
    input_spec: dict
    output_spec: dict
    threads: int = 1

    def invoke(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        outputs = [read_output(self.invoke(prepare_input(frames[i:i + 1], self.input_spec)),
                               self.output_spec) for i in range(len(frames))]
        return np.concatenate(outputs)

    def latency_ms(self, runs: int = 10, warmup: int = 2) -> float:
        """Median time of one `invoke` on a prepared frame (pre/post-processing excluded)."""
        height, width = self.frame_size
        frame = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
        x = prepare_input(frame, self.input_spec)
        return median_ms(lambda: self.invoke(x), runs, warmup)

    @property
    def frame_size(self) -> tuple[int, int]:
        shape, layout = self.input_spec["shape"], self.input_spec["layout"]
        return shape[layout.index("H")], shape[layout.index("W")]


class TorchRuntime(Runtime):
    """The PyTorch reference: NCHW float32, normalised outside the model unless folded."""

    target = "pytorch"

    def __init__(self, model: nn.Module, input_size: tuple[int, int], threads: int = 1,
                 normalization_in_model: bool = False):
        self.model, self.threads = model.eval(), threads
        self.input_spec = io_spec("image", (1, 3, *input_size), np.float32, "NCHW",
                                  color="RGB", kind="tensor",
                                  normalization=normalization(normalization_in_model))
        classes = getattr(model, "num_classes", None)
        self.output_spec = io_spec("logits", (1, classes or 1, *input_size), np.float32, "NCHW",
                                   semantics="logits")

    def invoke(self, x: np.ndarray) -> np.ndarray:
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                return self.model(torch.from_numpy(x)).numpy()
        finally:
            torch.set_num_threads(previous)


class OnnxRuntime(Runtime):
    target = "onnx"

    def __init__(self, path: str | Path, threads: int = 1, normalization_in_model: bool = False):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.threads = threads
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_spec = io_spec(inp.name, inp.shape, _ort_dtype(inp.type), "NCHW",
                                  color="RGB", kind="tensor",
                                  normalization=normalization(normalization_in_model))
        semantics, layout = _output_semantics(out.shape)
        self.output_spec = io_spec(out.name, out.shape, _ort_dtype(out.type), layout or "NCHW",
                                   semantics=semantics)

    def invoke(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_spec["name"]: x})[0]


def _ort_dtype(type_string: str):
    return {"tensor(float)": np.float32, "tensor(float16)": np.float16,
            "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
            "tensor(int64)": np.int64}[type_string]


class LiteRTRuntime(Runtime):
    """ai-edge-litert's interpreter; NHWC input, quantized input/output handled by the spec."""

    target = "tflite"

    def __init__(self, path: str | Path, threads: int = 1, normalization_in_model: bool = False):
        from ai_edge_litert.interpreter import Interpreter
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.threads = threads
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self._in, self._out = inp["index"], out["index"]
        self.input_spec = io_spec(inp["name"], inp["shape"], inp["dtype"], "NHWC",
                                  _quant(*inp["quantization"], inp["dtype"]), color="RGB",
                                  kind="tensor",
                                  normalization=normalization(normalization_in_model))
        semantics, layout = _output_semantics(out["shape"])
        self.output_spec = io_spec(out["name"], out["shape"], out["dtype"], layout or "NHWC",
                                   _quant(*out["quantization"], out["dtype"]),
                                   semantics=semantics)

    def invoke(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._in, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out).copy()


class CoreMLRuntime(Runtime):
    """coremltools' MLModel.predict: macOS only. Specs come from coreml_export's inspection."""

    target = "coreml"

    def __init__(self, path: str | Path, input_spec: dict, output_spec: dict, threads: int = 1):
        if platform.system() != "Darwin":
            raise RuntimeUnavailable(f"CoreML models run only on macOS (MLModel.predict); this "
                                     f"is {platform.system()}, so numeric CoreML parity is "
                                     f"skipped here and the spec is validated instead")
        import coremltools as ct
        self.model = ct.models.MLModel(str(path))
        self.input_spec, self.output_spec, self.threads = input_spec, output_spec, threads

    def invoke(self, x: np.ndarray) -> np.ndarray:
        if self.input_spec["kind"] == "image":
            from PIL import Image
            x = Image.fromarray(x[0])
        result = self.model.predict({self.input_spec["name"]: x})
        return np.asarray(result[self.output_spec["name"]])

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if self.input_spec["kind"] != "image":
            return super().__call__(frames)
        # CoreML takes the image itself and applies the ImageType's scale and bias.
        return np.concatenate([read_output(self.invoke(frames[i:i + 1]), self.output_spec)
                               for i in range(len(frames))])


def open_runtime(path: str | Path, threads: int = 1, normalization_in_model: bool = False,
                 **coreml_specs) -> Runtime:
    """The runtime for an artifact, chosen by its extension."""
    suffix = Path(path).suffix
    if suffix == ".onnx":
        return OnnxRuntime(path, threads, normalization_in_model)
    if suffix == ".tflite":
        return LiteRTRuntime(path, threads, normalization_in_model)
    if suffix in (".mlpackage", ".mlmodel"):
        return CoreMLRuntime(path, coreml_specs["input_spec"], coreml_specs["output_spec"],
                             threads)
    raise ValueError(f"no runtime for {path} (expected .onnx, .tflite or .mlpackage)")


def open_artifact(path: str | Path, threads: int = 1) -> tuple[Runtime, dict]:
    """(runtime, contract) for anything conversion.export writes, or a .pth checkpoint.

    The runtime is driven by the contract alone: its input/output specs are the contract's
    blocks, so a run prepares frames and reads outputs exactly as the apps do. A checkpoint
    has no contract file; its PyTorch runtime's specs and the checkpoint's classes stand in.
    """
    from conversion.contract import check_artifact, classes_block, contract_path, load_contract
    from training.checkpoint import context, load_checkpoint, model_from_checkpoint
    from training.errors import UserError
    path = Path(path)
    if not path.exists():
        raise UserError(f"model not found: {path}")
    if path.suffix == ".pth":
        checkpoint = load_checkpoint(path)
        runtime = TorchRuntime(model_from_checkpoint(checkpoint),
                               context(checkpoint, path).input_size, threads)
        return runtime, {"input": runtime.input_spec, "output": runtime.output_spec,
                         "classes": classes_block(checkpoint["dataset"]),
                         "artifact": {"file": path.name, "precision": "fp32"}}
    if path.suffix not in (".tflite", ".onnx", ".mlpackage"):
        raise UserError(f"{path}: not an artifact of conversion.export (.tflite, .onnx, "
                        f".mlpackage) nor a checkpoint (.pth)")
    if not contract_path(path).is_file():
        raise UserError(f"{path} has no model contract ({contract_path(path).name}) next to "
                        f"it; export it with python -m conversion.export")
    contract = load_contract(path)  # refuses another schema version, naming the field
    check_artifact(path, contract)  # the file the contract was written for, before it runs
    if path.suffix == ".mlpackage":
        if platform.system() != "Darwin":
            raise UserError(f"{path}: Core ML packages run only on macOS; here, run the "
                            f".tflite or .onnx of the same export")
        runtime = CoreMLRuntime(path, contract["input"], contract["output"], threads)
    else:
        try:
            runtime = open_runtime(path, threads, contract["input"]["normalization"]["in_model"])
        except (RuntimeError, ValueError, KeyError) as exc:  # a damaged or foreign model
            raise UserError(f"cannot open {path}: {str(exc).strip().splitlines()[0][:200]}") \
                from None
        check_model_io(path, contract, runtime.input_spec, runtime.output_spec)
        runtime.input_spec, runtime.output_spec = contract["input"], contract["output"]
    return runtime, contract


def check_model_io(path: str | Path, contract: dict, model_input: dict,
                   model_output: dict) -> None:
    """Refuse a contract whose input or output disagrees with the model's own (as its runtime
    reports them): shape (so input size and, for logits, the class count), dtype and
    quantization. Frames prepared from a wrong contract would fail inside the runtime, or
    worse, run and be read with the wrong classes."""
    from conversion.contract import ContractError, contract_path
    problems = []
    for side, actual in (("input", model_input), ("output", model_output)):
        stated = contract[side]
        if list(actual["shape"]) != list(stated["shape"]):
            problems.append(f"{side} shape {stated['shape']}, the model's is {actual['shape']}")
        if actual["dtype"] != stated["dtype"]:
            problems.append(f"{side} dtype {stated['dtype']}, the model's is {actual['dtype']}")
        elif not _same_quantization(actual["quantization"], stated["quantization"]):
            problems.append(f"{side} quantization {stated['quantization']}, the model's is "
                            f"{actual['quantization']}")
    if problems:
        raise ContractError(f"model contract {contract_path(path)} does not describe "
                            f"{Path(path).name}: it says " + "; ".join(problems))


def _same_quantization(actual: dict | None, stated: dict | None) -> bool:
    if actual is None or stated is None:
        return actual is stated
    return actual["zero_point"] == stated["zero_point"] and \
        abs(actual["scale"] - stated["scale"]) <= 1e-6 * abs(actual["scale"])
