"""Frames in, for `python -m conversion.run`: an image, a folder or glob of images, a video file
(PyAV, whose wheel carries ffmpeg), a webcam, or a dataset spec (frames with their masks).

Every source yields `Frame`s of uint8 RGB at their own size, with how long decoding took, and
names the files it reads (`reads`), so that a run can refuse an --out that holds them. Bad
input is refused when the source is opened, before anything is written: an unreadable or
corrupt video, an image of the wrong channel count or of a size that PIL refuses as a
decompression bomb, a mask of another size. Later frames are checked as they are read.
"""
from __future__ import annotations

import glob
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from training.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class Frame:
    index: int  # position in the source (before --stride)
    name: str  # file stem, or frame_000123
    rgb: np.ndarray  # uint8 (H, W, 3)
    decode_ms: float
    mask: np.ndarray | None = None  # int64 (H, W) ground truth, when the source has labels
    mask_source: str | None = None  # the mask's file (or dataset sample), for error messages


def _rgb(image: Image.Image, where: str) -> np.ndarray:
    """An image as uint8 RGB; a palette or alpha is dropped, but not a wrong channel count."""
    if image.mode in ("RGBA", "P", "PA", "RGBX", "YCbCr"):
        image = image.convert("RGB")
    if image.mode != "RGB":
        bands = len(image.getbands())
        raise UserError(f"{where} has {bands} channel{'s' * (bands != 1)} (mode {image.mode}); "
                        f"the model takes 3-channel RGB")
    return np.asarray(image)


def read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            return _rgb(image, str(path))
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(f"cannot read image {path}: {exc.__class__.__name__}") from None
    except Image.DecompressionBombError as exc:  # an Exception, not an OSError
        raise UserError(f"cannot read image {path}: {exc}") from None


def read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    try:
        with Image.open(path) as image:
            mask = np.asarray(image)
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"cannot read mask {path}: {exc.__class__.__name__}") from None
    except Image.DecompressionBombError as exc:
        raise UserError(f"cannot read mask {path}: {exc}") from None
    if mask.ndim != 2 or mask.shape != size:
        raise UserError(f"mask {path} is {mask.shape[::-1]} but its frame is {size[::-1]}; "
                        f"masks are class-index PNGs of the frame's size")
    return mask.astype(np.int64)


class Source:
    kind = "?"
    fps: float = 0.0
    count: int | None = None
    reads: list[tuple[str, Path]] = []  # (what, path) of every file or folder it reads

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ImageFiles(Source):
    kind = "images"

    def __init__(self, paths: list[Path], masks: Path | None = None):
        self.paths, self.masks, self.count = paths, masks, len(paths)
        self.reads = [("input", p) for p in paths] + ([("labels", masks)] if masks else [])
        read_image(paths[0])  # a wrong first file fails before any output

    def frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            start = time.perf_counter()
            rgb = read_image(path)
            mask = None
            if self.masks is not None:
                mask_path = self.masks / f"{path.stem}.png"
                if not mask_path.is_file():
                    raise UserError(f"no mask {mask_path} for frame {path}")
                mask = read_mask(mask_path, rgb.shape[:2])
            yield Frame(index, path.stem, rgb, (time.perf_counter() - start) * 1000, mask,
                        str(mask_path) if mask is not None else None)


class Video(Source):
    kind = "video"

    def __init__(self, target: str, options: dict | None = None, masks: Path | None = None):
        import av
        self.target, self.masks = target, masks
        self.mask_files = sorted(masks.glob("*.png")) if masks else None
        self.reads = ([] if target.startswith("/dev/") else [("input", Path(target))]) + \
            ([("labels", masks)] if masks else [])
        try:
            self.container = av.open(target, options=options or {}, **(
                {"format": "v4l2"} if target.startswith("/dev/video") else {}))
            streams = self.container.streams.video
            if not streams:
                raise UserError(f"{target} has no video stream")
            self.stream = streams[0]
            self.stream.thread_type = "AUTO"
            self._decoded = self.container.decode(self.stream)
            self._first = next(self._decoded)  # a corrupt file fails here, before any output
        except StopIteration:
            raise UserError(f"{target} holds no decodable video frame") from None
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read video {target}: {exc.__class__.__name__}: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 25.0
        self.count = self.stream.frames or None

    def frames(self) -> Iterator[Frame]:
        import av
        index, frame, start = 0, self._first, time.perf_counter()
        while frame is not None:
            rgb = frame.to_ndarray(format="rgb24")
            mask, mask_source = None, None
            if self.mask_files is not None:
                if index >= len(self.mask_files):
                    raise UserError(f"{self.masks} has {len(self.mask_files)} masks, fewer "
                                    f"than the frames of {self.target}")
                mask = read_mask(self.mask_files[index], rgb.shape[:2])
                mask_source = str(self.mask_files[index])
            yield Frame(index, f"frame_{index:06d}", rgb, (time.perf_counter() - start) * 1000,
                        mask, mask_source)
            start = time.perf_counter()
            try:
                frame = next(self._decoded)
            except StopIteration:
                frame = None
            except av.error.FFmpegError as exc:
                raise UserError(f"video {self.target} is corrupt after frame {index}: "
                                f"{exc}") from None
            index += 1

    def close(self) -> None:
        self.container.close()


class DatasetFrames(Source):
    """A dataset split's images with their masks (any dataset spec)."""

    kind = "dataset"

    def __init__(self, spec_text: str, split: str | None):
        from training.data import DataError, parse_dataset_spec
        try:
            spec = parse_dataset_spec(spec_text)
            self.split = split or next(s for s in ("val", "test", "train") if s in spec.splits)
            self.dataset = spec.build(self.split)
        except (DataError, StopIteration) as exc:
            raise UserError(f"--input {spec_text!r}: {exc}") from None
        self.spec, self.count, self.fps = spec, len(self.dataset), 6.0
        root = spec_text.partition(":")[2].strip()
        self.reads = [("input", Path(root).expanduser())] if spec.name != "synthetic" else []

    def frames(self) -> Iterator[Frame]:
        for index in range(len(self.dataset)):
            start = time.perf_counter()
            image, mask = self.dataset[index]
            yield Frame(index, f"{self.split}_{index:05d}", image.permute(1, 2, 0).numpy(),
                        (time.perf_counter() - start) * 1000, mask.numpy().astype(np.int64),
                        f"{self.spec.text} split {self.split} sample {index}")


def open_source(text: str, split: str | None = None, labels: Path | None = None) -> Source:
    """The source `--input` names: '-' (webcam), a video, an image, a folder, a glob, or a
    dataset spec (synthetic[:...], camvid:ROOT, ...)."""
    if labels is not None and not labels.is_dir():
        raise UserError(f"--labels {labels}: not a folder of mask PNGs")
    if text == "-":
        return Video("/dev/video0", masks=labels)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return Video(str(path), masks=labels)
    if path.is_file():
        return ImageFiles([path], labels)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise UserError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return ImageFiles(paths, labels)
    if any(c in text for c in "*?["):
        paths = sorted(Path(p) for p in glob.glob(str(path))
                       if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise UserError(f"no image matches {text!r}")
        return ImageFiles(paths, labels)
    from training.data.spec import names_a_dataset
    if names_a_dataset(text):
        return DatasetFrames(text, split)
    raise UserError(f"--input {text}: no such file, folder, glob match or dataset spec")
