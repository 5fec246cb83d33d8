"""Training loop: learning, exact resume, cached soft labels, clean errors, torchrun."""
import copy
import csv
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training import fit
from training.checkpoint import load_checkpoint
from training.config import DEFAULTS
from training.errors import UserError
from training.history import EpochLog, read_history
from training.io import atomic_save

DATASET = "synthetic:size=64x128,train=8,val=4,test=0,seed=3"
NO_AUGMENT = dict(scale_range=[1.0, 1.0], rotation_deg=0, hflip=False, jitter=[0, 0, 0])


def config(tmp_path, **overrides):
    base = dict(DEFAULTS, dataset=DATASET, input_size=[64, 128], batch_size=2, workers=0,
                epochs=1, output_dir=str(tmp_path), name="run", progress=False,
                model="deeplabv3lite_mobilenetv2", lr_schedule="poly")
    base.update(overrides)
    return base


def train_losses(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as stream:
        return [float(row["train_loss"]) for row in csv.DictReader(stream)]


def test_a_few_steps_reduce_the_loss(tmp_path):
    summary = fit.run(config(tmp_path, epochs=4, lr=5e-3, **NO_AUGMENT))
    losses = train_losses(Path(summary["run_dir"]))
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0]
    checkpoint = load_checkpoint(summary["last"])
    assert checkpoint["epoch"] == 4 and checkpoint["global_step"] == 16
    assert (Path(summary["run_dir"]) / "config.yaml").is_file()
    assert list((Path(summary["run_dir"]) / "tb").iterdir())


def test_run_leaves_its_config_alone_and_logs_train_miou(tmp_path):
    given = config(tmp_path, name=None, bf16="auto", **NO_AUGMENT)
    before = copy.deepcopy(given)
    summary = fit.run(given)
    assert given == before  # no resolved bf16, no generated name written back
    with open(Path(summary["run_dir"]) / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    # The running train mIoU over the epoch's augmented batches, beside val mIoU.
    assert 0 <= float(rows[0]["train_miou"]) <= 100 and rows[0]["val_miou"]


def test_a_resumed_run_keeps_the_columns_its_metrics_file_started_with(tmp_path):
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_text("epoch,train_loss,val_miou\n1,0.5,20.0\n")
    log = EpochLog(run_dir)
    log.append({"epoch": 2, "train_loss": 0.4, "train_miou": 33.0, "val_miou": 21.0})
    assert read_history(run_dir / "metrics.csv") == [
        {"epoch": 1.0, "train_loss": 0.5, "val_miou": 20.0},
        {"epoch": 2.0, "train_loss": 0.4, "val_miou": 21.0}]  # a valid CSV, old header kept
    fresh = EpochLog(tmp_path)
    fresh.append({"epoch": 1, "train_miou": 40.0})
    assert read_history(tmp_path / "metrics.csv") == [{"epoch": 1.0, "train_miou": 40.0}]


def test_the_training_loop_does_not_import_the_report_stack():
    """training.engine validates with training.validation: no matplotlib, no profiling."""
    code = ("import sys, training.engine; "
            "print(sorted(m for m in ('matplotlib', 'training.report', 'training.profiling', "
            "'training.evaluation') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "[]"


def test_resume_after_interrupt_is_bit_identical(tmp_path):
    settings = dict(epochs=2, accum_steps=2, lr=2e-3)  # 2 optimizer steps per epoch
    reference = fit.run(config(tmp_path, name="straight", **settings))

    def interrupt_at_step_3(trainer):
        if trainer.global_step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the real signal path saves last.pth
    stopped = fit.run(config(tmp_path, name="split", **settings), on_step=interrupt_at_step_3)
    assert stopped["interrupted"]
    partial = load_checkpoint(stopped["last"])
    assert (partial["epoch"], partial["global_step"]) == (1, 3)
    resumed = fit.run(dict(partial["config"]), resume=Path(stopped["last"]))
    assert not resumed["interrupted"]
    final, expected = load_checkpoint(resumed["last"])["model"], \
        load_checkpoint(reference["last"])["model"]
    for key in expected:
        assert torch.equal(final[key], expected[key]), key


def test_bad_training_settings_are_refused(tmp_path):
    with pytest.raises(UserError, match="accum_steps 9 exceeds the 4 batches"):
        fit.run(config(tmp_path, accum_steps=9))
    with pytest.raises(UserError, match="batch size 16 is larger than the 8 training samples"):
        fit.run(config(tmp_path, batch_size=16))
    from training.config import validate_config
    for key, value, message in (("batch_size", 0, "batch_size: must be at least 1, got 0"),
                                ("accum_steps", 0, "accum_steps: must be at least 1, got 0")):
        with pytest.raises(UserError, match=message):
            validate_config(config(tmp_path, **{key: value}))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_checkpoint(corrupt)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "arch": {}, "payload": _Exploit()}, path)
    with pytest.raises(UserError, match="refusing checkpoint .* arbitrary pickle"):
        load_checkpoint(path)


def test_teacher_with_other_classes_is_refused(tmp_path):
    from training.checkpoint import make_checkpoint
    from training.models import build_model
    teacher = build_model("deeplabv3lite_mobilenetv2", num_classes=3)
    record = {"spec": "folder:x", "name": "folder", "class_names": ["a", "b", "c"],
              "palette": [[0, 0, 0]] * 3, "ignore_index": 255, "num_classes": 3}
    atomic_save(make_checkpoint(teacher, record, {}), tmp_path / "teacher.pth")
    with pytest.raises(UserError, match="predicts 3 classes .* has 19"):
        fit.run(config(tmp_path, teacher=str(tmp_path / "teacher.pth")), distill=True)


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "last.pth"
    atomic_save({"a": torch.ones(1)}, path)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        atomic_save({"bad": lambda: None}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_learning_rate_schedules_at_equal_epochs():
    from training.engine import lr_factor_fn
    config = {"epochs": 9, "lr_step_epochs": 3, "lr_gamma": 0.1, "poly_power": 0.9}
    step = lr_factor_fn(dict(config, lr_schedule="step"), steps_per_epoch=10)
    poly = lr_factor_fn(dict(config, lr_schedule="poly"), steps_per_epoch=10)
    cosine = lr_factor_fn(dict(config, lr_schedule="cosine"), steps_per_epoch=10)
    assert [step(s) for s in (0, 29, 30, 60)] == pytest.approx([1, 1, 0.1, 0.01])
    assert poly(45) == pytest.approx(0.5 ** 0.9) and poly(90) == 0
    assert cosine(0) == 1 and cosine(45) == pytest.approx(0.5) and cosine(90) == pytest.approx(0)


@pytest.mark.parametrize("native, expected", [(True, (True, True)), (False, (False, False))])
def test_bf16_auto_follows_the_cpu(monkeypatch, native, expected):
    from training import config as config_module
    from training import machine
    monkeypatch.setattr(machine, "has_bf16", lambda: native)
    config = dict(config_module.DEFAULTS, bf16="auto")
    config_module.validate_config(config)
    assert (config["bf16"], config["channels_last"]) == expected
    for value, used in (("on", True), ("off", False), (True, True)):
        config = dict(config_module.DEFAULTS, bf16=value)
        config_module.validate_config(config)
        assert config["bf16"] is used


def test_bf16_auto_is_off_when_onednn_is_capped_below_bf16(monkeypatch):
    from training import machine
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not machine.has_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert machine.has_bf16()
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert machine.has_bf16()


def test_label_smoothing_reaches_the_loss():
    from training.tasks import SupervisedTask

    class Constant(torch.nn.Module):
        def forward(self, x, all_outputs=False):
            return {"out": torch.tensor([[[[4.0]], [[0.0]]]]).expand(len(x), 2, 1, 1)}
    images, masks = torch.zeros(1, 3, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long)
    plain = SupervisedTask(Constant())(images, masks)["loss"]
    smooth = SupervisedTask(Constant(), label_smoothing=0.2)(images, masks)["loss"]
    log_p = torch.log_softmax(torch.tensor([4.0, 0.0]), 0)
    assert plain.item() == pytest.approx(-log_p[0].item())
    assert smooth.item() == pytest.approx(-(0.9 * log_p[0] + 0.1 * log_p[1]).item())
