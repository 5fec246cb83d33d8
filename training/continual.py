"""Continual-learning pieces: class lists, classifier growth, EWC and the training task.

    classes = extend_class_list(old_names, new_names, dataset_names)  # old order kept
    positions = grow_classifier(model, old_names, classes)              # old logits unchanged
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
from training.losses import SupervisedTask, pixel_kl_divergence


# -- classes -----------------------------------------------------------------------------------
def extend_class_list(old: list[str], new: list[str], dataset: list[str]) -> list[str]:
    """The model's class list after adding `new`: the dataset's order when the old classes
    already follow it (so a fully extended model speaks the dataset's ids again), else the
    old list with the new classes appended."""
    clashes = sorted(set(old) & set(new))
    if clashes:
        raise UserError(f"new class {clashes[0]!r} already exists in the checkpoint's classes "
                        f"({', '.join(old)})")
    if len(set(new)) != len(new):
        raise UserError(f"--new-classes lists a class twice: {' '.join(new)}")
    missing = [name for name in new if name not in dataset]
    if missing:
        raise UserError(f"new class {missing[0]!r} is not a class of the new data "
                        f"({', '.join(dataset)}); its labels would never be seen")
    wanted = set(old) | set(new)
    in_dataset_order = [name for name in dataset if name in wanted]
    if len(in_dataset_order) == len(wanted) and \
            [name for name in in_dataset_order if name in old] == list(old):
        return in_dataset_order
    return list(old) + list(new)


def label_lookup(dataset_names: list[str], model_names: list[str], ignored: list[str],
                 ignore_index: int) -> torch.Tensor:
    """lookup[dataset id] = model id, ignore_index for ignored classes (model classes too:
    the background-shift setting), -1 for undeclared."""
    unknown = sorted(set(ignored) - set(dataset_names))
    if unknown:
        raise UserError(f"--ignore-classes {unknown[0]!r} is not a class of the data "
                        f"({', '.join(dataset_names)})")
    lookup = torch.full((len(dataset_names),), -1, dtype=torch.long)
    for index, name in enumerate(dataset_names):
        if name in ignored:  # first: old classes the new annotations do not cover
            lookup[index] = ignore_index
        elif name in model_names:
            lookup[index] = model_names.index(name)
    return lookup


class RemapLabels(torch.utils.data.Dataset):
    """Dataset ids to model ids (before the transform). An undeclared label is an error."""

    def __init__(self, base, lookup: torch.Tensor, dataset_names: list[str], ignore_index: int,
                 description: str, transform=None):
        self.base, self.lookup, self.names = base, lookup, dataset_names
        self.ignore_index, self.description, self.transform = ignore_index, description, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, mask = self.base[index]
        valid = mask != self.ignore_index
        mapped = mask.clone()
        mapped[valid] = self.lookup[mask[valid].long()].to(mapped.dtype)
        if (mapped[valid] < 0).any():
            label = int(mask[valid][mapped[valid] < 0][0])
            raise UserError(f"{self.description} labels class {self.names[label]!r} (id {label}), "
                            f"which is neither a model class, a --new-classes entry nor an "
                            f"--ignore-classes entry")
        if self.transform is None:
            return image, mapped
        return tuple(t.as_subclass(torch.Tensor) for t in self.transform(image, mapped))


def check_labels(dataset: RemapLabels, limit: int = 256) -> None:
    """Read up to `limit` samples so undeclared labels fail now, not hours into training."""
    for index in range(min(len(dataset), limit)):
        dataset[index]


# -- classifier growth -------------------------------------------------------------------------
def _final_convs(model: nn.Module) -> list[tuple[nn.Sequential, int]]:
    heads = [model.classifier] + ([model.aux_classifier] if model.aux_classifier is not None
                                  else [])
    return [(head, len(head) - 1) for head in heads]


def grow_rows(tensor: torch.Tensor, positions: list[int], rows: int,
              fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """A tensor of `rows` rows with tensor[i] placed at positions[i], `fill` elsewhere."""
    grown = torch.empty((rows, *tensor.shape[1:]), dtype=tensor.dtype)
    grown[:] = fill
    grown[positions] = tensor
    return grown


def grow_classifier(model: nn.Module, old: list[str], classes: list[str]) -> list[int]:
    """Replace the final 1x1 conv(s) by ones with len(classes) outputs. Old rows are copied to
    their new positions, so old-class logits are identical; new rows start near zero with the
    smallest old bias (they do not take pixels over before training). Returns the positions
    of the old classes in `classes`."""
    positions = [classes.index(name) for name in old]
    generator = torch.Generator().manual_seed(0)
    for head, index in _final_convs(model):
        conv: nn.Conv2d = head[index]
        grown = nn.Conv2d(conv.in_channels, len(classes), 1).to(conv.weight.device)
        with torch.no_grad():
            noise = torch.randn(grown.weight.shape, generator=generator) * 1e-3
            grown.weight.copy_(noise)
            grown.weight[positions] = conv.weight
            grown.bias.fill_(float(conv.bias.min()))
            grown.bias[positions] = conv.bias
        head[index] = grown
    model.num_classes = len(classes)
    model.arch = {**model.arch, "num_classes": len(classes)}
    return positions


def grow_parameter_state(state: dict, model: nn.Module, positions: list[int]) -> dict:
    """Fisher/anchor tensors to the grown shapes (new rows: zero Fisher, so no penalty)."""
    shapes = {name: p.shape for name, p in model.named_parameters()}
    return {name: grow_rows(t, positions, shapes[name][0]) if t.shape != shapes[name] else t
            for name, t in state.items()}


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
