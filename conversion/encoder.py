"""Writing what a run shows: overlay.mp4 through PyAV's libx264, and PNG files off the main
path.

`--quality` picks both: x264's preset and constant-rate factor, and the PNGs' zlib level
(pixels are the same at every level; only file size and time change). The default, "fast",
is chosen for throughput: at 512x1024 on the project's 2-core machine (busy at the time),
"ultrafast" encoded a frame in 8.9 ms, "veryfast" (the former setting) in 12.0, and
"veryfast" with x264's own thread count in 13.8. So x264 runs on `threads` threads (default
1): in a pipelined run the model's runtime holds the cores, and frame threads only add
latency and memory.

Every failure (a full disk, a codec error) is raised as one `OutputError` line naming the
file, so `conversion.run` exits 2 and places nothing.
"""
from __future__ import annotations

import queue
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from training.errors import UserError

QUALITIES = {
    "fast": {"preset": "ultrafast", "crf": 23, "png_level": 1},
    "balanced": {"preset": "veryfast", "crf": 20, "png_level": 6},
    "archive": {"preset": "slow", "crf": 16, "png_level": 9},
}


class OutputError(UserError):
    """An output could not be written (disk full, encoder failure): one line, exit 2."""


def check_quality(quality: str) -> dict:
    if quality not in QUALITIES:
        raise UserError(f"quality must be one of {', '.join(QUALITIES)}, got {quality!r}")
    return QUALITIES[quality]


class VideoEncoder:
    """H.264 (yuv420p) at `fps`, at the size of the first frame. Odd sizes are padded by
    repeating the edge, since yuv420p needs even ones; a frame of another size (a folder of
    photos) is resized to the video's."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], quality: str = "fast",
                 threads: int = 1):
        import av
        settings = check_quality(quality)
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.path, self.frames, self.size = Path(path), 0, tuple(size)
        self._error = (av.error.FFmpegError, OSError)
        try:
            self.container = av.open(str(self.path), mode="w")
            self.stream = self.container.add_stream(
                "libx264", rate=Fraction(fps).limit_denominator(1001),
                options={"preset": settings["preset"], "crf": str(settings["crf"]),
                         "threads": str(threads)})
            self.stream.height, self.stream.width = (s + s % 2 for s in size)
            self.stream.pix_fmt = "yuv420p"
        except self._error as exc:
            raise OutputError(f"cannot write {self.path.name}: {exc}") from None

    def write(self, rgb: np.ndarray) -> None:
        import av
        if rgb.shape[:2] != self.size:
            rgb = np.asarray(Image.fromarray(rgb).resize(self.size[::-1], Image.BILINEAR))
        height, width = self.stream.height, self.stream.width
        if rgb.shape[:2] != (height, width):
            rgb = np.pad(rgb, ((0, height - rgb.shape[0]), (0, width - rgb.shape[1]), (0, 0)),
                         mode="edge")
        try:
            self._mux(self.stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        except self._error as exc:
            raise OutputError(f"writing {self.path.name} failed at frame {self.frames}: "
                              f"{exc}") from None
        self.frames += 1

    def _mux(self, packets) -> None:
        for packet in packets:
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        try:
            self._mux(self.stream.encode())
            self.container.close()
        except self._error as exc:
            raise OutputError(f"finishing {self.path.name} failed: {exc}") from None

    def abandon(self) -> None:
        """Close without caring for the file (it is about to be deleted)."""
        try:
            self.container.close()
        except Exception:  # the file is discarded; its error was already reported or moot
            pass


class PngWriter:
    """Saves PIL images as PNG, on a thread of its own (`background`) or in the caller's.

    The queue is bounded, so a slow disk slows the run instead of filling memory. A failure
    is kept and raised by the next `submit` or by `close`; after one, the thread drains the
    queue without writing, so no caller stays blocked."""

    def __init__(self, compress_level: int = 6, background: bool = True, depth: int = 8,
                 times: list | None = None):
        if not 0 <= compress_level <= 9:
            raise ValueError(f"compress_level must be within 0..9, got {compress_level}")
        self.level, self.written = compress_level, 0
        self.times = times if times is not None else []  # ms per file
        self._error: OutputError | None = None
        self._queue: queue.Queue | None = None
        if background:
            self._queue = queue.Queue(maxsize=depth)
            self._thread = threading.Thread(target=self._work, name="png-writer", daemon=True)
            self._thread.start()

    def submit(self, image: Image.Image, path: Path) -> None:
        if self._error is not None:
            raise self._error
        if self._queue is None:
            self._save(image, path)
            if self._error is not None:
                raise self._error
        else:
            self._queue.put((image, path))

    def close(self) -> None:
        """Wait until every submitted image is written; raise the first failure."""
        if self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        self._error = self._error or OutputError("abandoned")
        if self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is None:
                self._save(*job)

    def _save(self, image: Image.Image, path: Path) -> None:
        try:
            start = time.perf_counter()
            image.save(path, compress_level=self.level)
            self.times.append((time.perf_counter() - start) * 1000)
            self.written += 1
        except Exception as exc:  # kept for the caller: a dead writer must not block the run
            reason = getattr(exc, "strerror", None) or exc
            self._error = OutputError(f"cannot write {path.parent.name}/{path.name}: {reason}")
