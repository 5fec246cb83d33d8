"""PyTorch -> TFLite directly with litert-torch (torch.export, no ONNX hop), PT2E for int8.

Variants, named and gated like onnx2tf's (conversion.tflite_export.VARIANTS):
  fp32          litert_torch.convert of the deployed model (NHWC in and out, as the apps take)
  fp16          fp16 weights (litert-torch's full_fp16_recipe), fp32 compute
  dynamic-int8  int8 weights, activations quantized at run time (full_dynamic_recipe)
                (both are ai-edge-quantizer passes over the fp32 flatbuffer, which is what
                litert_torch.convert(quant_config=recipe) runs after its own fp32 lowering:
                applied to the one fp32 conversion they give the same bytes, in a second
                instead of a lowering each)
  int8          PT2E static int8: per-channel symmetric weights, per-tensor activations
                calibrated on the export's --calib images, int8 input and output; or, with a
                QAT program from `training.quantize --mode qat --converter litert-torch`,
                the ranges QAT learned, with no calibration at all

litert-torch is an optional extra (`pip install -e '.[litert]'`): it brings jax, transformers
and a 290 MB converter library, and pins typing-extensions below what coremltools' cattrs
declares. Like every converter it runs in a child process (`python -m
conversion.litert_torch_export`), its log in a file.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from conversion.child_process import run_converter
from training.compression import require_litert_torch

RESULTS = "litert_torch_results.json"


def convert_with_litert_torch(checkpoint: Path, work_dir: Path, name: str, size, *,
                              calibration: np.ndarray | None, fold_normalization: bool,
                              fold_argmax: bool, qat_program: Path | None = None,
                              timeout_s: float = 3600) -> dict[str, Path]:
    """Every variant of `checkpoint` at `size`; returns {precision: path}."""
    require_litert_torch()
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    args = ["--checkpoint", str(Path(checkpoint).resolve()), "--out", str(work_dir),
            "--name", name, "--input-size", *map(str, size)]
    args += ["--fold-normalization"] * fold_normalization + ["--fold-argmax"] * fold_argmax
    if qat_program is not None:
        args += ["--qat-program", str(Path(qat_program).resolve())]
    elif calibration is not None:
        np.save(work_dir / "calibration.npy", calibration)
        args += ["--calib", str(work_dir / "calibration.npy")]
    results = work_dir / RESULTS
    run_converter("litert-torch", "conversion.litert_torch_export", args,
                  work_dir / "litert_torch.log", timeout_s=timeout_s, succeeded=results.is_file)
    return {precision: work_dir / file for precision, file in
            json.loads(results.read_text()).items()}


# ---- the child process -------------------------------------------------------------------

def _deployed(core, fold_normalization: bool, fold_argmax: bool):
    """`core` (NCHW in, logits out) as the apps run it: NHWC in, NHWC logits or a class map."""
    import litert_torch

    from conversion.onnx_export import DeployWrapper
    wrapper = DeployWrapper(core, fold_normalization=fold_normalization,
                            fold_argmax=fold_argmax)
    return litert_torch.to_channel_last_io(wrapper, args=[0],
                                           outputs=[] if fold_argmax else [0])


def _calibration_inputs(path: str, fold_normalization: bool):
    """uint8 NHWC frames -> what the deployed model's NHWC input takes (pixels or normalised)."""
    import torch

    from training.preprocessing import MEAN, STD
    frames = torch.from_numpy(np.load(path).astype(np.float32))
    if not fold_normalization:
        frames = (frames / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    return [frames[i:i + 1] for i in range(len(frames))]


def _convert(checkpoint: str, out: str, name: str, input_size, calib: str | None,
             qat_program: str | None, fold_normalization: bool, fold_argmax: bool) -> None:
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    import litert_torch
    import torch
    from litert_torch.generative.quantize import quant_recipes
    from litert_torch.quantize import translate_recipe
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from conversion.tflite_export import file_suffix
    from training.checkpoint import model_from_checkpoint

    model = model_from_checkpoint(checkpoint).eval()
    deployed = _deployed(model, fold_normalization, fold_argmax).eval()
    height, width = input_size
    example = (torch.rand(1, height, width, 3) * (255 if fold_normalization else 1),)
    out, produced = Path(out), {}

    def save(precision: str, converted) -> Path:  # a litert_torch model or flatbuffer bytes
        path = out / f"{name}_{file_suffix(precision)}.tflite"
        if isinstance(converted, (bytes, bytearray)):
            path.write_bytes(converted)
        else:
            converted.export(str(path))
        produced[precision] = path.name
        return path

    if not qat_program:  # a QAT program gives its int8 only; the rest is the checkpoint's
        fp32 = save("fp32", litert_torch.convert(deployed, example)).read_bytes()
        for precision, recipe in (("fp16", quant_recipes.full_fp16_recipe()),
                                  ("dynamic-int8", quant_recipes.full_dynamic_recipe())):
            save(precision, translate_recipe.quantize_model(
                fp32, translate_recipe.translate_to_ai_edge_recipe(recipe.generative_recipe)))
    from training.compression.pt2e import litert_quantizer, load_program
    quantizer = litert_quantizer(qat=bool(qat_program))
    if qat_program:  # QAT's own ranges: the trained, converted core, no calibration
        core = load_program(qat_program, checkpoint=checkpoint,
                            input_size=input_size,
                            num_classes=model.num_classes).module()
        graph = _deployed(core, fold_normalization, fold_argmax)
    else:
        graph = prepare_pt2e(torch.export.export(deployed, example).module(), quantizer)
        for batch in _calibration_inputs(calib, fold_normalization):
            graph(batch)
        graph = convert_pt2e(graph, fold_quantize=False)
    save("int8", litert_torch.convert(graph, example,
                                      quant_config=QuantConfig(pt2e_quantizer=quantizer)))
    (out / RESULTS).write_text(json.dumps(produced))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="litert-torch in a clean process (internal)")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--input-size", type=int, nargs=2, required=True)
    parser.add_argument("--calib", help=".npy of uint8 NHWC calibration frames")
    parser.add_argument("--qat-program", help="torch.export program of a PT2E QAT model")
    parser.add_argument("--fold-normalization", action="store_true")
    parser.add_argument("--fold-argmax", action="store_true")
    args = parser.parse_args(argv)
    if not args.calib and not args.qat_program:
        parser.error("int8 needs --calib frames or a --qat-program")
    _convert(**vars(args))


if __name__ == "__main__":
    sys.exit(main())
