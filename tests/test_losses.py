"""Distillation objective: hand computation, zero at equality, alpha = 0 is plain CE."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from training.tasks import DistillationTask, SupervisedTask, channel_wise_divergence, \
    pixel_kl_divergence, relation_divergence


class PixelModel(nn.Module):
    """A 1x1-conv 'segmentation model' with the project's forward(x, all_outputs) contract."""

    def __init__(self, classes=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, classes, 1)

    def forward(self, x, all_outputs=False):
        out = self.conv(x)
        return {"out": out} if all_outputs else out


def test_pixel_kl_matches_hand_computation():
    # One pixel, two classes. Teacher logits (0, ln 3) -> p = (1/4, 3/4); student (0, 0) -> q = 1/2.
    teacher = torch.tensor([0.0, math.log(3)]).view(1, 2, 1, 1)
    student = torch.zeros(1, 2, 1, 1)
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert pixel_kl_divergence(student, teacher, 1.0).item() == pytest.approx(expected, rel=1e-6)
    # Temperature 2: p = softmax((0, ln3)/2) = (1, sqrt3)/(1+sqrt3); loss scaled by T^2 = 4.
    p1 = 1 / (1 + math.sqrt(3))
    p2 = 1 - p1
    expected_t2 = 4 * (p1 * math.log(p1 / 0.5) + p2 * math.log(p2 / 0.5))
    assert pixel_kl_divergence(student, teacher, 2.0).item() == pytest.approx(expected_t2, rel=1e-6)


def test_kd_losses_vanish_when_student_equals_teacher():
    logits = torch.randn(2, 5, 8, 8)
    assert pixel_kl_divergence(logits, logits.clone(), 3.0).item() == pytest.approx(0, abs=1e-6)
    assert channel_wise_divergence(logits, logits.clone(), 3.0).item() == pytest.approx(0, abs=1e-6)
    # float32 correlations of identical rows come out as 1 - 1e-6, times T^2
    assert relation_divergence(logits, logits.clone(), 3.0).item() == pytest.approx(0, abs=1e-4)
    assert pixel_kl_divergence(logits, torch.randn_like(logits), 3.0).item() > 0.01
    assert relation_divergence(logits, torch.randn_like(logits), 3.0).item() > 0.01


def _pearson(x, y):
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def test_relation_divergence_matches_hand_computation():
    # Three pixels, three classes, T = 1. Probabilities written out, logits = their logs.
    p_student = [[0.2, 0.3, 0.5], [0.6, 0.25, 0.15], [0.1, 0.8, 0.1]]
    p_teacher = [[0.1, 0.2, 0.7], [0.3, 0.6, 0.1], [0.2, 0.5, 0.3]]
    as_logits = lambda p: torch.tensor(p).log().t().reshape(1, 3, 1, 3)  # noqa: E731
    inter = sum(1 - _pearson(s, t) for s, t in zip(p_student, p_teacher)) / 3
    columns = lambda p: [list(c) for c in zip(*p)]  # noqa: E731
    intra = sum(1 - _pearson(s, t) for s, t in zip(columns(p_student), columns(p_teacher))) / 3
    value = relation_divergence(as_logits(p_student), as_logits(p_teacher), 1.0)
    assert value.item() == pytest.approx(inter + intra, rel=1e-5)
    # Correlation ignores an affine change of the teacher's probabilities: only relations count.
    shifted = [[0.5 * v + 0.1 for v in row] for row in p_teacher]
    shifted = [[v / sum(row) for v in row] for row in shifted]  # rows sum to 1 again
    assert relation_divergence(as_logits(p_teacher), as_logits(shifted), 1.0).item() == \
        pytest.approx(0, abs=1e-5)
    # Temperature scales by T^2, and ignored pixels drop out (one valid pixel: no intra term).
    doubled = relation_divergence(as_logits(p_student) * 2, as_logits(p_teacher) * 2, 2.0)
    assert doubled.item() == pytest.approx(4 * (inter + intra), rel=1e-5)
    valid = torch.tensor([[[True, False, False]]])
    assert relation_divergence(as_logits(p_student), as_logits(p_teacher), 1.0, valid).item() \
        == pytest.approx(1 - _pearson(p_student[0], p_teacher[0]), rel=1e-5)


def test_relation_loss_trains_the_student_only():
    student, teacher = PixelModel(seed=0), PixelModel(seed=1)
    images, masks = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    task = DistillationTask(student, teacher, alpha=1.0, temperature=1.0, kd_loss="dist")
    losses = task(images, masks)
    expected = relation_divergence(student(images), teacher(images), 1.0)
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    losses["loss"].backward()
    assert student.conv.weight.grad.abs().sum() > 0
    assert teacher.conv.weight.grad is None


def test_ignored_pixels_do_not_count():
    student, teacher = torch.zeros(1, 2, 1, 2), torch.zeros(1, 2, 1, 2)
    teacher[0, 0, 0, 1] = 5.0  # disagreement only at the second pixel
    valid = torch.tensor([[[True, False]]])
    assert pixel_kl_divergence(student, teacher, 1.0, valid).item() == 0.0


def test_alpha_zero_is_plain_cross_entropy_and_alpha_mixes():
    student, teacher = PixelModel(seed=0), PixelModel(seed=1)
    images = torch.randn(2, 3, 4, 4)
    masks = torch.randint(0, 3, (2, 4, 4))
    masks[0, 0, 0] = 255
    ce = F.cross_entropy(student(images), masks, ignore_index=255)
    losses = DistillationTask(student, teacher, alpha=0.0, temperature=2.0)(images, masks)
    assert losses["loss"].item() == pytest.approx(ce.item(), rel=1e-6)
    assert SupervisedTask(student)(images, masks)["loss"].item() == pytest.approx(ce.item())

    mixed = DistillationTask(student, teacher, alpha=0.3, temperature=2.0,
                             kd_loss="kl")(images, masks)
    soft = pixel_kl_divergence(student(images), teacher(images), 2.0, masks != 255)
    assert mixed["loss"].item() == pytest.approx(0.3 * soft.item() + 0.7 * ce.item(), rel=1e-5)
    mixed["loss"].backward()
    assert student.conv.weight.grad is not None and teacher.conv.weight.grad is None


def test_teacher_stays_in_eval_mode_and_bad_settings_fail():
    teacher = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))
    task = DistillationTask(PixelModel(), teacher, alpha=0.5, temperature=1.0).train()
    assert not teacher.training and task.student.training
    with pytest.raises(ValueError, match="alpha"):
        DistillationTask(PixelModel(), teacher, alpha=1.5, temperature=1.0)
    with pytest.raises(ValueError, match="kd_loss"):
        DistillationTask(PixelModel(), teacher, alpha=0.5, temperature=1.0, kd_loss="mse")
