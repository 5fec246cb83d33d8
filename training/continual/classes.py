"""New classes without the old data: class lists, label remapping and classifier growth.

    classes = extend_class_list(old_names, new_names, dataset_names)  # old order kept
    positions = grow_classifier(model, old_names, classes)              # old logits unchanged

Background shift: when new classes arrive, the new data may not label the old ones (they are
mapped to ignore); `training.continual.ewc.ContinualTask`'s LwF term keeps them.
"""
from __future__ import annotations

import torch
from torch import nn

from training.errors import UserError


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
