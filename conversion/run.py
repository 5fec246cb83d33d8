"""Run an exported model on footage: an image, a folder or glob of images, a video, a webcam.

    python -m conversion.run artifacts/quickstart_student/deeplabv3lite_mobilenetv2_int8.tflite \
        --input drive.mp4 --out runs/drive_int8
    python -m conversion.run M_fp32.tflite --input drive.mp4 --compare M_int8.tflite --out runs/cmp
    python -m conversion.run M_int8.tflite --input 'photos/*.jpg' --overlays --masks --legend \
        --out runs/photos
    python -m conversion.run M_int8.tflite --input camvid:../shared/datasets/camvid --split val \
        --max-frames 20 --out runs/camvid_val        # a dataset spec: frames and their labels

MODEL is anything conversion.export writes (.tflite, .onnx; .mlpackage on macOS) or a .pth
checkpoint, driven only by its model contract: frames are resized to the contract's input
size, prepared and read back exactly as the apps do, and the class map is drawn back at the
frame's own size. --input '-' reads the webcam (/dev/video0). Outputs in --out: overlay.mp4
(the input's frame rate; side by side with --compare), overlays/ and masks/ PNGs (indexed
colour, the contract's palette), legend.png, and summary.json: frames, per-stage median and
p95 ms (decode, pre, infer, post, draw, encode; png per file), FPS, class-area shares per
frame, mIoU with labels (--labels DIR of mask PNGs, or a dataset spec as --input), and
per-frame agreement with --compare. Ctrl-C keeps the frames written so far and a valid summary (exit 130).

Decoding, the model, and drawing + encoding run at the same time on threads of their own
(--serial: one after another, the reference), so end to end the run goes about as fast as
its slowest stage, usually the model. summary.json gives the wall FPS, the FPS of the model
alone on this run's frames (same threads, measured after the run) and their ratio.
--quality fast|balanced|archive sets x264's preset and rate factor and the PNGs'
compression. --out must not hold the input or the labels, and a rerun into the same --out
replaces all of the previous run's outputs.
"""
from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import sys
from pathlib import Path

from conversion.encoder import QUALITIES
from conversion.footage import open_source
from conversion.render import segment_footage
from conversion.runtimes import open_artifact
from conversion.segmenter import Segmenter
from training.errors import UserError, exit_if_interrupted, require_at_least_one, run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help=".tflite, .onnx, .mlpackage or .pth")
    parser.add_argument("--input", required=True, metavar="PATH",
                        help="image, folder, glob, video (mp4/mkv/avi/mov/webm), '-' for the "
                             "webcam, or a dataset spec")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--split", help="the split of a dataset-spec --input (default: val)")
    parser.add_argument("--labels", type=Path, metavar="DIR",
                        help="class-index mask PNGs: by file stem for images, in order for "
                             "video frames; mIoU and per-class IoU go into the summary")
    parser.add_argument("--compare", type=Path, metavar="MODEL2",
                        help="a second model: side-by-side frames and per-frame agreement")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--video", action=argparse.BooleanOptionalAction, default=True,
                         help="overlay.mp4 (default on)")
    outputs.add_argument("--overlays", action="store_true", help="overlay PNG per frame")
    outputs.add_argument("--masks", action="store_true", help="indexed-colour mask PNG per frame")
    outputs.add_argument("--legend", action="store_true", help="legend.png")
    outputs.add_argument("--opacity", type=float, default=0.5)
    outputs.add_argument("--fps", type=float, help="overlay.mp4's frame rate (default: the "
                                                   "input's; 6 for images)")
    outputs.add_argument("--quality", choices=QUALITIES, default="fast",
                         help="fast (default: x264 ultrafast, PNG zlib level 1), balanced "
                              "(veryfast, level 6) or archive (slow, level 9)")
    run = parser.add_argument_group("how much")
    run.add_argument("--threads", type=int, default=2, help="the model's runtime threads")
    run.add_argument("--max-frames", type=int)
    run.add_argument("--stride", type=int, default=1, help="every n-th frame")
    run.add_argument("--serial", action="store_true",
                     help="run the stages one after another on one thread (the reference the "
                          "pipelined default is tested against)")
    run.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    require_at_least_one(threads=args.threads, stride=args.stride, max_frames=args.max_frames)
    if not 0 <= args.opacity <= 1:
        raise UserError(f"--opacity must be within 0..1, got {args.opacity}")
    if args.fps is not None and args.fps <= 0:
        raise UserError(f"--fps must be positive, got {args.fps}")
    model = Segmenter(*open_artifact(args.model, args.threads))
    compare = Segmenter(*open_artifact(args.compare, args.threads), keep_inputs=0) \
        if args.compare else None
    if compare is not None and compare.contract["classes"]["names"] != \
            model.contract["classes"]["names"]:
        raise UserError(f"{args.compare} predicts other classes than {args.model}")
    source = open_source(args.input, args.split, args.labels)
    summary = segment_footage(source, model, args.out, compare=compare, video=args.video,
                              overlays=args.overlays, masks=args.masks, legend=args.legend,
                              opacity=args.opacity, stride=args.stride,
                              max_frames=args.max_frames, fps=args.fps, quality=args.quality,
                              pipelined=not args.serial, progress=args.progress)
    stages = ", ".join(f"{stage} {values['median_ms']:.1f}" for stage, values in
                       summary["stages"].items() if values["median_ms"] is not None)
    alone = summary["inference_alone"]
    ratio = f"; the model alone {alone['fps']:.1f} FPS, ratio {summary['fps_ratio']:.2f}" \
        if alone and summary["fps_ratio"] else ""
    print(f"{summary['frames']} frames at {summary['fps'] or 0:.1f} FPS{ratio} (median ms: "
          f"{stages}) -> {args.out}", file=sys.stderr)
    exit_if_interrupted(summary, f"the {summary['frames']} frames done are in {args.out}")
    return summary


if __name__ == "__main__":
    run_cli(main)
