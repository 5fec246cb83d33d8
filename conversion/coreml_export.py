"""PyTorch -> CoreML ML program through torch.export, plus weight-compressed variants.

Variants: `fp16` (fp16 weights and compute), `int8` (linear symmetric per-channel int8
weights), `palettized` (k-means palette of 2**bits fp16 entries, 6 bits by default).

Input: an image (`--coreml-input image`, the default) or a tensor. CoreML's ImageType has a
single scalar scale and a per-channel bias, while ImageNet normalisation divides by a
per-channel std; so the ImageType carries scale 1/255 (pixels to 0..1) and the per-channel
(x - mean) / std is folded into the model, exactly. A tensor input is NCHW float32,
normalised outside unless --fold-normalization.

coremltools imports TensorFlow, and TensorFlow followed by triton (torch.export) segfaults,
so conversion and spec inspection run in a child process (`python -m conversion.coreml_export`)
that imports torch._dynamo before coremltools. `MLModel.predict` exists only on macOS: on
Linux the spec is validated instead (names, shapes, dtypes, and that the weights are stored
compressed), see `spec_problems`.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
from pathlib import Path

from conversion.child_process import run_converter
from training.errors import run_cli

SUFFIXES = {"fp16": "fp16", "int8": "int8w", "palettized": "pal{bits}"}
RESULTS = "coreml_results.json"


def precision_name(variant: str, bits: int) -> str:
    return {"fp16": "fp16", "int8": "int8-weights", "palettized": f"palettized-{bits}bit"}[variant]


def convert_to_coreml(checkpoint: Path, work_dir: Path, name: str, input_size, *,
                      input_kind: str, fold_normalization: bool, fold_argmax: bool,
                      variants: list[str], palette_bits: int, timeout_s: float = 3600) -> list[dict]:
    """Run the child converter; returns one record per package (see `_convert`)."""
    work_dir, checkpoint = Path(work_dir).resolve(), Path(checkpoint).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    args = ["convert", "--checkpoint", str(checkpoint), "--out", str(work_dir), "--name", name,
            "--input-size", *map(str, input_size), "--input", input_kind,
            "--variants", ",".join(variants), "--palette-bits", str(palette_bits)]
    args += ["--fold-normalization"] * fold_normalization + ["--fold-argmax"] * fold_argmax
    results = work_dir / RESULTS
    run_converter("CoreML conversion", "conversion.coreml_export", args,
                  work_dir / "coreml.log", timeout_s=timeout_s, succeeded=results.is_file)
    return json.loads(results.read_text())


def inspect_package(path: str | Path) -> dict:
    """What the spec says: input/output descriptions and how conv weights are stored.

    Runs wherever coremltools imports (no macOS needed); only call it in a child process.
    """
    import coremltools as ct
    from coremltools.proto import FeatureTypes_pb2, MIL_pb2
    spec = ct.utils.load_spec(str(path))

    def feature(description) -> dict:
        kind = description.type.WhichOneof("Type")
        if kind == "imageType":
            image = description.type.imageType
            return {"name": description.name, "kind": "image", "height": image.height,
                    "width": image.width, "color": FeatureTypes_pb2.ImageFeatureType.ColorSpace
                    .Name(image.colorSpace)}
        array = description.type.multiArrayType
        return {"name": description.name, "kind": "tensor", "shape": list(array.shape),
                "dtype": FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType)}

    function = spec.mlProgram.functions["main"]
    operations = function.block_specializations[function.opset].operations
    producers = {out.name: op for op in operations for out in op.outputs}
    storage: dict[str, int] = {}
    for op in operations:
        if op.type != "conv":
            continue
        source = producers[op.inputs["weight"].arguments[0].name]
        dims = [d.constant.size for d in source.outputs[0].type.tensorType.dimensions]
        elements = 1
        for size in dims:
            elements *= size
        if source.type == "constexpr_affine_dequantize":
            dtype = MIL_pb2.DataType.Name(source.attributes["quantized_data"].type.tensorType
                                          .dataType)
            kind = f"affine-{dtype.lower()}"
        elif source.type == "constexpr_lut_to_dense":
            lut = source.attributes["lut"].type.tensorType.dimensions[0].constant.size
            kind = f"lut-{lut}"
        else:
            kind = MIL_pb2.DataType.Name(source.outputs[0].type.tensorType.dataType).lower()
        storage[kind] = storage.get(kind, 0) + elements
    weights_file = Path(path) / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    return {"spec_version": spec.specificationVersion, "opset": function.opset,
            "inputs": [feature(d) for d in spec.description.input],
            "outputs": [feature(d) for d in spec.description.output],
            "conv_weight_storage": storage,
            "weights_bytes": weights_file.stat().st_size if weights_file.is_file() else None}


def expected_storage(precision: str) -> str:
    if precision == "fp16":
        return "float16"
    if precision == "int8-weights":
        return "affine-int8"
    return f"lut-{2 ** int(precision.split('-')[1].rstrip('bit'))}"


def spec_problems(info: dict, precision: str, input_spec: dict, output_spec: dict,
                  min_fraction: float = 0.9) -> list[str]:
    """What does not match: names, shapes, dtypes, and the share of compressed weights."""
    problems = []
    (inp,), (out,) = info["inputs"], info["outputs"]
    if inp["name"] != input_spec["name"] or out["name"] != output_spec["name"]:
        problems.append(f"names {inp['name']}/{out['name']} != {input_spec['name']}/"
                        f"{output_spec['name']}")
    height, width = input_spec["shape"][2:]
    if input_spec["kind"] == "image":
        if inp["kind"] != "image" or (inp["height"], inp["width"]) != (height, width) \
                or inp["color"] != "RGB":
            problems.append(f"input is not a {height}x{width} RGB image: {inp}")
    elif inp.get("shape") != input_spec["shape"] or inp.get("dtype") != "FLOAT32":
        problems.append(f"input tensor {inp} is not float32 {input_spec['shape']}")
    if out.get("shape") != output_spec["shape"]:
        problems.append(f"output shape {out.get('shape')} != {output_spec['shape']}")
    want = {"float16": "FLOAT16", "float32": "FLOAT32", "int32": "INT32"}[output_spec["dtype"]]
    if out.get("dtype") != want:
        problems.append(f"output dtype {out.get('dtype')} != {want}")
    storage = info["conv_weight_storage"]
    total = sum(storage.values())
    kind = expected_storage(precision)
    fraction = storage.get(kind, 0) / total if total else 0.0
    if fraction < min_fraction:
        problems.append(f"only {fraction:.0%} of conv weights stored as {kind} "
                        f"(storage: {storage})")
    return problems


# ---- the child process -------------------------------------------------------------------

def _specs(input_kind: str, input_size, fold_normalization: bool, fold_argmax: bool,
           num_classes: int) -> tuple[dict, dict]:
    from conversion.runtimes import normalization
    height, width = input_size
    image = input_kind == "image"
    input_spec = {"name": "image", "shape": [1, 3, height, width], "layout": "NCHW",
                  "dtype": "uint8" if image else "float32", "color": "RGB", "kind": input_kind,
                  "normalization": normalization(image or fold_normalization),
                  "quantization": None,
                  "image_preprocessing": {"scale": 1 / 255, "bias": [0.0, 0.0, 0.0]}
                  if image else None}
    if fold_argmax:
        output_spec = {"name": "classes", "shape": [1, height, width], "layout": "NHW",
                       "dtype": "int32", "semantics": "class_map", "quantization": None}
    else:
        output_spec = {"name": "logits", "shape": [1, num_classes, height, width],
                       "layout": "NCHW", "dtype": "float16", "semantics": "logits",
                       "quantization": None}
    return input_spec, output_spec


def _convert(checkpoint: str, out: str, name: str, input_size, input_kind: str,
             fold_normalization: bool, fold_argmax: bool, variants: str,
             palette_bits: int) -> None:
    import torch
    import torch._dynamo  # noqa: F401  (before coremltools: see the module docstring)
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    from conversion.onnx_export import DeployWrapper
    from training.checkpoint import model_from_checkpoint

    model = model_from_checkpoint(checkpoint)
    image = input_kind == "image"
    fold = image or fold_normalization
    wrapper = DeployWrapper(model, fold_normalization=fold, fold_argmax=fold_argmax,
                            input_scale=1.0 if image else 1 / 255, class_dtype=torch.int32)
    size = tuple(input_size)
    x = torch.rand(1, 3, *size) * (1.0 if image else 255.0 if fold else 1.0)
    program = torch.export.export(wrapper.eval(), (x,)).run_decompositions({})
    input_spec, output_spec = _specs(input_kind, size, fold_normalization,
                                     fold_argmax, model.num_classes)
    if image:
        inputs = [ct.ImageType(name="image", shape=(1, 3, *size), scale=1 / 255,
                               bias=[0.0, 0.0, 0.0], color_layout=ct.colorlayout.RGB)]
    else:
        inputs = [ct.TensorType(name="image", shape=(1, 3, *size))]
    base = ct.convert(program, convert_to="mlprogram", inputs=inputs,
                      outputs=[ct.TensorType(name=output_spec["name"])],
                      compute_precision=ct.precision.FLOAT16,
                      minimum_deployment_target=ct.target.iOS16)
    records = []
    for variant in variants.split(","):
        if variant == "fp16":
            package = base
        elif variant == "int8":
            package = cto.linear_quantize_weights(base, cto.OptimizationConfig(
                global_config=cto.OpLinearQuantizerConfig(
                    mode="linear_symmetric", dtype="int8", granularity="per_channel",
                    weight_threshold=256)))
        elif variant == "palettized":
            package = cto.palettize_weights(base, cto.OptimizationConfig(
                global_config=cto.OpPalettizerConfig(mode="kmeans", nbits=palette_bits,
                                                     weight_threshold=256)))
        else:
            raise SystemExit(f"unknown CoreML variant {variant!r}")
        precision = precision_name(variant, palette_bits)
        file = f"{name}_{SUFFIXES[variant].format(bits=palette_bits)}.mlpackage"
        package.short_description = f"{name} ({precision}); see {file}.json"
        package.save(str(Path(out) / file))
        info = inspect_package(Path(out) / file)
        records.append({"precision": precision, "file": file, "input_spec": input_spec,
                        "output_spec": output_spec, "inspection": info,
                        "problems": spec_problems(info, precision, input_spec, output_spec)})
    (Path(out) / RESULTS).write_text(json.dumps(records, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="CoreML conversion and spec inspection "
                                                 "(run by conversion.export)")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert")
    convert.add_argument("--checkpoint", required=True)
    convert.add_argument("--out", required=True)
    convert.add_argument("--name", required=True)
    convert.add_argument("--input-size", type=int, nargs=2, required=True)
    convert.add_argument("--input", dest="input_kind", choices=("image", "tensor"),
                         default="image")
    convert.add_argument("--fold-normalization", action="store_true")
    convert.add_argument("--fold-argmax", action="store_true")
    convert.add_argument("--variants", default="fp16,int8,palettized")
    convert.add_argument("--palette-bits", type=int, default=6)
    inspect = commands.add_parser("inspect", help="print spec summaries as JSON {path: info}")
    inspect.add_argument("packages", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "convert":
        _convert(**{key: value for key, value in vars(args).items() if key != "command"})
    else:
        import torch._dynamo  # noqa: F401
        print(json.dumps({str(p): inspect_package(p) for p in args.packages}, indent=2))


if __name__ == "__main__":
    run_cli(main)
