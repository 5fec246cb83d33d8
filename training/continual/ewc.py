"""Forgetting less of the old task: EWC's Fisher penalty and LwF, as one training task.

    fisher = estimate_fisher(model, loader)                             # diagonal, old data
    task = ContinualTask(model, ignore_index, ewc=(fisher, anchor, lam), old_model=..., ...)

Fisher: the mean over images of the squared gradient of the image's mean per-pixel
log-likelihood of the model's *own* prediction (argmax), in eval mode (the "true Fisher" with
the mode instead of a sample; labels are not needed, so user data without masks would do).
Penalty: lambda / 2 * sum_i F_i (theta_i - theta*_i)^2.

Background shift: when new classes arrive, the new data may not label the old ones (they are
mapped to ignore). LwF keeps them: KL(old model || new model) at temperature T over the
old-class channels only, both softmaxed over the old classes (Li & Hoiem; the restriction to old
classes is what MiB's unbiased distillation does when there is no background class to fold
the new classes into, as in Cityscapes' 19 classes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.errors import UserError
from training.tasks import SupervisedTask, pixel_kl_divergence


# -- EWC ---------------------------------------------------------------------------------------
def estimate_fisher(model: nn.Module, loader, device: torch.device | str = "cpu",
                    max_images: int = 64) -> dict[str, torch.Tensor]:
    """Diagonal Fisher, one image at a time (a batch gradient would square a mean, not average
    squares). Eval mode: BatchNorm statistics are not touched."""
    was_training = model.training
    model.eval()
    parameters = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p, device="cpu") for n, p in parameters.items()}
    seen = 0
    for images, *_ in loader:
        for image in images:
            if seen >= max_images:
                break
            model.zero_grad(set_to_none=True)
            logits = model(image[None].to(device))
            log_probs = F.log_softmax(logits.float(), dim=1)
            log_likelihood = log_probs.gather(1, log_probs.argmax(1, keepdim=True)).mean()
            log_likelihood.backward()
            for name, parameter in parameters.items():
                if parameter.grad is not None:
                    fisher[name] += parameter.grad.detach().cpu() ** 2
            seen += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    if seen == 0:
        raise UserError("no images to estimate the Fisher information on")
    return {name: value / seen for name, value in fisher.items()}


def ewc_penalty(model: nn.Module, fisher: dict, anchor: dict) -> torch.Tensor:
    """sum F (theta - theta*)^2 / 2 over the parameters with a Fisher entry (times lambda
    outside)."""
    total = None
    for name, parameter in model.named_parameters():
        if name in fisher:
            term = (fisher[name] * (parameter - anchor[name]) ** 2).sum()
            total = term if total is None else total + term
    return total / 2 if total is not None else torch.zeros(())


def merge_fisher(previous: dict | None, current: dict, decay: float = 1.0) -> dict:
    """Online EWC (Schwarz et al. 2018): one running Fisher instead of one per task."""
    if not previous:
        return current
    return {name: decay * previous[name] + value if name in previous else value
            for name, value in current.items()}


# -- the training task ---------------------------------------------------------------------------
class ContinualTask(SupervisedTask):
    """Cross-entropy on the new data (and the replayed memory, which the dataset mixes in),
    plus an optional EWC penalty and an optional LwF term on the old-class outputs."""

    def __init__(self, model: nn.Module, ignore_index: int = 255,
                 ewc: tuple[dict, dict, float] | None = None,
                 old_model: nn.Module | None = None, old_positions: list[int] | None = None,
                 lwf_weight: float = 1.0, temperature: float = 2.0):
        super().__init__(model, ignore_index)
        self.ewc_lambda = ewc[2] if ewc else 0.0
        self.fisher, self.anchor = {}, {}
        if ewc:  # device moves happen with the task (buffers), not by hand
            for i, name in enumerate(sorted(ewc[0])):
                self.register_buffer(f"fisher_{i}", ewc[0][name], persistent=False)
                self.register_buffer(f"anchor_{i}", ewc[1][name], persistent=False)
                self.fisher[name], self.anchor[name] = f"fisher_{i}", f"anchor_{i}"
        self.old_model = old_model
        if old_model is not None:
            old_model.eval().requires_grad_(False)
        self.old_positions = old_positions
        self.lwf_weight, self.temperature = lwf_weight, temperature

    def train(self, mode: bool = True):
        super().train(mode)
        if self.old_model is not None:
            self.old_model.eval()
        return self

    def forward(self, images: torch.Tensor, masks: torch.Tensor, *_unused) -> dict:
        outputs = self.student_outputs(images)
        hard = self.hard_loss(outputs, masks)
        loss, losses = hard, {"hard_loss": hard.detach()}
        if self.ewc_lambda:
            fisher = {n: getattr(self, b) for n, b in self.fisher.items()}
            anchor = {n: getattr(self, b) for n, b in self.anchor.items()}
            penalty = ewc_penalty(self.student, fisher, anchor)
            loss = loss + self.ewc_lambda * penalty
            losses["ewc_loss"] = penalty.detach()
        if self.old_model is not None:
            with torch.no_grad():
                old = self.old_model(images).float()
            new = outputs["out"][:, self.old_positions]
            kd = pixel_kl_divergence(new, old, self.temperature)
            loss = loss + self.lwf_weight * kd
            losses["kd_loss"] = kd.detach()
        return {"loss": loss, **losses}
