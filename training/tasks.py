"""Training objectives as modules that return a dict of losses (timm's distillation-task style).

    task = DistillationTask(student, teacher, alpha=0.5, temperature=1.0)  # DIST by default
    losses = task(images, masks)            # online soft labels from the frozen teacher
    losses = task(images, masks, cached)    # or teacher logits read from the cache
    losses["loss"].backward()

Only the student has parameters that train; `task.student` is what DDP wraps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.config import CHOICES, DEFAULTS

# kl: pixel-wise KL (the paper's); cwd: channel-wise; dist: DIST's Pearson relations.
KD_LOSSES = CHOICES["kd_loss"]


def pixel_kl_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                        temperature: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """KL(teacher || student) over the class dimension at temperature T, scaled by T^2,
    averaged over (valid) pixels. Hinton et al.'s T^2 keeps the gradient scale of the soft
    term independent of T."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    per_pixel = (log_teacher.exp() * (log_teacher - log_student)).sum(1)
    if valid is not None:
        per_pixel = per_pixel[valid]
    if per_pixel.numel() == 0:
        return student_logits.sum() * 0
    return per_pixel.mean() * temperature ** 2


def channel_wise_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                            temperature: float) -> torch.Tensor:
    """Channel-wise distillation (Shu et al., ICCV 2021): each class channel becomes a spatial
    distribution (softmax over pixels) and the student matches the teacher's per channel.
    It tells the student *where* each class is, which pixel-wise KL spreads thin."""
    n, c = student_logits.shape[:2]
    log_student = F.log_softmax(student_logits.float().reshape(n, c, -1) / temperature, dim=2)
    log_teacher = F.log_softmax(teacher_logits.float().reshape(n, c, -1) / temperature, dim=2)
    divergence = (log_teacher.exp() * (log_teacher - log_student)).sum(2)
    return divergence.mean() * temperature ** 2


def _pearson_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """1 - Pearson correlation of each row of a with the same row of b, averaged over rows."""
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    correlation = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)
    return (1 - correlation).mean()


def relation_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                        temperature: float, valid: torch.Tensor | None = None,
                        inter_weight: float = 1.0, intra_weight: float = 1.0) -> torch.Tensor:
    """DIST (Huang et al., NeurIPS 2022): match the teacher's *relations*, not its values.

    Inter-class: per pixel, 1 - Pearson(student's class distribution, teacher's); intra-class:
    per class, 1 - Pearson over the (valid) pixels. Correlation ignores shift and scale, so a
    small student is not pushed to copy a far stronger teacher's exact confidence, which is
    what plain KL asks when the gap is large. Scaled by T^2 like the KL term."""
    c = student_logits.shape[1]
    student = F.softmax(student_logits.float() / temperature, dim=1).movedim(1, -1).reshape(-1, c)
    teacher = F.softmax(teacher_logits.float() / temperature, dim=1).movedim(1, -1).reshape(-1, c)
    if valid is not None:
        keep = valid.reshape(-1)
        student, teacher = student[keep], teacher[keep]
    if student.shape[0] == 0:
        return student_logits.sum() * 0
    loss = inter_weight * _pearson_distance(student, teacher)
    if student.shape[0] > 1:  # a correlation over pixels needs two of them
        loss = loss + intra_weight * _pearson_distance(student.t(), teacher.t())
    return loss * temperature ** 2


class SupervisedTask(nn.Module):
    """Cross-entropy with ignore, plus torchvision's 0.5-weighted aux loss when the model has one.

    `label_smoothing` (Szegedy et al.) caps the logit gap the loss rewards: with 0.1 over 19
    classes, top-1 minus the rest settles near log(0.9 * 18 / 0.1) = 5.1 instead of growing
    without bound, which also keeps an int8 output's range (and so its step) small.
    """

    def __init__(self, model: nn.Module, ignore_index: int = 255, aux_weight: float = 0.5,
                 class_weights: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.student = model
        self.ignore_index = ignore_index
        self.aux_weight = aux_weight
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("class_weights", class_weights, persistent=False)

    def hard_loss(self, outputs: dict, masks: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(outputs["out"].float(), masks, weight=self.class_weights,
                               ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing)
        if "aux" in outputs:
            loss = loss + self.aux_weight * F.cross_entropy(
                outputs["aux"].float(), masks, weight=self.class_weights,
                ignore_index=self.ignore_index, label_smoothing=self.label_smoothing)
        return loss

    def student_outputs(self, images: torch.Tensor) -> dict:
        # Through __call__ (not forward_all) so a DDP wrapper synchronises gradients.
        return self.student(images, all_outputs=True)

    def forward(self, images: torch.Tensor, masks: torch.Tensor, *_unused) -> dict:
        outputs = self.student_outputs(images)
        loss = self.hard_loss(outputs, masks)
        return {"loss": loss, "hard_loss": loss.detach(), "logits": outputs["out"].detach()}


class DistillationTask(SupervisedTask):
    """loss = alpha * soft + (1 - alpha) * hard, soft = DIST (the default, training.config's),
    pixel KL or CWD against the teacher."""

    def __init__(self, student: nn.Module, teacher: nn.Module | None, alpha: float,
                 temperature: float, kd_loss: str = DEFAULTS["kd_loss"], ignore_index: int = 255,
                 teacher_autocast: torch.dtype | None = None, **kwargs):
        super().__init__(student, ignore_index, **kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if kd_loss not in KD_LOSSES:
            raise ValueError(f"kd_loss must be one of {', '.join(KD_LOSSES)}, got {kd_loss!r}")
        self.teacher = teacher
        if teacher is not None:
            teacher.eval().requires_grad_(False)
        self.alpha, self.temperature, self.kd_loss = alpha, temperature, kd_loss
        self.teacher_autocast = teacher_autocast

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # frozen: BatchNorm statistics and dropout stay in eval mode
        return self

    @torch.no_grad()
    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(images.device.type, dtype=self.teacher_autocast or torch.bfloat16,
                            enabled=self.teacher_autocast is not None):
            return self.teacher(images).float()

    def forward(self, images: torch.Tensor, masks: torch.Tensor,
                cached_teacher_logits: torch.Tensor | None = None) -> dict:
        outputs = self.student_outputs(images)
        hard = self.hard_loss(outputs, masks)
        logits = outputs["out"].detach()  # the trainer's running train mIoU reads them
        if self.alpha == 0:  # pure cross-entropy: no teacher pass at all
            return {"loss": hard, "hard_loss": hard.detach(), "kd_loss": hard.detach() * 0,
                    "logits": logits}
        if cached_teacher_logits is not None:
            teacher = cached_teacher_logits.float()
        elif self.teacher is not None:
            teacher = self.teacher_logits(images)
        else:
            raise ValueError("distillation needs a teacher or cached teacher logits")
        student = outputs["out"]
        if teacher.shape[-2:] != student.shape[-2:]:
            teacher = F.interpolate(teacher, size=student.shape[-2:], mode="bilinear",
                                    align_corners=False)
        if self.kd_loss == "cwd":
            soft = channel_wise_divergence(student, teacher, self.temperature)
        elif self.kd_loss == "dist":
            soft = relation_divergence(student, teacher, self.temperature,
                                       valid=masks != self.ignore_index)
        else:
            soft = pixel_kl_divergence(student, teacher, self.temperature,
                                       valid=masks != self.ignore_index)
        loss = self.alpha * soft + (1 - self.alpha) * hard
        return {"loss": loss, "hard_loss": hard.detach(), "kd_loss": soft.detach(),
                "logits": logits}
