"""QAT programs on disk (.pt2): saved with a record of their checkpoint, read before loading.

A torch.export archive is closer to code than to weights. `torch.export.load` unpickles
weights and constants with `weights_only=False` when the archive's config asks for it (and
falls back to it for the sample inputs), evaluates shape expressions with sympy, resolves
each graph node's target by name (any `torch.*` attribute, `torch.os.system` included) and
compiles the archive's guard code when the module is built. So a .pt2 that
`conversion.export --qat-program` is given is first read as a plain zip of JSON by
`inspect_program`, and refused unless it is what `training.quantize` writes:

- the layout `torch.export.save` writes, one model, and nothing pickled: weights and
  constants are raw tensor bytes, no custom or opaque objects, no AOTInductor code;
- a graph that calls only ATen and quantize/dequantize operators, with no symbolic shape
  expressions, range constraints or guard code;
- input 1x3xHxW and output 1xCxHxW, and segkit's record (`extra/segkit_program.json`,
  written by `save_program`): the sha256 of the checkpoint it was trained from. A program
  is exported only with that checkpoint, at that size, with that many classes.

Only then does `load_program` call torch.export.load, with TORCH_FORCE_WEIGHTS_ONLY_LOAD=1 so
that every torch.load inside it goes through the weights-only unpickler as well.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from contextlib import contextmanager
from pathlib import Path

from training.errors import UserError

RECORD = "segkit_program.json"  # torch.export.save(extra_files=...) stores it under extra/
RECORD_FORMAT = 1
# Graph targets a quantized segmentation program may call; anything else is refused.
ALLOWED_TARGETS = re.compile(r"^(torch\.ops\.(aten|quantized_decomposed)\.[A-Za-z0-9_]+"
                             r"\.[A-Za-z0-9_]+|_operator\.getitem)$")
_FIXED = {"archive_format", "archive_version", "byteorder", ".data/version",
          ".data/serialization_id"}
_MAX_JSON_BYTES = 256 * 2 ** 20


class ProgramError(UserError):
    """A --qat-program that is not a program of this project, or not this checkpoint's."""


def save_program(program, out: str | Path, checkpoint: str | Path, input_size,
                 num_classes: int) -> None:
    """Write `program` atomically, with the record `inspect_program` checks at export."""
    import torch

    from training.io import atomic_save, file_sha256
    record = {"format": RECORD_FORMAT, "kind": "pt2e-qat", "checkpoint": str(checkpoint),
              "checkpoint_sha256": file_sha256(checkpoint),
              "input_size": [int(s) for s in input_size], "num_classes": int(num_classes)}
    atomic_save(program, out, write=lambda ep, stream: torch.export.save(
        ep, stream, extra_files={RECORD: json.dumps(record)}))


def inspect_program(path: str | Path, checkpoint: str | Path | None = None,
                    input_size=None, num_classes: int | None = None) -> dict:
    """Read `path` as zip + JSON only (nothing is unpickled or evaluated) and return its
    record with `input_size` and `num_classes` as its graph states them. With `checkpoint`
    (and `input_size`, `num_classes`), also prove that the program belongs to it."""
    path = Path(path)
    where = f"--qat-program {path}"
    if not path.is_file():
        raise ProgramError(f"{where}: no such file")
    if path.stat().st_size == 0 or not zipfile.is_zipfile(path):
        raise ProgramError(f"{where} is not a torch.export program (.pt2): empty, truncated "
                           f"or not a zip archive at all")
    try:
        with zipfile.ZipFile(path) as archive:
            record, graph = _read(archive, where)
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, KeyError) as exc:
        raise ProgramError(f"{where} is corrupt or truncated ({exc.__class__.__name__})") \
            from None
    record.update(_io_shapes(graph, where))
    if checkpoint is not None:
        _check_belongs(record, where, Path(checkpoint), input_size, num_classes)
    return record


def _read(archive: zipfile.ZipFile, where: str) -> tuple[dict, dict]:
    names = [info.filename for info in archive.infolist() if not info.is_dir()]
    roots = {name.split("/", 1)[0] for name in names}
    if "data.pkl" in {name.rsplit("/", 1)[-1] for name in names}:
        raise ProgramError(f"{where} is a torch.save file (a checkpoint?), not a torch.export "
                           f"program; make one with python -m training.quantize --mode qat "
                           f"--converter litert-torch")
    if len(roots) != 1 or not all("/" in name for name in names):
        raise ProgramError(f"{where} is not a torch.export program (.pt2)")
    root = roots.pop() + "/"
    files = {name[len(root):]: name for name in names}
    if not {"archive_format", "archive_version"} <= set(files) or \
            archive.read(files["archive_format"]).strip() != b"pt2":
        raise ProgramError(f"{where} is not a torch.export program (.pt2)")
    models = [f for f in files if re.fullmatch(r"models/[A-Za-z0-9_]+\.json", f)]
    if len(models) != 1:
        raise ProgramError(f"{where} holds {len(models)} programs; expected exactly one")
    model = models[0][len("models/"):-len(".json")]
    allowed = _FIXED | {models[0], f"data/weights/{model}_weights_config.json",
                        f"data/constants/{model}_constants_config.json",
                        f"data/sample_inputs/{model}.pt"}
    for name in files:
        if name in allowed or name.startswith("extra/") or \
                re.fullmatch(r"data/weights/weight_\d+|data/constants/tensor_\d+", name):
            continue
        raise _unsafe(where, f"an entry torch would unpickle or run ({name})")

    def load_json(name: str):
        if archive.getinfo(files[name]).file_size > _MAX_JSON_BYTES:
            raise ProgramError(f"{where}: {name} is implausibly large")
        try:
            return json.loads(archive.read(files[name]))
        except ValueError:
            raise ProgramError(f"{where}: {name} is not valid JSON (corrupt?)") from None

    for config in (f"data/weights/{model}_weights_config.json",
                   f"data/constants/{model}_constants_config.json"):
        if config not in files:
            raise ProgramError(f"{where} is not a program torch.export.save wrote "
                               f"(no {config})")
        entries = (load_json(config) or {}).get("config", {})
        for name, meta in entries.items():
            if not isinstance(meta, dict) or meta.get("use_pickle") is not False or \
                    not re.fullmatch(r"(weight|tensor)_\d+", str(meta.get("path_name"))):
                raise _unsafe(where, f"a pickled object ({name})")
    graph = load_json(models[0])
    if not isinstance(graph, dict) or graph.get("guards_code") or \
            graph.get("range_constraints"):
        raise _unsafe(where, "guard code or shape constraints, which torch evaluates")
    text = json.dumps(graph)
    if '"expr_str"' in text or '"as_custom_obj"' in text:
        raise _unsafe(where, "symbolic expressions or custom objects, which torch evaluates")
    nodes = graph.get("graph_module", {}).get("graph", {}).get("nodes", [])
    for node in nodes:
        target = str(node.get("target"))
        if not ALLOWED_TARGETS.match(target):
            raise _unsafe(where, f"a call of {target[:80]}, which is not an ATen or "
                                 f"quantize/dequantize operator")
    record_name = f"extra/{RECORD}"
    record = load_json(record_name) if record_name in files else None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise ProgramError(f"{where} does not record the checkpoint it was trained from; "
                           f"make it with python -m training.quantize --mode qat --converter "
                           f"litert-torch --checkpoint CKPT")
    return dict(record), graph


def _unsafe(where: str, what: str) -> ProgramError:
    return ProgramError(f"refusing {where}: it holds {what}; loading it could run code")


def _io_shapes(graph: dict, where: str) -> dict:
    """The program's input size and class count, from its graph's tensor metadata."""
    body = graph.get("graph_module", {})
    values = body.get("graph", {}).get("tensor_values", {})
    inputs = [spec["user_input"]["arg"]["as_tensor"]["name"]
              for spec in body.get("signature", {}).get("input_specs", [])
              if "as_tensor" in spec.get("user_input", {}).get("arg", {})]
    outputs = [out["as_tensor"]["name"] for out in body.get("graph", {}).get("outputs", [])
               if "as_tensor" in out]

    def shape(name: str) -> list:
        return [size.get("as_int") for size in values.get(name, {}).get("sizes", [])]
    shapes = [shape(name) for name in inputs + outputs]
    if len(inputs) != 1 or len(outputs) != 1 or any(
            len(s) != 4 or s[0] != 1 or not all(isinstance(v, int) for v in s) for s in shapes):
        raise ProgramError(f"{where} is not a segmentation program (one 1x3xHxW input, one "
                           f"1xCxHxW output); its shapes are {shapes}")
    (_, channels, height, width), (_, classes, *_) = shapes
    if channels != 3:
        raise ProgramError(f"{where} takes {channels}-channel input; the model takes RGB")
    return {"input_size": [height, width], "num_classes": classes}


def _check_belongs(record: dict, where: str, checkpoint: Path, input_size,
                   num_classes: int | None) -> None:
    from training.io import file_sha256
    digest = file_sha256(checkpoint)
    if record.get("checkpoint_sha256") != digest:
        raise ProgramError(f"{where} was trained from {record.get('checkpoint')} (sha256 "
                           f"{str(record.get('checkpoint_sha256'))[:12]}...), not from "
                           f"--checkpoint {checkpoint} (sha256 {digest[:12]}...); export it "
                           f"with the checkpoint it was trained from")
    size = [int(s) for s in input_size] if input_size is not None else None
    if size is not None and record["input_size"] != size:
        raise ProgramError(f"{where} was exported at {record['input_size'][0]}x"
                           f"{record['input_size'][1]}, not at the export's {size[0]}x{size[1]};"
                           f" pass --input-size {record['input_size'][0]} "
                           f"{record['input_size'][1]}")
    if num_classes is not None and record["num_classes"] != num_classes:
        raise ProgramError(f"{where} predicts {record['num_classes']} classes; the checkpoint "
                           f"has {num_classes}")


@contextmanager
def _weights_only_everywhere():
    """Every torch.load in this block uses the weights-only unpickler, whatever its caller
    asked for (torch.export.load's sample inputs fall back to full pickle on failure)."""
    previous = {k: os.environ.get(k) for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD",
                                               "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_program(path: str | Path, checkpoint: str | Path | None = None, input_size=None,
                 num_classes: int | None = None):
    """`inspect_program`, then torch.export.load with weights-only unpickling; any failure
    after the inspection (damaged tensor data, say) is one ProgramError."""
    inspect_program(path, checkpoint, input_size, num_classes)
    import torch

    import training.compression.pt2e  # noqa: F401  registers the quantize/dequantize ops
    try:
        with _weights_only_everywhere():
            return torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged archive
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise ProgramError(f"cannot load --qat-program {path}: corrupt or not loadable here "
                           f"({exc.__class__.__name__}: {first})") from None
