"""One exported model as footage meets it: a uint8 RGB frame in, a model-size class map out,
each step timed (the runtimes' one-call interface, cut into the steps a runner overlaps).

The steps are the contract's, exactly as the apps and the parity check perform them:
resize to the input size (bilinear with antialias, `training.data.transforms.resize_frames`,
skipped when the frame already has that size), `prepare_input`, invoke, argmax
(`read_classes`). Only the cost changes:

- `prepare_input` is elementwise in (channel, pixel value), so it is computed once for the 256
  values of each channel and applied as a table lookup; a uint8 or int8 input is prepared in
  one byte per value, with no float image in between. The table is made by `prepare_input`
  itself, so the tensor is bit-identical to it.
- the argmax runs on the raw (int8) output, through torch (the first maximum on ties, as
  NumPy's; 1.6-1.8x faster on a 19-channel NHWC output), and the class map is kept as uint8.
  torch should have one thread here (`conversion.render` sees to it): a team of OpenMP
  threads waits for cores the model's runtime holds (8 ms instead of 0.2 at 64x128).

A runner may call the steps from different threads (`conversion.render` does): `prepare` and
`read` share nothing but the list of kept inputs, and only `infer` touches the runtime.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from conversion.contract import prepare_input, read_classes
from training.data.transforms import resize_frames


def _input_table(spec: dict) -> np.ndarray:
    """(3, 256) table: the prepared value of each pixel value in each channel."""
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)[None, None]
    prepared = prepare_input(ramp, spec)  # (1, 1, 256, 3) NHWC or (1, 3, 1, 256) NCHW
    table = prepared[0, 0].T if spec["layout"] == "NHWC" else prepared[0, :, 0]
    return np.ascontiguousarray(table)


class Segmenter:
    """A runtime (from `conversion.runtimes.open_artifact`) and its contract.

    `classes(rgb, times)` runs the three steps and appends their milliseconds to
    times["pre"], times["infer"] and times["post"]. The first `keep_inputs` tensors `prepare`
    makes are kept, so that `inference_alone()` can time the model by itself on this run's
    own frames.
    """

    def __init__(self, runtime, contract: dict, keep_inputs: int = 32):
        if keep_inputs < 0:
            raise ValueError(f"keep_inputs must be >= 0, got {keep_inputs}")
        self.runtime, self.contract = runtime, contract
        self.size = runtime.frame_size
        self.threads = runtime.threads
        spec = runtime.input_spec
        self._nchw = spec["layout"] == "NCHW"
        table = _input_table(spec)
        # uint8 pixels that the model normalises itself need no preparation at all.
        self._identity = table.dtype == np.uint8 and np.array_equal(
            table, np.broadcast_to(np.arange(256, dtype=np.uint8), (3, 256)))
        self._table = table.ravel()
        self._channel = (np.arange(3, dtype=np.uint16) * 256)
        self._class_dtype = np.uint8 if contract["classes"]["num_classes"] <= 256 else np.uint16
        out = runtime.output_spec or {}
        quant = out.get("quantization")
        # Where read_classes argmaxes the raw output as it comes, the axis it uses.
        self._argmax_axis = None if out.get("semantics") != "logits" or (
            quant is not None and not quant["scale"] > 0) else (
            -1 if out["layout"] == "NHWC" else 1)
        self._keep, self.kept = keep_inputs, []

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) frame of any size -> the model's input tensor (batch of one)."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
            raise ValueError(f"expected a uint8 (H, W, 3) frame, got {rgb.dtype} {rgb.shape}")
        frame = resize_frames(rgb[None], self.size)[0]
        if self._identity:
            x = frame.transpose(2, 0, 1) if self._nchw else frame
        elif self._nchw:
            x = np.take(self._table, frame.transpose(2, 0, 1) + self._channel[:, None, None])
        else:
            x = np.take(self._table, frame + self._channel)
        x = np.ascontiguousarray(x)[None]
        if len(self.kept) < self._keep:
            self.kept.append(x)
        return x

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self.runtime.invoke(x)

    def read(self, raw: np.ndarray) -> np.ndarray:
        """The raw output -> (H, W) class map at the model's size, uint8 (uint16 past 256
        classes): the classes `read_classes` gives."""
        if self._argmax_axis is None:
            return read_classes(raw, self.runtime.output_spec)[0].astype(self._class_dtype)
        if not raw.flags.writeable:  # torch would warn, and share read-only memory
            raw = raw.copy()
        return torch.from_numpy(raw).argmax(self._argmax_axis)[0].numpy().astype(
            self._class_dtype)

    def classes(self, rgb: np.ndarray, times: dict) -> np.ndarray:
        start = time.perf_counter()
        x = self.prepare(rgb)
        prepared = time.perf_counter()
        raw = self.infer(x)
        inferred = time.perf_counter()
        classes = self.read(raw)
        times["pre"].append((prepared - start) * 1000)
        times["infer"].append((inferred - prepared) * 1000)
        times["post"].append((time.perf_counter() - inferred) * 1000)
        return classes

    def inference_alone(self, min_runs: int = 5) -> dict | None:
        """The model by itself on the kept inputs (same model, threads and frames as the run,
        nothing else running): one untimed warm-up, then every kept input at least once and at
        least `min_runs` invocations. None when no frame was kept."""
        if not self.kept:
            return None
        self.infer(self.kept[0])
        times = []
        for index in range(max(min_runs, len(self.kept))):
            x = self.kept[index % len(self.kept)]
            start = time.perf_counter()
            self.infer(x)
            times.append((time.perf_counter() - start) * 1000)
        mean = statistics.fmean(times)
        return {"fps": 1000 / mean if mean > 0 else None, "mean_ms": mean,
                "median_ms": statistics.median(times), "runs": len(times),
                "frames": len(self.kept), "threads": self.threads}
