"""What an export run is asked to make, checked where it is built.

    settings = ExportSettings(targets=["tflite"], checkpoint=Path("S.pth"), calib_count=32,
                              thresholds={"int8": {"agreement": 0.9}})  # over the defaults
    ExportRun(settings).run()

`ExportSettings` refuses a contradiction the moment it is made (and `ExportRun` asks again, for
settings changed after that), with the one-line UserError the CLI prints: `conversion.export`
only maps its flags onto these fields, so a benchmark that builds settings directly gets the
same errors as a user. The messages name the flags, which is how users meet the fields.
What needs the checkpoint or the data (input size against the output stride, class names,
image counts of a dataset) is checked by `ExportRun` when it opens them, still before anything
is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conversion.onnx_export import MIN_OPSET
from conversion.parity import thresholds_with
from conversion.tflite_export import WEIGHT_GRANULARITIES
from training.compression import TFLITE_CONVERTERS, require_litert_torch
from training.errors import UserError, require_at_least_one

TARGETS = ("onnx", "tflite", "coreml")
COREML_VARIANTS = ("fp16", "int8", "palettized")
COREML_INPUTS = ("image", "tensor")
PALETTE_BITS = (1, 2, 3, 4, 6, 8)


@dataclass
class ExportSettings:
    targets: list[str]
    checkpoint: Path | None = None
    input_size: tuple[int, int] | None = None
    calib: str | None = None
    calib_count: int = 64
    parity_data: str | None = None
    parity_count: int = 16
    out: Path | None = None
    name: str | None = None
    fold_normalization: bool = False
    fold_argmax: bool = False
    int16: bool = False
    weight_granularity: str = "per-channel"  # int8 weights: per-channel | per-tensor
    coreml_input: str = "image"
    coreml_variants: list[str] = field(default_factory=lambda: list(COREML_VARIANTS))
    palette_bits: int = 6
    thresholds: dict = field(default_factory=dict)  # {CLASS: {METRIC: VALUE}} over the defaults
    threads: int = 2
    latency_runs: int = 10
    opset: int = MIN_OPSET
    keep_work: bool = False
    converter: str = "onnx2tf"  # TFLite: onnx2tf (via ONNX) | litert-torch (from PyTorch)
    qat_program: Path | None = None  # litert-torch int8 from a PT2E QAT program

    def __post_init__(self):
        for name in ("checkpoint", "out", "qat_program"):
            if getattr(self, name) is not None:
                setattr(self, name, Path(getattr(self, name)))
        if self.input_size is not None:
            self.input_size = tuple(self.input_size)
        self.targets, self.coreml_variants = list(self.targets), list(self.coreml_variants)
        # Every precision class gets its thresholds: the defaults, with the given ones over them.
        self.thresholds = thresholds_with(self.thresholds)
        self.validate()

    def validate(self) -> None:
        """Refuse (UserError) settings that contradict each other or name unknown values."""
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown or not self.targets:
            raise UserError(f"--target: unknown {unknown or 'empty list'}; choose from "
                            f"{', '.join(TARGETS)} or all")
        unknown = sorted(set(self.coreml_variants) - set(COREML_VARIANTS))
        if unknown or not self.coreml_variants:
            raise UserError(f"--coreml-variants: unknown {unknown or 'empty list'}; choose from "
                            f"{', '.join(COREML_VARIANTS)}")
        if self.opset < MIN_OPSET:
            raise UserError(f"--opset must be {MIN_OPSET} or newer, got {self.opset}")
        require_at_least_one(threads=self.threads, calib_count=self.calib_count,
                             parity_count=self.parity_count, latency_runs=self.latency_runs)
        for flag, value, choices in (("--converter", self.converter, TFLITE_CONVERTERS),
                                     ("--int8-weights", self.weight_granularity,
                                      WEIGHT_GRANULARITIES),
                                     ("--coreml-input", self.coreml_input, COREML_INPUTS),
                                     ("--palette-bits", self.palette_bits, PALETTE_BITS)):
            if value not in choices:
                raise UserError(f"{flag} {value!r}: choose from "
                                f"{', '.join(map(str, choices))}")
        if self.converter == "litert-torch":
            require_litert_torch()
            for flag, given in (("--int16", self.int16),
                                ("--int8-weights per-tensor",
                                 self.weight_granularity == "per-tensor")):
                if given:
                    raise UserError(f"{flag} is an onnx2tf option; litert-torch's PT2E int8 has "
                                    f"per-channel weights and int8 activations")
        if self.qat_program is not None:
            if self.converter != "litert-torch":
                raise UserError("--qat-program is converted by --converter litert-torch")
            if not self.qat_program.is_file():
                raise UserError(f"--qat-program {self.qat_program}: no such file")
            if self.targets != ["tflite"]:
                raise UserError("--qat-program makes the int8 TFLite only: use --target tflite")
