"""mIoU and mAE: hand-computed cases and agreement with cityscapesscripts' official evaluation."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from training.metrics import MAE_THRESHOLDS, SegmentationMetrics

IGNORE = 255


def scores(pred, target, num_classes):
    metrics = SegmentationMetrics(num_classes, IGNORE)
    metrics.update(torch.as_tensor(pred), torch.as_tensor(target))
    return metrics.compute()


def test_perfect_prediction_gives_miou_100_and_mae_0():
    target = torch.randint(0, 4, (2, 16, 16))
    target[:, :2] = IGNORE
    result = scores(target.clamp(max=3), target, 4)
    assert result["miou"] == 100.0
    assert result["mae_50"] == 0.0 and result["mae_50_95"] == 0.0


def test_hand_computed_iou_and_mae():
    # 1 image, 2 classes, 8 pixels (one ignored). Truth: 0 0 0 0 1 1 1 ign; prediction: 0 0 0 1 1 1 0 1
    target = torch.tensor([[0, 0, 0, 0, 1, 1, 1, IGNORE]])
    pred = torch.tensor([[0, 0, 0, 1, 1, 1, 0, 1]])
    result = scores(pred, target, 2)
    # class 0: TP 3, FP 1, FN 1 -> 3/5; class 1: TP 2, FP 1, FN 1 -> 2/4
    assert result["per_class_iou"] == pytest.approx([60.0, 50.0])
    assert result["miou"] == pytest.approx(55.0)
    assert result["pixel_acc"] == pytest.approx(5 / 7 * 100)
    # Pairs: (img, 0) IoU .6 and (img, 1) IoU .5. Below 0.5: none; below 0.55: class 1 only.
    by_t = result["mae_by_threshold"]
    assert by_t[0.5] == 0.0 and by_t[0.55] == 50.0 and by_t[0.6] == 50.0 and by_t[0.65] == 100.0
    assert result["mae_50_95"] == pytest.approx((0 + 50 + 50 + 100 * 7) / 10)


def test_absent_class_is_left_out_of_the_mean_and_mae_is_monotonic():
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (4, 32, 32), generator=generator)  # class 3 never occurs
    pred = torch.where(torch.rand(target.shape, generator=generator) < 0.7, target,
                       torch.randint(0, 3, target.shape, generator=generator))
    result = scores(pred, target, 4)
    assert math.isnan(result["per_class_iou"][3])
    assert result["miou"] == pytest.approx(np.mean(result["per_class_iou"][:3]))
    maes = [result["mae_by_threshold"][t] for t in MAE_THRESHOLDS]
    assert all(b >= a for a, b in zip(maes, maes[1:]))
    assert 0 < maes[-1] <= 100


def test_labels_out_of_range_are_refused():
    with pytest.raises(ValueError, match="outside"):
        scores(torch.tensor([[0, 1]]), torch.tensor([[0, 7]]), 2)


def test_agrees_with_cityscapesscripts(tmp_path):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
    from cityscapesscripts.helpers.labels import trainId2label

    rng = np.random.default_rng(0)
    ours = SegmentationMetrics(19, IGNORE)
    pred_files, gt_files = [], []
    for index in range(3):
        # Blocky ground truth over a subset of classes, predictions mostly right plus noise.
        present = rng.choice(19, size=8, replace=False)
        gt = rng.choice(present, size=(12, 24)).repeat(4, 0).repeat(4, 1)
        pred = np.where(rng.random(gt.shape) < 0.75, gt, rng.integers(0, 19, gt.shape))
        gt[rng.random(gt.shape) < 0.1] = IGNORE
        ours.update(torch.from_numpy(pred), torch.from_numpy(gt))
        # The official tool reads label ids; ignored pixels become 'unlabeled' (id 0).
        to_id = np.zeros(256, np.uint8)
        for train_id in range(19):
            to_id[train_id] = trainId2label[train_id].id
        for array, kind, files in ((pred, "pred", pred_files), (gt, "gt", gt_files)):
            path = tmp_path / f"{kind}{index}_gtFine_labelIds.png"
            Image.fromarray(to_id[array.astype(np.int64)]).save(path)
            files.append(str(path))
    args = official.args
    args.evalInstLevelScore, args.quiet, args.JSONOutput = False, True, False
    result = official.evaluateImgLists(pred_files, gt_files, args)
    theirs = {name: score for name, score in result["classScores"].items()
              if not math.isnan(score)}
    mine = ours.compute()
    names = [trainId2label[i].name for i in range(19)]
    for name, iou in zip(names, mine["per_class_iou"]):
        if name in theirs:
            assert iou / 100 == pytest.approx(theirs[name], abs=1e-6)
        else:
            assert math.isnan(iou)
    assert mine["miou"] / 100 == pytest.approx(result["averageScoreClasses"], abs=1e-6)
