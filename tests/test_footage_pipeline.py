"""The pipelined footage runner against the serial one, and how it stops: identical outputs, an
encoder failing mid-run, Ctrl-C while frames are in flight; the stage runner itself; and the
cheap pre- and post-processing against the contract's own functions."""
from __future__ import annotations

import errno
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conversion import encoder, run
from conversion.contract import prepare_input, read_classes
from conversion.drawing import Painter, to_frame_size
from conversion.segmenter import Segmenter
from conversion.stages import run_stages
from tests.conftest import TINY_DATASET
from tests.test_run_footage import NAME, clip, decoded, write_video  # noqa: F401 (fixture)
from training.data import parse_dataset_spec
from training.data.transforms import resize_frames
from training.errors import run_cli

INT8 = f"{NAME}_int8.tflite"


def _png_arrays(folder: Path) -> dict:
    return {p.name: (np.asarray(Image.open(p)), Image.open(p).getpalette())
            for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def resized_images(tmp_path_factory) -> Path:
    """Three val scenes at 90x200, so the runners resize to the model's 64x128 and back."""
    folder = tmp_path_factory.mktemp("images")
    val = parse_dataset_spec(TINY_DATASET).build("val")
    for i in range(3):
        Image.fromarray(val[i][0].permute(1, 2, 0).numpy()).resize((200, 90)).save(
            folder / f"scene_{i}.png")
    return folder


@pytest.mark.parametrize("source", ["video", "resized images"])
def test_serial_and_pipelined_runs_write_identical_masks_and_overlays(
        exported_student, clip, resized_images, tmp_path, source):
    source_path = clip if source == "video" else resized_images
    summaries = {}
    for runner in ("serial", "pipelined"):
        summaries[runner] = run.main(
            [str(exported_student / INT8), "--input", str(source_path), "--out",
             str(tmp_path / runner), "--masks", "--overlays", "--no-progress",
             "--compare", str(exported_student / f"{NAME}_fp32.onnx")]
            + (["--serial"] if runner == "serial" else []))
    serial, pipelined = summaries["serial"], summaries["pipelined"]
    assert (serial["runner"], pipelined["runner"]) == ("serial", "pipelined")
    assert serial["frames"] == pipelined["frames"] == (5 if source == "video" else 3)
    masks = [_png_arrays(tmp_path / runner / "masks") for runner in ("serial", "pipelined")]
    assert masks[0].keys() == masks[1].keys() and len(masks[0]) == serial["frames"]
    for name, (array, palette) in masks[0].items():
        np.testing.assert_array_equal(masks[1][name][0], array, err_msg=name)
        assert masks[1][name][1] == palette
    overlays = [_png_arrays(tmp_path / runner / "overlays") for runner in ("serial",
                                                                           "pipelined")]
    for name, (array, _) in overlays[0].items():
        np.testing.assert_array_equal(overlays[1][name][0], array, err_msg=name)
    assert serial["class_shares"] == pipelined["class_shares"]
    assert serial["compare"]["agreement_per_frame"] == \
        pipelined["compare"]["agreement_per_frame"]
    for summary in (serial, pipelined):
        alone = summary["inference_alone"]
        assert alone["fps"] > 0 and alone["frames"] == summary["frames"]
        assert summary["fps_ratio"] == pytest.approx(summary["fps"] / alone["fps"])
        assert summary["quality"] == "fast"


def _failing_mux(monkeypatch, at_call: int):
    original, calls = encoder.VideoEncoder._mux, {"n": 0}

    def mux(self, packets):
        calls["n"] += 1
        if calls["n"] == at_call:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, packets)
    monkeypatch.setattr(encoder.VideoEncoder, "_mux", mux)
    return calls


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("runner", [[], ["--serial"]], ids=["pipelined", "serial"])
def test_an_encoder_failing_mid_run_is_one_line_and_places_nothing(
        exported_student, clip, tmp_path, capsys, monkeypatch, runner):
    model = str(exported_student / INT8)
    earlier = tmp_path / "earlier"
    run.main([model, "--input", str(clip), "--out", str(earlier), "--masks", "--no-progress"])
    before = _snapshot(earlier)
    capsys.readouterr()
    calls = _failing_mux(monkeypatch, at_call=3)
    for out in (tmp_path / "new", earlier):
        calls["n"] = 0
        with pytest.raises(SystemExit) as stopped:
            run_cli(run.main, [model, "--input", str(clip), "--out", str(out), "--masks",
                               "--overlays", "--no-progress"] + runner)
        assert stopped.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.splitlines() == [err] and err.startswith("error: "), err
        assert "overlay.mp4" in err and "No space left on device" in err
    assert not (tmp_path / "new").exists()
    assert _snapshot(earlier) == before  # the earlier run's outputs, untouched
    assert sorted(p.name for p in earlier.iterdir()) == ["masks", "overlay.mp4",
                                                         "summary.json"]


@pytest.fixture
def ctrl_c_reaches_python():
    """A Ctrl-C meets what a fresh `python -m conversion.run` has: SIGINT unblocked on the main
    thread and Python's default handler. Earlier tests in this process (libraries that start
    threads or processes) may have left either changed; the stage threads inherit the mask."""
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    signal.signal(signal.SIGINT, handler)


def test_ctrl_c_during_a_pipelined_run_keeps_a_valid_summary(exported_student, tmp_path,
                                                             monkeypatch, ctrl_c_reaches_python):
    val = parse_dataset_spec(TINY_DATASET).build("val")
    frames = [val[i % 16][0].permute(1, 2, 0).numpy() for i in range(30)]
    long_clip = write_video(tmp_path / "long.mp4", frames)
    original, calls = encoder.VideoEncoder.write, {"n": 0}

    def write_then_ctrl_c(self, rgb):
        calls["n"] += 1
        if calls["n"] == 3:  # a real SIGINT, taken by the main thread while this one encodes
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        return original(self, rgb)
    monkeypatch.setattr(encoder.VideoEncoder, "write", write_then_ctrl_c)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        run_cli(run.main, [str(exported_student / INT8), "--input", str(long_clip), "--out",
                           str(out), "--masks", "--overlays", "--no-progress"])
    assert stopped.value.code == 130
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and summary["runner"] == "pipelined"
    done = summary["frames"]
    assert 3 <= done < 30  # the frames in flight were finished, the rest never decoded
    assert len(summary["class_shares"]) == done
    assert len(list((out / "masks").iterdir())) == len(list((out / "overlays").iterdir())) \
        == done
    assert decoded(out / "overlay.mp4").shape[0] == done
    assert summary["fps"] > 0 and summary["stages"]["infer"]["median_ms"] > 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# ---- the stage runner on its own

def _slow(item):
    time.sleep(np.random.default_rng(item).uniform(0, 0.003))
    return item


@pytest.mark.parametrize("pipelined", [True, False])
def test_stages_keep_the_order_of_the_items(pipelined):
    seen = []
    assert not run_stages(iter(range(60)), [_slow, lambda x: x * 2, _slow], seen.append,
                          pipelined=pipelined, depth=2)
    assert seen == [2 * i for i in range(60)]


@pytest.mark.parametrize("pipelined", [True, False])
def test_an_error_in_a_stage_is_raised_once_every_stage_has_stopped(pipelined):
    threads, seen = threading.active_count(), []

    def fail_at_7(item):
        if item == 7:
            raise ValueError("stage failed at 7")
        return item
    with pytest.raises(ValueError, match="stage failed at 7"):
        run_stages(iter(range(1000)), [_slow, fail_at_7], seen.append, pipelined=pipelined)
    assert threading.active_count() == threads
    assert seen == list(range(len(seen))) and len(seen) <= 7


@pytest.mark.parametrize("pipelined", [True, False])
def test_an_interrupt_in_a_stage_keeps_what_came_before(pipelined):
    seen = []

    def interrupt_at_5(item):
        if item == 5:
            raise KeyboardInterrupt
        return item
    assert run_stages(iter(range(1000)), [_slow, interrupt_at_5, _slow], seen.append,
                      pipelined=pipelined)
    assert seen == [0, 1, 2, 3, 4]


def test_an_error_in_the_sink_stops_the_stages():
    def sink(item):
        if item == 3:
            raise OSError("sink failed")
    with pytest.raises(OSError, match="sink failed"):
        run_stages(iter(range(10 ** 6)), [_slow], sink)


# ---- cheap pre- and post-processing, against the contract's functions

def _old_overlay(rgb, classes, palette, opacity):
    """The float-free reference the apps follow (source over, rounded), pixel by pixel."""
    alpha = round(opacity * 255)
    valid = classes < len(palette)
    colours = palette[np.where(valid, classes, 0)].astype(np.int32)
    mixed = (rgb.astype(np.int32) * (255 - alpha) + colours * alpha + 127) // 255
    return np.where(valid[..., None], mixed, rgb).astype(np.uint8)


@pytest.mark.parametrize("opacity", [0.0, 0.3, 0.5, 1.0])
def test_the_palette_lookup_blends_as_the_apps_round(opacity):
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, (19, 3), dtype=np.uint8)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    classes = rng.integers(0, 23, (37, 53)).astype(np.uint8)  # 19..22: no colour, kept
    np.testing.assert_array_equal(Painter(palette, opacity)(rgb, classes),
                                  _old_overlay(rgb, classes, palette, opacity))


@pytest.mark.parametrize("small,size", [((64, 128), (90, 200)), ((96, 192), (360, 480)),
                                        ((64, 128), (64, 128)), ((8, 8), (3, 5))])
def test_the_class_map_goes_to_the_frame_size_by_pixel_centres(small, size):
    classes = np.random.default_rng(1).integers(0, 19, small).astype(np.uint8)
    rows = np.minimum(((np.arange(size[0]) + 0.5) * small[0] / size[0]).astype(int),
                      small[0] - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * small[1] / size[1]).astype(int),
                      small[1] - 1)
    resized = to_frame_size(classes, size)
    assert resized.dtype == np.uint8
    np.testing.assert_array_equal(resized, classes[rows][:, cols])


class _Runtime:
    """Just the specs a Segmenter reads."""

    threads = 1

    def __init__(self, input_spec, output_spec=None):
        self.input_spec, self.output_spec = input_spec, output_spec

    @property
    def frame_size(self):
        shape, layout = self.input_spec["shape"], self.input_spec["layout"]
        return shape[layout.index("H")], shape[layout.index("W")]


def _spec(layout, dtype, quantization, in_model):
    shape = [1, 64, 128, 3] if layout == "NHWC" else [1, 3, 64, 128]
    return {"layout": layout, "shape": shape, "dtype": dtype, "quantization": quantization,
            "normalization": {"in_model": in_model, "pixel_scale": 1 / 255,
                              "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}


@pytest.mark.parametrize("spec", [
    _spec("NHWC", "int8", {"scale": 0.0186584, "zero_point": -14}, False),
    _spec("NHWC", "uint8", None, True),
    _spec("NCHW", "float32", None, False),
    _spec("NHWC", "float32", None, True),
    _spec("NHWC", "int16", {"scale": 1e-4, "zero_point": 3}, False),
    _spec("NCHW", "uint8", None, True)], ids=lambda s: f"{s['layout']}-{s['dtype']}")
def test_the_input_table_prepares_exactly_as_prepare_input(spec):
    segment = Segmenter(_Runtime(spec), {"classes": {"num_classes": 19}})
    rng = np.random.default_rng(2)
    for shape in ((64, 128, 3), (90, 200, 3)):
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        expected = prepare_input(resize_frames(frame[None], (64, 128)), spec)
        prepared = segment.prepare(frame)
        assert prepared.dtype == expected.dtype and prepared.flags.c_contiguous
        np.testing.assert_array_equal(prepared, expected)


@pytest.mark.parametrize("layout,dtype,quantization", [
    ("NHWC", np.int8, {"scale": 0.03, "zero_point": -36}), ("NCHW", np.float32, None)])
def test_the_class_map_is_the_contracts_argmax_as_uint8(layout, dtype, quantization):
    spec = {"semantics": "logits", "layout": layout, "quantization": quantization}
    shape = (1, 64, 128, 19) if layout == "NHWC" else (1, 19, 64, 128)
    raw = np.random.default_rng(3).integers(-3, 3, shape).astype(dtype)  # many ties
    segment = Segmenter(_Runtime(_spec("NHWC", "uint8", None, True), spec),
                        {"classes": {"num_classes": 19}})
    classes = segment.read(raw)
    assert classes.dtype == np.uint8 and classes.shape == (64, 128)
    np.testing.assert_array_equal(classes, read_classes(raw, spec)[0])


def test_photos_of_different_sizes_all_reach_the_video(exported_student, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(4)
    sizes = [(65, 127), (100, 300), (40, 50)]
    for i, (height, width) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
            folder / f"photo_{i}.png")
    out = tmp_path / "out"
    run.main([str(exported_student / INT8), "--input", str(folder), "--out", str(out),
              "--masks", "--no-progress"])
    assert decoded(out / "overlay.mp4").shape == (3, 66, 128, 3)  # the first, padded to even
    assert [np.asarray(Image.open(out / "masks" / f"photo_{i}.png")).shape
            for i in range(3)] == sizes
