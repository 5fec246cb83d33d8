"""Synthetic street scenes and the dataset spec: determinism, label range, class coverage."""

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from training.data import CITYSCAPES_CLASSES, DataError, generate_scene, parse_dataset_spec
from training.data.appearance import CONDITIONS
from training.preprocessing import IGNORE_INDEX

SIZE = (64, 128)


def test_same_seed_and_index_give_identical_bytes():
    image_a, mask_a = generate_scene(7, "train", 3, SIZE, ["rain"])
    image_b, mask_b = generate_scene(7, "train", 3, SIZE, ["rain"])
    assert image_a.tobytes() == image_b.tobytes()
    assert mask_a.tobytes() == mask_b.tobytes()


def test_seed_split_and_index_each_change_the_scene():
    _, base = generate_scene(0, "train", 0, SIZE)
    for other in (
        generate_scene(1, "train", 0, SIZE),
        generate_scene(0, "val", 0, SIZE),
        generate_scene(0, "train", 1, SIZE),
    ):
        assert other[1].tobytes() != base.tobytes()


def test_splits_do_not_share_scenes():
    def keys(split):
        return {generate_scene(0, split, i, (32, 64))[1].tobytes() for i in range(15)}

    train, val, test = keys("train"), keys("val"), keys("test")
    assert not (train & val) and not (train & test) and not (val & test)


def test_labels_in_range_and_100_images_cover_at_least_12_classes():
    seen = set()
    for index in range(100):
        image, mask = generate_scene(0, "train", index, SIZE)
        assert image.shape == (*SIZE, 3) and image.dtype == np.uint8
        assert mask.shape == SIZE
        values = set(np.unique(mask).tolist())
        assert values <= set(range(len(CITYSCAPES_CLASSES))) | {IGNORE_INDEX}
        seen |= values - {IGNORE_INDEX}
    assert len(seen) >= 12, sorted(CITYSCAPES_CLASSES[c] for c in seen)


def test_weather_changes_pixels_not_labels():
    clear_image, clear_mask = generate_scene(0, "val", 5, SIZE, ["clear"])
    for condition in CONDITIONS[1:]:
        image, mask = generate_scene(0, "val", 5, SIZE, [condition])
        assert mask.tobytes() == clear_mask.tobytes()
        assert np.abs(image.astype(int) - clear_image.astype(int)).mean() > 5, condition


def test_night_is_darker_and_fog_washes_out_colour():
    def frames(condition):
        return np.stack(
            [generate_scene(0, "val", i, SIZE, [condition])[0] for i in range(4)]
        ).astype(float)

    clear, night, fog = frames("clear"), frames("night"), frames("fog")
    assert night.mean() < 0.6 * clear.mean()

    def saturation(images):
        return (images.max(-1) - images.min(-1)).mean()

    assert saturation(fog) < 0.8 * saturation(clear)
    assert np.percentile(fog.mean(-1), 5) > np.percentile(clear.mean(-1), 5)  # haze lifts the darks


def test_layout_does_not_depend_on_resolution():
    _, small = generate_scene(3, "train", 2, (64, 128))
    _, large = generate_scene(3, "train", 2, (128, 256))
    assert (small == large[::2, ::2]).mean() > 0.9


def test_spec_builds_tv_tensor_items():
    spec = parse_dataset_spec(
        "synthetic:size=48x96,train=4,val=2,test=0,seed=3,condition=fog+night"
    )
    assert spec.name == "synthetic" and spec.splits == ("train", "val")
    assert (
        spec.num_classes == 19
        and spec.class_names[13] == "car"
        and spec.palette[0] == (128, 64, 128)
    )
    assert spec.ignore_index == 255
    dataset = spec.build("train")
    assert len(dataset) == 4
    image, mask = dataset[1]
    assert (
        isinstance(image, tv_tensors.Image)
        and image.dtype == torch.uint8
        and image.shape == (3, 48, 96)
    )
    assert (
        isinstance(mask, tv_tensors.Mask) and mask.dtype == torch.int64 and mask.shape == (48, 96)
    )
    with pytest.raises(DataError, match="no split 'test'"):
        spec.build("test")
    with pytest.raises(IndexError):
        dataset[4]


def test_cache_serves_the_generated_bytes():
    dataset = parse_dataset_spec("synthetic:size=32x64,train=3,val=0,test=0,seed=4").build("train")
    first = [dataset[i] for i in range(3)]
    assert dataset.cached == 3
    image, mask = generate_scene(4, "train", 1, (32, 64))
    for item in (first[1], dataset[1]):  # generated, then served from the cache
        assert item[0].permute(1, 2, 0).numpy().tobytes() == image.tobytes()
        assert item[1].numpy().astype(np.uint8).tobytes() == mask.tobytes()
    dataset[1][0].zero_()  # callers may write to items without corrupting the cache
    assert dataset[1][0].permute(1, 2, 0).numpy().tobytes() == image.tobytes()
    assert parse_dataset_spec("synthetic:size=32x64,train=2,cache=0").build("train").cached == 0


def test_spec_defaults():
    spec = parse_dataset_spec("synthetic")
    assert spec.splits == ("train", "val", "test")
    assert len(spec.build("train")) == 400 and spec.build("val")[0][0].shape == (3, 128, 256)


@pytest.mark.parametrize(
    "text, message",
    [
        ("synthetic:size=128", "HEIGHTxWIDTH"),
        ("synthetic:size=8x8", "at least 16x16"),
        ("synthetic:colour=red", "unknown synthetic option 'colour'"),
        ("synthetic:train=many", "must be an integer"),
        ("synthetic:train=-1", ">= 0"),
        ("synthetic:seed=1,seed=2", "given twice"),
        ("synthetic:condition=hail", "unknown condition 'hail'"),
        ("synthetic:condition=fog+", "unknown condition ''"),
        ("synthetic:train", "key=value"),
        ("synthetic:cache=yes", "cache must be 0 or 1"),
        ("kitti:/data", "unknown dataset 'kitti:/data'"),
        ("cityscapes", "needs a root folder"),
    ],
)
def test_bad_specs_raise_clear_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_dataset_spec(text)
