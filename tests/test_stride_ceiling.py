"""The output-stride ceiling: exact at stride 1, blurs thin classes away at coarse strides."""
import torch

from benchmarks.stride_ceiling import grid_oracle, main, stride_ceilings
from training.data import parse_dataset_spec


def test_stride_one_oracle_is_the_mask_and_ignored_pixels_do_not_vote():
    mask = torch.randint(0, 5, (16, 32))
    mask[:4, :4] = 255
    oracle = grid_oracle(mask, 1, num_classes=5, ignore_index=255)
    valid = mask != 255
    assert torch.equal(oracle[valid], mask[valid])

    # One 16x16 cell: 3/4 class 2, 1/4 class 1 (plus ignored pixels that would outvote both).
    cell = torch.full((16, 16), 2)
    cell[:, :4] = 1
    cell[8:, 4:12] = 255
    assert (grid_oracle(cell, 16, num_classes=5, ignore_index=255) == 2).all()


def test_a_thin_pole_survives_stride_4_but_not_stride_16():
    mask = torch.zeros(32, 64, dtype=torch.long)
    mask[:, 32:36] = 1  # a 4-pixel pole
    assert (grid_oracle(mask, 4, 2, 255) == 1).any()
    assert not (grid_oracle(mask, 16, 2, 255) == 1).any()


def test_ceiling_falls_with_the_stride_on_street_scenes(tmp_path):
    spec = parse_dataset_spec("synthetic:size=64x128,train=0,val=3,test=0,seed=0")
    ceilings = stride_ceilings(spec, "val", (64, 128), [1, 4, 16])
    assert ceilings[1]["miou"] == 100.0
    assert 100.0 > ceilings[4]["miou"] > ceilings[16]["miou"] > 0.0

    out = tmp_path / "ceiling.json"
    summary = main(["--dataset", "synthetic:size=64x128,train=0,val=2,test=0,seed=0",
                    "--input-size", "64", "128", "--strides", "8", "--json", str(out)])
    assert out.is_file() and summary["strides"]["8"]["miou"] < 100.0
