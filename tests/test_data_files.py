"""Cityscapes, CamVid and folder datasets: layouts, label mapping, and every bad-input error."""

import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.data import DataError, SkipCorruptSamples, parse_dataset_spec

# The repository's sibling ../shared/datasets/camvid (present in CI); CAMVID_ROOT overrides it.
CAMVID = Path(
    os.environ.get(
        "CAMVID_ROOT", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"
    )
)

# Cityscapes label ids and the train ids the official table gives them (255: ignored in training).
LABEL_TO_TRAIN = {
    7: 0,
    8: 1,
    11: 2,
    21: 8,
    23: 10,
    24: 11,
    26: 13,
    33: 18,
    0: 255,
    1: 255,
    4: 255,
    6: 255,
    9: 255,
    14: 255,
    29: 255,
}


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def rgb(height=6, width=10, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def label_ids_mask() -> np.ndarray:
    """Every id of LABEL_TO_TRAIN once per row segment, 6x15 pixels."""
    ids = np.array(list(LABEL_TO_TRAIN), dtype=np.uint8)
    return np.tile(ids, (6, 1))


def make_cityscapes(
    root: Path, split="train", city="aachen", frames=2, kind="labelIds", mask=None
) -> Path:
    for frame in range(frames):
        stem = f"{city}_000000_{frame:06d}"
        labels = label_ids_mask() if mask is None else mask
        write_png(
            root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
            rgb(*labels.shape, seed=frame),
        )
        write_png(root / "gtFine" / split / city / f"{stem}_gtFine_{kind}.png", labels)
    return root


def test_cityscapes_official_layout_maps_label_ids_to_train_ids(tmp_path):
    make_cityscapes(tmp_path, "train", "aachen")
    make_cityscapes(tmp_path, "train", "bochum", frames=1)
    spec = parse_dataset_spec(f"cityscapes:{tmp_path}")
    assert spec.name == "cityscapes" and spec.splits == ("train",) and spec.num_classes == 19
    assert spec.class_names[0] == "road" and spec.palette[13] == (0, 0, 142)
    dataset = spec.build("train")
    assert len(dataset) == 3
    image, mask = dataset[0]
    assert image.shape == (3, 6, 15)
    expected = np.array(list(LABEL_TO_TRAIN.values()))
    assert (mask.numpy() == expected[None, :]).all()


def test_cityscapes_accepts_precomputed_train_ids(tmp_path):
    train_ids = np.tile(np.array([0, 1, 10, 13, 18, 255], np.uint8), (4, 1))
    make_cityscapes(tmp_path, "val", "frankfurt", frames=1, kind="labelTrainIds", mask=train_ids)
    _, mask = parse_dataset_spec(f"cityscapes:{tmp_path}").build("val")[0]
    assert (mask.numpy() == train_ids).all()


@pytest.mark.skipif(not CAMVID.is_dir(), reason=f"CamVid development copy not found at {CAMVID}")
def test_camvid_real_files():
    spec = parse_dataset_spec(f"camvid:{CAMVID}")
    assert (
        spec.num_classes == 11
        and spec.class_names[0] == "sky"
        and "train" in spec.splits
        and "val" in spec.splits
    )
    train, val = spec.build("train"), spec.build("val")
    assert len(train) == 367 and len(val) == 101
    seen = set()
    for dataset, index in ((train, 0), (train, 200), (train, 366), (val, 0), (val, 100)):
        image, mask = dataset[index]
        assert image.shape == (3, 360, 480) and mask.shape == (360, 480)
        seen |= set(mask.unique().tolist())
    assert seen <= set(range(11)) | {255}
    assert len(seen - {255}) >= 8


def write_folder(
    root: Path,
    names=("road", "car", "sky"),
    colors=((128, 64, 128), (0, 0, 142), (70, 130, 180)),
    extra=None,
    fmt="yaml",
) -> Path:
    classes = {
        "names": list(names),
        "colors": [list(c) for c in colors],
        "ignore_index": 255,
        "ignore_color": [0, 0, 0],
        **(extra or {}),
    }
    path = root / f"classes.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        path.write_text(json.dumps(classes))
    else:
        import yaml

        path.write_text(yaml.safe_dump(classes))
    return root


def test_folder_index_and_colour_masks(tmp_path):
    write_folder(tmp_path, fmt="json")
    index_mask = np.array([[0, 1, 2, 255]] * 3, np.uint8)
    colour_mask = np.array([[[128, 64, 128], [0, 0, 142], [70, 130, 180], [0, 0, 0]]] * 3, np.uint8)
    for i in range(10):
        write_png(
            tmp_path / "images" / f"frame{i:02d}.jpg"
            if i == 0
            else tmp_path / "images" / f"frame{i:02d}.png",
            rgb(3, 4, seed=i),
        )
        write_png(tmp_path / "masks" / f"frame{i:02d}.png", colour_mask if i % 2 else index_mask)
    spec = parse_dataset_spec(f"folder:{tmp_path}")
    assert spec.class_names == ["road", "car", "sky"] and spec.palette[1] == (0, 0, 142)
    train, val = spec.build("train"), spec.build("val")
    assert (len(train), len(val)) == (9, 1)  # every tenth stem is validation
    for dataset in (train, val):
        for i in range(len(dataset)):
            assert dataset[i][1].tolist() == index_mask.tolist()


def test_folder_per_split_layout(tmp_path):
    write_folder(tmp_path)
    for split in ("train", "val"):
        write_png(tmp_path / split / "images" / "a.png", rgb(3, 4))
        write_png(tmp_path / split / "masks" / "a.png", np.zeros((3, 4), np.uint8))
    assert parse_dataset_spec(f"folder:{tmp_path}").splits == ("train", "val")


# ---- bad input: every case names the offending path


@pytest.mark.parametrize("kind", ["cityscapes", "camvid", "folder"])
def test_missing_root(tmp_path, kind):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "absent"))):
        parse_dataset_spec(f"{kind}:{tmp_path / 'absent'}")


def test_empty_splits(tmp_path):
    make_cityscapes(tmp_path, "train", frames=1)
    (tmp_path / "leftImg8bit" / "val" / "aachen").mkdir(parents=True)
    with pytest.raises(DataError, match="split 'val' is empty"):
        parse_dataset_spec(f"cityscapes:{tmp_path}").build("val")
    camvid = tmp_path / "camvid"
    camvid.mkdir()
    (camvid / "train.txt").write_text("\n")
    with pytest.raises(DataError, match="train.txt lists no files"):
        parse_dataset_spec(f"camvid:{camvid}").build("train")


def test_missing_annotation_is_named(tmp_path):
    make_cityscapes(tmp_path, frames=1)
    next((tmp_path / "gtFine").rglob("*.png")).unlink()
    with pytest.raises(DataError, match="no annotation for .*aachen_000000_000000_leftImg8bit.png"):
        parse_dataset_spec(f"cityscapes:{tmp_path}").build("train")


def test_image_and_mask_of_different_sizes(tmp_path):
    make_cityscapes(tmp_path, frames=1)
    write_png(next((tmp_path / "gtFine").rglob("*.png")), np.zeros((5, 15), np.uint8))
    with pytest.raises(DataError, match=r"is 15x6 but its mask .*_gtFine_labelIds.png is 15x5"):
        parse_dataset_spec(f"cityscapes:{tmp_path}").build("train")[0]


@pytest.mark.parametrize(
    "make, value",
    [
        ("cityscapes", 40),  # not a Cityscapes label id
        ("camvid", 12),  # 11 is void; 12 does not exist
        ("folder", 3),  # three classes: 0..2
    ],
)
def test_mask_values_outside_the_class_set(tmp_path, make, value):
    bad = np.zeros((6, 15), np.uint8)
    bad[2, 3] = value
    if make == "cityscapes":
        make_cityscapes(tmp_path, frames=1, mask=bad)
    elif make == "camvid":
        write_png(tmp_path / "train" / "a.png", rgb(6, 15))
        write_png(tmp_path / "trainannot" / "a.png", bad)
        (tmp_path / "train.txt").write_text("train/a.png trainannot/a.png\n")
    else:
        write_folder(tmp_path)
        write_png(tmp_path / "train" / "images" / "a.png", rgb(6, 15))
        write_png(tmp_path / "train" / "masks" / "a.png", bad)
    with pytest.raises(DataError, match=rf"mask .*\.png has values outside the class set: {value}"):
        parse_dataset_spec(f"{make}:{tmp_path}").build("train")[0]


def test_unknown_mask_colour(tmp_path):
    write_folder(tmp_path)
    write_png(tmp_path / "train" / "images" / "a.png", rgb(2, 2))
    write_png(tmp_path / "train" / "masks" / "a.png", np.full((2, 2, 3), 7, np.uint8))
    with pytest.raises(
        DataError, match=r"a.png has colours that are not in the palette: \(7, 7, 7\)"
    ):
        parse_dataset_spec(f"folder:{tmp_path}").build("train")[0]


def test_bad_classes_files(tmp_path):
    with pytest.raises(DataError, match="no classes file"):
        (tmp_path / "images").mkdir()
        parse_dataset_spec(f"folder:{tmp_path}")
    write_folder(tmp_path, colors=((1, 2, 3),))
    with pytest.raises(DataError, match="one \\[r, g, b\\] .* per name"):
        parse_dataset_spec(f"folder:{tmp_path}")
    write_folder(tmp_path, extra={"ignore_index": 1})
    with pytest.raises(DataError, match="ignore_index 1 must be outside"):
        parse_dataset_spec(f"folder:{tmp_path}")


@pytest.mark.parametrize("content", [b"", b"not a png at all", "truncated"])
def test_corrupt_image_is_named(tmp_path, content):
    make_cityscapes(tmp_path, frames=1)
    image = next((tmp_path / "leftImg8bit").rglob("*.png"))
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    with pytest.raises(DataError, match=re.escape(f"cannot read image {image}")):
        parse_dataset_spec(f"cityscapes:{tmp_path}").build("train")[0]


def test_skip_corrupt_samples_logs_and_counts(tmp_path, caplog):
    make_cityscapes(tmp_path, frames=3)
    broken = sorted((tmp_path / "leftImg8bit").rglob("*.png"))[1]
    broken.write_bytes(b"garbage")
    dataset = parse_dataset_spec(f"cityscapes:{tmp_path}").build("train", skip_corrupt=True)
    assert isinstance(dataset, SkipCorruptSamples)
    with caplog.at_level(logging.WARNING):
        items = [dataset[i] for i in range(len(dataset))]
    assert len(items) == 3 and dataset.skipped == 1
    assert (items[1][0] == items[2][0]).all()  # sample 1 was replaced by sample 2
    assert str(broken) in caplog.text
