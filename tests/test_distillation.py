"""Soft labels (cached == online after the same augmentation), NaN handling, distill CLI, torchrun."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from training import distill, fit
from training.checkpoint import load_checkpoint
from training.data import eval_transforms, parse_dataset_spec, train_transforms
from training.errors import UserError
from training.tasks import SupervisedTask
from training.sampling import AugmentedDataset
from training.soft_labels import build_or_load_cache, cache_key

from tests.test_training import DATASET, NO_AUGMENT, config

SIZE = (64, 128)


class PixelTeacher(nn.Module):
    """Logits linear in a lightly blurred pixel: augmenting then running the teacher equals
    running it then augmenting, up to resampling, so a geometric mismatch in the cache path
    shows up as a large logit error."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.blur = nn.AvgPool2d(5, stride=1, padding=2, count_include_pad=False)
        self.conv = nn.Conv2d(3, 19, 1)

    def forward(self, x):
        return self.conv(self.blur(x)) * 4


@torch.no_grad()
def test_cached_soft_labels_equal_online_ones_for_the_same_augmented_sample(tmp_path):
    spec = parse_dataset_spec(DATASET)
    teacher = PixelTeacher().eval()
    cache = build_or_load_cache(teacher, spec.build("train", eval_transforms(SIZE)), "k",
                                tmp_path, torch.device("cpu"), progress=False)
    transform = train_transforms(SIZE, scale_range=(0.75, 1.5), rotation_deg=10,
                                 jitter=(0, 0, 0))
    with_cache = AugmentedDataset(spec.build("train"), transform, seed=1, soft_labels=cache)
    without = AugmentedDataset(spec.build("train"), transform, seed=1)
    agreements = []
    for index in range(len(with_cache)):
        image, mask, soft = with_cache[index]
        same_image, same_mask = without[index]
        assert torch.equal(image, same_image) and torch.equal(mask, same_mask)
        online = teacher(image[None])[0]
        valid = mask != 255
        aligned_error = (online - soft).abs()[:, valid].mean()
        raw = torch.as_tensor(cache[index]).float()  # the cache without the augmentation
        unaligned_error = (online - raw).abs()[:, valid].mean()
        assert aligned_error < 0.5 * unaligned_error, (index, aligned_error, unaligned_error)
        agreements.append((online.argmax(0) == soft.argmax(0))[valid].float().mean())
    assert sum(agreements) / len(agreements) > 0.85, agreements


def test_cache_key_changes_with_teacher_data_and_size():
    spec = parse_dataset_spec(DATASET)
    data = spec.build("train")
    key = cache_key("a", DATASET, "train", data, [64, 128])
    assert key == cache_key("a", DATASET, "train", data, [64, 128])
    assert key != cache_key("b", DATASET, "train", data, [64, 128])
    assert key != cache_key("a", DATASET, "train", data, [128, 256])
    other = DATASET.replace("seed=3", "seed=4")
    assert key != cache_key("a", other, "train", parse_dataset_spec(other).build("train"),
                            [64, 128])


def test_nan_losses_are_skipped_then_stop_training(tmp_path, monkeypatch):
    original = SupervisedTask.hard_loss
    calls = {"n": 0}

    def nan_on_second_call(self, outputs, masks):
        calls["n"] += 1
        loss = original(self, outputs, masks)
        return loss * float("nan") if calls["n"] == 2 else loss
    monkeypatch.setattr(SupervisedTask, "hard_loss", nan_on_second_call)
    summary = fit.run(config(tmp_path, name="one_nan"))
    assert load_checkpoint(summary["last"])["global_step"] == 3  # 4 batches, 1 skipped

    monkeypatch.setattr(SupervisedTask, "hard_loss",
                        lambda self, outputs, masks: original(self, outputs, masks) * torch.inf)
    with pytest.raises(UserError, match="2 non-finite losses in a row"):
        fit.run(config(tmp_path, name="all_nan", max_bad_steps=2))
    assert not (tmp_path / "all_nan" / "last.pth").exists()


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher")
    summary = fit.run(config(root, name="teacher", epochs=2, lr=5e-3, **NO_AUGMENT))
    return summary["best"]


def test_distill_cli_with_cached_soft_labels(tmp_path, tiny_teacher):
    summary = distill.main([
        "--teacher", tiny_teacher, "--dataset", DATASET, "--input-size", "64", "128",
        "--batch-size", "2", "--epochs", "1", "--workers", "0", "--soft-labels", "cached",
        "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path), "--name", "kd",
        "--alpha", "0.7", "--no-progress", "--no-report"])
    checkpoint = load_checkpoint(summary["last"])
    assert checkpoint["config"]["alpha"] == 0.7 and checkpoint["config"]["soft_labels"] == "cached"
    assert len(list((tmp_path / "cache").iterdir())) == 1
    with open(Path(summary["run_dir"]) / "metrics.csv") as stream:
        assert "train_kd_loss" in stream.readline()


def test_torchrun_two_process_gloo_smoke(tmp_path, tiny_teacher):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", "29517", "-m", "training.distill", "--teacher", tiny_teacher,
               "--dataset", DATASET, "--input-size", "64", "128", "--batch-size", "2",
               "--epochs", "1", "--workers", "0", "--output-dir", str(tmp_path),
               "--name", "ddp", "--no-progress", "--no-report", "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    checkpoint = load_checkpoint(tmp_path / "ddp" / "last.pth")
    # 8 images over 2 ranks of batch 2: 2 steps per epoch, effective batch 4.
    assert checkpoint["global_step"] == 2
    assert "effective batch 4" in result.stderr
    assert not any(k.startswith("module.") for k in checkpoint["model"])


def test_distill_warns_when_the_teacher_scores_below_its_student(tmp_path, capsys):
    """A teacher that predicts a class absent from every val image scores exactly 0 mIoU, so
    any trained student beats it: distill must say so, not report it as a gain."""
    from training.checkpoint import dataset_record, make_checkpoint
    from training.io import atomic_save
    from training.models import build_model
    spec = parse_dataset_spec(DATASET)
    absent = next(c for c in reversed(range(spec.num_classes)) if not any(
        (mask == c).any() for _, mask in spec.build("val")))
    teacher = build_model("deeplabv3_resnet50", num_classes=spec.num_classes)
    classifier = teacher.classifier[-1]
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.bias.fill_(-10.0)
        classifier.bias[absent] = 10.0
    record = dict(dataset_record(spec), spec=DATASET)
    atomic_save(make_checkpoint(teacher, record, {}, metrics={"miou": 0.0}),
                tmp_path / "teacher.pth")
    summary = distill.main([
        "--teacher", str(tmp_path / "teacher.pth"), "--dataset", DATASET,
        "--input-size", "64", "128", "--batch-size", "2", "--epochs", "2", "--alpha", "0",
        "--workers", "0", "--output-dir", str(tmp_path), "--name", "kd", "--no-progress"])
    assert summary["teacher_miou"] == 0.0 < summary["student_miou"]
    assert summary["teacher_below_student"]
    err = capsys.readouterr().err
    assert "warning: teacher" in err and "below its student's" in err
    table = (Path(summary["report"]) / "table.md").read_text()
    assert "teacher undertrained" in table
