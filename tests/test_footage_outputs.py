"""conversion.run's --out and inputs, from issue #26: an --out that holds the input or the labels
is refused before anything is written (B4, B5), a rerun leaves none of the previous run's
outputs behind, a decompression-bomb PNG is one line (B1), and an out-of-range label names its
file. Each is one line `error: ...` and exit 2, with nothing written or lost."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conversion import run
from conversion.contract import load_contract
from tests.conftest import TINY_DATASET
from tests.test_run_footage import NAME, clip  # noqa: F401 (fixture)
from training.data import parse_dataset_spec
from training.errors import run_cli

INT8 = f"{NAME}_int8.tflite"


def _refused(capsys, argv: list[str]) -> str:
    """Exit 2 with exactly one line, `error: ...`; returns it."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        run_cli(run.main, argv + ["--no-progress"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith("error: "), err
    return err


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def _scenes(folder: Path, count: int = 2) -> list[Path]:
    folder.mkdir(parents=True)
    val = parse_dataset_spec(TINY_DATASET).build("val")
    paths = []
    for i in range(count):
        paths.append(folder / f"scene_{i}.png")
        Image.fromarray(val[i][0].permute(1, 2, 0).numpy()).save(paths[-1])
    return paths


def _labels(folder: Path, images: list[Path], values: list[int]) -> None:
    folder.mkdir(parents=True)
    for path, value in zip(images, values):
        mask = np.zeros((64, 128), np.uint8)
        mask[:, 64:] = value
        Image.fromarray(mask, mode="L").save(folder / path.name)


def _bomb(path: Path, side: int = 60000) -> Path:
    """A valid PNG header declaring side x side RGB pixels, with a few bytes of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def test_b4_an_out_holding_the_labels_is_refused_and_the_labels_stay(exported_student,
                                                                     tmp_path, capsys):
    data = tmp_path / "data"
    images = _scenes(data / "images")
    _labels(data / "masks", images, [1, 2])
    elsewhere = _scenes(tmp_path / "elsewhere" / "images")
    _labels(tmp_path / "elsewhere" / "masks", elsewhere, [1, 2])
    before = _snapshot(data)
    model = str(exported_student / INT8)
    err = _refused(capsys, [model, "--input", str(data / "images"), "--labels",
                            str(data / "masks"), "--out", str(data), "--masks"])
    assert f"--out {data} holds the input" in err
    err = _refused(capsys, [model, "--input", str(tmp_path / "elsewhere" / "images"),
                            "--labels", str(data / "masks"), "--out", str(data), "--masks"])
    assert f"holds the labels {data / 'masks'}" in err
    assert _snapshot(data) == before


def test_b5_an_out_holding_the_input_video_is_refused_and_the_video_stays(
        exported_student, clip, tmp_path, capsys):
    out = tmp_path / "out"
    model = str(exported_student / INT8)
    run.main([model, "--input", str(clip), "--out", str(out), "--no-progress"])
    before = _snapshot(out)
    err = _refused(capsys, [model, "--input", str(out / "overlay.mp4"), "--out", str(out)])
    assert f"holds the input {out / 'overlay.mp4'}" in err
    assert _snapshot(out) == before


def test_outputs_over_files_no_run_wrote_are_refused(exported_student, clip, tmp_path, capsys):
    out = tmp_path / "project"
    (out / "masks").mkdir(parents=True)
    (out / "masks" / "ground_truth.png").write_bytes(b"not ours")
    before = _snapshot(out)
    err = _refused(capsys, [str(exported_student / INT8), "--input", str(clip), "--out",
                            str(out), "--masks"])
    assert "already holds masks, which no earlier conversion.run wrote" in err
    assert _snapshot(out) == before


def test_a_rerun_leaves_none_of_the_previous_runs_outputs(exported_student, clip, tmp_path):
    out = tmp_path / "out"
    model = str(exported_student / INT8)
    run.main([model, "--input", str(clip), "--out", str(out), "--overlays", "--masks",
              "--legend", "--no-progress"])
    assert sorted(p.name for p in out.iterdir()) == ["legend.png", "masks", "overlay.mp4",
                                                     "overlays", "summary.json"]
    run.main([model, "--input", str(clip), "--out", str(out), "--max-frames", "2",
              "--no-progress"])
    assert sorted(p.name for p in out.iterdir()) == ["overlay.mp4", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 2 and summary["outputs"] == ["overlay.mp4", "summary.json"]


def test_b1_a_decompression_bomb_png_is_one_line(exported_student, tmp_path, capsys):
    model = str(exported_student / INT8)
    bomb = _bomb(tmp_path / "huge.png")
    err = _refused(capsys, [model, "--input", str(bomb), "--out", str(tmp_path / "o1")])
    assert f"cannot read image {bomb}" in err and "decompression bomb" in err
    assert not (tmp_path / "o1").exists()
    # In a folder, after a good image: found mid-run, by the decoding stage's thread.
    folder = tmp_path / "folder"
    _scenes(folder, 1)
    _bomb(folder / "scene_9.png")
    err = _refused(capsys, [model, "--input", str(folder), "--out", str(tmp_path / "o2"),
                            "--masks"])
    assert f"cannot read image {folder / 'scene_9.png'}" in err
    assert not (tmp_path / "o2").exists()


def test_a_label_outside_the_classes_names_its_file(exported_student, tmp_path, capsys):
    model = exported_student / INT8
    count = load_contract(model)["classes"]["num_classes"]
    images = _scenes(tmp_path / "images")
    _labels(tmp_path / "labels", images, [1, count + 3])
    err = _refused(capsys, [str(model), "--input", str(tmp_path / "images"), "--labels",
                            str(tmp_path / "labels"), "--out", str(tmp_path / "out")])
    assert f"labels {tmp_path / 'labels' / 'scene_1.png'} hold values outside" in err
    assert str(count + 3) in err
    assert not (tmp_path / "out").exists()
