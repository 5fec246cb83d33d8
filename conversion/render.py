"""Segment footage with exported models and write what a person can watch.

`segment_footage` is the pipeline of `python -m conversion.run`, read as its stages:

    decode (the source) -> prepare (resize, input table) -> infer (the runtime alone)
      -> draw and encode (argmax, class map at the frame's size, overlay, overlay.mp4;
         PNGs handed to their own writer thread)
      -> account (class shares, labels, agreement; on the calling thread)

Pipelined (the default), each stage runs on its own thread (`conversion.stages`), so the
model is never idle while a frame is decoded, prepared, drawn or encoded, and the infer
stage does nothing but invoke; serial runs the same stage functions one after another on one
thread, the reference the pipelined run must match bit for bit. Everything is
written into a staging folder inside `out` and placed at the end (`conversion.outputs`):
after Ctrl-C with the frames done and a valid summary, after an error not at all.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from conversion.drawing import Painter, class_counts, legend_strip, mask_image, to_frame_size
from conversion.encoder import PngWriter, VideoEncoder, check_quality
from conversion.outputs import WRITER, Staging, check_out
from conversion.segmenter import Segmenter
from conversion.stages import run_stages
from training.errors import UserError, require_at_least_one
from training.io import json_safe

# Milliseconds per frame, except png: per file, on the PNG writer's thread.
STAGES = ("decode", "pre", "infer", "post", "draw", "encode", "png")


def segment_footage(source, model: Segmenter, out: Path, *, compare: Segmenter | None = None,
                    video: bool = True, overlays: bool = False, masks: bool = False,
                    legend: bool = False, opacity: float = 0.5, stride: int = 1,
                    max_frames: int | None = None, fps: float | None = None,
                    quality: str = "fast", pipelined: bool = True, progress: bool = True) -> dict:
    """Run `model` (and `compare`) over `source`, write the chosen outputs into `out`; returns
    the summary (also written as out/summary.json)."""
    settings = check_quality(quality)
    require_at_least_one(stride=stride, max_frames=max_frames)
    if fps is not None and not fps > 0:
        raise UserError(f"fps must be positive, got {fps}")
    if not 0 <= opacity <= 1:
        raise UserError(f"opacity must be within 0..1, got {opacity}")
    classes_info = model.contract["classes"]
    names, palette = classes_info["names"], np.asarray(classes_info["palette"], np.uint8)
    if compare is not None and compare.contract["classes"]["names"] != names:
        raise UserError(f"{compare.contract['artifact']['file']} predicts other classes than "
                        f"{model.contract['artifact']['file']}")
    paint = Painter(palette, opacity)
    check_out(out, source.reads)  # before anything is written
    staging, run = Staging(out), None
    bar = tqdm(total=max_frames or (source.count and -(-source.count // stride)),
               unit="frame", desc="segmenting", disable=not progress)
    torch_threads = torch.get_num_threads()
    # torch's work outside the model (resizing frames, the argmax) on one thread: a team of
    # OpenMP threads waits for cores that the model's runtime holds. Stage threads start later
    # and take this setting.
    torch.set_num_threads(1)
    try:
        times = {stage: [] for stage in STAGES}
        run = _Run(staging.path, names, palette, classes_info["ignore_index"], model, compare,
                   paint, times, video=video, overlays=overlays, masks=masks,
                   rate=fps or source.fps or 6.0, quality=quality,
                   png=PngWriter(settings["png_level"], background=pipelined,
                                 times=times["png"]))
        run.on_frame = lambda: bar.update(1)
        started = time.perf_counter()
        interrupted = run_stages(_taken(source.frames(), stride, max_frames),
                                 [run.prepare, run.infer, run.draw_and_encode], run.account,
                                 pipelined=pipelined)
        run.finish()
        bar.close()
        wall_s = time.perf_counter() - started
        alone = None
        if not interrupted:
            try:
                alone = model.inference_alone()
            except KeyboardInterrupt:  # the frames are done: keep them, without this figure
                interrupted = True
        summary = _summary(run, wall_s, alone, interrupted, source, model, compare,
                           pipelined=pipelined, quality=quality, video=video)
        if legend:
            legend_strip(names, palette).save(staging.path / "legend.png")
        summary["outputs"] = sorted([p.name for p in staging.path.iterdir()] + ["summary.json"])
        (staging.path / "summary.json").write_text(json.dumps(json_safe(summary), indent=2)
                                                   + "\n")
        staging.place()
        return summary
    except BaseException:
        if run is not None:
            run.abandon()
        staging.discard()
        raise
    finally:
        bar.close()
        source.close()
        torch.set_num_threads(torch_threads)


def _taken(frames, stride: int, max_frames: int | None):
    """Every `stride`-th frame, at most `max_frames` of them."""
    taken = 0
    for frame in frames:
        if frame.index % stride:
            continue
        if max_frames is not None and taken >= max_frames:
            return
        taken += 1
        yield frame


class _Run:
    """The stage functions of one run and what they accumulate."""

    def __init__(self, staging: Path, names, palette, ignore_index, model, compare, paint,
                 times: dict, *, video, overlays, masks, rate, quality, png):
        from training.metrics import SegmentationMetrics
        self.staging, self.names, self.palette, self.ignore = staging, names, palette, \
            ignore_index
        self.model, self.compare, self.paint = model, compare, paint
        self.video, self.overlays, self.masks = video, overlays, masks
        self.rate, self.quality, self.png = rate, quality, png
        self.times = times
        self.metrics = SegmentationMetrics(len(names), ignore_index)
        self.shares, self.agreement, self.done = [], [], 0
        self.encoder: VideoEncoder | None = None
        self.on_frame = lambda: None
        for folder, wanted in (("overlays", overlays), ("masks", masks)):
            if wanted:
                (staging / folder).mkdir()

    def prepare(self, frame):
        self.times["decode"].append(frame.decode_ms)
        start = time.perf_counter()
        x = self.model.prepare(frame.rgb)
        self.times["pre"].append((time.perf_counter() - start) * 1000)
        return frame, x, self.compare.prepare(frame.rgb) if self.compare else None

    def infer(self, item):
        frame, x, x_other = item
        start = time.perf_counter()
        raw = self.model.infer(x)
        self.times["infer"].append((time.perf_counter() - start) * 1000)
        return frame, raw, self.compare.infer(x_other) if self.compare else None

    def draw_and_encode(self, item):
        frame, raw, raw_other = item
        start = time.perf_counter()
        small = self.model.read(raw)
        other_small = self.compare.read(raw_other) if self.compare else None
        self.times["post"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        size = frame.rgb.shape[:2]
        classes, agreement, picture = to_frame_size(small, size), None, None
        if self.video or self.overlays:
            picture = self.paint(frame.rgb, classes)
        if other_small is not None:
            other = to_frame_size(other_small, size)
            agreement = float((other == classes).mean())
            if picture is not None:
                picture = np.concatenate([picture, self.paint(frame.rgb, other)], axis=1)
        drawn = time.perf_counter()
        self.times["draw"].append((drawn - start) * 1000)
        if self.video:
            if self.encoder is None:
                self.encoder = VideoEncoder(self.staging / "overlay.mp4", self.rate,
                                            picture.shape[:2], self.quality)
            self.encoder.write(picture)
            self.times["encode"].append((time.perf_counter() - drawn) * 1000)
        if self.overlays:
            self.png.submit(Image.fromarray(picture), self.staging / "overlays" /
                            f"{frame.name}.png")
        if self.masks:
            self.png.submit(mask_image(classes, self.palette), self.staging / "masks" /
                            f"{frame.name}.png")
        return frame, classes, agreement

    def account(self, item):
        frame, classes, agreement = item
        if frame.mask is not None:
            self._score(frame, classes)
        counts = class_counts(classes, len(self.names))
        share = {"frame": frame.index, **{self.names[k]: round(float(c) / classes.size, 4)
                                          for k, c in enumerate(counts) if c}}
        self.shares.append(share)
        if agreement is not None:
            self.agreement.append(agreement)
        self.done += 1
        self.on_frame()

    def _score(self, frame, classes) -> None:
        mask, count = frame.mask, len(self.names)
        bad = mask[(mask != self.ignore) & ((mask < 0) | (mask >= count))]
        if bad.size:
            raise UserError(f"labels {frame.mask_source} hold values outside the model's "
                            f"classes 0..{count - 1} (ignore {self.ignore}): "
                            f"{', '.join(map(str, np.unique(bad)[:5]))}")
        self.metrics.update(torch.from_numpy(classes.astype(np.int64)), torch.from_numpy(mask))

    def finish(self) -> None:
        """Flush the video and wait for the PNGs: what is counted as done is written."""
        if self.encoder is not None:
            self.encoder.close()
        self.png.close()

    def abandon(self) -> None:
        if self.encoder is not None:
            self.encoder.abandon()
        self.png.abandon()


def _summary(run: _Run, wall_s: float, alone: dict | None, interrupted: bool, source,
             model: Segmenter, compare: Segmenter | None, *, pipelined: bool, quality: str,
             video: bool) -> dict:
    stages = {}
    for stage in STAGES:
        values = sorted(run.times[stage])
        stages[stage] = {"median_ms": statistics.median(values) if values else None,
                         "p95_ms": values[min(len(values) - 1, int(0.95 * len(values)))]
                         if values else None}
    fps = run.done / wall_s if wall_s and run.done else None
    summary = {"written_by": WRITER, "frames": run.done, "wall_s": wall_s, "fps": fps,
               "inference_alone": alone,
               "fps_ratio": fps / alone["fps"] if fps and alone and alone["fps"] else None,
               "runner": "pipelined" if pipelined else "serial", "quality": quality,
               "stages": stages, "input_kind": source.kind,
               "model": model.contract["artifact"]["file"],
               "precision": model.contract["artifact"].get("precision"),
               "model_input": list(model.size), "video_fps": run.rate if video else None,
               "interrupted": interrupted, "class_shares": run.shares, "threads": model.threads}
    if compare is not None:
        summary["compare"] = {"model": compare.contract["artifact"]["file"],
                              "agreement_per_frame": run.agreement,
                              "agreement_mean": statistics.fmean(run.agreement)
                              if run.agreement else None}
    if run.metrics.matrix.sum() > 0:
        result = run.metrics.compute()
        summary["labels"] = {"miou": result["miou"],
                             "per_class_iou": dict(zip(run.names, result["per_class_iou"]))}
    return summary
