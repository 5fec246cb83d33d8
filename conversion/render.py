"""Segment footage with an exported model and write what a person can watch.

`segment_footage` runs one artifact (and, to compare, a second) on every frame of a
`conversion.footage` source, exactly as the apps do: resize to the contract's input size
(bilinear with antialias, as the parity check and training do), `prepare_input`, invoke,
`read_classes` (the argmax); the class map then goes back to the frame's own size (nearest) for the
overlay. It writes into a staging folder inside `out` and moves the results into `out` at
the end, also after Ctrl-C (with the frames done so far and a valid summary), so a failed
run leaves nothing half-written.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from conversion.calibration import resize_frames
from conversion.contract import prepare_input, read_classes
from training.io import atomic_write_text, prepare_output_dir, remove_empty
from training.metrics import SegmentationMetrics

STAGES = ("decode", "pre", "infer", "post", "encode")


def overlay(rgb: np.ndarray, classes: np.ndarray, palette: np.ndarray, opacity: float):
    """`classes` painted over `rgb` at `opacity`, rounded as the apps round ("source over")."""
    alpha = round(min(1.0, max(0.0, opacity)) * 255)
    valid = classes < len(palette)
    colours = palette[np.where(valid, classes, 0)].astype(np.int32)
    mixed = (rgb.astype(np.int32) * (255 - alpha) + colours * alpha + 127) // 255
    return np.where(valid[..., None], mixed, rgb).astype(np.uint8)


def to_frame_size(classes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A model-size class map at the frame's size: each frame pixel takes the class at its
    centre's position in the model input (nearest)."""
    height, width = classes.shape
    rows = ((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64)
    cols = ((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64)
    return classes[np.minimum(rows, height - 1)][:, np.minimum(cols, width - 1)]


def legend_strip(names: list[str], palette: np.ndarray, width: int = 640) -> Image.Image:
    """One row per class: its colour and name."""
    columns, row = 4, 22
    image = Image.new("RGB", (width, row * ((len(names) + columns - 1) // columns) + 4),
                      "white")
    draw = ImageDraw.Draw(image)
    for index, name in enumerate(names):
        x, y = (index % columns) * width // columns + 4, (index // columns) * row + 4
        draw.rectangle([x, y, x + 14, y + 14], fill=tuple(int(v) for v in palette[index]),
                       outline="black")
        draw.text((x + 20, y + 2), name, fill="black")
    return image


class Model:
    """One artifact with its contract: frame in, model-size class map out, timed by stage."""

    def __init__(self, runtime, contract: dict):
        self.runtime, self.contract = runtime, contract
        self.size = runtime.frame_size

    def classes(self, rgb: np.ndarray, times: dict) -> np.ndarray:
        start = time.perf_counter()
        x = prepare_input(resize_frames(rgb[None], self.size), self.runtime.input_spec)
        times["pre"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        raw = self.runtime.invoke(x)
        times["infer"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        classes = read_classes(raw, self.runtime.output_spec)[0]
        times["post"].append((time.perf_counter() - start) * 1000)
        return classes


class VideoWriter:
    """H.264 (yuv420p) through PyAV at the source's frame rate; odd sizes are padded."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        import av
        from fractions import Fraction
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(
            1001))
        self.stream.height, self.stream.width = (s + s % 2 for s in size)
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "20", "preset": "veryfast"}

    def write(self, rgb: np.ndarray) -> None:
        import av
        height, width = self.stream.height, self.stream.width
        if rgb.shape[:2] != (height, width):
            rgb = np.pad(rgb, ((0, height - rgb.shape[0]), (0, width - rgb.shape[1]), (0, 0)),
                         mode="edge")
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def _summary_of(times: dict, frames: int, wall_s: float) -> dict:
    stages = {}
    for stage in STAGES:
        values = sorted(times[stage])
        stages[stage] = {"median_ms": statistics.median(values) if values else None,
                         "p95_ms": values[min(len(values) - 1, int(0.95 * len(values)))]
                         if values else None}
    return {"frames": frames, "wall_s": wall_s, "fps": frames / wall_s if wall_s else None,
            "stages": stages}


def segment_footage(source, model: Model, out: Path, *, compare: Model | None = None,
                    video: bool = True, overlays: bool = False, masks: bool = False,
                    legend: bool = False, opacity: float = 0.5, stride: int = 1,
                    max_frames: int | None = None, fps: float | None = None) -> dict:
    """Run `model` over `source`, write the chosen outputs into `out`; returns the summary."""
    created = prepare_output_dir(out, "--out")
    staging = Path(tempfile.mkdtemp(prefix=f".run-{os.getpid()}-", dir=out))
    classes_info = model.contract["classes"]
    names, palette = classes_info["names"], np.asarray(classes_info["palette"], np.uint8)
    metrics = SegmentationMetrics(len(names), classes_info["ignore_index"])
    times = {stage: [] for stage in STAGES}
    shares, agreement, writer, done, interrupted = [], [], None, 0, False
    rate = fps or source.fps or 6.0
    try:
        bar = tqdm(total=max_frames or (source.count and -(-source.count // stride)),
                   unit="frame", desc="segmenting")
        started = time.perf_counter()
        try:
            for frame in source.frames():
                if frame.index % stride:
                    continue
                if max_frames is not None and done >= max_frames:
                    break
                times["decode"].append(frame.decode_ms)
                classes = to_frame_size(model.classes(frame.rgb, times), frame.rgb.shape[:2])
                start = time.perf_counter()
                picture = overlay(frame.rgb, classes, palette, opacity)
                if compare is not None:
                    other = to_frame_size(compare.classes(frame.rgb, {s: [] for s in STAGES}),
                                          frame.rgb.shape[:2])
                    agreement.append(float((other == classes).mean()))
                    picture = np.concatenate([picture, overlay(frame.rgb, other, palette,
                                                               opacity)], axis=1)
                if video:
                    writer = writer or VideoWriter(staging / "overlay.mp4", rate,
                                                   picture.shape[:2])
                    writer.write(picture)
                if overlays:
                    _save(Image.fromarray(picture), staging / "overlays" / f"{frame.name}.png")
                if masks:
                    indexed = Image.fromarray(classes.astype(np.uint8), mode="P")
                    indexed.putpalette(palette.ravel().tolist())
                    _save(indexed, staging / "masks" / f"{frame.name}.png")
                times["encode"].append((time.perf_counter() - start) * 1000)
                if frame.mask is not None:
                    import torch
                    metrics.update(torch.from_numpy(classes.astype(np.int64)),
                                   torch.from_numpy(frame.mask))
                counts = np.bincount(classes.ravel(), minlength=len(names))[:len(names)]
                shares.append({"frame": frame.index, **{names[k]: round(float(c) / classes.size,
                                                                       4)
                                                        for k, c in enumerate(counts) if c}})
                done += 1
                bar.update(1)
                bar.set_postfix(fps=f"{done / (time.perf_counter() - started):.1f}")
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            source.close()
        summary = _summary_of(times, done, time.perf_counter() - started)
        summary.update(input_kind=source.kind, model=model.contract["artifact"]["file"],
                       precision=model.contract["artifact"].get("precision"),
                       model_input=list(model.size), video_fps=rate if video else None,
                       interrupted=interrupted, class_shares=shares,
                       threads=model.runtime.threads)
        if compare is not None:
            summary["compare"] = {"model": compare.contract["artifact"]["file"],
                                  "agreement_per_frame": agreement,
                                  "agreement_mean": statistics.fmean(agreement)
                                  if agreement else None}
        if metrics.matrix.sum() > 0:
            result = metrics.compute()
            summary["labels"] = {"miou": result["miou"], "per_class_iou": dict(
                zip(names, result["per_class_iou"]))}
        if legend:
            legend_strip(names, palette).save(staging / "legend.png")
        atomic_write_text(staging / "summary.json", _json(summary))
        _place(staging, out)
        return summary
    except BaseException:
        if not interrupted:
            shutil.rmtree(staging, ignore_errors=True)
            remove_empty(created)
        raise


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _place(staging: Path, out: Path) -> None:
    """Move everything staged into `out` (replacing what the previous run wrote there)."""
    for item in staging.iterdir():
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    staging.rmdir()


def _json(value) -> str:
    import json
    import math

    def plain(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v
    return json.dumps(plain(value), indent=2) + "\n"
