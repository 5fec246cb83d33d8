"""The two TFLite converters side by side: onnx2tf (PyTorch -> ONNX -> TFLite) and litert-torch
(PyTorch -> TFLite through torch.export, PT2E int8).

    python -m benchmarks.converters --checkpoint runs/quickstart_student/best.pth \\
        --checkpoint runs/paper_table/mnv2_kd_s0/best.pth --latency-size 512 1024 \\
        --threads 2 --json benchmarks/results/converters.json

Each checkpoint is exported twice per converter through conversion.export's pipeline (so with
the same gate and contract as any export):
  accuracy  at the checkpoint's own input size, int8 calibrated on --calib-count train images
            of its dataset, measured against PyTorch fp32 on --parity-count held-out images of
            it (for CamVid: val): agreement, mIoU drop, file size, the ops in the graph,
            whether XNNPACK takes every op, the GPU delegate's verdict, conversion wall time;
  latency   at --latency-size: the median of --runs inferences with --threads threads.
An artifact the gate refuses is still reported, marked as refused.

`--qat CKPT` adds the QAT comparison on that student: int8 mIoU on its held-out images after
plain PTQ (each converter), after QAT under the TFLite-scheme simulation re-calibrated by
onnx2tf, and after PT2E QAT converted by litert-torch with the ranges it learned
(training.quantize --mode qat [--converter litert-torch]), both fine-tuned --qat-epochs.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import sys
import tempfile
from pathlib import Path

from conversion.pipeline import ExportRun, ExportSettings
from conversion.tflite_export import SHIPPED
from training.checkpoint import load_checkpoint
from training.compression import TFLITE_CONVERTERS
from training.data import parse_dataset_spec
from training.errors import UserError, require_at_least_one, run_cli
from training.io import prepare_output_file, write_results
from training.machine import machine_record

COLUMNS = ("converter", "precision", "conversion_s", "size_mb", "agreement", "miou_drop",
           "latency_ms", "xnnpack_fully_delegated", "gpu_ops_unsupported", "passed")


def export_rows(checkpoint: Path, converter: str, out: Path, size, calib_count: int,
                parity_count: int, threads: int, runs: int) -> dict[str, dict]:
    """{precision: parity entry} of one export (refused variants included)."""
    settings = ExportSettings(targets=["tflite"], converter=converter, checkpoint=checkpoint,
                              out=out, input_size=size, calib_count=calib_count,
                              parity_count=parity_count, threads=threads, latency_runs=runs)
    return {e["precision"]: e for e in ExportRun(settings).run()["entries"]}


def held_out_count(checkpoint: Path, wanted: int) -> int:
    """`wanted`, or all of the checkpoint's held-out split when it is smaller."""
    spec = parse_dataset_spec(load_checkpoint(checkpoint)["dataset"]["spec"])
    split = next(s for s in ("val", "test", *spec.splits) if s in spec.splits)
    return min(wanted, len(spec.build(split)))


def compare_converters(checkpoint: Path, latency_size, calib_count: int, parity_count: int,
                       threads: int, runs: int, work: Path) -> list[dict]:
    parity_count = held_out_count(checkpoint, parity_count)
    rows = []
    for converter in TFLITE_CONVERTERS:
        print(f"{checkpoint}: {converter} ...", file=sys.stderr, flush=True)
        accuracy = export_rows(checkpoint, converter, work / converter / "accuracy", None,
                               calib_count, parity_count, threads, runs=3)
        speed = export_rows(checkpoint, converter, work / converter / "latency", latency_size,
                            calib_count=8, parity_count=2, threads=threads, runs=runs)
        for precision in SHIPPED:
            entry, timed = accuracy[precision], speed[precision]
            rows.append({
                "checkpoint": str(checkpoint), "converter": converter, "precision": precision,
                "conversion_s": entry["conversion_s"], "size_mb": entry["size_mb"],
                "agreement": entry["agreement"], "agreement_confident":
                entry["agreement_confident"], "miou_reference": entry["miou_reference"],
                "miou_artifact": entry["miou_artifact"], "miou_drop": entry["miou_drop"],
                "latency_ms": timed["latency_ms"], "latency_size": list(latency_size),
                "ops": entry["ops"], "xnnpack_fully_delegated": entry["xnnpack_fully_delegated"],
                "gpu_ops_unsupported": entry["gpu_delegate"]["unsupported_ops"],
                "passed": entry["passed"], "failures": entry["failures"]})
    return rows


def qat_comparison(checkpoint: Path, epochs: int, parity_count: int, threads: int,
                   work: Path) -> dict:
    """int8 mIoU of `checkpoint` after PTQ and after either QAT, each through its converter."""
    from training.compression.runs import pt2e_qat, quantization_aware_training

    def int8(path: Path, converter: str, out: str, qat_program: Path | None = None) -> dict:
        settings = ExportSettings(targets=["tflite"], converter=converter, checkpoint=path,
                                  out=work / out, parity_count=parity_count, threads=threads,
                                  qat_program=qat_program)
        entries = {e["precision"]: e for e in ExportRun(settings).run()["entries"]}
        entry = entries["int8"]
        return {k: entry[k] for k in ("miou_reference", "miou_artifact", "agreement", "passed")}

    parity_count = held_out_count(checkpoint, parity_count)
    simulated = quantization_aware_training(checkpoint, epochs, out=work / "qat_sim.pth")
    program = pt2e_qat(checkpoint, epochs, out=work / "qat_pt2e.pt2")
    return {"checkpoint": str(checkpoint), "epochs": epochs, "rows": {
        "ptq_onnx2tf": int8(checkpoint, "onnx2tf", "ptq_onnx2tf"),
        "ptq_litert_torch": int8(checkpoint, "litert-torch", "ptq_litert"),
        "qat_simulated_recalibrated_by_onnx2tf": int8(work / "qat_sim.pth", "onnx2tf",
                                                      "qat_onnx2tf"),
        "qat_pt2e_own_ranges_litert_torch": int8(checkpoint, "litert-torch", "qat_litert",
                                                 Path(program["out"]))},
        "pytorch": {"fp32": simulated["fp32_miou"], "qat_sim_fp32": simulated["qat_fp32_miou"],
                    "qat_sim_int8_simulated": simulated["qat_int8_miou"],
                    "qat_pt2e_int8": program["qat_pt2e_int8_miou"]}}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1.5 else f"{value:.2f}"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return "-" if value is None else str(value)


def render_markdown(result: dict) -> str:
    lines = [f"# TFLite converters side by side ({result['machine']['machine']})", "",
             f"Latency at {result['latency_size'][0]}x{result['latency_size'][1]}, "
             f"{result['threads']} threads (median of {result['runs']}); agreement and mIoU "
             "drop against PyTorch fp32 on held-out images at the checkpoint's own size; "
             "conversion time is the whole path from PyTorch (onnx2tf's includes the ONNX "
             "export) for all four variants together.", ""]
    for checkpoint in dict.fromkeys(r["checkpoint"] for r in result["rows"]):
        lines += [f"## {checkpoint}", "", "| " + " | ".join(COLUMNS) + " |",
                  "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |"
                  for r in result["rows"] if r["checkpoint"] == checkpoint]
        ops = {r["converter"]: r["ops"] for r in result["rows"]
               if r["checkpoint"] == checkpoint and r["precision"] == "int8"}
        lines += ["", "int8 ops: " + "; ".join(
            f"{name}: " + ", ".join(f"{op} {n}" for op, n in counts.items())
            for name, counts in ops.items()), ""]
    if result.get("qat"):
        qat = result["qat"]
        lines += [f"## QAT ({qat['epochs']} epochs) against PTQ: {qat['checkpoint']}", "",
                  "| path | int8 mIoU (TFLite) | its reference mIoU | agreement | passed |",
                  "|---|---|---|---|---|"]
        lines += [f"| {name} | {_cell(r['miou_artifact'])} | {_cell(r['miou_reference'])} | "
                  f"{_cell(r['agreement'])} | {r['passed']} |" for name, r in qat["rows"].items()]
        lines += ["", "PyTorch: " + ", ".join(f"{k} {v:.2f}" for k, v in qat["pytorch"].items()),
                  ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, action="append", required=True,
                        help="a student checkpoint (repeat for several)")
    parser.add_argument("--latency-size", type=int, nargs=2, default=(512, 1024),
                        metavar=("H", "W"))
    parser.add_argument("--calib-count", type=int, default=64)
    parser.add_argument("--parity-count", type=int, default=101,
                        help="held-out images for agreement and mIoU (at most the whole "
                             "held-out split; 101 = all of CamVid val)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--qat", type=Path, metavar="CKPT",
                        help="also compare PTQ and both QAT paths on this student")
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/converters.json"))
    args = parser.parse_args(argv)
    require_at_least_one(calib_count=args.calib_count, parity_count=args.parity_count,
                         threads=args.threads, runs=args.runs)
    for path in args.checkpoint + [args.qat] * (args.qat is not None):
        if not path.is_file():
            raise UserError(f"--checkpoint {path}: no such file")
    prepare_output_file(args.json, "--json")
    rows = []
    with tempfile.TemporaryDirectory(prefix="converters-") as work:
        for index, checkpoint in enumerate(args.checkpoint):
            rows += compare_converters(checkpoint, args.latency_size, args.calib_count,
                                       args.parity_count, args.threads, args.runs,
                                       Path(work) / str(index))
        qat = qat_comparison(args.qat, args.qat_epochs, args.parity_count, args.threads,
                             Path(work) / "qat") if args.qat else None
    result = {"machine": machine_record(), "latency_size": list(args.latency_size),
              "threads": args.threads, "runs": args.runs, "rows": rows, "qat": qat}
    write_results(args.json, result, render_markdown(result))
    return result


if __name__ == "__main__":
    run_cli(main)
