"""The export run: convert, measure against PyTorch, gate, then place what passed.

Everything is built in a staging folder inside the output directory. Each artifact is
measured on held-out frames through `conversion.runtimes`; the ones that meet their
thresholds are moved into place (an atomic rename, with their contract), the ones that do not
stay out, and whatever was in the output directory before is left as it was. `parity.json`
and `parity.md` list every artifact of the run, passed or not. Bad input is refused before
anything is written.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from conversion import contract as contracts
from conversion.contract import artifact_sha256, size_bytes
from conversion.calibration import ImageSet, anchor_pixel_range, load_calibration, load_held_out
from conversion.coreml_export import convert_to_coreml
from conversion.export_settings import TARGETS, ExportSettings
from conversion.litert_torch_export import convert_with_litert_torch
from conversion.onnx_export import DeployWrapper, export_onnx
from conversion.parity import Reference, compare, judge, precision_class, write_report
from conversion.runtimes import RuntimeUnavailable, TorchRuntime, open_runtime
from conversion.tflite_export import SHIPPED, convert_to_tflite, file_suffix
from conversion.tflite_ops import inspect_tflite
from training.checkpoint import context, load_checkpoint, model_from_checkpoint
from training.compression.programs import load_program
from training.data import parse_dataset_spec
from training.errors import UserError
from training.io import StagingFolder, file_sha256
from training.models import validate_input_size

DEFAULT_CHECKPOINT = Path("runs/quickstart_student/best.pth")
TOOLS = ("torch", "onnx", "onnxruntime", "onnx2tf", "litert-torch", "tensorflow", "coremltools",
         "ai-edge-litert")


@dataclass
class Candidate:
    """A converted artifact in the staging folder, ready to be measured."""

    path: Path
    target: str
    precision: str
    runtime_args: dict = field(default_factory=dict)
    spec_problems: list[str] = field(default_factory=list)
    calibrated: bool = False
    io: dict = field(default_factory=dict)  # the contract's input/output blocks, once opened
    conversion_s: float | None = None  # wall time of the converter run that made it


def resolve_checkpoint(path: Path | None) -> Path:
    path = Path(path or DEFAULT_CHECKPOINT)
    if not path.is_file() and path == DEFAULT_CHECKPOINT:
        raise UserError(f"no checkpoint at {DEFAULT_CHECKPOINT} (the quickstart student): run "
                        f"`python -m training.distill` first, or pass --checkpoint")
    return path


def tool_versions() -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def place(source: Path, destination: Path, trash: Path) -> None:
    """Move `source` over `destination` (a file or a package folder) by renames only."""
    if destination.is_dir() and not destination.is_symlink():
        os.replace(destination, trash / destination.name)
    os.replace(source, destination)


class ExportRun:
    def __init__(self, settings: ExportSettings):
        settings.validate()  # again: a field may have been changed since it was built
        self.s = settings
        self.checkpoint_path = resolve_checkpoint(settings.checkpoint)
        self.checkpoint = load_checkpoint(self.checkpoint_path)
        self.model = model_from_checkpoint(self.checkpoint)
        self.size = context(self.checkpoint, self.checkpoint_path, settings.input_size).input_size
        validate_input_size(self.size, self.model.output_stride)
        self.dataset = self.checkpoint["dataset"]
        self.name = settings.name or self.model.arch["name"] + \
            "-norm" * settings.fold_normalization + "-argmax" * settings.fold_argmax
        run_name = self.checkpoint_path.parent.name or "model"
        self.out = Path(settings.out or Path("artifacts") / run_name)
        # A QAT program is read (as zip + JSON) and proven to be this checkpoint's at this
        # size before torch loads anything from it, and before anything is written.
        self.program = None if settings.qat_program is None else load_program(
            settings.qat_program, checkpoint=self.checkpoint_path, input_size=self.size,
            num_classes=len(self.dataset["class_names"]))

    def load_data(self) -> tuple[ImageSet | None, ImageSet]:
        calib_spec = self.s.calib or self.dataset["spec"]
        calibrate = "tflite" in self.s.targets and self.s.qat_program is None
        calibration = load_calibration(calib_spec, self.s.calib_count, self.size) \
            if calibrate else None
        parity_spec = self.s.parity_data or (self.dataset["spec"] if calib_spec.endswith(".npy")
                                             else calib_spec)
        names = parse_dataset_spec(parity_spec).class_names
        if list(names) != list(self.dataset["class_names"]):
            raise UserError(f"held-out data {parity_spec!r} has {len(names)} classes "
                            f"({', '.join(names[:3])}, ...) but the checkpoint was trained on "
                            f"{len(self.dataset['class_names'])} ({self.dataset.get('spec')}); "
                            f"pass --parity-data with the checkpoint's classes")
        held_out = load_held_out(parity_spec, self.s.parity_count, self.size,
                                 calibration or ImageSet(np.zeros((0, 1, 1, 3), np.uint8), None))
        labels = held_out.masks[held_out.masks != self.dataset["ignore_index"]]
        if labels.size and labels.max() >= len(self.dataset["class_names"]):
            raise UserError(f"held-out data {parity_spec!r} has labels up to {labels.max()}, but "
                            f"the checkpoint has {len(self.dataset['class_names'])} classes")
        return calibration, held_out

    def run(self) -> dict:
        staging = StagingFolder(self.out, "export")  # proves the output directory writable
        try:
            calibration, held_out = self.load_data()  # refuses bad input before writing
            staging.open()
        except BaseException:
            staging.discard()
            raise
        try:
            return self._run(staging.path, calibration, held_out)
        finally:
            if self.s.keep_work:
                print(f"work files kept in {staging.path}", file=sys.stderr)
            else:
                staging.discard()

    def _run(self, staging: Path, calibration: ImageSet | None, held_out: ImageSet) -> dict:
        work, trash = staging / "work", staging / "trash"
        work.mkdir()
        trash.mkdir()
        torch_ref = TorchRuntime(self._reference_model(), self.size, self.s.threads)
        reference = Reference(torch_ref(held_out.images), held_out.masks,
                              len(self.dataset["class_names"]), self.dataset["ignore_index"])
        header = {"checkpoint": str(self.checkpoint_path), "input_size": list(self.size),
                  "held_out": held_out.source, "thresholds": self.s.thresholds,
                  "calibration": calibration.source if calibration else None,
                  "reference": {"runtime": self._reference_name(),
                                "miou": reference.metrics["miou"],
                                "predicted_classes": int(len(np.unique(reference.pred))),
                                "confidence_level": reference.confidence_level,
                                "confident_share": float(reference.confident.mean())}}
        self.common = self._contract_common(calibration)
        entries: list[dict] = []
        onnx_path, self.onnx_s = None, 0.0
        for target in [t for t in TARGETS if t in self.s.targets]:
            needs_onnx = target == "onnx" or target == "tflite" and self.s.converter == "onnx2tf"
            if needs_onnx and onnx_path is None:
                onnx_path = work / f"{self.name}.onnx"
                wrapper = DeployWrapper(self.model, fold_normalization=self.s.fold_normalization,
                                        fold_argmax=self.s.fold_argmax)
                started = time.perf_counter()
                export_onnx(wrapper, onnx_path, self.size, self.s.opset)
                self.onnx_s = time.perf_counter() - started
            candidates = getattr(self, f"_{target}")(work, onnx_path, calibration)
            for candidate in candidates:
                entry = self._measure(candidate, reference, held_out)
                if entry["passed"]:
                    self._write_contract(candidate, entry, held_out)
                    place(contracts.contract_path(candidate.path),
                          contracts.contract_path(self.out / candidate.path.name), trash)
                    place(candidate.path, self.out / candidate.path.name, trash)
                entry["placed"] = entry["passed"]
                entries.append(entry)
                print(_summary(entry), file=sys.stderr)
            write_report(self.out, entries, header, self.dataset["class_names"])
        return {"out": str(self.out), "entries": entries,
                "passed": all(e["passed"] for e in entries)}

    # ---- converters: each returns candidates in the staging folder

    def _onnx(self, work: Path, onnx_path: Path, calibration) -> list[Candidate]:
        path = work.parent / f"{self.name}_fp32.onnx"
        shutil.copyfile(onnx_path, path)
        return [Candidate(path, "onnx", "fp32")]

    def _tflite(self, work: Path, onnx_path: Path, calibration: ImageSet) -> list[Candidate]:
        frames = calibration.images if calibration is not None else None
        if self.s.fold_normalization and frames is not None:
            frames = anchor_pixel_range(frames)
        started = time.perf_counter()
        if self.s.converter == "litert-torch":
            produced = convert_with_litert_torch(
                self.checkpoint_path, work / "litert_torch", self.name, self.size,
                calibration=frames, fold_normalization=self.s.fold_normalization,
                fold_argmax=self.s.fold_argmax, qat_program=self.s.qat_program)
        else:
            produced = convert_to_tflite(onnx_path, work / "onnx2tf", frames,
                                         fold_normalization=self.s.fold_normalization,
                                         int16=self.s.int16,
                                         weight_granularity=self.s.weight_granularity)
        # The whole path from PyTorch: onnx2tf's includes the ONNX export before it.
        seconds = time.perf_counter() - started + self.onnx_s * (self.s.converter == "onnx2tf")
        wanted = ["int8"] if self.s.qat_program else list(SHIPPED) + ["int16x8"] * self.s.int16
        missing = [p for p in wanted if p not in produced]
        if missing:
            raise UserError(f"{self.s.converter} produced no {', '.join(missing)} variant; see "
                            f"the log in a run with --keep-work")
        candidates = []
        for precision in wanted:
            path = work.parent / f"{self.name}_{file_suffix(precision)}.tflite"
            os.replace(produced[precision], path)
            candidates.append(Candidate(path, "tflite", precision,
                                        calibrated=precision in ("int8", "int16x8")
                                        and self.s.qat_program is None,
                                        conversion_s=seconds))
        return candidates

    def _coreml(self, work: Path, onnx_path, calibration) -> list[Candidate]:
        records = convert_to_coreml(self.checkpoint_path, work / "coreml", self.name, self.size,
                                    input_kind=self.s.coreml_input,
                                    fold_normalization=self.s.fold_normalization,
                                    fold_argmax=self.s.fold_argmax,
                                    variants=self.s.coreml_variants,
                                    palette_bits=self.s.palette_bits)
        candidates = []
        for record in records:
            path = work.parent / record["file"]
            os.replace(work / "coreml" / record["file"], path)
            candidates.append(Candidate(path, "coreml", record["precision"],
                                        {"input_spec": record["input_spec"],
                                         "output_spec": record["output_spec"]},
                                        record["problems"]))
        return candidates

    # ---- measuring and the contract

    def _measure(self, candidate: Candidate, reference: Reference, held_out: ImageSet) -> dict:
        entry = {"file": candidate.path.name, "target": candidate.target,
                 "precision": candidate.precision,
                 "precision_class": precision_class(candidate.precision),
                 "size_mb": size_bytes(candidate.path) / 2 ** 20, "threads": self.s.threads,
                 "latency_ms": None, "skipped": None, "conversion_s": candidate.conversion_s}
        if candidate.target == "tflite":  # ops, XNNPACK coverage, the GPU delegate's verdict
            entry.update(inspect_tflite(candidate.path), converter=self.s.converter)
        in_model = self.s.fold_normalization
        try:
            runtime = open_runtime(candidate.path, self.s.threads, in_model,
                                   **candidate.runtime_args)
        except RuntimeUnavailable as exc:
            entry.update(agreement=None, agreement_confident=None, confident_share=None,
                         max_abs_err=None, miou_artifact=None,
                         miou_reference=reference.metrics["miou"], miou_drop=None,
                         per_class_iou_delta=None, images=0, skipped=str(exc))
            candidate.io = candidate.runtime_args
        else:
            entry.update(compare(runtime(held_out.images), reference))
            entry["latency_ms"] = runtime.latency_ms(runs=self.s.latency_runs)
            candidate.io = {"input_spec": runtime.input_spec, "output_spec": runtime.output_spec}
        entry["failures"] = candidate.spec_problems + judge(entry, self.s.thresholds)
        entry["passed"] = not entry["failures"]
        return entry

    def _contract_common(self, calibration: ImageSet | None) -> dict:
        dataset = self.dataset
        return {
            "classes": contracts.classes_block(dataset),
            "source": {"checkpoint": str(self.checkpoint_path),
                       "checkpoint_sha256": file_sha256(self.checkpoint_path),
                       "arch": dict(self.model.arch), "dataset": dataset.get("spec")},
            "calibration": calibration.source if calibration else None,
        }

    def _reference_model(self):
        """What every artifact is measured against: the checkpoint in fp32 or, for the int8
        made from a QAT program, that program itself (its quantize/dequantize ops run in
        PyTorch), so agreement measures the conversion, not what QAT changed."""
        if self.program is None:
            return self.model
        from training.compression.pt2e import OneByOne
        return OneByOne(self.program.module(), len(self.dataset["class_names"]))

    def _reference_name(self) -> str:
        return "pytorch-pt2e-qat" if self.s.qat_program else "pytorch-fp32"

    def _converter(self) -> dict:
        """Which TFLite converter made the file, with its version."""
        name = self.s.converter
        return {"name": name, "version": tool_versions().get(name)}

    def _write_contract(self, candidate: Candidate, entry: dict, held_out: ImageSet) -> None:
        s = self.s
        contract = {
            "schema_version": contracts.SCHEMA_VERSION,
            "artifact": {"file": candidate.path.name, "target": candidate.target,
                         "precision": candidate.precision,
                         "size_bytes": size_bytes(candidate.path),
                         "sha256": artifact_sha256(candidate.path)},
            "input": candidate.io["input_spec"],
            "output": candidate.io["output_spec"],
            "classes": self.common["classes"],
            "source": self.common["source"],
            "export": {"input_size": list(self.size), "fold_normalization": s.fold_normalization,
                       "fold_argmax": s.fold_argmax,
                       "calibration": self.common["calibration"] if candidate.calibrated else None,
                       "tools": tool_versions(),
                       "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                       "onnx_opset": s.opset if candidate.target == "onnx" or
                       candidate.target == "tflite" and s.converter == "onnx2tf" else None,
                       "quantization": _quantization(candidate, s),
                       "coreml_input": s.coreml_input if candidate.target == "coreml" else None,
                       "qat_program": {"file": str(s.qat_program),
                                       "sha256": file_sha256(s.qat_program)}
                       if s.qat_program and candidate.precision == "int8" else None,
                       **({"converter": self._converter(),
                           "gpu_delegate": entry["gpu_delegate"],
                           "xnnpack_fully_delegated": entry["xnnpack_fully_delegated"]}
                          if candidate.target == "tflite" else {})},
            "parity": {"reference": self._reference_name(), "images": entry["images"],
                       "held_out": held_out.source,
                       **{k: entry[k] for k in ("agreement", "agreement_confident",
                                                "confident_share", "max_abs_err", "miou_artifact",
                                                "miou_reference", "miou_drop", "latency_ms",
                                                "threads", "passed", "skipped")},
                       "thresholds": s.thresholds.get(entry["precision_class"], {})},
        }
        contracts.write_contract(candidate.path, contract)


def _quantization(candidate: Candidate, settings: ExportSettings) -> str | None:
    """How the artifact's weights (and activations) were quantized, for the contract."""
    precision, weights = candidate.precision, settings.weight_granularity
    if candidate.target == "tflite" and settings.converter == "litert-torch":
        weights = "per-channel"  # PT2E's symmetric per-channel int8 weights
        if precision == "int8":
            return f"{weights} PT2E " + ("QAT (its learned ranges, no calibration)"
                                         if settings.qat_program else "static PTQ")
    if precision in ("int8", "int16x8"):
        return f"{weights} static PTQ"
    if precision == "dynamic-int8":
        return f"{weights} int8 weights, float activations"
    return None


def _summary(entry: dict) -> str:
    status = "ok" if entry["passed"] else "FAILED (" + "; ".join(entry["failures"]) + ")"
    if entry["skipped"]:  # the runtime cannot run here; its message says why
        status += f" [numeric parity skipped: {entry['skipped']}]"
    agreement = "-" if entry["agreement"] is None else f"{entry['agreement']:.4f}"
    return (f"{entry['file']}: agreement {agreement}, {entry['size_mb']:.2f} MB, "
            f"{status}")
