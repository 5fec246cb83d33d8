"""Data throughput: is loading fast enough not to limit training?

    python -m benchmarks.data_throughput [--images 40] [--batches 20] [--out FILE.json]

Measures, at 512x1024:
  - synthetic generation rate on one core (images/s), per weather condition;
  - DataLoader throughput with the training augmentations and 2 workers (images/s), for
    synthetic scenes generated on the fly (cache=0), for the augmentations alone (scenes served
    from the synthetic dataset's shared cache, as from the second epoch on), and for CamVid's
    real PNGs when ../shared/datasets/camvid exists.
Compare the loader numbers with the student's training step time: loading must be faster.
"""

from __future__ import annotations

from training.errors import exit_130_on_interrupt  # before the slow imports below
exit_130_on_interrupt(__name__)

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from training.data import build_loader, generate_scene, parse_dataset_spec, train_transforms
from training.data.appearance import CONDITIONS
from training.io import atomic_write_text, prepare_output_file
from training.errors import run_cli

SIZE = (512, 1024)
CAMVID = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"


def generation_rate(count: int, size=SIZE, condition: str = "clear") -> float:
    generate_scene(0, "train", 10_000, size, [condition])  # warm caches and imports
    start = time.perf_counter()
    for index in range(count):
        generate_scene(0, "train", index, size, [condition])
    return count / (time.perf_counter() - start)


def loader_rate(dataset, batches: int, batch_size: int = 4, workers: int = 2) -> float:
    loader = build_loader(
        dataset, batch_size=batch_size, shuffle=True, workers=workers, seed=0, drop_last=True
    )
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    start, seen = time.perf_counter(), 0
    for _, (images, _) in zip(range(batches), iterator):
        seen += len(images)
    return seen / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40, help="images per generation measurement")
    parser.add_argument(
        "--batches", type=int, default=20, help="batches of 4 per loader measurement"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/data_throughput.json"))
    args = parser.parse_args(argv)
    prepare_output_file(args.out, "--out")
    torch.set_num_threads(1)  # "on one core": generation is numpy/PIL, augmentation torch

    results: dict = {
        "size": list(SIZE),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "generation_images_per_s_one_core": {},
    }
    for condition in CONDITIONS:
        rate = generation_rate(args.images, condition=condition)
        results["generation_images_per_s_one_core"][condition] = round(rate, 2)
        print(f"generation 512x1024 {condition:5s}: {rate:6.2f} images/s (one core)")
    rate = generation_rate(args.images * 4, size=(128, 256))
    results["generation_images_per_s_one_core_128x256"] = round(rate, 1)
    print(f"generation 128x256  clear: {rate:6.1f} images/s (one core)")

    transform = train_transforms(SIZE)
    on_the_fly = parse_dataset_spec("synthetic:size=512x1024,train=400,cache=0").build(
        "train", transform
    )
    cached = parse_dataset_spec("synthetic:size=512x1024,train=16,cache=1").build(
        "train", transform
    )
    for index in range(len(cached)):  # fill the cache: later epochs only augment
        cached[index]
    loaders = {"synthetic_on_the_fly": on_the_fly, "augmentation_only_cached": cached}
    if CAMVID.is_dir():
        loaders["camvid_png"] = parse_dataset_spec(f"camvid:{CAMVID}").build("train", transform)
    results["loader_images_per_s_2_workers"] = {}
    for name, dataset in loaders.items():
        rate = loader_rate(dataset, args.batches)
        results["loader_images_per_s_2_workers"][name] = round(rate, 2)
        print(f"loader 512x1024, train augmentations, 2 workers, {name}: {rate:6.2f} images/s")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run_cli(main)
