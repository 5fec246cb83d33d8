"""Joint augmentation: image, mask and extras stay aligned; padding and rotation fill ignore."""

import pytest
import torch
import torch.nn.functional as nnf
from torchvision import tv_tensors

from training.data import DenseTarget, eval_transforms, train_transforms
from training.preprocessing import IGNORE_INDEX, MEAN, STD

SIZE = (64, 128)
# Eight classes coloured by the RGB cube's corners: far apart, so a pixel's colour names its class.
CORNERS = torch.tensor(
    [[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], dtype=torch.float32
)


def colour_coded_sample(seed: int, block: int = 16) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """Blocky random labels 0..7 and an image whose colour at each pixel encodes that label."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 8, (SIZE[0] // block, SIZE[1] // block), generator=g)
    mask = coarse.repeat_interleave(block, 0).repeat_interleave(block, 1)
    image = CORNERS[mask].permute(2, 0, 1).to(torch.uint8)
    return tv_tensors.Image(image), tv_tensors.Mask(mask)


def denormalise(image: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    return (image * std + mean) * 255


def misaligned_fraction(
    image: torch.Tensor, mask: torch.Tensor, radius: int = 2
) -> tuple[float, float]:
    """(share of checked pixels whose colour names another class, checked share of labelled ones).

    Checked are labelled pixels whose whole (2r+1)^2 neighbourhood has the same label: away
    from class borders, where interpolation legitimately mixes colours, and from the frame
    edge and padding, where it mixes in the fill.
    """
    window = 2 * radius + 1
    m = nnf.pad(mask.float()[None, None], [radius] * 4, value=IGNORE_INDEX)
    uniform = (nnf.max_pool2d(m, window, 1) == -nnf.max_pool2d(-m, window, 1))[0, 0]
    labelled = mask != IGNORE_INDEX
    checked = uniform & labelled
    colours = denormalise(image).permute(1, 2, 0)[checked]
    named = torch.cdist(colours, CORNERS).argmin(dim=1)
    wrong = (named != mask[checked]).float().mean().item() if checked.any() else 0.0
    return wrong, checked.sum().item() / max(1, labelled.sum().item())


@pytest.mark.parametrize("seed", range(12))
def test_training_transform_keeps_image_and_mask_aligned(seed):
    torch.manual_seed(seed)
    transform = train_transforms(
        SIZE, scale_range=(0.5, 2.0), rotation_deg=25, hflip=True, vflip=True, jitter=(0, 0, 0)
    )
    image, mask = transform(*colour_coded_sample(seed))
    assert image.dtype == torch.float32 and image.shape == (3, *SIZE)
    assert mask.dtype == torch.int64 and mask.shape == SIZE
    wrong, checked = misaligned_fraction(image, mask)
    assert checked > 0.15  # the check saw enough pixels to mean something
    assert wrong == 0.0


def test_alignment_check_catches_a_flip_of_the_image_alone():
    image, mask = eval_transforms()(*colour_coded_sample(0))
    wrong, _ = misaligned_fraction(image.flip(-1), mask)
    assert wrong > 0.3


def _only(sample: int, rotation_deg: float = 0, jitter=(0, 0, 0)):
    """Sample `sample` through the training transform with only one augmentation on."""
    torch.manual_seed(0)
    image, mask = colour_coded_sample(sample)
    transform = train_transforms(SIZE, scale_range=(1, 1), rotation_deg=rotation_deg,
                                 hflip=False, jitter=jitter)
    return (image, mask), transform(image, mask)


def test_colour_jitter_changes_only_the_image():
    (source_image, source_mask), (image, mask) = _only(1, jitter=(0.5, 0.5, 0.5))
    plain, _ = eval_transforms()(source_image, source_mask)
    assert torch.equal(mask, source_mask)
    assert not torch.allclose(image, plain)


def test_rotation_fills_corners_with_ignore():
    (image, mask), (out_image, out_mask) = _only(2, rotation_deg=30)
    filled = out_mask == IGNORE_INDEX
    assert filled.float().mean() > 0.01
    assert filled[0, 0] or filled[0, -1] or filled[-1, 0] or filled[-1, -1]
    assert set(out_mask.unique().tolist()) <= set(range(8)) | {
        IGNORE_INDEX
    }  # nearest: no blended labels
    black = (0 - torch.tensor(MEAN)) / torch.tensor(STD)
    corner = out_image[:, filled].mean(dim=1)
    assert torch.allclose(corner, black, atol=0.5)


def test_crop_pads_with_ignore_when_scaled_down():
    torch.manual_seed(0)
    transform = train_transforms(
        SIZE, scale_range=(0.5, 0.5), rotation_deg=0, hflip=False, jitter=(0, 0, 0)
    )
    _, mask = transform(*colour_coded_sample(3))
    assert mask.shape == SIZE
    assert (
        abs((mask == IGNORE_INDEX).float().mean().item() - 0.75) < 0.02
    )  # a quarter of the area is image


def test_extras_follow_the_geometry():
    """Cached teacher logits (one-hot of the label) must still argmax to the mask afterwards."""
    image, mask = colour_coded_sample(4)
    logits = nnf.one_hot(mask, 8).permute(2, 0, 1).float() * 5.0
    for seed in range(5):
        torch.manual_seed(seed)
        transform = train_transforms(SIZE, rotation_deg=20, jitter=(0.3, 0.3, 0.3))
        _, out_mask, out_logits = transform(image, mask, logits)
        assert isinstance(out_logits, DenseTarget) and out_logits.dtype == torch.float32
        labelled = out_mask != IGNORE_INDEX
        assert torch.equal(out_logits.argmax(0)[labelled], out_mask[labelled])
        assert (out_logits[:, ~labelled] == 0).all()  # padding of extras is zero, not 255


def test_eval_transform_resizes_and_normalises():
    image, mask = colour_coded_sample(5)
    out_image, out_mask = eval_transforms((32, 48))(image, mask)
    assert out_image.shape == (3, 32, 48) and out_mask.shape == (32, 48)
    assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist())
    grey = tv_tensors.Image(
        (torch.tensor(MEAN)[:, None, None] * 255).round().to(torch.uint8).expand(3, 4, 4)
    )
    normalised, _ = eval_transforms()(grey, tv_tensors.Mask(torch.zeros(4, 4, dtype=torch.int64)))
    assert normalised.abs().max() < 0.02


def test_plain_tensors_are_accepted():
    image, mask = colour_coded_sample(6)
    out_image, out_mask = eval_transforms(SIZE)(
        image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)
    )
    assert out_image.dtype == torch.float32 and out_mask.dtype == torch.int64
