"""python -m conversion.run on a real encoded video the test writes itself (PyAV), through the
parity fixture's int8 .tflite and its .onnx; every bad input gives one line and exit 2."""
from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conversion import render, run, segmenter
from conversion.contract import load_contract
from conversion.runtimes import open_runtime
from tests.conftest import TINY_DATASET
from training.data import parse_dataset_spec
from training.errors import run_cli

NAME = "deeplabv3lite_mobilenetv2"
FRAMES = 5


def write_video(path: Path, frames: list[np.ndarray], fps: int = 5) -> Path:
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = "yuv420p"
    for frame in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Five val scenes of the fixture's dataset, 64x128, as an H.264 file."""
    val = parse_dataset_spec(TINY_DATASET).build("val")
    frames = [val[i][0].permute(1, 2, 0).numpy() for i in range(FRAMES)]
    return write_video(tmp_path_factory.mktemp("video") / "drive.mp4", frames)


def parity_class_maps(artifact: Path, frames: np.ndarray) -> np.ndarray:
    """The parity path (conversion.runtimes, prepared from the contract) on the same frames."""
    contract = load_contract(artifact)
    runtime = open_runtime(artifact, 2, contract["input"]["normalization"]["in_model"])
    runtime.input_spec, runtime.output_spec = contract["input"], contract["output"]
    return runtime(frames).argmax(1)


@pytest.mark.parametrize("artifact", [f"{NAME}_int8.tflite", f"{NAME}_fp32.onnx"])
def test_a_video_gives_every_frame_its_overlay_and_the_parity_paths_masks(
        exported_student, clip, tmp_path, artifact):
    out = tmp_path / "out"
    summary = run.main([str(exported_student / artifact), "--input", str(clip), "--out",
                        str(out), "--masks", "--legend"])
    assert summary["frames"] == FRAMES and not summary["interrupted"]
    assert summary["video_fps"] == 5.0 and summary["fps"] > 0
    for stage in render.STAGES:
        assert summary["stages"][stage]["median_ms"] >= 0
    video = decoded(out / "overlay.mp4")
    assert video.shape == (FRAMES, 64, 128, 3)
    masks = np.stack([np.asarray(Image.open(out / "masks" / f"frame_{i:06d}.png"))
                      for i in range(FRAMES)])
    np.testing.assert_array_equal(masks, parity_class_maps(exported_student / artifact,
                                                           decoded(clip)))
    palette = Image.open(out / "masks" / "frame_000000.png").getpalette()[:6]
    assert palette == load_contract(exported_student / artifact)["classes"]["palette"][0] + \
        load_contract(exported_student / artifact)["classes"]["palette"][1]
    assert (out / "legend.png").is_file()
    saved = json.loads((out / "summary.json").read_text())
    assert saved["frames"] == FRAMES and len(saved["class_shares"]) == FRAMES


def test_frames_of_another_size_are_resized_and_drawn_back_at_their_size(exported_student,
                                                                         tmp_path):
    big = [np.asarray(Image.fromarray(f).resize((200, 90))) for f in decoded(
        write_video(tmp_path / "a.mp4", [np.full((64, 128, 3), 90, np.uint8)] * 2))]
    clip = write_video(tmp_path / "big.mp4", big)
    out = tmp_path / "out"
    run.main([str(exported_student / f"{NAME}_int8.tflite"), "--input", str(clip), "--out",
              str(out), "--masks", "--compare", str(exported_student / f"{NAME}_fp32.tflite")])
    assert decoded(out / "overlay.mp4").shape == (2, 90, 400, 3)  # side by side
    assert np.asarray(Image.open(out / "masks" / "frame_000000.png")).shape == (90, 200)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["compare"]["agreement_per_frame"]) == 2


def test_labels_give_the_projects_miou(exported_student, tmp_path):
    out = tmp_path / "out"
    summary = run.main([str(exported_student / f"{NAME}_int8.tflite"), "--input", TINY_DATASET,
                        "--split", "val", "--out", str(out), "--no-video"])
    entry = next(e for e in json.loads((exported_student / "parity.json").read_text())
                 ["artifacts"] if e["file"] == f"{NAME}_int8.tflite")
    # The same 16 val frames at the model's size as the exporter's parity check.
    assert summary["frames"] == 16
    assert summary["labels"]["miou"] == pytest.approx(entry["miou_artifact"], abs=1e-9)


@pytest.mark.parametrize("runner", [[], ["--serial"]], ids=["pipelined", "serial"])
def test_ctrl_c_keeps_the_frames_done_and_a_valid_summary(exported_student, clip, tmp_path,
                                                          monkeypatch, runner):
    calls = {"n": 0}
    original = segmenter.Segmenter.infer

    def interrupt_at_the_third(self, x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, x)
    monkeypatch.setattr(segmenter.Segmenter, "infer", interrupt_at_the_third)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        run.main([str(exported_student / f"{NAME}_int8.tflite"), "--input", str(clip),
                  "--out", str(out), "--masks"] + runner)
    assert stopped.value.code == 130
    summary = json.loads((out / "summary.json").read_text())
    # The two frames inferred before the interrupt are finished; the rest is dropped.
    assert summary["interrupted"] and summary["frames"] == 2
    assert summary["runner"] == ("serial" if runner else "pipelined")
    assert decoded(out / "overlay.mp4").shape[0] == 2
    assert len(list((out / "masks").iterdir())) == 2
    assert not [p for p in out.iterdir() if p.name.startswith(".run-")]


def _bad(capsys, argv: list[str], out: Path) -> str:
    with pytest.raises(SystemExit) as stopped:
        run_cli(run.main, argv + ["--out", str(out)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    return err


def test_every_bad_input_is_one_line_and_writes_nothing(exported_student, clip, tmp_path,
                                                        capsys):
    model = exported_student / f"{NAME}_int8.tflite"
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    assert "cannot read video" in _bad(capsys, [str(model), "--input", str(corrupt)],
                                       tmp_path / "o1")
    bare = tmp_path / "bare" / model.name
    bare.parent.mkdir()
    shutil.copy(model, bare)
    assert "has no model contract" in _bad(capsys, [str(bare), "--input", str(clip)],
                                           tmp_path / "o2")
    future = tmp_path / "future" / model.name
    future.parent.mkdir()
    shutil.copy(model, future)
    contract = json.loads(Path(f"{model}.json").read_text())
    Path(f"{future}.json").write_text(json.dumps(dict(contract, schema_version=2)))
    assert "schema_version: must be 1, got 2" in _bad(capsys, [str(future), "--input",
                                                               str(clip)], tmp_path / "o3")
    gray = tmp_path / "gray.png"
    Image.fromarray(np.zeros((64, 128), np.uint8)).save(gray)
    assert "has 1 channel (mode L); the model takes 3-channel RGB" in _bad(
        capsys, [str(model), "--input", str(gray)], tmp_path / "o4")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "--out" in _bad(capsys, [str(model), "--input", str(clip)], blocker / "out")


@pytest.mark.skipif(platform.system() == "Darwin", reason="on macOS Core ML runs")
def test_a_coreml_package_says_it_needs_macos(exported_student, clip, tmp_path, capsys):
    err = _bad(capsys, [str(exported_student / f"{NAME}_fp16.mlpackage"), "--input", str(clip)],
               tmp_path / "o")
    assert "run only on macOS" in err
