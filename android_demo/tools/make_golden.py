"""Golden vectors for the apps' cores, from a real full-int8 TFLite export of a trained student.

    python android_demo/tools/make_golden.py --checkpoint runs/tiny/best.pth
    python android_demo/tools/make_golden.py --export-dir /tmp/export   # reuse an export

Runs `python -m conversion.export --target tflite` (unless --export-dir), opens the app's
model (AppContract.MODEL_ASSET) in ai-edge-litert, picks the held-out frame whose prediction
covers the most classes, and writes to android_demo/core/src/test/resources/golden/:

    contract.json          the export's model contract, byte for byte
    input_rgb.u8           the frame: H x W x 3 uint8 RGB (already the model's input size)
    input_tensor.bin       conversion.contract.prepare_input(frame): what the model was fed
    output_raw.bin         the model's raw output tensor (NHWC int8 logits), as LiteRT gave it
    expected_classes.u8    argmax over classes of the dequantized output: H x W uint8
    golden.json            shapes, dtypes, provenance, sha256 of each file, a few dequantized
                           logits, and the classes present

The Kotlin (JUnit) and Swift (XCTest) cores must reproduce input_tensor.bin from input_rgb.u8
and expected_classes.u8 from output_raw.bin exactly.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conversion.apps import GOLDEN_DIR, ROOT, kotlin_constants  # noqa: E402


def export(checkpoint: Path, out: Path) -> None:
    command = [sys.executable, "-m", "conversion.export", "--target", "tflite",
               "--checkpoint", str(checkpoint), "--out", str(out),
               "--calib-count", "32", "--parity-count", "16", "--threads", "2"]
    print("running:", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True, cwd=ROOT)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make(export_dir: Path, out: Path, frames: int = 16, min_classes: int = 3) -> dict:
    from conversion.calibration import ImageSet, load_held_out
    from conversion.contract import load_contract, prepare_input, read_output
    from conversion.runtimes import LiteRTRuntime

    names = kotlin_constants()
    model = export_dir / names["MODEL_ASSET"]
    contract = load_contract(model)
    height, width = contract["export"]["input_size"]
    runtime = LiteRTRuntime(model, threads=1)
    assert runtime.input_spec["shape"] == contract["input"]["shape"], "contract/model mismatch"
    held_out = load_held_out(contract["source"]["dataset"], frames, (height, width),
                             ImageSet(np.zeros((0, 1, 1, 3), np.uint8), None))

    best = None
    for index, frame in enumerate(held_out.images):
        x = prepare_input(frame[None], contract["input"])
        raw = runtime.invoke(x)
        classes = read_output(raw, contract["output"]).argmax(1)[0]
        present = len(np.unique(classes))
        if best is None or present > best[0]:
            best = (present, index, frame, x, raw, classes)
    present, index, frame, x, raw, classes = best
    if present < min_classes:
        raise SystemExit(f"the best held-out frame shows only {present} classes (< {min_classes}):"
                         f" train the student longer")

    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model.with_name(model.name + ".json"), out / "contract.json")
    files = {"input_rgb.u8": frame, "input_tensor.bin": x, "output_raw.bin": raw,
             "expected_classes.u8": classes.astype(np.uint8)}
    for name, array in files.items():
        (out / name).write_bytes(np.ascontiguousarray(array).tobytes())
    logits = read_output(raw, contract["output"])  # float32 NCHW
    counts = np.bincount(classes.ravel(), minlength=contract["classes"]["num_classes"])
    meta = {
        "generated_by": "android_demo/tools/make_golden.py",
        "model": {"file": model.name, "sha256": contract["artifact"]["sha256"],
                  "precision": contract["artifact"]["precision"]},
        "checkpoint_sha256": contract["source"]["checkpoint_sha256"],
        "frame": {"dataset": contract["source"]["dataset"], "source": held_out.source,
                  "index": index},
        "input": {"file": "input_rgb.u8", "shape": [height, width, 3], "dtype": "uint8"},
        "input_tensor": {"file": "input_tensor.bin", "shape": list(x.shape),
                         "dtype": str(x.dtype), "layout": contract["input"]["layout"]},
        "output": {"file": "output_raw.bin", "shape": list(raw.shape), "dtype": str(raw.dtype),
                   "layout": contract["output"]["layout"]},
        "expected": {"file": "expected_classes.u8", "shape": [height, width], "dtype": "uint8"},
        # A few dequantized logits (float32 values, exact) to check dequantization itself.
        "dequantized_samples": [
            {"y": y, "x": x_, "logits": [float(v) for v in logits[0, :, y, x_]]}
            for y, x_ in ((0, 0), (height // 2, width // 2), (height - 1, width - 1))],
        "classes_present": {contract["classes"]["names"][k]: int(n)
                            for k, n in enumerate(counts) if n},
        "sha256": {name: sha256(out / name) for name in ["contract.json", *files]},
    }
    (out / "golden.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="trained student to export first")
    source.add_argument("--export-dir", type=Path, help="an existing TFLite export directory")
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR)
    args = parser.parse_args(argv)
    if args.export_dir:
        meta = make(args.export_dir, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="golden-export-") as work:
            export(args.checkpoint, Path(work) / "export")
            meta = make(Path(work) / "export", args.out)
    print(json.dumps({"out": str(args.out), "classes_present": meta["classes_present"]},
                     indent=2))


if __name__ == "__main__":
    main()
