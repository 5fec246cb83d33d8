"""Segmentation metrics: mIoU (Cityscapes convention), pixel accuracy, mAE@0.5 and mAE@0.5:0.95.

mIoU follows cityscapesscripts' pixel-level evaluation: one confusion matrix over the whole
split, IoU = TP / (TP + FP + FN) per class, mean over the classes whose score is defined
(TP + FP + FN > 0). Pixels labelled `ignore_index` count nowhere.

The paper reports "mAE" without defining it; this project defines it as an error rate over
(image, class) pairs:
  - take every (image, class) pair where the class occurs in the ground truth or in the
    prediction of that image (void pixels ignored in both);
  - mAE@t is the percentage of those pairs whose per-image IoU is below t;
  - mAE@0.5:0.95 is the mean of mAE@t over t = 0.50, 0.55, ..., 0.95.
Lower is better; a perfect prediction scores 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

MAE_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def _valid_pairs(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int):
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape "
                         f"{tuple(target.shape)}")
    keep = target != ignore_index
    pred, target = pred[keep].long(), target[keep].long()
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target holds labels outside 0..{num_classes - 1} "
                         f"(and ignore {ignore_index})")
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"prediction holds labels outside 0..{num_classes - 1}")
    return pred, target


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """Rows: ground truth, columns: prediction (cityscapesscripts' orientation)."""
    pred, target = _valid_pairs(pred, target, num_classes, ignore_index)
    flat = target * num_classes + pred
    return torch.bincount(flat, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_from_confusion(matrix: torch.Tensor) -> torch.Tensor:
    """Per-class IoU as float64; NaN where the class never occurs in truth or prediction."""
    matrix = matrix.double()
    tp = matrix.diag()
    denominator = matrix.sum(0) + matrix.sum(1) - tp
    return torch.where(denominator > 0, tp / denominator.clamp(min=1), torch.nan)


@dataclass
class SegmentationMetrics:
    """Accumulates a split's predictions; `compute()` returns percentages."""

    num_classes: int
    ignore_index: int = 255
    matrix: torch.Tensor = field(init=False)
    mae_below: torch.Tensor = field(init=False)  # per threshold: pairs with IoU < t
    mae_pairs: int = field(init=False, default=0)

    def __post_init__(self):
        self.matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        self.mae_below = torch.zeros(len(MAE_THRESHOLDS), dtype=torch.int64)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """pred and target: (N, H, W) or (H, W) label maps on any device."""
        pred, target = pred.detach().cpu(), target.detach().cpu()
        if pred.dim() == 2:
            pred, target = pred[None], target[None]
        for image_pred, image_target in zip(pred, target):
            image_matrix = confusion_matrix(image_pred, image_target, self.num_classes,
                                            self.ignore_index)
            self.matrix += image_matrix
            ious = iou_from_confusion(image_matrix)
            present = ious[~ious.isnan()]
            thresholds = torch.tensor(MAE_THRESHOLDS, dtype=torch.float64)
            self.mae_below += (present[None, :] < thresholds[:, None] - 1e-12).sum(1)
            self.mae_pairs += present.numel()

    def merge(self, other: "SegmentationMetrics") -> None:
        """Add another accumulator's counts (for distributed evaluation)."""
        self.matrix += other.matrix
        self.mae_below += other.mae_below
        self.mae_pairs += other.mae_pairs

    def compute(self) -> dict:
        ious = iou_from_confusion(self.matrix)
        defined = ious[~ious.isnan()]
        miou = float(defined.mean()) * 100 if defined.numel() else float("nan")
        total = int(self.matrix.sum())
        pixel_acc = float(self.matrix.diag().sum()) / total * 100 if total else float("nan")
        mae = (self.mae_below.double() / max(self.mae_pairs, 1) * 100).tolist()
        return {
            "miou": miou,
            "per_class_iou": [float(v) * 100 for v in ious],  # NaN: class absent everywhere
            "pixel_acc": pixel_acc,
            "mae_50": mae[0],
            "mae_50_95": sum(mae) / len(mae),
            "mae_by_threshold": dict(zip(MAE_THRESHOLDS, mae)),
            "pixels": total,
            "pairs": self.mae_pairs,
        }
