"""Bad configs, flags and paths get one clear line (exit 2), and no finished work is lost.

One test (or group) per defect found on main a6f54f1, numbered as in the issue:
1 typed YAML and flags, 2 --skip-corrupt in validation and last.pth before evaluation,
3 --resume refuses contradicting flags, 4 training.train refuses distillation keys,
5 output paths checked first, 6 see test_cli_examples.py, 7 classes.yaml schema,
8 leftovers of killed runs, 9 the smaller ones.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.test_data_files import rgb, write_folder, write_png
from tests.test_training import DATASET, NO_AUGMENT, config
from training import distill, fit, train
from training.checkpoint import load_checkpoint
from training.config import resolve_config
from training.data import DataError, parse_dataset_spec
from training.errors import UserError, run_cli

TINY = ["--dataset", DATASET, "--input-size", "64", "128", "--batch-size", "2", "--workers",
        "0", "--no-progress", "--lr-schedule", "poly"]


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return path


def _one_line_exit_2(capsys, main, argv) -> str:
    with pytest.raises(SystemExit) as stopped:
        run_cli(main, argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


# ---- 1. every key has a declared type ----------------------------------------------------

def test_numbers_written_like_1e_3_are_floats(tmp_path):
    config = resolve_config(_yaml(tmp_path, "lr: 1e-3\nweight_decay: 1e-4\nlr_gamma: 1e-1\n"))
    assert (config["lr"], config["weight_decay"], config["lr_gamma"]) == (1e-3, 1e-4, 0.1)
    assert isinstance(config["lr"], float)


@pytest.mark.parametrize("text, message", [
    ("lr: fast", "lr: expected a number, got 'fast'"),
    ("input_size: 64", "input_size: expected [H, W] (two positive integers), got 64"),
    ("epochs: 1.5", "epochs: expected an integer, got 1.5"),
    ("batch_size: 2.5", "batch_size: expected an integer, got 2.5"),
    ("aux_loss: maybe", "aux_loss: expected true or false, got 'maybe'"),
    ("epochs: one", "epochs: expected an integer, got 'one'"),
    ("colour_jitter: 0.3", "unknown config key 'colour_jitter'"),
])
def test_wrong_yaml_values_name_the_file_and_key(tmp_path, capsys, text, message):
    path = _yaml(tmp_path, text)
    for main in (train.main, distill.main):
        err = _one_line_exit_2(capsys, main, ["--config", str(path), *TINY])
        assert err == f"error: {path}: {message}" or err.startswith(f"error: {path}: {message}")


def test_flags_are_typed_too(capsys):
    with pytest.raises(SystemExit) as stopped:
        train.main(["--lr", "fast"])
    assert stopped.value.code == 2
    assert "--lr: invalid float value: 'fast'" in capsys.readouterr().err
    with pytest.raises(UserError, match="command line: label_smoothing: must be below 1"):
        resolve_config(flags={"label_smoothing": 1.0})


def test_every_yaml_loader_types_its_keys(tmp_path, monkeypatch):
    from benchmarks import paper_table, quickstart, study_plan
    bad = _yaml(tmp_path, "lr: fast\n")
    monkeypatch.setattr(study_plan, "TEACHER_RECIPE", bad)
    plan = paper_table.parse_args(["--dataset", DATASET, "--input-size", "64", "128",
                                   "--workdir", str(tmp_path / "w"), "--out", str(tmp_path)])
    with pytest.raises(UserError, match="x.yaml: lr: expected a number"):
        study_plan.stage_configs(plan)
    monkeypatch.setattr(quickstart, "QUICKSTART", bad)
    with pytest.raises(UserError, match="x.yaml: lr: expected a number"):
        quickstart.measure_throughput(tmp_path, 1)


# ---- 2. --skip-corrupt covers validation; last.pth comes before evaluation ---------------

def _folder_with_a_corrupt_val_image(root: Path) -> str:
    write_folder(root)
    for split, count in (("train", 4), ("val", 2)):
        for i in range(count):
            write_png(root / split / "images" / f"{i}.png", rgb(64, 128, seed=i))
            write_png(root / split / "masks" / f"{i}.png",
                      np.random.default_rng(i).integers(0, 3, (64, 128), dtype=np.uint8))
    (root / "val" / "images" / "1.png").write_bytes(b"not an image")
    return f"folder:{root}"


def test_a_corrupt_val_image_loses_no_epoch(tmp_path):
    spec = _folder_with_a_corrupt_val_image(tmp_path / "data")
    run = config(tmp_path, dataset=spec, name="strict")
    with pytest.raises(DataError, match="1.png"):
        fit.run(run)
    assert load_checkpoint(tmp_path / "strict" / "last.pth")["epoch"] == 1  # saved first
    summary = fit.run(config(tmp_path, dataset=spec, name="lenient", skip_corrupt=True))
    assert summary["last_metrics"]["skipped_corrupt"] == 1
    assert summary["epochs"][-1]["val_miou"] >= 0


# ---- 3. --resume continues the run as it was ------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    return Path(fit.run(config(root, name="run", **NO_AUGMENT))["last"])


def test_resume_refuses_a_contradicting_flag(finished_run, capsys):
    err = _one_line_exit_2(capsys, train.main, ["--resume", str(finished_run), "--model",
                                                "deeplabv3_resnet50", "--dataset", DATASET,
                                                "--epochs", "2"])
    assert "--model 'deeplabv3_resnet50' contradicts the checkpoint" in err
    assert "only epochs, progress, workers may change" in err


def test_resume_of_a_finished_run_says_so_and_epochs_may_grow(finished_run, capsys):
    err = _one_line_exit_2(capsys, train.main, ["--resume", str(finished_run)])
    assert "has finished: it trained all 1 epochs" in err
    summary = train.main(["--resume", str(finished_run), "--epochs", "2", "--no-progress"])
    assert load_checkpoint(summary["last"])["epoch"] == 2


def test_resumable_flags_are_listed_in_help(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    assert "only --epochs, --progress, --workers may change" in " ".join(capsys.readouterr().out.split())


# ---- 4. training.train does not take (or record) a teacher ---------------------------------

def test_train_refuses_distillation_keys(tmp_path, capsys):
    path = _yaml(tmp_path, "teacher: missing.pth\n")
    err = _one_line_exit_2(capsys, train.main, ["--config", str(path), *TINY])
    assert "teacher is a distillation setting" in err and "training.distill" in err


def test_a_plain_run_records_no_distillation_settings(finished_run):
    recorded = yaml.safe_load((finished_run.parent / "config.yaml").read_text())
    assert "teacher" not in recorded and "alpha" not in recorded
    assert "teacher" not in load_checkpoint(finished_run)["config"]


# ---- 5. output paths are checked before the work starts -------------------------------------

def test_output_paths_under_a_file_fail_first(finished_run, tmp_path, capsys):
    from training import evaluate
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _one_line_exit_2(capsys, evaluate.main, [
        "--checkpoints", str(finished_run), "--no-profile", "--workers", "0",
        "--json", str(blocker / "t.json"), "--out", str(tmp_path / "eval")])
    assert "--json" in err and "not writable" in err
    assert not (tmp_path / "eval").exists()
    err = _one_line_exit_2(capsys, train.main, [*TINY, "--output-dir", str(blocker / "runs")])
    assert "run folder" in err and "not writable" in err


# ---- 7. classes.yaml is validated against a schema ------------------------------------------

@pytest.mark.parametrize("classes, message", [
    ({"names": "abc", "colors": [[1, 2, 3]] * 3}, "names: expected a list of class names"),
    ({"names": "road car sky", "colors": [[1, 2, 3]] * 3}, "names: expected a list"),
    ({"names": ["a", "b"], "colors": [[1, 2, "x"], [3, 4, 5]]}, "colors.0.2: expected a list "
                                                               "of [r, g, b] with integers"),
    ({"names": ["a", "b"], "colors": [[1, 2, 3], [3, 4, 300]]}, "colors.1.2"),
    ({"names": ["a", "b"], "colors": [[1, 2, 3], [3, 4, 5]], "ignore_index": "x"},
     "ignore_index: expected an integer"),
])
def test_classes_files_are_validated(tmp_path, classes, message):
    (tmp_path / "images").mkdir()
    (tmp_path / "classes.yaml").write_text(yaml.safe_dump(classes))
    with pytest.raises(DataError, match="classes.yaml") as error:
        parse_dataset_spec(f"folder:{tmp_path}")
    assert message in str(error.value)


# ---- 8. leftovers of a killed run are removed on the next start -----------------------------

def test_stale_temporaries_are_removed_with_one_line(tmp_path, capsys):
    run_dir = tmp_path / "leftover"
    run_dir.mkdir()
    dead = 2 ** 22 + 12345  # above the kernel's pid_max: no such process
    stale = run_dir / f".last.pth.{dead}.abc.tmp"
    stale.write_bytes(b"x" * 1000)
    live = run_dir / f".last.pth.{os.getpid()}.abc.tmp"  # this process: still writing
    live.write_bytes(b"x")
    fit.run(config(tmp_path, name="leftover"))
    assert not stale.exists() and live.exists()
    assert "removed 1 leftover(s) of interrupted runs" in capsys.readouterr().err


def test_stale_export_staging_folders_are_removed(tmp_path):
    from training.io import remove_stale
    staging = tmp_path / f".export-{2 ** 22 + 1}-xyz"
    (staging / "work").mkdir(parents=True)
    (staging / "work" / "big.onnx").write_bytes(b"x")
    assert remove_stale(tmp_path) == [staging] and not staging.exists()


# ---- 9. the smaller ones ---------------------------------------------------------------------

def test_calibration_from_a_npy_raises_no_warning(tmp_path):
    from conversion.calibration import load_calibration
    path = tmp_path / "frames.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (3, 32, 48, 3), dtype=np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames = load_calibration(str(path), 2, (16, 32))
    assert frames.images.shape == (2, 16, 32, 3)


def test_class_mismatch_names_the_differing_classes():
    from training.checkpoint import check_classes
    wanted = {"spec": "folder:x", "class_names": ["road", "car", "sky"], "num_classes": 3}
    with pytest.raises(UserError, match="name class 1 differently: 'truck' vs 'car'"):
        check_classes("teacher t.pth", dict(wanted, class_names=["road", "truck", "sky"]),
                      wanted)


def test_a_refused_export_keeps_the_earlier_artifacts_listed(parity_student, tmp_path):
    from conversion import export
    out = tmp_path / "artifacts"
    base = ["--target", "onnx", "--checkpoint", str(parity_student), "--parity-count", "4",
            "--out", str(out)]
    export.main(base)
    with pytest.raises(SystemExit):
        export.main(base + ["--threshold", "fp32.agreement=1.0", "--threshold",
                            "fp32.max_abs_err=0"])
    artifacts = json.loads((out / "parity.json").read_text())["artifacts"]
    earlier = [a for a in artifacts if a.get("earlier_run")]
    assert len(earlier) == 1 and earlier[0]["passed"] and (out / earlier[0]["file"]).exists()
    assert any(not a["passed"] for a in artifacts)
    assert "from an earlier run" in (out / "parity.md").read_text()
