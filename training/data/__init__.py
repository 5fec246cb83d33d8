"""Datasets, augmentation and loading: every stage reads data through a DatasetSpec.

spec = parse_dataset_spec("synthetic:size=128x256,train=400")
train = spec.build("train", train_transforms((128, 256)))
loader = build_loader(train, batch_size=8, shuffle=True, workers=2, seed=0)
"""

from training.data.base import DataError, SkipCorruptSamples
from training.data.labels import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, colorize
from training.data.loader import build_loader
from training.data.spec import DatasetSpec, parse_dataset_spec
from training.data.synthetic import SyntheticOptions, SyntheticStreetScenes, generate_scene
from training.data.transforms import DenseTarget, JointTransform, eval_transforms, train_transforms

__all__ = [
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_PALETTE",
    "DataError",
    "DatasetSpec",
    "DenseTarget",
    "JointTransform",
    "SkipCorruptSamples",
    "SyntheticOptions",
    "SyntheticStreetScenes",
    "build_loader",
    "colorize",
    "eval_transforms",
    "generate_scene",
    "parse_dataset_spec",
    "train_transforms",
]
