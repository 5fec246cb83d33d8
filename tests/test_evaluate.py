"""`python -m training.evaluate`: the table in three formats, the figures, clean errors."""
import csv
import json
import math
import pickle
import subprocess
import sys

import pytest
import torch

from training.checkpoint import dataset_record, make_checkpoint
from training.data import parse_dataset_spec
from training.errors import run_cli
from training.io import atomic_save
from training.models import STUDENTS, TEACHER, build_model, count_parameters

SPEC = "synthetic:size=64x128,train=2,val=4,seed=0"
STUDENT = "deeplabv3lite_mobilenetv2"
KEYS = {"checkpoint", "model", "miou", "mae_50", "mae_50_95", "per_class_iou", "params_m",
        "gflops", "peak_mem_mb", "latency_ms"}
FAST = ["--dataset", SPEC, "--workers", "0", "--threads", "1", "--batch-size", "2"]


def save_checkpoint(path, num_classes=19, seed=0, dataset=None, name=STUDENT):
    spec = parse_dataset_spec(SPEC)
    torch.manual_seed(seed)
    model = build_model(name, num_classes=num_classes)
    config = {"input_size": [64, 128], "dataset": SPEC}
    atomic_save(make_checkpoint(model, dataset or dataset_record(spec), config, epoch=3), path)
    return model


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """runs/a/best.pth with a metrics.csv (one column we do not know, one empty cell) and
    runs/b/best.pth without one: both named 'best', so rows must get distinct names."""
    root = tmp_path_factory.mktemp("runs")
    paths = [root / "a" / "best.pth", root / "b" / "best.pth"]
    models = [save_checkpoint(path, seed=index) for index, path in enumerate(paths)]
    (root / "a" / "metrics.csv").write_text(
        "epoch,lr,train_loss,val_miou,val_mae_50,val_mae_50_95,surprise\n"
        "1,0.01,2.5,10.0,90.0,95.0,x\n2,0.005,2.0,,80.0,92.0,y\n")
    return paths, models


def fake_peak_memory(factory, input_size, threads):
    """Stands in for the spawned measurement (tested in test_profile.py, ~10 s a model here)
    and checks what evaluate owes it: a picklable factory that rebuilds the checkpoint."""
    model = pickle.loads(pickle.dumps(factory))()
    assert not model.training and input_size == (64, 128) and threads == 1
    fake_peak_memory.rebuilt.append(model.state_dict())
    return 12.5


def test_evaluate_writes_table_json_csv_and_figures(two_runs, tmp_path, capsys, monkeypatch):
    from training import evaluate, evaluation
    paths, models = two_runs
    fake_peak_memory.rebuilt = []
    monkeypatch.setattr(evaluation, "measure_peak_memory_mb", fake_peak_memory)
    out, extra = tmp_path / "eval", tmp_path / "extra" / "results.json"
    rows = evaluate.main(["--checkpoints", *map(str, paths), *FAST, "--max-images", "3",
                          "--latency-runs", "1", "--out", str(out), "--json", str(extra)])
    table = json.loads((out / "table.json").read_text())
    assert table == json.loads(extra.read_text()) and len(table) == 2
    class_names = parse_dataset_spec(SPEC).class_names
    for row, path, model in zip(table, paths, models):
        assert KEYS <= row.keys()
        assert row["checkpoint"] == str(path) and row["model"] == STUDENT
        assert row["images"] == 3 and row["input_size"] == [64, 128] and row["epoch"] == 3
        assert list(row["per_class_iou"]) == list(class_names)
        defined = [v for v in row["per_class_iou"].values() if v is not None]
        assert defined and all(0 <= v <= 100 for v in defined)
        assert row["miou"] == pytest.approx(sum(defined) / len(defined))
        # mAE@t only grows with t, so the averaged one can never be below mAE@0.5.
        assert 0 <= row["mae_50"] <= row["mae_50_95"] <= 100
        assert row["params_m"] == pytest.approx(count_parameters(model) / 1e6)
        assert row["gflops"] > 0 and row["latency_ms"] > 0 and row["peak_mem_mb"] == 12.5
    # One architecture, one cost measurement: b's cost columns are a's, and say so.
    costs = ("gflops", "size_mb", "peak_mem_mb", "latency_ms", "cost_from")
    assert [row["cost_from"] for row in table] == ["a/best", "a/best"]
    assert [table[1][key] for key in costs] == [table[0][key] for key in costs]
    (rebuilt,) = fake_peak_memory.rebuilt
    for key, tensor in models[0].state_dict().items():
        torch.testing.assert_close(rebuilt[key], tensor)
    assert [row["name"] for row in rows] == ["a/best", "b/best"]

    with open(out / "table.csv", newline="") as stream:
        lines = list(csv.DictReader(stream))
    assert [line["checkpoint"] for line in lines] == list(map(str, paths))
    assert float(lines[0]["miou"]) == pytest.approx(table[0]["miou"])
    assert "iou_road" in lines[0]
    markdown = (out / "table.md").read_text()
    assert "mIoU (%)" in markdown and "| a/best |" in markdown and "| road |" in markdown
    assert "measured once per architecture: b/best from a/best." in markdown
    for figure in ("confusion_a_best", "confusion_b_best", "overlays", "curves",
                   "accuracy_vs_cost"):
        assert (out / f"{figure}.png").stat().st_size > 1000, figure
    assert "table.md" in capsys.readouterr().out


def test_the_cost_key_is_the_architecture_not_the_weights():
    from training.evaluation import structure_key
    torch.manual_seed(0)
    a, b = build_model(STUDENT, num_classes=19), build_model(STUDENT, num_classes=19)
    weight = "classifier.3.weight"
    assert not torch.equal(a.state_dict()[weight], b.state_dict()[weight])
    arch = {"name": STUDENT, "num_classes": 19, "output_stride": 16}
    assert structure_key(a, arch) == structure_key(b, dict(arch))
    assert structure_key(a, arch) != structure_key(a, dict(arch, output_stride=8))
    assert structure_key(a, arch) != structure_key(build_model(STUDENT, num_classes=11), arch)
    assert structure_key(a, arch) != structure_key(build_model(STUDENTS[0], num_classes=19),
                                                   arch)


def test_no_profile_leaves_cost_columns_empty_and_says_what_it_skipped(two_runs, tmp_path,
                                                                       capsys):
    from training.evaluate import main
    out = tmp_path / "eval"
    rows = main(["--checkpoints", str(two_runs[0][1]), *FAST, "--max-images", "2",
                 "--no-profile", "--out", str(out)])
    assert rows[0]["gflops"] is None and rows[0]["latency_ms"] is None
    assert rows[0]["params_m"] > 0
    assert not (out / "accuracy_vs_cost.png").exists() and not (out / "curves.png").exists()
    printed = capsys.readouterr().out
    assert "accuracy_vs_cost.png skipped" in printed and "curves.png skipped" in printed
    assert json.loads((out / "table.json").read_text())[0]["gflops"] is None


def test_overlay_columns_put_the_teacher_first(monkeypatch, tmp_path):
    from training import report
    captured = {}
    monkeypatch.setattr(report.plots, "plot_overlays",
                        lambda images, masks, columns, *rest: captured.update(columns=columns))
    samples = report.Samples([torch.zeros(3, 4, 4)], [torch.zeros(4, 4, dtype=torch.long)],
                             [torch.zeros(4, 4, dtype=torch.long)])
    results = [report.CheckpointResult(tmp_path / f"{name}.pth", {"name": name, "model": arch},
                                       torch.zeros(2, 2), samples, [(0, 0, 0), (1, 1, 1)])
               for name, arch in (("small", STUDENTS[1]), ("big", TEACHER))]
    report._write_overlays(results, ["a", "b"], lambda name: tmp_path / name)
    assert [title for title, _, _ in captured["columns"]] == ["teacher: big", "student: small"]
    report._write_overlays(results[:1], ["a", "b"], lambda name: tmp_path / name)
    assert [title for title, _, _ in captured["columns"]] == ["small"]


def truncate(save, path):
    save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def renamed_classes():
    record = dataset_record(parse_dataset_spec(SPEC))
    record["class_names"] = ["tarmac"] + record["class_names"][1:]
    record["spec"] = "mycity"
    return record


@pytest.mark.parametrize("make_file, message", [
    (lambda path: save_checkpoint(path, num_classes=5), "predicts 5 classes"),
    (lambda path: save_checkpoint(path, dataset=renamed_classes()), "'tarmac' vs 'road'"),
    (lambda path: truncate(save_checkpoint, path), "corrupt or truncated"),
    (lambda path: path.write_bytes(b"not a checkpoint at all"), "model.pth"),
    (lambda path: None, "checkpoint not found"),
    (lambda path: torch.save({"model": {}, "arch": {"name": STUDENT, "num_classes": 19},
                              "config": {"input_size": [64, 128]}}, path),
     "weights do not match the recorded architecture"),
])
def test_bad_checkpoint_is_one_line_and_nonzero_exit(make_file, message, tmp_path, capsys):
    from training.evaluate import main
    path = tmp_path / "model.pth"
    make_file(path)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, ["--checkpoints", str(path), *FAST, "--no-profile",
                       "--out", str(tmp_path / "eval")])
    assert exit_info.value.code != 0
    stderr = capsys.readouterr().err
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "eval").exists()  # failed before any work


def test_cli_process_prints_no_traceback(tmp_path):
    missing = tmp_path / "missing.pth"
    result = subprocess.run([sys.executable, "-m", "training.evaluate", "--checkpoints",
                             str(missing)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: checkpoint not found: {missing}"


def test_nan_becomes_null_in_json():
    from training.io import json_safe
    assert json_safe({"iou": [math.nan, 1.0], 0.5: (2,)}) == {"iou": [None, 1.0], "0.5": [2]}
