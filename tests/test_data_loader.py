"""DataLoader setup: same seed, same batches (with workers too); distributed sharding."""

import torch
import torch.distributed as dist

from training.data import build_loader, parse_dataset_spec, train_transforms

SPEC = "synthetic:size=32x64,train=8,val=0,test=0"


def first_batches(seed: int, workers: int, global_seed: int, count: int = 2):
    torch.manual_seed(
        global_seed
    )  # without workers the augmentations draw from the global generator
    dataset = parse_dataset_spec(SPEC).build("train", train_transforms((32, 64)))
    loader = build_loader(
        dataset, batch_size=4, shuffle=True, workers=workers, seed=seed, drop_last=True
    )
    return [batch for _, batch in zip(range(count), loader)]


def same(a, b) -> bool:
    return all(
        torch.equal(x, y) for batch_a, batch_b in zip(a, b) for x, y in zip(batch_a, batch_b)
    )


def test_same_seed_same_batches_and_augmentations():
    assert same(
        first_batches(0, workers=0, global_seed=0), first_batches(0, workers=0, global_seed=0)
    )
    assert not same(
        first_batches(0, workers=0, global_seed=0), first_batches(1, workers=0, global_seed=1)
    )


def test_workers_are_seeded_deterministically():
    # Workers take their seeds from the loader's generator, not from the main process's state.
    a, b = first_batches(5, workers=2, global_seed=1), first_batches(5, workers=2, global_seed=2)
    images, masks = a[0]
    assert (
        images.shape == (4, 3, 32, 64) and masks.shape == (4, 32, 64) and masks.dtype == torch.int64
    )
    assert same(a, b)


def test_workers_fill_one_shared_cache():
    dataset = parse_dataset_spec(SPEC).build("train")
    loader = build_loader(dataset, batch_size=2, shuffle=False, workers=2, seed=0)
    first = [masks for _, masks in loader]
    assert dataset.cached == len(dataset)  # written by the workers, visible here
    assert all(torch.equal(a, b) for a, b in zip(first, [masks for _, masks in loader]))


def test_distributed_sampler_shards(tmp_path):
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        dataset = parse_dataset_spec(SPEC).build("train")
        loader = build_loader(
            dataset, batch_size=2, shuffle=True, workers=0, seed=0, distributed=True
        )
        assert isinstance(loader.sampler, torch.utils.data.DistributedSampler)
        assert sum(len(images) for images, _ in loader) == len(dataset)
    finally:
        dist.destroy_process_group()
