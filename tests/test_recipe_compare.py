"""benchmarks.recipe_compare: two KD recipes' distilled students, paired by seed."""
import json

import pytest

from benchmarks import recipe_compare
from training.errors import UserError

MACHINE = {"machine": "test CPU, 2 cores", "cpu_flags": ["avx2"]}


def _study(tag: str, kd_miou: dict[str, list[float]]) -> dict:
    rows = [{"role": "teacher", "student": None, "seed": 0, "kd": False, "miou": 40.0,
             "per_class_iou": {"road": 90.0, "tree": 80.0}}]
    for student, values in kd_miou.items():
        for seed, miou in enumerate(values):
            rows.append({"role": "student", "student": student, "seed": seed, "kd": False,
                         "miou": 30.0, "per_class_iou": {"road": 85.0, "tree": 10.0}})
            rows.append({"role": "student", "student": student, "seed": seed, "kd": True,
                         "miou": miou, "per_class_iou": {"road": 85.0, "tree": miou}})
    return {"dataset": "camvid:x", "split": "val", "input_size": [96, 128],
            "epochs": {"teacher": 40, "student": 40}, "teacher_output_stride": 16,
            "schedule": "cosine", "recipe": {"tag": tag}, "machine": MACHINE, "rows": rows}


def test_difference_is_b_minus_a_paired_by_seed():
    a = _study("kd_cached_kl_a0.5_T2", {"r18": [38.0, 37.0, 39.0], "mnv2": [27.0, 27.0, 28.0]})
    b = _study("kd_cached_dist_a0.5_T1", {"r18": [39.0, 39.0, 40.0], "mnv2": [32.0, 30.0, 35.0]})
    report = recipe_compare.compare(a, b)
    r18, mnv2 = report["students"]["r18"], report["students"]["mnv2"]
    assert r18["difference"]["differences"] == [1.0, 2.0, 1.0]
    assert r18["difference"]["mean"] == pytest.approx(4 / 3)
    assert mnv2["difference"]["differences"] == [5.0, 3.0, 7.0]
    assert mnv2["difference"]["ci_low"] < 5.0 < mnv2["difference"]["ci_high"]
    # Per class: only tree moved (it carries the mIoU in these rows), road did not.
    assert mnv2["per_class_difference"] == {"road": 0.0, "tree": pytest.approx(5.0)}
    text = recipe_compare.markdown(report)
    assert "`kd_cached_dist_a0.5_T1` minus `kd_cached_kl_a0.5_T2`" in text
    assert "| DeepLabv3-Lite MNv2 | 0, 1, 2 | 27.0, 27.0, 28.0 | 32.0, 30.0, 35.0 | +5.00 ± 2.00" \
        in text


def test_only_shared_seeds_are_paired():
    a = _study("kd_cached_kl_a0.5_T2", {"mnv2": [27.0, 27.0, 28.0]})
    b = _study("kd_cached_dist_a0.5_T1", {"mnv2": [32.0]})
    mnv2 = recipe_compare.compare(a, b)["students"]["mnv2"]
    assert mnv2["seeds"] == [0] and mnv2["difference"]["differences"] == [5.0]
    assert mnv2["difference"]["ci_low"] is None


@pytest.mark.parametrize("change, message", [
    ({"input_size": [64, 128]}, "differ in input_size"),
    ({"recipe": {"tag": "kd_cached_kl_a0.5_T2"}}, "nothing to compare"),
])
def test_refuses_studies_that_are_not_paired(change, message):
    a = _study("kd_cached_kl_a0.5_T2", {"r18": [38.0]})
    b = {**_study("kd_cached_dist_a0.5_T1", {"r18": [39.0]}), **change}
    with pytest.raises(UserError, match=message):
        recipe_compare.compare(a, b)


def test_cli_writes_both_files_and_exits_2_on_a_bad_table(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_study("kd_cached_kl_a0.5_T2", {"r18": [38.0, 37.0]})))
    b.write_text(json.dumps(_study("kd_cached_dist_a0.5_T1", {"r18": [39.0, 39.0]})))
    recipe_compare.main([str(a), str(b), "--out", str(tmp_path / "out")])
    saved = json.loads((tmp_path / "out" / "recipe_compare.json").read_text())
    assert saved["students"]["r18"]["difference"]["mean"] == pytest.approx(1.5)
    assert (tmp_path / "out" / "recipe_compare.md").read_text() == capsys.readouterr().out

    b.write_text("{not json")
    with pytest.raises(SystemExit) as exit_info:
        recipe_compare.run_cli(recipe_compare.main, [str(a), str(b), "--out",
                                                     str(tmp_path / "bad")])
    assert exit_info.value.code == 2
    assert "cannot read the study table" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()

    b.write_text(json.dumps({"rows": []}))  # valid JSON, but not a study table
    with pytest.raises(SystemExit) as exit_info:
        recipe_compare.run_cli(recipe_compare.main, [str(a), str(b), "--out",
                                                     str(tmp_path / "bad")])
    assert exit_info.value.code == 2
    assert "not a benchmarks.paper_table table.json (no recipe, machine, dataset," in \
        capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
