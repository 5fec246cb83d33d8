"""Fixtures shared across the test suite."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

TINY_DATASET = "synthetic:size=64x128,train=48,val=16,test=16,seed=0"
TINY_INPUT_SIZE = (64, 128)
_TRAINING_SOURCES = Path(__file__).resolve().parents[1] / "training"


def _source_digest(config: dict) -> str:
    """Key of the cached checkpoint: the config and every training source file."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for path in sorted(_TRAINING_SOURCES.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def tiny_trained_student(request) -> Path:
    """Checkpoint of a MobileNetV2-Lite student trained for a few epochs on 48 synthetic
    64x128 scenes (TINY_DATASET; its val and test splits stay held out).

    Its predictions cover several classes, which is what makes a parity check on it mean
    something: an untrained network predicts one class everywhere, and any converter
    "agrees" with that. Trained once (about half a minute on two cores) and kept in pytest's
    cache folder under a key of the config and the training code, so a change to either
    trains it again.
    """
    from training import train
    from training.config import DEFAULTS

    config = dict(DEFAULTS, dataset=TINY_DATASET, input_size=list(TINY_INPUT_SIZE),
                  model="deeplabv3lite_mobilenetv2", epochs=8, batch_size=8, workers=0, lr=5e-3,
                  lr_schedule="poly", name="tiny", progress=False)
    folder = request.config.cache.mkdir(f"tiny_student_{_source_digest(config)}")
    best, done = folder / "tiny" / "best.pth", folder / "finished"
    if not done.is_file():  # best.pth exists after epoch 1: only a finished run counts
        train.run(dict(config, output_dir=str(folder)))
        done.write_text(str(best))
    return best
